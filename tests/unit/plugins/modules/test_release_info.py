"""release_info: a read-only report of a deploy tree."""

from __future__ import annotations

import os

from ansible_collections.capstan.release.plugins.module_utils import _journal
from ansible_collections.capstan.release.plugins.module_utils import _releases
from ansible_collections.capstan.release.plugins.module_utils import _steps
from ansible_collections.capstan.release.plugins.modules import release_info
from ansible_collections.capstan.release.tests.unit.helpers import deploy, listing, run_module

A = '20261121221359'
B = '20261121221404'
C = '20261121221500'
D = '20261121221612'
E = '20261121221733'


def info(capfd, deploy_to, **args):
    return run_module(release_info, capfd, deploy_to=deploy_to, **args)


def build(deploy_to):
    """A successful, B successful and current, C failed, D finished, E unfinished, plus strays."""
    deploy(deploy_to, A, revision_time='1795385600')
    deploy(deploy_to, B, revision_time='1795385644')
    deploy(deploy_to, C, live=False)
    _journal.append_event(_releases.Tree(deploy_to).journal, 'failed', C)
    deploy(deploy_to, D, live=False)
    _steps.prepare_release(deploy_to, E)
    os.mkdir(os.path.join(deploy_to, 'releases', 'old-site'))
    with open(os.path.join(deploy_to, 'rolled-back-release-%s.tar.gz' % A), 'wb') as handle:
        handle.write(b'not really a tarball')


def test_full_report_of_a_built_tree(capfd, deploy_to):
    build(deploy_to)
    before = listing(deploy_to)

    result = info(capfd, deploy_to)

    assert result['changed'] is False
    assert result['exists'] is True
    assert result['deploy_to'] == deploy_to
    assert result['current'] == B
    assert result['current_kind'] == 'release'
    assert result['current_link'] == os.path.join(deploy_to, 'releases', B)
    assert result['release_names'] == [A, B, C, D, E]
    assert [(r['name'], r['state'], r['current']) for r in result['releases']] == [
        (A, 'successful', False), (B, 'successful', True), (C, 'failed', False),
        (D, 'finished', False), (E, 'unfinished', False)]
    first = result['releases'][0]
    assert first == {'name': A, 'path': os.path.join(deploy_to, 'releases', A), 'state': 'successful',
                     'revision': 'rev-' + A, 'revision_time': '1795385600', 'current': False}
    assert result['releases'][4]['revision'] is None
    assert result['successful'] == [A, B]
    assert result['foreign'] == ['old-site']
    assert result['archives'] == ['rolled-back-release-%s.tar.gz' % A]
    assert result['lock'] == {}
    assert result['revisions'] == [
        {'kind': 'deploy', 'branch': 'main', 'sha': 'rev-' + A, 'release': A, 'user': 'tester'},
        {'kind': 'deploy', 'branch': 'main', 'sha': 'rev-' + B, 'release': B, 'user': 'tester'}]
    events = [(e['event'], e['release']) for e in result['events']]
    assert ('published', B) in events and ('failed', C) in events and events[-1] == ('created', E)
    assert listing(deploy_to) == before


def test_a_tree_made_by_capistrano(capfd, deploy_to):
    """No journal: revisions.log and being live say what went live; a newer stray is unknown."""
    releases = os.path.join(deploy_to, 'releases')
    for name in (A, B, C):
        os.makedirs(os.path.join(releases, name))
        with open(os.path.join(releases, name, 'REVISION'), 'w') as handle:
            handle.write('sha-%s\n' % name)
    os.symlink(os.path.join(releases, B), os.path.join(deploy_to, 'current'))
    with open(os.path.join(deploy_to, 'revisions.log'), 'w') as handle:
        handle.write('Branch main (at sha-%s) deployed as release %s by alice\n' % (A, A))
        handle.write('Branch main (at sha-%s) deployed as release %s by alice\n' % (B, B))

    result = info(capfd, deploy_to)

    assert [(r['name'], r['state']) for r in result['releases']] == [
        (A, 'successful'), (B, 'successful'), (C, 'unknown')]
    assert result['releases'][0]['revision'] == 'sha-' + A
    assert result['events'] == []


