# Copyright (c) 2026, capstan.release contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""The controller's side of a run: who runs it, and the files it keeps while it runs.

Ansible runs each task of each host in a worker process forked from ``ansible-playbook``,
so every worker of one run sees the same parent pid and command line: that is the run's
identity, recorded in the lock. What workers share (the manifest of a copy source, the
bundles sent to hosts) lives in files named after that pid in the controller's temporary
directory, made once under a file lock and removed when the run ends; files of runs whose
pid is gone (a controller that was killed) are removed by the next run.
"""

from __future__ import annotations

import contextlib
import fcntl
import getpass
import hashlib
import json
import os
import re
import shlex
import shutil
import socket
import sys
import tempfile

from ansible_collections.capstan.release.plugins.module_utils import _secrets

PREFIXES = ('capstan-bundle-', 'capstan-run-')
_LEFTOVER_RE = re.compile(r'^capstan-(?:bundle|run)-(?P<pid>[0-9]+)-')


def _process_start(pid):
    """When process ``pid`` started (clock ticks since boot), where /proc says; None elsewhere."""
    try:
        with open('/proc/%d/stat' % pid) as handle:
            return handle.read().rsplit(')', 1)[1].split()[19]
    except (IOError, OSError, IndexError):
        return None


def identity(task_uuid, mode):
    """The run's identity: the controller's ansible-playbook pid, user, host and exact command line (masked)."""
    pid = os.getppid()
    start = _process_start(pid)
    host = socket.gethostname()
    try:
        user = getpass.getuser()
    except (KeyError, OSError):
        user = str(os.getuid())
    owner = '%s-%d-%s-%s' % (host, pid, start or '0', task_uuid)
    return {'owner': owner, 'user': user, 'host': host, 'pid': pid, 'mode': mode,
            'command': _secrets.mask(' '.join(shlex.quote(arg) for arg in sys.argv))}


def pid_alive(pid):
    try:
        os.kill(int(pid), 0)
    except ProcessLookupError:
        return False
    except (PermissionError, ValueError, TypeError, OverflowError):
        return True
    return True


def _prefixes(run):
    """The names of this run's folder and the start of its bundles' names: the controller's pid and the run's tag."""
    tag = hashlib.sha256(run['owner'].encode('utf-8')).hexdigest()[:12]
    return 'capstan-run-%d-%s' % (run['pid'], tag), 'capstan-bundle-%d-%s-' % (run['pid'], tag)


def run_dir(run):
    """This run's folder of shared files in the temporary directory (made on first use)."""
    path = os.path.join(tempfile.gettempdir(), _prefixes(run)[0])
    os.makedirs(path, mode=0o700, exist_ok=True)
    return path


@contextlib.contextmanager
def _locked(path):
    fd = os.open(path + '.lock', os.O_WRONLY | os.O_CREAT, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)


def once(path, make):
    """The JSON-able value in ``path``, made by ``make()`` by the first worker to ask (the others wait and read it)."""
    with _locked(path):
        if os.path.exists(path):
            with open(path) as handle:
                return json.load(handle)
        value = make()
        tmp = '%s.tmp-%d' % (path, os.getpid())
        with open(tmp, 'w') as handle:
            json.dump(value, handle)
        os.rename(tmp, path)
        return value


def bundle_path(run, missing):
    """Where the bundle of contents ``missing`` lives for this run (hosts that lack the same share it)."""
    key = hashlib.sha256('\n'.join(sorted(missing)).encode('ascii')).hexdigest()[:16]
    return os.path.join(tempfile.gettempdir(), '%s%s.tar.gz' % (_prefixes(run)[1], key))


def make_file_once(path, make):
    """Make ``path`` with ``make(tmp_path)`` unless a worker of this run already did; returns ``path``."""
    with _locked(path):
        if not os.path.exists(path):
            tmp = '%s.tmp-%d' % (path, os.getpid())
            try:
                make(tmp)
                os.chmod(tmp, 0o600)
                os.rename(tmp, path)
            finally:
                if os.path.exists(tmp):
                    os.unlink(tmp)
    return path


def store(run, name, value):
    """Keep ``value`` (JSON) for a later stage of this run on this controller."""
    path = os.path.join(run_dir(run), name)
    tmp = '%s.tmp-%d' % (path, os.getpid())
    with open(tmp, 'w') as handle:
        json.dump(value, handle)
    os.rename(tmp, path)


def load(run, name, default=None):
    try:
        with open(os.path.join(run_dir(run), name)) as handle:
            return json.load(handle)
    except (IOError, OSError, ValueError):
        return default


def forget(run):
    """Remove this run's shared files (its folder and its bundles); another run of the same playbook keeps its own."""
    folder = tempfile.gettempdir()
    mine = _prefixes(run)
    for entry in os.listdir(folder):
        if entry.startswith(mine):
            _remove(os.path.join(folder, entry))


def clean_leftovers(folder=None):
    """Remove the shared files of runs whose ansible-playbook is gone; returns what was removed."""
    folder = folder or tempfile.gettempdir()
    removed = []
    try:
        entries = os.listdir(folder)
    except OSError:
        return removed
    for entry in entries:
        match = _LEFTOVER_RE.match(entry)
        if match and not pid_alive(match.group('pid')):
            if _remove(os.path.join(folder, entry)):
                removed.append(entry)
    return removed


def _remove(path):
    try:
        if os.path.isdir(path) and not os.path.islink(path):
            shutil.rmtree(path)
        else:
            os.unlink(path)
    except FileNotFoundError:
        return False
    except OSError:
        return False
    return True
