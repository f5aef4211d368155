"""releases_report and releases_text: the fleet document and the lines people read, from real trees."""

from __future__ import annotations

import json
import os

import pytest

from ansible.errors import AnsibleFilterError

from ansible_collections.capstan.release.plugins.filter import releases_report as plugin
from ansible_collections.capstan.release.plugins.module_utils import _journal
from ansible_collections.capstan.release.plugins.module_utils import _steps
from ansible_collections.capstan.release.tests.unit.helpers import deploy

A = '20261121221359'
B = '20261121221404'
C = '20261121221500'


def trees(tmp_path, currents):
    """A tree per host: A then B deployed, then current switched to ``currents[host]``."""
    results = {}
    for host, current in currents.items():
        deploy_to = str(tmp_path / host / 'app')
        deploy(deploy_to, A)
        deploy(deploy_to, B)
        if current != B:
            _steps.swap_current(deploy_to, current, rollback=True, log_user='tester', run='rollback-run')
        results[host] = _steps.info(deploy_to, history=True)
    return results


def test_the_report_of_a_fleet_without_drift(tmp_path):
    results = trees(tmp_path, {'web1': B, 'web2': B})

    report = plugin.releases_report(results, days=30)

    assert report['drift'] is False and report['unreachable'] == []
    assert report['days'] == 30 and report['deploy_to'] == str(tmp_path / 'web1' / 'app')
    assert report['current'] == {'web1': B, 'web2': B}
    assert report['groups'] == [{'release': B, 'hosts': ['web1', 'web2']}]
    web1 = report['hosts']['web1']
    assert [(r['name'], r['state'], r['current']) for r in web1['releases']] == [(A, 'successful', False), (B, 'successful', True)]
    assert set(web1['releases'][0]) == {'name', 'state', 'revision', 'revision_time', 'live_at', 'current'}
    assert web1['lock'] == {} and web1['error'] is None
    assert report['delivery']['figures']['deploys'] == 2
    assert [d['hosts'] for d in report['delivery']['deploys']] == [['web1', 'web2']] * 2
    json.dumps(report)  # JSON-ready as it is

    assert plugin.releases_text(report) == [
        'no drift: every host runs release %s' % B,
        'Fleet delivery, the last 30 days, 2 hosts (journal):',
        '  deploys 2, rollbacks 0 (0 automatic), failed before going live 0',
        '  change failure rate 0% (0 of 2 deploys)',
        '  time to restore n/a (nothing to restore)',
    ]


def test_drift_names_each_release_and_its_hosts(tmp_path):
    results = trees(tmp_path, {'web1': B, 'web2': A, 'web3': B})

    report = plugin.releases_report(results)

    assert report['drift'] is True
    assert report['groups'] == [{'release': A, 'hosts': ['web2']}, {'release': B, 'hosts': ['web1', 'web3']}]
    lines = plugin.releases_text(report)
    assert lines[:3] == ['DRIFT: hosts run different releases', '  %s: web2' % A, '  %s: web1, web3' % B]
    # web2's rollback counts once, and makes B's deploy a change failure of the fleet
    figures = report['delivery']['figures']
    assert (figures['deploys'], figures['rollbacks'], figures['change_failures']) == (2, 1, 1)
    assert '  change failure rate 50% (1 of 2 deploys)' in lines


def test_a_host_block_is_aligned_and_shows_current_lock_and_figures(tmp_path):
    results = trees(tmp_path, {'web1': B})
    deploy_to = results['web1']['deploy_to']
    _steps.lock(deploy_to, 'present', 'run-9', user='alice', host='ctl01', pid=42, command='deploy')
    with open(os.path.join(deploy_to, 'failed-release-%s.tar.gz' % C), 'wb') as handle:
        handle.write(b'x')
    results['web1'] = _steps.info(deploy_to, history=True)
    published = dict((e['release'], e['time']) for e in results['web1']['events'] if e['event'] == 'published')

    lines = plugin.releases_text(plugin.releases_report(results), 'web1')

    assert lines[0].startswith('%s: current %s, lock held by alice on ctl01 (pid 42) since ' % (deploy_to, B))
    assert lines[1:4] == [
        'RELEASE         STATE       REVISION      LAST LIVE',
        '%s  successful  rev-%s  %s' % (A, A[:8], published[A]),
        '%s  successful  rev-%s  %s  <- current' % (B, B[:8], published[B]),
    ]
    assert lines[4] == 'archives: failed-release-%s.tar.gz' % C
    assert lines[5] == 'All history, from journal:'
    assert lines[6] == '  deploys 2, rollbacks 0 (0 automatic), failed before going live 0'