def test_the_lock_holder_is_shown(capfd, deploy_to):
    deploy(deploy_to, A)
    _steps.lock(deploy_to, 'present', 'run-1', user='alice', host='ctl01', pid=4242,
                command='ansible-playbook deploy.yml')

    result = info(capfd, deploy_to)

    lock = result['lock']
    assert (lock['owner'], lock['user'], lock['host'], lock['pid'], lock['command']) == (
        'run-1', 'alice', 'ctl01', 4242, 'ansible-playbook deploy.yml')
    assert lock['time'].endswith('Z')


def test_an_unreadable_lock_is_reported_not_fatal(capfd, deploy_to):
    deploy(deploy_to, A)
    with open(os.path.join(deploy_to, '.capstan', 'lock'), 'w') as handle:
        handle.write('garbage')

    result = info(capfd, deploy_to)

    assert 'failed' not in result
    assert result['lock']['owner'] is None and result['lock']['unreadable'] == 'garbage'


def test_a_deploy_to_that_does_not_exist(capfd, deploy_to):
    result = info(capfd, deploy_to)

    assert result['exists'] is False
    assert result['current'] is None and result['current_kind'] == 'missing'
    assert result['current_link'] is None
    for key in ('releases', 'release_names', 'successful', 'foreign', 'archives', 'revisions', 'events'):
        assert result[key] == [], key
    assert result['lock'] == {}
    assert not os.path.lexists(deploy_to)


def test_check_mode_reports_the_same(capfd, deploy_to):
    deploy(deploy_to, A)

    result = info(capfd, deploy_to, _ansible_check_mode=True)

    assert result['changed'] is False and result['current'] == A


def test_relative_deploy_to_is_refused_in_one_sentence(capfd):
    result = info(capfd, 'srv/app')

    assert result['failed'] is True
    assert result['msg'] == "deploy_to must be an absolute path, got 'srv/app'"


def test_history_is_off_by_default(capfd, deploy_to):
    deploy(deploy_to, A)

    result = info(capfd, deploy_to)

    assert 'history' not in result and 'live_at' not in result['releases'][0]


def test_history_reports_the_delivery_figures_and_when_each_release_went_live(capfd, deploy_to):
    build(deploy_to)
    before = listing(deploy_to)

    result = info(capfd, deploy_to, history=True, history_days=30)

    history = result['history']
    assert history['source'] == 'journal' and history['days'] == 30 and history['since'].endswith('Z')
    assert [(d['release'], d['outcome']) for d in history['deploys']] == [(A, 'succeeded'), (B, 'succeeded')]
    assert [f['release'] for f in history['failed_before_live']] == [C]
    assert history['figures']['deploys'] == 2 and history['figures']['failed_before_live'] == 1
    assert history['figures']['change_failure_rate'] == 0.0
    published = dict((e['release'], e['time']) for e in result['events'] if e['event'] == 'published')
    assert [(r['name'], r['live_at']) for r in result['releases']] == [
        (A, published[A]), (B, published[B]), (C, None), (D, None), (E, None)]
    assert listing(deploy_to) == before


def test_a_capistrano_tree_has_its_history_from_revisions_log(capfd, deploy_to):
    os.makedirs(os.path.join(deploy_to, 'releases', A))
    with open(os.path.join(deploy_to, 'revisions.log'), 'w') as handle:
        handle.write('Branch main (at sha-a) deployed as release %s by alice\n' % A)

    history = info(capfd, deploy_to, history=True)['history']

    assert history['source'] == 'revisions.log' and history['figures']['deploys'] == 1
    assert history['figures']['time_to_restore'] is None


def test_a_window_of_zero_days_is_refused_in_one_sentence(capfd, deploy_to):
    result = info(capfd, deploy_to, history=True, history_days=0)

    assert result['failed'] is True
    assert result['msg'] == 'history_days must be a whole number of days, at least 1, got 0'
