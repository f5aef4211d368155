# Copyright (c) 2026, capstan.release contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Watch a deploy tree and record every moment its ``current`` could not be resolved.

Run on a test host, in the background, for the length of a Molecule scenario:

    python3 current_watch.py DEPLOY_TO LOG SECONDS

It asks the kernel (inotify, through ctypes: standard library only) for every entry created,
deleted or renamed in DEPLOY_TO, so it misses no switch however fast: a poller could sleep
through the microseconds an unlink + symlink leaves without ``current``; the kernel reports
the unlink itself. LOG gets one JSON object per line:

    {"event": "watching", ...}                       the watch is in place (written first)
    {"event": "switch", "target": ..., "complete": true}   current was renamed into place
    {"event": "gone", "how": "deleted" | "moved away"}     a moment without current
    {"event": "created", "target": ...}              current made in place, not renamed
    {"event": "incomplete", "target": ...}           current led to no release with a REVISION

Only ``switch`` (and one ``created`` before any release existed) are right. The watcher
stops after SECONDS, on SIGTERM, or with its host.
"""

from __future__ import annotations

import ctypes
import errno
import json
import os
import select
import signal
import struct
import sys
import time

IN_MOVED_FROM = 0x00000040
IN_MOVED_TO = 0x00000080
IN_CREATE = 0x00000100
IN_DELETE = 0x00000200
IN_Q_OVERFLOW = 0x00004000
EVENT = struct.Struct('iIII')
CURRENT = b'current'


def resolve(deploy_to):
    """(target, complete): where current points, and whether that is a release with a REVISION."""
    link = os.path.join(deploy_to, 'current')
    try:
        target = os.readlink(link)
    except OSError:
        return None, False
    path = os.path.join(deploy_to, target)
    return target, os.path.isfile(os.path.join(path, 'REVISION'))


def events(fd, deadline):
    """Yield (mask, name) of each inotify event until the deadline."""
    while time.monotonic() < deadline:
        ready = select.select([fd], [], [], 1.0)[0]
        if not ready:
            continue
        try:
            data = os.read(fd, 65536)
        except OSError as exc:
            if exc.errno == errno.EINTR:
                continue
            raise
        offset = 0
        while offset < len(data):
            _wd, mask, _cookie, size = EVENT.unpack_from(data, offset)
            name = data[offset + EVENT.size:offset + EVENT.size + size].rstrip(b'\0')
            offset += EVENT.size + size
            yield mask, name


def main(deploy_to, log_path, seconds):
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    libc = ctypes.CDLL(None, use_errno=True)
    fd = libc.inotify_init1(os.O_NONBLOCK | os.O_CLOEXEC)
    if fd < 0 or libc.inotify_add_watch(fd, os.fsencode(deploy_to),
                                        IN_CREATE | IN_DELETE | IN_MOVED_FROM | IN_MOVED_TO) < 0:
        raise SystemExit('current_watch: cannot watch %s: %s' % (deploy_to, os.strerror(ctypes.get_errno())))

    with open(log_path, 'a', buffering=1) as log:
        def record(event, **fields):
            fields.update(event=event, time=time.time())
            log.write(json.dumps(fields, sort_keys=True) + '\n')

        target, complete = resolve(deploy_to)
        record('watching', deploy_to=deploy_to, pid=os.getpid(), target=target, complete=complete)
        for mask, name in events(fd, time.monotonic() + seconds):
            if mask & IN_Q_OVERFLOW:
                record('overflow')
            if name != CURRENT:
                continue
            if mask & IN_DELETE:
                record('gone', how='deleted')
            elif mask & IN_MOVED_FROM:
                record('gone', how='moved away')
            elif mask & (IN_MOVED_TO | IN_CREATE):
                target, complete = resolve(deploy_to)
                record('switch' if mask & IN_MOVED_TO else 'created', target=target, complete=complete)
                if not complete:
                    record('incomplete', target=target)


if __name__ == '__main__':
    main(sys.argv[1], sys.argv[2], float(sys.argv[3]))