def test_a_host_without_a_result_is_reported_and_left_out_of_drift_and_figures(tmp_path):
    results = trees(tmp_path, {'web1': B})
    results['web2'] = {'failed': True, 'msg': 'deploy_to must be an absolute path'}
    results['web3'] = {}

    report = plugin.releases_report(results)

    assert report['unreachable'] == ['web2', 'web3'] and report['drift'] is False
    assert report['hosts']['web2'] == {'error': 'deploy_to must be an absolute path'}
    assert report['delivery']['sources']['journal'] == ['web1']
    assert plugin.releases_text(report, 'web2') == ['web2: no report (deploy_to must be an absolute path)']
    assert 'no report from: web2, web3' in plugin.releases_text(report)


def test_a_capistrano_tree_shows_what_its_log_cannot_tell(tmp_path):
    deploy_to = tmp_path / 'app'
    for name in (A, B):
        os.makedirs(str(deploy_to / 'releases' / name))
    os.symlink(str(deploy_to / 'releases' / A), str(deploy_to / 'current'))
    (deploy_to / 'revisions.log').write_text('\n'.join([
        _journal.deploy_line('main', 'sha-a', A, 'alice'), _journal.deploy_line('main', 'sha-b', B, 'alice'),
        _journal.rollback_line('alice', A)]) + '\n')

    report = plugin.releases_report({'old1': _steps.info(str(deploy_to), history=True)})

    assert report['hosts']['old1']['releases'][0]['live_at'] is None
    assert plugin.releases_text(report)[1:] == [
        'Fleet delivery, all history, 1 host (revisions.log):',
        '  deploys 2, rollbacks 1, failed before going live n/a',
        '  change failure rate 50% (1 of 2 deploys)',
        '  time to restore n/a (revisions.log has no times)',
    ]


def test_an_unrestored_failure_is_called_out(tmp_path):
    deploy_to = str(tmp_path / 'app')
    deploy(deploy_to, A)
    deploy(deploy_to, B, succeed=False)  # went live, its run ended without recording success

    report = plugin.releases_report({'web1': _steps.info(deploy_to, history=True)})

    assert report['delivery']['figures']['unrestored'] == 1
    assert plugin.releases_text(report)[-1].startswith('  failed after going live and still live: %s on web1 since ' % B)


@pytest.mark.parametrize('seconds, text', [
    (None, 'n/a'), (0, '0s'), (59, '59s'), (59.5, '1m 00s'), (65, '1m 05s'), (3600, '1h 00m'),
    (7380, '2h 03m'), (90000, '1d 01h')])
def test_duration(seconds, text):
    assert plugin.duration(seconds) == text


def test_bad_input_is_refused_in_one_sentence(tmp_path):
    with pytest.raises(AnsibleFilterError, match='^releases_report takes a mapping of host to release_info result, got list$'):
        plugin.releases_report([])
    with pytest.raises(AnsibleFilterError, match='^releases_since must be a whole number of days, at least 1, got 0$'):
        plugin.releases_report({}, days=0)
    with pytest.raises(AnsibleFilterError, match='^releases_text takes the document releases_report returns$'):
        plugin.releases_text({'x': 1})
    with pytest.raises(AnsibleFilterError, match="^releases_text: host 'nope' is not in the report"):
        plugin.releases_text(plugin.releases_report({}), 'nope')


def test_the_filters_are_registered():
    assert sorted(plugin.FilterModule().filters()) == ['releases_report', 'releases_text']
