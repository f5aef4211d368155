# Copyright (c) 2026, capstan.release contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Controller-side report of a fleet's releases: one document for machines, short lines for people.

``releases_report`` gathers what ``release_info`` (with ``history: true``) returned on every host
into one JSON-ready document: each host's releases, current and lock, the drift between hosts,
and the fleet's delivery figures (``_delivery.fleet_history``). ``releases_text`` renders that
document as the lines the releases playbook prints: a block per host, or the fleet summary.
"""

from __future__ import annotations

from collections.abc import Mapping

from ansible.errors import AnsibleFilterError

from ansible_collections.capstan.release.plugins.module_utils import _delivery
from ansible_collections.capstan.release.plugins.module_utils import _lock
from ansible_collections.capstan.release.plugins.module_utils._errors import CapstanError

RELEASE_KEYS = ('name', 'state', 'revision', 'revision_time', 'live_at', 'current')
HOST_KEYS = ('exists', 'current', 'current_kind', 'lock', 'archives', 'foreign')
REVISION_WIDTH = 12


def _host_entry(result):
    """One host's part of the report from its release_info result (or why there is none)."""
    if not isinstance(result, Mapping) or not result:
        return {'error': 'no result from release_info (the host failed or was unreachable before it)'}
    if result.get('failed') or result.get('unreachable') or 'history' not in result:
        return {'error': str(result.get('msg') or 'release_info failed or ran without history=true')}
    entry = dict((key, result.get(key)) for key in HOST_KEYS)
    entry['releases'] = [dict((key, release.get(key)) for key in RELEASE_KEYS) for release in result.get('releases') or []]
    entry['history'] = result['history']
    entry['error'] = None
    return entry


def releases_report(results, days=None, deploy_to=None):
    """The fleet document from ``{host: release_info result}`` (release_info with ``history: true``).

    A host without a usable result (it failed, or was unreachable) is reported with ``error``
    and left out of the drift and the figures.
    """
    if not isinstance(results, Mapping):
        raise AnsibleFilterError('releases_report takes a mapping of host to release_info result, got %s' % type(results).__name__)
    if days is not None:
        try:
            days = _delivery.check_days(days, 'releases_since')
        except CapstanError as error:
            raise AnsibleFilterError(str(error))
    report_hosts = dict((host, _host_entry(result)) for host, result in results.items())
    reachable = sorted(host for host, entry in report_hosts.items() if entry['error'] is None)
    current = dict((host, report_hosts[host]['current']) for host in reachable)
    groups = {}
    for host in reachable:
        groups.setdefault(current[host], []).append(host)
    deploy_to = deploy_to or next((results[host].get('deploy_to') for host in reachable), None)
    return {
        'deploy_to': deploy_to,
        'days': days,
        'hosts': report_hosts,
        'current': current,
        'drift': len(groups) > 1,
        'groups': [{'release': release, 'hosts': groups[release]}
                   for release in sorted(groups, key=lambda name: (name is None, name or ''))],
        'unreachable': sorted(host for host, entry in report_hosts.items() if entry['error'] is not None),
        'delivery': _delivery.fleet_history(dict((host, report_hosts[host]['history']) for host in reachable)),
    }


def duration(seconds):
    """Seconds in words a person reads at a glance: 45s, 3m 05s, 2h 03m, 1d 04h; n/a for None."""
    if seconds is None:
        return 'n/a'
    seconds = int(seconds + 0.5)
    if seconds < 60:
        return '%ds' % seconds
    if seconds < 3600:
        return '%dm %02ds' % divmod(seconds, 60)
    if seconds < 86400:
        return '%dh %02dm' % (seconds // 3600, seconds % 3600 // 60)
    return '%dd %02dh' % (seconds // 86400, seconds % 86400 // 3600)


def _count(value):
    return 'n/a' if value is None else str(value)


def figure_lines(figures):
    """The delivery figures in three lines."""
    rollbacks = 'rollbacks %d' % figures['rollbacks']
    if figures['automatic_rollbacks'] is not None:
        rollbacks += ' (%d automatic)' % figures['automatic_rollbacks']
    if figures['change_failure_rate'] is None:
        rate = 'change failure rate n/a (no deploys)'
    else:
        rate = 'change failure rate %.0f%% (%d of %d deploys)' % (
            100 * figures['change_failure_rate'], figures['change_failures'], figures['deploys'])
    restore = figures['time_to_restore']
    if restore is None:
        ttr = 'time to restore n/a (revisions.log has no times)'
    elif not restore['restores']:
        ttr = 'time to restore n/a (nothing to restore)'
    else:
        ttr = 'time to restore median %s, max %s (%d restore%s)' % (
            duration(restore['median']), duration(restore['max']), restore['restores'], '' if restore['restores'] == 1 else 's')
    return [
        'deploys %d, %s, failed before going live %s' % (figures['deploys'], rollbacks, _count(figures['failed_before_live'])),
        rate,
        ttr,
    ]


def _window(days):
    return 'the last %d day%s' % (days, '' if days == 1 else 's') if days else 'all history'


def _table(rows):
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]) - 1)]
    return [('  '.join(cell.ljust(width) for cell, width in zip(row, widths)) + '  ' + row[-1]).rstrip() for row in rows]


