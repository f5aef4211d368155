"""The deploy and rollback playbooks on three real SSH hosts: what every host ends up with, read back."""

from __future__ import annotations

import json
import os
import subprocess

import pytest

from ansible_collections.capstan.release.tests.integration.helpers import (LINKS, PLAYBOOK, REPO, Run, app, current, deploy, env,
                                                                           failing_hook, lock_files, ok, play, prepare_shared,
                                                                           releases)


def test_deploys_land_on_every_host_alike_and_redeploying_changes_nothing(fleet, deploy_to, tmp_path):
    prepare_shared(fleet, deploy_to)
    ok(deploy(fleet, deploy_to, app(tmp_path, 'v1')))
    first = current(fleet, deploy_to)
    assert len(set(first)) == 1 and len(first[0]) == 14, first

    ok(deploy(fleet, deploy_to, app(tmp_path, 'v2')))
    second = current(fleet, deploy_to)
    assert len(set(second)) == 1 and second[0] > first[0], (first, second)
    assert releases(fleet, deploy_to) == [[first[0], second[0]]] * 3
    assert fleet.each('cat %s/current/public/VERSION' % deploy_to) == ['v2\n'] * 3
    assert fleet.each('cat %s/current/config/app.yml' % deploy_to) == [
        'greeting: hello from host%d\n' % i for i in (1, 2, 3)]
    assert fleet.each('readlink %s/current/config/app.yml' % deploy_to) == [
        '%s/shared/config/app.yml\n' % deploy_to] * 3
    revision = fleet.each('cat %s/current/REVISION' % deploy_to)
    assert len(set(revision)) == 1
    assert fleet.each('tail -n 1 %s/revisions.log' % deploy_to) == [
        'Branch main (at %s) deployed as release %s by root\n' % (revision[0].strip(), second[0])] * 3
    assert lock_files(fleet, deploy_to) == [''] * 3

    again = ok(deploy(fleet, deploy_to, app(tmp_path, 'v2')))
    assert again.changed() == {'host1': 0, 'host2': 0, 'host3': 0}
    assert current(fleet, deploy_to) == second
    assert releases(fleet, deploy_to) == [[first[0], second[0]]] * 3
    assert lock_files(fleet, deploy_to) == [''] * 3


def restart_playbook(tmp_path):
    """A play of the deploy role whose handler on deploy:published logs the release current points to."""
    playbook = tmp_path / 'site.yml'
    playbook.write_text(
        '- name: Deploy with a restart handler\n'
        '  hosts: all\n'
        '  gather_facts: false\n'
        '  roles:\n'
        '    - role: capstan.release.deploy\n'
        '  handlers:\n'
        '    - name: Restart the app\n'
        '      ansible.builtin.shell: echo "restarted $(basename $(readlink {{ deploy_to }}/current))" >> {{ deploy_to }}/restarts\n'
        '      listen: deploy:published\n')
    return playbook


def test_a_play_handler_listening_to_deploy_published_runs_only_when_current_switched(fleet, deploy_to, tmp_path):
    prepare_shared(fleet, deploy_to)
    playbook = restart_playbook(tmp_path)
    ok(deploy(fleet, deploy_to, app(tmp_path, 'v1'), playbook=str(playbook)))
    name = current(fleet, deploy_to)
    assert fleet.each('cat %s/restarts' % deploy_to) == ['restarted %s\n' % name[0]] * 3
    ok(deploy(fleet, deploy_to, app(tmp_path, 'v1'), playbook=str(playbook)))
    assert fleet.each('cat %s/restarts' % deploy_to) == ['restarted %s\n' % name[0]] * 3


def test_check_mode_shows_the_switch_and_changes_nothing(fleet, deploy_to, tmp_path):
    prepare_shared(fleet, deploy_to)
    ok(deploy(fleet, deploy_to, app(tmp_path, 'v1')))
    before = current(fleet, deploy_to)
    tree = fleet.each('cd %s && find . | sort && cat revisions.log .capstan/journal' % deploy_to)
    proc = subprocess.run(
        [PLAYBOOK, os.path.join(REPO, 'playbooks', 'deploy.yml'), '-i', str(fleet.inventory), '--check', '--diff',
         '-e', json.dumps(dict(LINKS, deploy_to=deploy_to, deploy_src=str(app(tmp_path, 'v2'))))],
        cwd=REPO, env=env(), capture_output=True, text=True, timeout=900, check=False)
    run = Run(proc)
    assert run.rc == 0, run
    assert 'current would switch from release %s to release' % before[0] in run.stdout, run
    assert fleet.each('cd %s && find . | sort && cat revisions.log .capstan/journal' % deploy_to) == tree


