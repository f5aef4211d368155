"""The releases playbook on three real SSH hosts: releases, drift and delivery figures, as lines and as JSON."""

from __future__ import annotations

import calendar
import json
import os
import subprocess
import time

import pytest

from ansible_collections.capstan.release.plugins.filter.releases_report import duration
from ansible_collections.capstan.release.tests.integration.helpers import (PLAYBOOK, REPO, Run, app, deploy, env, failing_hook,
                                                                           ok, play, prepare_shared)


def journal(fleet, index, deploy_to):
    """Host ``index``'s journal, read on the host itself, as records."""
    return [json.loads(line) for line in fleet.sh(index, 'cat %s/.capstan/journal' % deploy_to).splitlines()]


def seconds(stamp):
    return calendar.timegm(time.strptime(stamp, '%Y-%m-%dT%H:%M:%SZ'))


def live_and_restored(records, bad):
    """(time release ``bad`` went live by a deploy, time a rollback switched away from it), in seconds."""
    live = [r['time'] for r in records if r['event'] == 'published' and r['release'] == bad and r['mode'] == 'deploy']
    away = [r['time'] for r in records if r['event'] == 'published' and r.get('previous') == bad and r['mode'] == 'rollback']
    assert len(live) == 1 and len(away) == 1, (bad, records)
    return seconds(live[0]), seconds(away[0])


def releases_json_on_stdout(fleet, deploy_to):
    """releases.yml with the collection's releases_json stdout callback: the document on stdout."""
    environ = env()
    environ['ANSIBLE_STDOUT_CALLBACK'] = 'capstan.release.releases_json'
    proc = subprocess.run(
        [PLAYBOOK, os.path.join(REPO, 'playbooks', 'releases.yml'), '-i', str(fleet.inventory),
         '-e', json.dumps({'deploy_to': deploy_to})],
        cwd=REPO, env=environ, capture_output=True, text=True, timeout=600, check=False)
    assert proc.returncode == 0, (proc.stdout[-2000:], proc.stderr[-2000:])
    return json.loads(proc.stdout)


def names_of(fleet, deploy_to):
    return [line.split() for line in fleet.each('ls %s/releases' % deploy_to)]


