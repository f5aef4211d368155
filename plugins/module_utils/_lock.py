# Copyright (c) 2026, capstan.release contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""One deploy or rollback per deploy_to at a time: the lock file and its holder.

The lock is ``<deploy_to>/.capstan/lock``, a JSON object naming its holder (owner token,
user, controller host, pid, time), created atomically with link(2) so it never exists
half-written. Its owner releases it; anyone else needs ``force`` (a stale lock).
"""

from __future__ import annotations

import json
import os
import time

from ansible_collections.capstan.release.plugins.module_utils import _fsops
from ansible_collections.capstan.release.plugins.module_utils import _journal
from ansible_collections.capstan.release.plugins.module_utils._errors import CapstanError

BREAK_HINT = 're-run the same playbook with -e deploy_break_lock=true'


def read_holder(path):
    """The holder recorded in the lock file, {} when unlocked.

    A lock file that exists but cannot be read or does not hold a holder is still a lock:
    it is reported as ``{'owner': None, 'unreadable': ...}``, never as unlocked.
    """
    try:
        text = _fsops.read_text(path)
    except (IOError, OSError) as exc:
        return {'owner': None, 'unreadable': '', 'error': str(exc)}
    if text is None:
        return {}
    try:
        holder = json.loads(text)
    except ValueError:
        holder = None
    if not isinstance(holder, dict) or not holder:
        holder = {'owner': None, 'unreadable': text[:200]}
    return holder


def describe(holder):
    """A holder in words: ``alice on ctl01 (pid 4242) since 2026-11-21T22:14:04Z``."""
    if not holder:
        return 'nobody'
    if 'unreadable' in holder:
        return 'an unreadable lock file'
    return '%s on %s (pid %s) since %s' % (holder.get('user') or '?', holder.get('host') or '?',
                                           holder.get('pid') or '?', holder.get('time') or '?')


def age(holder, now=None):
    """Seconds since ``holder`` took the lock, or None when the lock does not say."""
    taken = _journal.parse_stamp(holder.get('time')) if holder else None
    if taken is None:
        return None
    return max(0, int((time.time() if now is None else now) - taken))


def is_stale(holder, ttl, now=None):
    """True when the lock is older than ``ttl`` seconds (0: locks never look stale), or unreadable."""
    if not holder:
        return False
    if 'unreadable' in holder:
        return True
    held = age(holder, now)
    return bool(ttl) and held is not None and held > ttl


def _refusal(path, holder, why, ttl=None):
    """The one sentence a run refused by ``holder`` sees: who, what they ran, whether it looks stale, how to clear it."""
    running = ' running %r' % holder['command'] if holder.get('command') else ''
    stale = ''
    if is_stale(holder, ttl):
        held = age(holder)
        stale = (' (held for %ds, longer than deploy_lock_ttl=%ds: it looks stale)' % (held, ttl)
                 if held is not None else ' (it looks stale)')
    return '%s is locked by %s%s%s%s; if that run is gone, %s' % (
        os.path.dirname(os.path.dirname(path)), describe(holder), running, why, stale, BREAK_HINT)


def make_holder(owner, user=None, host=None, pid=None, command=None, **extra):
    """A lock holder; ``extra`` records what the run is doing (``mode``, a rollback's ``target``)."""
    if not owner:
        raise CapstanError('owner must be a non-empty token identifying this run')
    holder = {'owner': owner, 'user': user, 'host': host, 'pid': pid, 'command': command, 'time': _journal.utc_stamp()}
    holder.update((key, value) for key, value in extra.items() if value is not None)
    return holder


def plan_acquire(path, owner, force=False, ttl=None):
    """What taking the lock would do: ('take' | 'held' | 'break', current holder)."""
    holder = read_holder(path)
    if not holder:
        return 'take', holder
    if holder.get('owner') == owner:
        return 'held', holder
    if force:
        return 'break', holder
    raise CapstanError(_refusal(path, holder, '', ttl), holder=holder)


def acquire(path, holder, force=False, ttl=None):
    """Take the lock for ``holder``; returns (changed, previous holder)."""
    action, previous = plan_acquire(path, holder['owner'], force, ttl)
    if action == 'held':
        return False, previous
    data = json.dumps(holder, sort_keys=True) + '\n'
    if action == 'break':
        _fsops.write_file_atomic(path, data, 0o600)
        return True, previous
    if not _fsops.create_file_exclusive(path, data, 0o600):
        # Someone took it between our look and our link: report them.
        return acquire(path, holder, force, ttl)
    return True, previous


def update(path, owner, **fields):
    """Record more of what the run holding the lock does (a rollback's target, say) in its lock file."""
    holder = read_holder(path)
    if holder.get('owner') != owner:
        raise CapstanError(_refusal(path, holder, ', not by this run'), holder=holder)
    holder.update(fields)
    _fsops.write_file_atomic(path, json.dumps(holder, sort_keys=True) + '\n', 0o600)
    return holder


def plan_release(path, owner, force=False):
    """What releasing would do: ('free' | 'release', current holder)."""
    holder = read_holder(path)
    if not holder:
        return 'free', holder
    if holder.get('owner') != owner and not force:
        raise CapstanError(_refusal(path, holder, ', not by this run'), holder=holder)
    return 'release', holder


def release(path, owner, force=False):
    """Release the lock held by ``owner`` (anyone's with ``force``); returns (changed, holder)."""
    action, holder = plan_release(path, owner, force)
    if action == 'free':
        return False, holder
    _fsops.remove_file(path)
    _fsops.fsync_dir(os.path.dirname(path))
    return True, holder