def host_lines(report, host):
    """One host's block: current and lock, its releases aligned oldest first, archives, its figures."""
    entry = report['hosts'][host]
    if entry['error'] is not None:
        return ['%s: no report (%s)' % (host, entry['error'])]
    lines = ['%s: current %s, lock %s' % (
        report['deploy_to'] or 'deploy_to', entry['current'] or 'none (%s)' % entry['current_kind'],
        'free' if not entry['lock'] else 'held by ' + _lock.describe(entry['lock']))]
    if entry['releases']:
        rows = [('RELEASE', 'STATE', 'REVISION', 'LAST LIVE', '')]
        for release in entry['releases']:
            rows.append((release['name'], release['state'], (release['revision'] or '-')[:REVISION_WIDTH],
                         release['live_at'] or '-', '<- current' if release['current'] else ''))
        lines.extend(_table(rows))
    else:
        lines.append('no releases' if entry['exists'] else 'no deploy tree here')
    if entry['foreign']:
        lines.append('not releases (left alone): ' + ', '.join(entry['foreign']))
    if entry['archives']:
        lines.append('archives: ' + ', '.join(entry['archives']))
    history = entry['history']
    lines.append('%s, from %s:' % (_window(history['days']).capitalize(), history['source']))
    lines.extend('  ' + line for line in figure_lines(history['figures']))
    lines.append(drill_line(history.get('last_drill')))
    return lines


def drill_line(drill):
    """The last rollback drill in one line, or that there has been none."""
    if not drill:
        return 'last drill: none (run playbooks/drill.yml to prove the rollback works)'
    return 'last drill: %s, back to %s in %.2f s, forward to %s in %.2f s' % (
        drill.get('time') or '?', drill.get('target') or '?', float(drill.get('back_seconds') or 0),
        drill.get('release') or '?', float(drill.get('forward_seconds') or 0))


def fleet_lines(report):
    """The fleet summary: drift first, then the fleet's delivery figures."""
    groups = report['groups']
    if len(groups) <= 1:
        lines = ['no drift: every host runs release %s' % ((groups[0]['release'] if groups else None) or 'none')]
    else:
        lines = ['DRIFT: hosts run different releases']
        lines.extend('  %s: %s' % (group['release'] or 'none', ', '.join(group['hosts'])) for group in groups)
    if report['unreachable']:
        lines.append('no report from: %s' % ', '.join(report['unreachable']))
    delivery = report['delivery']
    sources = delivery['sources']
    counted = len(sources['journal']) + len(sources['revisions.log']) + len(sources['none'])
    source = 'journal' if not sources['revisions.log'] else (
        'revisions.log' if not sources['journal'] else 'journal; revisions.log on ' + ', '.join(sources['revisions.log']))
    lines.append('Fleet delivery, %s, %d host%s (%s):' % (_window(report['days']), counted, '' if counted == 1 else 's', source))
    lines.extend('  ' + line for line in figure_lines(delivery['figures']))
    for still in delivery['unrestored']:
        lines.append('  failed after going live and still live: %s on %s since %s' % (
            still['release'], ', '.join(still['hosts']), still['live_at'] or '?'))
    return lines


def releases_text(report, host=None):
    """The lines of ``host``'s block, or of the fleet summary when no host is given."""
    if not isinstance(report, Mapping) or 'hosts' not in report:
        raise AnsibleFilterError('releases_text takes the document releases_report returns')
    if host is None:
        return fleet_lines(report)
    if host not in report['hosts']:
        raise AnsibleFilterError('releases_text: host %r is not in the report (hosts: %s)' % (host, ', '.join(sorted(report['hosts']))))
    return host_lines(report, host)


class FilterModule(object):
    def filters(self):
        return {'releases_report': releases_report, 'releases_text': releases_text}
