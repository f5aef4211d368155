# Copyright (c) 2026, capstan.release contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""The two histories a deploy tree keeps: capstan's journal and Capistrano's revisions.log.

The journal (``<deploy_to>/.capstan/journal``) holds one JSON object a line, appended and
fsynced under the deploy lock: what happened to which release, when, by whom. A release's
state is the last state-changing event the journal holds for it.

revisions.log holds Capistrano's own lines, byte for byte, so both tools read each other's.
"""

from __future__ import annotations

import calendar
import json
import re
import time

from ansible_collections.capstan.release.plugins.module_utils import _fsops

# Events that set a release's state, and the state each one sets.
STATE_EVENTS = {
    'created': 'unfinished',
    'finished': 'finished',
    'succeeded': 'successful',
    'failed': 'failed',
    'rolled_back': 'rolled_back',
    # Written before a release's directory is deleted: if the delete stops half-way (a file that
    # cannot be removed, a crash), what is left is never counted or chosen again.
    'removing': 'removing',
    'removed': 'removed',
}
# Events recorded for history only.
HISTORY_EVENTS = ('published', 'rollback', 'lock_broken', 'drill')
EVENTS = tuple(STATE_EVENTS) + HISTORY_EVENTS

DEPLOY_LINE = 'Branch {branch} (at {sha}) deployed as release {release} by {user}'
ROLLBACK_LINE = '{user} rolled back to release {release}'
_DEPLOY_RE = re.compile(r'^Branch (?P<branch>.*) \(at (?P<sha>.*)\) deployed as release (?P<release>\S+) by (?P<user>.*)$')
_ROLLBACK_RE = re.compile(r'^(?P<user>.*) rolled back to release (?P<release>\S+)$')
_STAMP_RE = re.compile(r'^[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}Z\Z')


def utc_stamp(now=None):
    """ISO-8601 UTC time with a Z, to the second."""
    return time.strftime('%Y-%m-%dT%H:%M:%SZ', time.gmtime(now))


def parse_stamp(text):
    """Seconds since the epoch of a journal time (``utc_stamp``'s form), or None for anything else."""
    if not isinstance(text, str) or not _STAMP_RE.match(text):
        return None
    try:
        return calendar.timegm(time.strptime(text, '%Y-%m-%dT%H:%M:%SZ'))
    except ValueError:
        return None


def append_event(path, event, release, **fields):
    """Add one event to the journal and return it."""
    if event not in EVENTS:
        raise ValueError('unknown journal event %r' % event)
    record = {'time': utc_stamp(), 'event': event, 'release': release}
    record.update((key, value) for key, value in fields.items() if value is not None)
    _fsops.append_line(path, json.dumps(record, sort_keys=True))
    return record


def read_events(path):
    """Every well-formed event of the journal, oldest first; torn or foreign lines are skipped."""
    text = _fsops.read_text(path, default='')
    events = []
    for line in text.splitlines():
        try:
            record = json.loads(line)
        except ValueError:
            continue
        if isinstance(record, dict) and record.get('event') in EVENTS and isinstance(record.get('release'), str):
            events.append(record)
    return events


def states_from(events):
    """Map release name -> state, from the last state-changing event of each release."""
    states = {}
    for record in events:
        state = STATE_EVENTS.get(record['event'])
        if state is not None:
            states[record['release']] = state
    return states


def deploy_line(branch, sha, release, user):
    """The line Capistrano appends to revisions.log after a deploy."""
    return DEPLOY_LINE.format(branch=branch, sha=sha, release=release, user=user)


def rollback_line(user, release):
    """The line Capistrano appends to revisions.log after a rollback to ``release``."""
    return ROLLBACK_LINE.format(user=user, release=release)


def parse_revisions(text):
    """The entries of a revisions.log: dicts with ``kind`` ``deploy`` or ``rollback``."""
    entries = []
    for line in (text or '').splitlines():
        match = _DEPLOY_RE.match(line)
        if match:
            entry = match.groupdict()
            entry['kind'] = 'deploy'
            entries.append(entry)
            continue
        match = _ROLLBACK_RE.match(line)
        if match:
            entry = match.groupdict()
            entry['kind'] = 'rollback'
            entries.append(entry)
    return entries