def test_a_hook_failing_on_one_host_before_publishing_publishes_nowhere(fleet, deploy_to, tmp_path):
    prepare_shared(fleet, deploy_to)
    ok(deploy(fleet, deploy_to, app(tmp_path, 'v1')))
    before = current(fleet, deploy_to)
    hook = failing_hook(tmp_path, 'host2', 'hook refused release {{ deploy_release_name }} ({{ deploy_mode }})',
                        'Fail on host2 before publishing')
    run = deploy(fleet, deploy_to, app(tmp_path, 'v2'), deploy_hooks={'before_publishing': str(hook)})
    assert run.rc != 0, run
    failures = run.failures()
    assert set(failures) == set(fleet.names), run
    assert 'hook refused release' in failures['host2'] and '(deploy)' in failures['host2']
    assert all('failed on host2' in failures[h] for h in ('host1', 'host3')), failures
    assert all('nothing was published' in message for message in failures.values()), failures

    assert current(fleet, deploy_to) == before
    assert releases(fleet, deploy_to) == [before[:1]] * 3
    archives = fleet.each('cd %s && ls failed-release-*.tar.gz' % deploy_to)
    assert len(set(archives)) == 1 and archives[0].strip().startswith('failed-release-'), archives
    assert lock_files(fleet, deploy_to) == [''] * 3


def test_a_health_check_failing_on_one_host_after_publishing_switches_every_host_back(fleet, deploy_to, tmp_path):
    prepare_shared(fleet, deploy_to)
    ok(deploy(fleet, deploy_to, app(tmp_path, 'v1')))
    before = current(fleet, deploy_to)
    run = deploy(fleet, deploy_to, app(tmp_path, 'v2'), deploy_health_command='test "$(hostname)" != host2')
    assert run.rc != 0, run
    failures = run.failures()
    assert set(failures) == set(fleet.names), run
    assert all('current switched back to release %s' % before[0] in m for m in failures.values()), failures

    assert current(fleet, deploy_to) == before
    assert fleet.each('cat %s/current/public/VERSION' % deploy_to) == ['v1\n'] * 3
    assert releases(fleet, deploy_to) == [before[:1]] * 3
    archives = fleet.each('cd %s && ls failed-release-*.tar.gz' % deploy_to)
    assert len(set(archives)) == 1, archives
    assert fleet.each('tail -n 1 %s/revisions.log' % deploy_to) == [
        'root rolled back to release %s\n' % before[0]] * 3
    assert lock_files(fleet, deploy_to) == [''] * 3


def test_rollback_goes_back_on_every_host_and_again_to_the_live_release_changes_nothing(fleet, deploy_to, tmp_path):
    prepare_shared(fleet, deploy_to)
    ok(deploy(fleet, deploy_to, app(tmp_path, 'v1')))
    first = current(fleet, deploy_to)
    ok(deploy(fleet, deploy_to, app(tmp_path, 'v2')))
    second = current(fleet, deploy_to)

    ok(play(fleet, 'rollback.yml', deploy_to))
    assert current(fleet, deploy_to) == first
    assert releases(fleet, deploy_to) == [first[:1]] * 3
    assert fleet.each('ls %s/rolled-back-release-%s.tar.gz' % (deploy_to, second[0])) == [
        '%s/rolled-back-release-%s.tar.gz\n' % (deploy_to, second[0])] * 3
    assert fleet.each('tail -n 1 %s/revisions.log' % deploy_to) == ['root rolled back to release %s\n' % first[0]] * 3
    assert lock_files(fleet, deploy_to) == [''] * 3

    again = ok(play(fleet, 'rollback.yml', deploy_to, rollback_release=first[0]))
    assert again.changed() == {'host1': 0, 'host2': 0, 'host3': 0}
    assert current(fleet, deploy_to) == first

    info = ok(play(fleet, 'releases.yml', deploy_to))
    assert 'no drift: every host runs release %s' % first[0] in info.output_of('Summarise the fleet'), info


