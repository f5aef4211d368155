# Copyright (c) 2026, capstan.release contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Delivery figures of a deploy tree and of a fleet: deploys, rollbacks, change failures, time to restore.

Pure functions over the records ``_journal`` reads (no I/O, no clock unless none is given).
docs/releases.md defines every figure; in short, for one host:

- a *deploy* is a ``published`` event of mode ``deploy`` (a release went live by a deploy);
- a *rollback* is a ``published`` event of mode ``rollback`` (a rollback run, or a deploy
  switching back by itself after a failure: *automatic*, its run also created a release);
- a deploy *failed before going live* when its release got ``failed`` without ever being
  published; those never reached users and stay out of the change failure rate;
- a deploy is a *change failure* when its run ended without recording it ``succeeded`` (it
  failed after going live), or when a rollback later switched from it to an older release;
- a *restore* ends a bad stretch of being live: a switch to an older release by a rollback,
  or any switch away from a release whose deploy failed after going live; time to restore is
  from the publish that started the stretch to that switch.

Fleet figures merge the hosts of one run: a deploy is its release name (a run names its
release once for the fleet), a rollback is its run id, and a restore takes from the first
host going live to the last host switched back.
"""

from __future__ import annotations

import calendar
import time

from ansible_collections.capstan.release.plugins.module_utils import _journal
from ansible_collections.capstan.release.plugins.module_utils import _releases
from ansible_collections.capstan.release.plugins.module_utils._errors import CapstanError

DAY = 86400
SOURCES = ('journal', 'revisions.log', 'none')
# What a tree with only Capistrano's revisions.log cannot tell: no times but release names,
# no failed deploys, no way to tell an automatic switch-back from a rollback run.
UNKNOWN_WITHOUT_JOURNAL = ('automatic_rollbacks', 'failed_before_live', 'time_to_restore', 'unrestored')


def check_days(days, what='history_days'):
    """Refuse a window that is not a whole number of days, at least 1 (None: no window)."""
    if days is None:
        return None
    if isinstance(days, bool) or not isinstance(days, int) or days < 1:
        raise CapstanError('%s must be a whole number of days, at least 1, got %r' % (what, days))
    return days


def iso(seconds):
    """ISO-8601 UTC time with a Z, to the second (the journal's form); None stays None."""
    return None if seconds is None else _journal.utc_stamp(seconds)


def name_time(name):
    """Seconds since the epoch a release name stands for (its UTC time), or None."""
    if not _releases.is_release_name(name):
        return None
    try:
        return calendar.timegm(time.strptime(name, _releases.NAME_FORMAT))
    except ValueError:
        return None


def seconds_of(stamp):
    """Seconds since the epoch of an ISO time of these records, or None."""
    return _journal.parse_stamp(stamp)


def _is_rollback(event):
    return event.get('mode') == 'rollback'


def _empty():
    return {'deploys': [], 'rollbacks': [], 'failed_before_live': [], 'restores': [], 'unrestored': [], 'drills': []}


def from_journal(events, lock_owner=None):
    """The whole history of one host from its journal events, oldest first.

    Returns a dict of lists: ``deploys``, ``rollbacks``, ``failed_before_live``,
    ``restores`` and ``unrestored`` (see the module docstring and docs/releases.md).
    ``lock_owner`` is the run holding the deploy lock now: its deploy, live but not yet
    recorded succeeded, is ``in_progress`` rather than failed.
    """
    history = _empty()
    deploy_runs = set(event.get('run') for event in events
                      if event.get('run') and (event['event'] == 'created'
                                               or (event['event'] == 'published' and not _is_rollback(event))))
    published = set()
    latest_deploy = {}  # release -> its latest deploy record
    live = None         # the stretch the host is in: release, since, run, deploy record or None

    def bad_deploy(deploy):
        return deploy is not None and not deploy['succeeded'] and not (lock_owner and deploy['run'] == lock_owner)

    for event in events:
        kind, release, run, stamp = event['event'], event['release'], event.get('run'), event.get('time')
        if kind == 'drill':
            history['drills'].append(dict((key, event.get(key)) for key in
                                          ('release', 'target', 'back_seconds', 'forward_seconds', 'time', 'run')))
            continue
        if kind == 'published' and event.get('mode') == 'drill':
            continue  # a drill goes back and forth again: neither a deploy nor a rollback
        if kind == 'published':
            rollback = _is_rollback(event)
            automatic = bool(rollback and run and run in deploy_runs)
            if live is not None and live['release'] != release:
                older = _releases.is_release_name(release) and release < live['release']
                if (rollback and older) or bad_deploy(live['deploy']):
                    start, end = seconds_of(live['since']), seconds_of(stamp)
                    history['restores'].append({
                        'release': live['release'], 'live_at': live['since'], 'live_run': live['run'],
                        'restored_at': stamp, 'restored_to': release,
                        'seconds': end - start if start is not None and end is not None else None,
                        'by': ('automatic rollback' if automatic else 'rollback') if rollback else 'deploy',
                    })
            deploy = None
            if rollback:
                left = event.get('previous')
                history['rollbacks'].append({'release': release, 'left': left, 'run': run, 'at': stamp,
                                             'after': stamp, 'automatic': automatic})
                if left in latest_deploy and _releases.is_release_name(release) and release < left:
                    latest_deploy[left]['rolled_back'] = True
            else:
                deploy = {'release': release, 'run': run, 'live_at': stamp, 'succeeded': False, 'rolled_back': False}
                history['deploys'].append(deploy)
                latest_deploy[release] = deploy
            live = {'release': release, 'since': stamp, 'run': run, 'deploy': deploy}
            published.add(release)
        elif kind == 'succeeded':
            if release in latest_deploy:
                latest_deploy[release]['succeeded'] = True
        elif kind == 'failed' and release not in published:
            history['failed_before_live'].append({'release': release, 'run': run, 'at': stamp})

    if live is not None and bad_deploy(live['deploy']):
        history['unrestored'].append({'release': live['release'], 'live_at': live['since'], 'run': live['run']})
    for deploy in history['deploys']:
        if deploy.pop('succeeded'):
            deploy['outcome'] = 'succeeded'
        elif lock_owner and deploy['run'] == lock_owner:
            deploy['outcome'] = 'in_progress'
        else:
            deploy['outcome'] = 'failed'
        deploy['change_failure'] = deploy['outcome'] == 'failed' or deploy['rolled_back']
    return history


def from_revisions(entries):
    """The history of one host from Capistrano's revisions.log entries alone (no journal).

    A deploy line is a deploy that succeeded (both tools write it only then), live at the time
    its release name says. A rollback line has no time: ``after`` is the name time of the
    release it left, the earliest it can have happened. Nothing says what failed.
    """
    history = _empty()
    latest_deploy = {}
    current = None
    for entry in entries:
        release = entry['release']
        if entry['kind'] == 'deploy':
            deploy = {'release': release, 'run': None, 'live_at': iso(name_time(release)),
                      'outcome': 'succeeded', 'rolled_back': False, 'change_failure': False}
            history['deploys'].append(deploy)
            latest_deploy[release] = deploy
        else:
            left = current if current != release else None
            history['rollbacks'].append({'release': release, 'left': left, 'run': None, 'at': None,
                                         'after': iso(name_time(left)), 'automatic': None})
            if left in latest_deploy and release < left:
                latest_deploy[left]['rolled_back'] = True
                latest_deploy[left]['change_failure'] = True
        current = release
    return history


def _in_window(stamp, since):
    if since is None:
        return True
    seconds = seconds_of(stamp)
    return seconds is not None and seconds >= since


def window(history, since):
    """Only what happened at or after ``since`` (seconds since the epoch; None keeps everything).

    Deploys by the time they went live, rollbacks by their switch (or, without one, the
    earliest they can have happened), failures before going live by their ``failed`` event,
    restores by the switch that restored. ``unrestored`` is the present and is always kept.
    """
    return {
        'deploys': [d for d in history['deploys'] if _in_window(d['live_at'], since)],
        'rollbacks': [r for r in history['rollbacks'] if _in_window(r['at'] or r['after'], since)],
        'failed_before_live': [f for f in history['failed_before_live'] if _in_window(f['at'], since)],
        'restores': [r for r in history['restores'] if _in_window(r['restored_at'], since)],
        'unrestored': list(history['unrestored']),
        # The last rollback drill, whenever it was: what a drill proves does not age out of a window.
        'last_drill': history['drills'][-1] if history.get('drills') else None,
    }


def median(values):
    """The median of numbers (the mean of the two middle ones for an even count), None for none."""
    ordered = sorted(values)
    if not ordered:
        return None
    middle = len(ordered) // 2
    if len(ordered) % 2:
        return ordered[middle]
    total = ordered[middle - 1] + ordered[middle]
    return total // 2 if total % 2 == 0 else total / 2.0


def figures(history, known=True):
    """The figures of a history: counts, change failure rate (0..1) and time to restore (seconds).

    ``known=False`` (a history from revisions.log only) leaves what it cannot tell as None.
    """
    deploys = history['deploys']
    failures = [deploy for deploy in deploys if deploy['change_failure']]
    timed = [restore['seconds'] for restore in history['restores'] if restore['seconds'] is not None]
    result = {
        'deploys': len(deploys),
        'rollbacks': len(history['rollbacks']),
        'automatic_rollbacks': len([r for r in history['rollbacks'] if r['automatic']]),
        'failed_before_live': len(history['failed_before_live']),
        'change_failures': len(failures),
        'change_failure_rate': round(float(len(failures)) / len(deploys), 4) if deploys else None,
        'time_to_restore': {'restores': len(timed), 'median': median(timed), 'max': max(timed) if timed else None},
        'unrestored': len(history['unrestored']),
    }
    if not known:
        for key in UNKNOWN_WITHOUT_JOURNAL:
            result[key] = None
    return result


def host_history(events, revisions=(), lock_owner=None, days=None, now=None):
    """The delivery history and figures of one host, over the last ``days`` days (None: all).

    The journal is the source when it holds any event; a tree without one (made by
    Capistrano) falls back to revisions.log; ``source`` says which (``none`` when neither).
    """
    check_days(days)
    now = time.time() if now is None else now
    since = int(now) - days * DAY if days else None
    if events:
        source, history = 'journal', from_journal(events, lock_owner)
    elif revisions:
        source, history = 'revisions.log', from_revisions(revisions)
    else:
        source, history = 'none', _empty()
    result = window(history, since)
    result.update({'source': source, 'days': days, 'since': iso(since),
                   'figures': figures(result, known=source != 'revisions.log')})
    return result


def live_times(events):
    """Release name -> the time it last went live (its last ``published`` event), from the journal."""
    times = {}
    for event in events:
        if event['event'] == 'published':
            times[event['release']] = event.get('time')
    return times


def _merge(groups, key, host, record):
    entry = groups.get(key)
    if entry is None:
        entry = groups[key] = {'hosts': [], 'records': []}
    entry['hosts'].append(host)
    entry['records'].append(record)


def _earliest(stamps):
    known = [s for s in stamps if seconds_of(s) is not None]
    return min(known, key=seconds_of) if known else None


def _latest(stamps):
    known = [s for s in stamps if seconds_of(s) is not None]
    return max(known, key=seconds_of) if known else None


def _first(values):
    for value in values:
        if value is not None:
            return value
    return None


def _keyed(records, key_of):
    """(key, record) for each record; a key seen before on this host gets its occurrence number."""
    seen = {}
    for record in records:
        key = key_of(record)
        seen[key] = seen.get(key, 0) + 1
        yield (key, seen[key]), record


def fleet_history(hosts):
    """Fleet figures from ``{host: host_history(...)}``: what one run did on many hosts counts once.

    A deploy is its release name (one name per run for the whole fleet); it is a change
    failure when it is one on any host. A rollback is its run id (or, without one, the release
    it went to and the one it left). A restore spans from the first host going live to the
    last host switched away; failures before going live count once per release.
    """
    sources = dict((source, sorted(h for h, history in hosts.items() if history['source'] == source)) for source in SOURCES)
    deploys, rollbacks, failed, restores, unrestored = {}, {}, {}, {}, {}
    for host in sorted(hosts):
        history = hosts[host]
        for key, record in _keyed(history['deploys'], lambda d: d['release']):
            _merge(deploys, key, host, record)
        for key, record in _keyed(history['rollbacks'],
                                  lambda r: ('run', r['run']) if r['run'] else ('pair', r['release'], r['left'])):
            _merge(rollbacks, key, host, record)
        for key, record in _keyed(history['failed_before_live'], lambda f: f['release']):
            _merge(failed, key, host, record)
        for key, record in _keyed(history['restores'], lambda r: (r['release'], r['live_run'])):
            _merge(restores, key, host, record)
        for record in history['unrestored']:
            _merge(unrestored, record['release'], host, record)

    def ordered(groups, build, when):
        return sorted((build(group['records'], sorted(group['hosts'])) for group in groups.values()),
                      key=lambda item: (seconds_of(item[when]) or 0, item['release']))

    def deploy(records, names):
        outcomes = set(r['outcome'] for r in records)
        outcome = 'failed' if 'failed' in outcomes else 'in_progress' if 'in_progress' in outcomes else 'succeeded'
        return {'release': records[0]['release'], 'run': _first(r['run'] for r in records), 'hosts': names,
                'live_at': _earliest(r['live_at'] for r in records), 'outcome': outcome,
                'rolled_back': any(r['rolled_back'] for r in records),
                'change_failure': any(r['change_failure'] for r in records)}

    def rollback(records, names):
        automatic = [r['automatic'] for r in records if r['automatic'] is not None]
        return {'release': records[0]['release'], 'left': _first(r['left'] for r in records),
                'run': records[0]['run'], 'hosts': names,
                'at': _earliest(r['at'] for r in records), 'after': _earliest(r['after'] for r in records),
                'automatic': any(automatic) if automatic else None}

    def failure(records, names):
        return {'release': records[0]['release'], 'run': _first(r['run'] for r in records), 'hosts': names,
                'at': _earliest(r['at'] for r in records)}

    def restore(records, names):
        start, end = _earliest(r['live_at'] for r in records), _latest(r['restored_at'] for r in records)
        timed = start is not None and end is not None and all(r['seconds'] is not None for r in records)
        return {'release': records[0]['release'], 'live_run': records[0]['live_run'], 'hosts': names,
                'live_at': start, 'restored_at': end, 'restored_to': _first(r['restored_to'] for r in records),
                'seconds': seconds_of(end) - seconds_of(start) if timed else None,
                'by': _first(r['by'] for r in records)}

    def still_live(records, names):
        return {'release': records[0]['release'], 'run': _first(r['run'] for r in records), 'hosts': names,
                'live_at': _earliest(r['live_at'] for r in records)}

    result = {
        'deploys': ordered(deploys, deploy, 'live_at'),
        'rollbacks': ordered(rollbacks, rollback, 'after'),
        'failed_before_live': ordered(failed, failure, 'at'),
        'restores': ordered(restores, restore, 'restored_at'),
        'unrestored': ordered(unrestored, still_live, 'live_at'),
        'sources': sources,
    }
    result['figures'] = figures(result, known=bool(sources['journal']) or not sources['revisions.log'])
    return result