def test_releases_shows_history_drift_and_the_delivery_figures_of_the_fleet(fleet, deploy_to, tmp_path):
    prepare_shared(fleet, deploy_to)
    hook = failing_hook(tmp_path, 'host2', 'refused', 'Fail on host2 before publishing')
    ok(deploy(fleet, deploy_to, app(tmp_path, 'v1')))
    ok(deploy(fleet, deploy_to, app(tmp_path, 'v2')))
    first, second = names_of(fleet, deploy_to)[0]
    # goes live everywhere, fails its health check on host2: every host switches back by itself
    assert deploy(fleet, deploy_to, app(tmp_path, 'v3'), deploy_health_command='test "$(hostname)" != host2').rc != 0
    # fails before publishing: never reaches users
    assert deploy(fleet, deploy_to, app(tmp_path, 'v4'), deploy_hooks={'before_publishing': str(hook)}).rc != 0
    ok(deploy(fleet, deploy_to, app(tmp_path, 'v5')))
    fifth = names_of(fleet, deploy_to)[0][-1]
    ok(play(fleet, 'rollback.yml', deploy_to))

    records = [journal(fleet, i, deploy_to) for i in (1, 2, 3)]
    third = [r['release'] for r in records[0] if r['event'] == 'published' and r['mode'] == 'deploy'][2]
    fourth = [r['release'] for r in records[0] if r['event'] == 'failed' and r['release'] not in (third,)][0]
    assert first < second < third < fourth < fifth
    # what each host's journal says, event by event: the figures must agree with it
    host_ttr = [sorted(b - a for a, b in (live_and_restored(r, third), live_and_restored(r, fifth))) for r in records]
    spans = []
    for bad in (third, fifth):
        times = [live_and_restored(r, bad) for r in records]
        spans.append(max(t[1] for t in times) - min(t[0] for t in times))

    report_path = tmp_path / 'report.json'
    run = ok(play(fleet, 'releases.yml', deploy_to, releases_since=1, releases_json=str(report_path)))
    report = json.loads(report_path.read_text())

    assert report['deploy_to'] == deploy_to and report['days'] == 1
    assert report['drift'] is False and report['current'] == {'host1': second, 'host2': second, 'host3': second}
    for host in fleet.names:
        entry = report['hosts'][host]
        assert [(r['name'], r['state'], r['current']) for r in entry['releases']] == [
            (first, 'successful', False), (second, 'successful', True)]
        assert entry['lock'] == {} and entry['error'] is None
        archives = ['failed-release-%s.tar.gz' % third, 'failed-release-%s.tar.gz' % fourth,
                    'rolled-back-release-%s.tar.gz' % fifth]
        assert sorted(entry['archives']) == sorted(archives)
    for index, host in enumerate(fleet.names):
        figures = report['hosts'][host]['history']['figures']
        assert figures == {
            'deploys': 4, 'rollbacks': 2, 'automatic_rollbacks': 1, 'failed_before_live': 1,
            'change_failures': 2, 'change_failure_rate': 0.5, 'unrestored': 0,
            'time_to_restore': {'restores': 2, 'median': sum(host_ttr[index]) / 2.0, 'max': host_ttr[index][1]}}, host
    delivery = report['delivery']
    assert [(d['release'], d['hosts'], d['outcome'], d['change_failure']) for d in delivery['deploys']] == [
        (first, fleet.names, 'succeeded', False), (second, fleet.names, 'succeeded', False),
        (third, fleet.names, 'failed', True), (fifth, fleet.names, 'succeeded', True)]
    assert [(r['release'], r['left'], r['automatic'], r['hosts']) for r in delivery['rollbacks']] == [
        (second, third, True, fleet.names), (second, fifth, False, fleet.names)]
    assert [(f['release'], f['hosts']) for f in delivery['failed_before_live']] == [(fourth, fleet.names)]
    assert [(r['release'], r['seconds'], r['restored_to']) for r in delivery['restores']] == [
        (third, spans[0], second), (fifth, spans[1], second)]
    assert delivery['figures'] == {
        'deploys': 4, 'rollbacks': 2, 'automatic_rollbacks': 1, 'failed_before_live': 1,
        'change_failures': 2, 'change_failure_rate': 0.5, 'unrestored': 0,
        'time_to_restore': {'restores': 2, 'median': sum(spans) / 2.0, 'max': max(spans)}}

    summary = run.output_of('Summarise the fleet')
    assert 'no drift: every host runs release %s' % second in summary, run
    assert 'Fleet delivery, the last 1 day, 3 hosts (journal):' in summary
    assert 'deploys 4, rollbacks 2 (1 automatic), failed before going live 1' in summary
    assert 'change failure rate 50% (2 of 4 deploys)' in summary
    assert 'time to restore median %s, max %s (2 restores)' % (duration(sum(spans) / 2.0), duration(max(spans))) in summary
    block = run.output_of('Show the releases of this host, oldest first')
    assert block.count('"%s: current %s, lock free"' % (deploy_to, second)) == 3, block
    assert block.count('RELEASE         STATE       REVISION      LAST LIVE') == 3, block
    assert block.count('"%s  successful  ' % second) == 3 and block.count('  <- current"') == 3, block

    # One host differs (current switched by hand, behind the tools' back): drift, named.
    fleet.sh(3, 'ln -sfn %s/releases/%s %s/current.tmp && mv -T %s/current.tmp %s/current'
             % (deploy_to, first, deploy_to, deploy_to, deploy_to))
    drifted_path = tmp_path / 'drifted.json'
    run = ok(play(fleet, 'releases.yml', deploy_to, releases_json=str(drifted_path)))
    drifted = json.loads(drifted_path.read_text())

    assert drifted['drift'] is True and drifted['days'] is None
    assert drifted['groups'] == [{'release': first, 'hosts': ['host3']}, {'release': second, 'hosts': ['host1', 'host2']}]
    summary = run.output_of('Summarise the fleet')
    assert 'DRIFT: hosts run different releases' in summary and 'no drift' not in summary, run
    assert '  %s: host3' % first in summary and '  %s: host1, host2' % second in summary, summary
    assert drifted['delivery']['figures'] == report['delivery']['figures']

    # The same document on stdout, with the collection's stdout callback, and nothing else there.
    assert releases_json_on_stdout(fleet, deploy_to) == drifted


@pytest.mark.parametrize('bad, variable', [
    ({'releases_since': 0}, 'releases_since'),
    ({'releases_since': 'a week'}, 'releases_since'),
    ({'releases_json': '/nonexistent/dir/report.json'}, 'releases_json'),
    ({'releases_json': '/tmp'}, 'releases_json'),
])
def test_bad_input_is_refused_naming_the_variable(fleet, deploy_to, bad, variable):
    proc = subprocess.run(
        [PLAYBOOK, os.path.join(REPO, 'playbooks', 'releases.yml'), '-i', str(fleet.inventory),
         '-e', json.dumps(dict(bad, deploy_to=deploy_to))],
        cwd=REPO, env=env(), capture_output=True, text=True, timeout=600, check=False)
    run = Run(proc)
    assert run.rc != 0, run
    messages = dict((host, result.get('msg')) for _task, host, result in run.fatal)
    assert set(messages) == set(fleet.names), run
    assert all(str(message).startswith(variable + ' must be ') for message in messages.values()), messages
    assert all('\n' not in str(message) and 'Traceback' not in str(message) for message in messages.values()), messages
    assert 'Read the deploy tree and its history' not in run.stdout, run
    assert not os.path.exists('/nonexistent/dir')