def test_a_lock_held_by_another_run_refuses_the_deploy_and_changes_nothing(fleet, deploy_to, tmp_path):
    prepare_shared(fleet, deploy_to)
    ok(deploy(fleet, deploy_to, app(tmp_path, 'v1')))
    before = current(fleet, deploy_to)
    holder = {'deploy_to': deploy_to, 'owner': 'someone-else', 'user': 'mallory',
              'host': 'laptop-7', 'pid': 4242, 'command': 'ansible-playbook deploy.yml'}
    fleet.ok('release_lock', pattern='host2', args=holder)
    try:
        run = deploy(fleet, deploy_to, app(tmp_path, 'v2'))
        assert run.rc != 0, run
        message = run.failures()['host2']
        assert 'mallory' in message and 'laptop-7' in message, message
        assert 'deploy_break_lock=true' in message, message
        assert current(fleet, deploy_to) == before
        assert releases(fleet, deploy_to) == [before[:1]] * 3
        locks = lock_files(fleet, deploy_to)
        assert locks[0] == '' and locks[2] == '' and 'someone-else' in locks[1], locks
        assert fleet.each('ls %s | grep -c failed-release || true' % deploy_to) == ['0\n'] * 3
    finally:
        fleet.ok('release_lock', pattern='host2', args={'deploy_to': deploy_to, 'owner': 'cleanup', 'state': 'absent', 'force': True})


@pytest.mark.parametrize('bad, variable', [
    ({'deploy_to': 'srv/relative'}, 'deploy_to'),
    ({'deploy_keep_releases': 0}, 'deploy_keep_releases'),
    ({'deploy_keep_releases': 'many'}, 'deploy_keep_releases'),
    ({'deploy_strategy': 'rsync'}, 'deploy_strategy'),
    ({'deploy_strategy': 'git'}, 'deploy_repo_url'),
    ({'deploy_src': '/nonexistent/app'}, 'deploy_src'),
    ({'deploy_release_name': '2026'}, 'deploy_release_name'),
    ({'deploy_health_url': 'localhost:8080/up'}, 'deploy_health_url'),
    ({'deploy_health_retries': -1}, 'deploy_health_retries'),
    ({'deploy_confirm_timeout': 0}, 'deploy_confirm_timeout'),
    ({'deploy_linked_dirs': ['../escape']}, 'deploy_linked_dirs'),
    ({'deploy_linked_files': ['/etc/passwd']}, 'deploy_linked_files'),
    ({'deploy_hooks': {'after_lunch': '/x.yml'}}, 'deploy_hooks'),
    ({'deploy_hooks': {'after_updated': '/nonexistent/migrate.yml'}}, 'deploy_hooks'),
    ({'deploy_hooks': {'failed': ['hooks/none.yml']}}, 'deploy_hooks'),
])
def test_bad_input_fails_before_any_host_changes(fleet, deploy_to, tmp_path, bad, variable):
    variables = dict(LINKS, deploy_src=str(app(tmp_path, 'v1')))
    variables.update(bad)
    target = variables.pop('deploy_to', deploy_to)
    run = play(fleet, 'deploy.yml', target, **variables)
    assert run.rc != 0, run
    messages = run.failures() or dict((host, result.get('msg')) for _task, host, result in run.fatal)
    assert set(messages) == set(fleet.names), run
    assert all(variable in str(message) for message in messages.values()), messages
    assert all('Traceback' not in str(message) for message in messages.values()), messages
    assert fleet.each('test -e %s && echo exists || echo absent' % deploy_to) == ['absent\n'] * 3


def test_without_auto_rollback_a_failed_health_check_leaves_the_new_release_live(fleet, deploy_to, tmp_path):
    prepare_shared(fleet, deploy_to)
    ok(deploy(fleet, deploy_to, app(tmp_path, 'v1')))
    run = deploy(fleet, deploy_to, app(tmp_path, 'v2'), deploy_health_command='test "$(hostname)" != host2',
                 deploy_auto_rollback=False)
    assert run.rc != 0, run
    failures = run.failures()
    assert set(failures) == set(fleet.names), run
    assert all('current still points to release' in m for m in failures.values()), failures
    assert fleet.each('cat %s/current/public/VERSION' % deploy_to) == ['v2\n'] * 3
    assert lock_files(fleet, deploy_to) == [''] * 3


