"""The modules over real SSH on three test-bed hosts: what each host ends up with, read back."""

from __future__ import annotations

import os

import bed

from ansible_collections.capstan.release.plugins.module_utils._releases import next_release_name


def fleet_release_name(fleet, deploy_to):
    """Name a release the way the roles do: once, from every host's releases."""
    infos = fleet.ok('release_info', {'deploy_to': deploy_to})
    return next_release_name([name for info in infos.values() for name in info['release_names']])


def deploy(fleet, deploy_to, revision, **finish):
    name = fleet_release_name(fleet, deploy_to)
    fleet.ok('release_dir', dict(deploy_to=deploy_to, release=name, state='finished', revision=revision, **finish))
    swapped = fleet.ok('symlink_swap', {'deploy_to': deploy_to, 'release': name})
    fleet.ok('release_dir', {'deploy_to': deploy_to, 'release': name, 'state': 'succeeded', 'branch': 'main', 'log_user': 'ci'})
    return name, swapped


def test_hosts_do_not_see_the_controllers_files(fleet, tmp_path):
    """A path that exists only on the controller is absent on every host."""
    probe = '/srv/capstan-probe-%d' % os.getpid()
    os.makedirs(os.path.join(probe, 'releases', '20261121221404'))
    try:
        infos = fleet.ok('release_info', {'deploy_to': probe})
    finally:
        os.system('rm -rf %s' % probe)
    assert set(infos) == set(fleet.names)
    assert all(info['exists'] is False and info['release_names'] == [] for info in infos.values())


def test_deploys_prune_and_rollback_leave_every_host_alike(fleet, deploy_to):
    for index in range(1, 4):
        fleet.sh(index, 'mkdir -p %s/shared/config && echo "db: %d" > %s/shared/config/db.yml' % (deploy_to, index, deploy_to))
    names = []
    for revision in ('aaa111', 'bbb222', 'ccc333'):
        name, swapped = deploy(fleet, deploy_to, revision, linked_dirs=['log'], linked_files=['config/db.yml'])
        assert set(r['previous_release'] for r in swapped.values()) == set([names[-1] if names else None])
        names.append(name)
        fleet.ok('release_prune', {'deploy_to': deploy_to, 'keep_releases': 2})
    assert names == sorted(set(names)), 'one strictly increasing name per run'
    assert fleet.each('readlink %s/current' % deploy_to) == ['%s/releases/%s\n' % (deploy_to, names[-1])] * 3
    assert fleet.each('ls %s/releases' % deploy_to) == ['%s\n%s\n' % (names[1], names[2])] * 3
    assert fleet.each('cat %s/current/config/db.yml' % deploy_to) == ['db: 1\n', 'db: 2\n', 'db: 3\n']
    assert fleet.each('cat %s/current/REVISION' % deploy_to) == ['ccc333\n'] * 3

    targets = fleet.ok('rollback_target', {'deploy_to': deploy_to})
    assert set((r['release'], r['leaving']) for r in targets.values()) == set([(names[1], names[2])])
    fleet.ok('symlink_swap', {'deploy_to': deploy_to, 'release': names[1], 'rollback': True, 'log_user': 'ci'})
    fleet.ok('release_prune', {'deploy_to': deploy_to, 'keep_releases': 2, 'rolled_back': names[2]})

    assert fleet.each('readlink %s/current' % deploy_to) == ['%s/releases/%s\n' % (deploy_to, names[1])] * 3
    archive = '%s/rolled-back-release-%s.tar.gz' % (deploy_to, names[2])
    assert fleet.each('stat -c %%a %s' % archive) == ['600\n'] * 3
    assert fleet.each('tar -tzf %s | sort | head -1' % archive) == ['%s/\n' % names[2]] * 3
    expected_log = ''.join(['Branch main (at %s) deployed as release %s by ci\n' % (rev, name)
                            for rev, name in zip(('aaa111', 'bbb222', 'ccc333'), names)]
                           + ['ci rolled back to release %s\n' % names[1]])
    assert fleet.each('cat %s/revisions.log' % deploy_to) == [expected_log] * 3


def test_a_failed_release_is_archived_then_removed_on_every_host(fleet, deploy_to):
    live, _swapped = deploy(fleet, deploy_to, 'good')
    name = fleet_release_name(fleet, deploy_to)
    fleet.ok('release_dir', {'deploy_to': deploy_to, 'release': name})
    fleet.ok('release_dir', {'deploy_to': deploy_to, 'release': name, 'state': 'absent'})
    assert fleet.each('ls %s/releases' % deploy_to) == ['%s\n' % live] * 3
    assert fleet.each('tar -tzf %s/failed-release-%s.tar.gz' % (deploy_to, name)) == ['%s/\n' % name] * 3
    refused = fleet.module('release_dir', {'deploy_to': deploy_to, 'release': live, 'state': 'absent'})
    assert all(r['failed'] and 'current points to' in r['msg'] for r in refused.values())


def test_the_lock_refuses_a_second_run_and_changes_nothing(fleet, deploy_to):
    fleet.ok('release_lock', {'deploy_to': deploy_to, 'owner': 'run-a', 'user': 'alice', 'host': 'ctl-a', 'pid': 41})
    before = fleet.each('cat %s/.capstan/lock' % deploy_to)
    refused = fleet.module('release_lock', {'deploy_to': deploy_to, 'owner': 'run-b', 'user': 'bob'})
    for result in refused.values():
        assert result['failed']
        assert 'alice on ctl-a (pid 41)' in result['msg'] and '-e deploy_break_lock=true' in result['msg']
    assert fleet.each('cat %s/.capstan/lock' % deploy_to) == before
    broken = fleet.ok('release_lock', {'deploy_to': deploy_to, 'owner': 'run-b', 'user': 'bob', 'force': True})
    assert all(r['broken']['owner'] == 'run-a' for r in broken.values())
    fleet.ok('release_lock', {'deploy_to': deploy_to, 'owner': 'run-b', 'state': 'absent'})
    assert fleet.each('test -e %s/.capstan/lock && echo held || echo free' % deploy_to) == ['free\n'] * 3


def test_check_mode_reports_and_changes_nothing_on_any_host(fleet, deploy_to):
    results = fleet.ok('release_dir', {'deploy_to': deploy_to, 'release': '20261121221404', 'state': 'finished',
                                       'revision': 'abc'}, check=True, diff=True)
    assert all(r['changed'] for r in results.values())
    assert fleet.each('test -e %s && echo there || echo absent' % deploy_to) == ['absent\n'] * 3


def test_bad_input_is_one_sentence_and_changes_nothing(fleet, deploy_to):
    results = fleet.module('release_dir', {'deploy_to': deploy_to, 'release': '../../etc', 'state': 'finished',
                                           'revision': 'abc'})
    for result in results.values():
        assert result['failed'] and 'release must be a release name: 14 digits' in result['msg']
        assert 'Traceback' not in str(result)
    assert fleet.each('test -e %s && echo there || echo absent' % deploy_to) == ['absent\n'] * 3


def test_an_unreachable_host_is_reported_and_the_others_proceed(fleet, deploy_to):
    bed.cut(3)
    try:
        results = fleet.module('release_info', {'deploy_to': deploy_to})
    finally:
        bed.heal(3)
    assert results['host3'].get('unreachable')
    assert results['host1']['exists'] is False and results['host2']['exists'] is False
    assert fleet.ok('release_info', {'deploy_to': deploy_to})['host3']['exists'] is False
