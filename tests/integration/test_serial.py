"""Deploys in serial batches on three real SSH hosts: one run, one lock, one release name, one fate."""

from __future__ import annotations

from ansible_collections.capstan.release.tests.integration.helpers import (app, current, deploy, lock_files, ok,
                                                                           prepare_shared, releases)

SERIAL = (
    '- name: Deploy one host at a time\n'
    '  hosts: all\n'
    '  serial: 1\n'
    '  gather_facts: false\n'
    '  roles:\n'
    '    - role: capstan.release.deploy\n')


def serial_playbook(tmp_path):
    path = tmp_path / 'serial.yml'
    path.write_text(SERIAL)
    return str(path)


def test_serial_batches_share_one_release_name_and_the_lock_of_every_host(fleet, deploy_to, tmp_path):
    prepare_shared(fleet, deploy_to)
    playbook = serial_playbook(tmp_path)
    ok(deploy(fleet, deploy_to, app(tmp_path, 'v1'), playbook=playbook))
    first = current(fleet, deploy_to)
    assert len(set(first)) == 1 and len(first[0]) == 14, first

    # host3 holds a release named later than anything host1 has: the name must still be newer on every host.
    fleet.sh(3, 'mkdir %s/releases/%s' % (deploy_to, str(int(first[0]) + 5)))
    # A hook that sleeps makes the batches take seconds apart, so names computed per batch would differ.
    hook = tmp_path / 'slow.yml'
    hook.write_text('- name: Take a while\n  ansible.builtin.command: sleep 1.5\n  changed_when: false\n')
    ok(deploy(fleet, deploy_to, app(tmp_path, 'v2'), playbook=playbook, deploy_hooks={'after_updated': str(hook)}))
    second = current(fleet, deploy_to)
    assert len(set(second)) == 1 and int(second[0]) > int(first[0]) + 5, second
    assert fleet.each('cat %s/current/public/VERSION' % deploy_to) == ['v2\n'] * 3
    assert len(set(fleet.each('tail -n 1 %s/revisions.log' % deploy_to))) == 1
    assert lock_files(fleet, deploy_to) == [''] * 3

    again = ok(deploy(fleet, deploy_to, app(tmp_path, 'v2'), playbook=playbook))
    assert again.changed() == {'host1': 0, 'host2': 0, 'host3': 0}
    assert current(fleet, deploy_to) == second


def test_a_lock_on_a_host_of_a_later_batch_stops_the_run_before_anything_changes(fleet, deploy_to, tmp_path):
    prepare_shared(fleet, deploy_to)
    playbook = serial_playbook(tmp_path)
    ok(deploy(fleet, deploy_to, app(tmp_path, 'v1'), playbook=playbook))
    before = current(fleet, deploy_to)
    holder = {'deploy_to': deploy_to, 'owner': 'someone-else', 'user': 'mallory', 'host': 'laptop-7', 'pid': 4242,
              'command': 'ansible-playbook deploy.yml'}
    fleet.ok('release_lock', pattern='host3', args=holder)
    try:
        run = deploy(fleet, deploy_to, app(tmp_path, 'v2'), playbook=playbook)
        assert run.rc != 0, run
        assert 'mallory' in run.stdout and 'deploy_break_lock=true' in run.stdout, run
        assert current(fleet, deploy_to) == before
        assert releases(fleet, deploy_to) == [before[:1]] * 3
        locks = lock_files(fleet, deploy_to)
        assert locks[:2] == ['', ''] and 'someone-else' in locks[2], locks
        assert 'host2' not in run.stats and 'host3' not in run.stats, run  # the later batches never ran
    finally:
        fleet.ok('release_lock', pattern='host3',
                 args={'deploy_to': deploy_to, 'owner': 'cleanup', 'state': 'absent', 'force': True})


def test_a_failure_in_the_last_batch_switches_the_earlier_batches_back(fleet, deploy_to, tmp_path):
    prepare_shared(fleet, deploy_to)
    playbook = serial_playbook(tmp_path)
    ok(deploy(fleet, deploy_to, app(tmp_path, 'v1'), playbook=playbook))
    before = current(fleet, deploy_to)
    hook = tmp_path / 'fail_on_host3.yml'
    hook.write_text('- name: Fail on host3\n  ansible.builtin.fail:\n    msg: host3 refuses\n'
                    '  when: inventory_hostname == "host3"\n')
    run = deploy(fleet, deploy_to, app(tmp_path, 'v2'), playbook=playbook,
                 deploy_hooks={'before_publishing': str(hook)})
    assert run.rc != 0, run
    message = run.failures()['host3']
    assert 'host3 refuses' in message and 'the earlier batches went back too (host1, host2)' in message, message
    assert current(fleet, deploy_to) == before
    assert fleet.each('cat %s/current/public/VERSION' % deploy_to) == ['v1\n'] * 3
    assert releases(fleet, deploy_to) == [before[:1]] * 3
    archives = fleet.each('cd %s && ls *-release-*.tar.gz' % deploy_to)
    assert len(set(a.split('-release-')[1] for a in archives)) == 1, archives
    assert fleet.each('tail -n 1 %s/revisions.log' % deploy_to)[:2] == ['root rolled back to release %s\n' % before[0]] * 2
    assert lock_files(fleet, deploy_to) == [''] * 3


def test_a_rollback_in_serial_batches_is_refused_before_anything_changes(fleet, deploy_to, tmp_path):
    prepare_shared(fleet, deploy_to)
    ok(deploy(fleet, deploy_to, app(tmp_path, 'v1')))
    ok(deploy(fleet, deploy_to, app(tmp_path, 'v2')))
    before = current(fleet, deploy_to)
    playbook = tmp_path / 'rollback-serial.yml'
    playbook.write_text(SERIAL.replace('capstan.release.deploy', 'capstan.release.rollback'))
    run = deploy(fleet, deploy_to, app(tmp_path, 'v2'), playbook=str(playbook))
    assert run.rc != 0, run
    assert 'runs in serial batches (1 of 3 hosts); run it without serial' in run.stdout, run
    assert current(fleet, deploy_to) == before
    assert lock_files(fleet, deploy_to) == [''] * 3