def test_rollback_to_a_named_release(fleet, deploy_to, tmp_path):
    prepare_shared(fleet, deploy_to)
    names = []
    for version in ('v1', 'v2', 'v3'):
        ok(deploy(fleet, deploy_to, app(tmp_path, version)))
        names.append(current(fleet, deploy_to)[0])
    ok(play(fleet, 'rollback.yml', deploy_to, rollback_release=names[0]))
    assert current(fleet, deploy_to) == [names[0]] * 3
    assert fleet.each('cat %s/current/public/VERSION' % deploy_to) == ['v1\n'] * 3
    assert fleet.each('ls %s | grep -c rolled-back-release-%s' % (deploy_to, names[2])) == ['1\n'] * 3

    bad = play(fleet, 'rollback.yml', deploy_to, rollback_release='yesterday')
    assert bad.rc != 0 and all('rollback_release' in m for m in bad.failures().values()), bad
    assert current(fleet, deploy_to) == [names[0]] * 3


def test_a_relative_hook_path_is_found_from_the_directory_the_operator_runs_in(fleet, deploy_to, tmp_path):
    prepare_shared(fleet, deploy_to)
    (tmp_path / 'hooks').mkdir()
    (tmp_path / 'hooks' / 'mark.yml').write_text(
        '- name: Mark the release\n'
        '  ansible.builtin.copy:\n'
        '    dest: "{{ deploy_release_path }}/MARK"\n'
        '    content: "{{ deploy_mode }} {{ deploy_release_name }}\\n"\n'
        '    mode: "0644"\n')
    variables = dict(LINKS, deploy_to=deploy_to, deploy_src=str(app(tmp_path, 'v1')),
                     deploy_hooks={'after_updated': 'hooks/mark.yml'})
    proc = subprocess.run([PLAYBOOK, os.path.join(REPO, 'playbooks', 'deploy.yml'), '-i', str(fleet.inventory),
                           '-e', json.dumps(variables)],
                          cwd=str(tmp_path), env=env(), capture_output=True, text=True, timeout=900, check=False)
    ok(Run(proc))
    name = current(fleet, deploy_to)[0]
    assert fleet.each('cat %s/current/MARK' % deploy_to) == ['deploy %s\n' % name] * 3


def test_a_switch_back_runs_the_deploy_published_handlers_again(fleet, deploy_to, tmp_path):
    prepare_shared(fleet, deploy_to)
    playbook = restart_playbook(tmp_path)
    ok(deploy(fleet, deploy_to, app(tmp_path, 'v1'), playbook=str(playbook)))
    first = current(fleet, deploy_to)[0]
    run = deploy(fleet, deploy_to, app(tmp_path, 'v2'), playbook=str(playbook),
                 deploy_health_command='test "$(hostname)" != host2')
    assert run.rc != 0, run
    restarts = fleet.each('cat %s/restarts' % deploy_to)
    for lines in restarts:
        names = [line.split()[1] for line in lines.splitlines()]
        assert len(names) == 3 and names[0] == first and names[1] > first and names[2] == first, restarts


def per_host_playbook(tmp_path, name, variables):
    """A deploy playbook whose role variables differ by host (``variables``: {name: Jinja expression})."""
    lines = ['- name: Deploy with variables set per host', '  hosts: all', '  gather_facts: false', '  roles:',
             '    - role: capstan.release.deploy', '      vars:']
    lines += ['        %s: "%s"' % (key, value) for key, value in variables.items()]
    path = tmp_path / name
    path.write_text('\n'.join(lines) + '\n')
    return str(path)


def test_a_hook_or_health_check_set_for_one_host_runs_there_and_only_there(fleet, deploy_to, tmp_path):
    """The fleet skips a stretch no host needs on the first host only; one that a single host needs runs on that host."""
    prepare_shared(fleet, deploy_to)
    hook = tmp_path / 'mark.yml'
    hook.write_text(
        '- name: Mark the host\n'
        '  ansible.builtin.copy:\n'
        '    dest: "{{ deploy_release_path }}/hooked"\n'
        '    content: "{{ inventory_hostname }}\\n"\n'
        '    mode: "0644"\n')
    only_host2 = {'deploy_hooks': "{{ {'after_updating': '%s'} if inventory_hostname == 'host2' else {} }}" % hook}
    ok(deploy(fleet, deploy_to, app(tmp_path, 'v1'), playbook=per_host_playbook(tmp_path, 'hooked.yml', only_host2)))
    assert [out.strip() for out in fleet.each('cat %s/current/hooked 2>/dev/null || echo none' % deploy_to)] == \
        ['none', 'host2', 'none']
    before = current(fleet, deploy_to)
    # host3 alone checks health, and fails it: every host goes back
    only_host3 = {'deploy_health_command': "{{ 'false' if inventory_hostname == 'host3' else '' }}"}
    run = deploy(fleet, deploy_to, app(tmp_path, 'v2'), playbook=per_host_playbook(tmp_path, 'health.yml', only_host3))
    assert run.rc != 0, run
    failures = run.failures()
    assert "deploy_health_command 'false' failed" in failures['host3'], failures
    assert current(fleet, deploy_to) == before


def test_hooks_see_the_paths_of_their_own_host_when_deploy_to_differs_by_host(fleet, deploy_to, tmp_path):
    """The fleet's plan is made once, but deploy_release_path and deploy_shared_path are each host's own."""
    hook = tmp_path / 'paths.yml'
    hook.write_text(
        '- name: Record the paths the hook sees\n'
        '  ansible.builtin.copy:\n'
        '    dest: "{{ deploy_release_path }}/paths"\n'
        '    content: "{{ deploy_release_path }} {{ deploy_shared_path }}\\n"\n'
        '    mode: "0644"\n')
    playbook = per_host_playbook(tmp_path, 'per-host-tree.yml', {'deploy_to': "%s/{{ inventory_hostname }}" % deploy_to})
    variables = {'deploy_src': str(app(tmp_path, 'v1')), 'deploy_hooks': {'after_updating': str(hook)}}
    proc = subprocess.run([PLAYBOOK, playbook, '-i', str(fleet.inventory), '-e', json.dumps(variables)], cwd=REPO, env=env(),
                          capture_output=True, text=True, timeout=900, check=False)
    ok(Run(proc))
    for index, name in enumerate(fleet.names):
        tree = '%s/%s' % (deploy_to, name)
        release = os.path.basename(fleet.sh(index + 1, 'readlink %s/current' % tree).strip())
        assert fleet.sh(index + 1, 'cat %s/current/paths' % tree).split() == ['%s/releases/%s' % (tree, release), tree + '/shared']


@pytest.mark.parametrize('serial', [None, 1], ids=['one-batch', 'serial-1'])
def test_an_after_finished_hook_failing_on_one_host_keeps_the_recorded_release_live_everywhere(
        fleet, deploy_to, tmp_path, serial):
    """Invariant 11: once every host of the batch recorded the deploy, a failure is reported but switches nothing back.

    With serial batches the earlier batches still hold their locks when the last batch's hook fails:
    their failure path (delegated from host3) must keep the release too, not switch back.
    """
    prepare_shared(fleet, deploy_to)
    ok(deploy(fleet, deploy_to, app(tmp_path, 'v1')))
    before = current(fleet, deploy_to)
    hook = failing_hook(tmp_path, 'host3', 'after_finished hook refused release {{ deploy_release_name }}',
                        'Fail on host3 after finished')
    playbook = tmp_path / 'deploy.yml'
    playbook.write_text(
        '- name: Deploy\n'
        '  hosts: all\n'
        + ('  serial: %d\n' % serial if serial else '')
        + '  gather_facts: false\n'
        '  roles:\n'
        '    - role: capstan.release.deploy\n')
    run = deploy(fleet, deploy_to, app(tmp_path, 'v2'), playbook=str(playbook), deploy_hooks={'after_finished': str(hook)})
    assert run.rc != 0, run

    name = current(fleet, deploy_to)
    assert len(set(name)) == 1 and name[0] > before[0], (before, name)
    failures = run.failures()
    # In serial batches only the last batch (host3) is left to fail; in one batch every host fails with the report.
    assert set(failures) == ({'host3'} if serial else set(fleet.names)), run
    for message in failures.values():
        assert message.startswith('deploy of release %s failed on host3 at Fail on host3 after finished: after_finished '
                                  'hook refused release %s' % (name[0], name[0])), failures
        assert 'current still points to release %s here' % name[0] in message, failures
        assert 'release %s stays live: it had been recorded as deployed' % name[0] in message, failures
        assert 'switched back' not in message and 'went back' not in message, failures

    assert fleet.each('cat %s/current/public/VERSION' % deploy_to) == ['v2\n'] * 3
    assert releases(fleet, deploy_to) == [[before[0], name[0]]] * 3
    revision = fleet.each('cat %s/current/REVISION' % deploy_to)
    assert fleet.each('tail -n 1 %s/revisions.log' % deploy_to) == [
        'Branch main (at %s) deployed as release %s by root\n' % (revision[0].strip(), name[0])] * 3
    assert fleet.each('ls %s | grep -c -- -release- || true' % deploy_to) == ['0\n'] * 3  # nothing archived
    assert lock_files(fleet, deploy_to) == [''] * 3
