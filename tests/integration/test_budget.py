"""What a flow costs and what its handlers see, on three real SSH hosts: counted, never timed.

The budget (DESIGN.md, Speed) is in task results from the play recap and module runs per host:
a git deploy at most 4 module runs, a copy deploy 5, a rollback 3, a redeploy of what is live 1
(reading only, no lock written); at most 15 task results for a deploy, 10 for a rollback. A
module run is counted from ansible's -vvv output: one `EXEC ... python` a module per host.
"""

from __future__ import annotations

import json
import os
import re
import subprocess

import pytest

from ansible_collections.capstan.release.tests.integration.helpers import (GIT_ENV, PLAYBOOK, REPO, Run, app, current, env,
                                                                           lock_files, make_app, ok, prepare_shared)


EXEC = re.compile(r'^<(?P<address>[0-9.]+)> SSH: EXEC ssh .*python3')
RECAP = re.compile(r'^(\S+)\s+: ok=(\d+)\s+changed=(\d+)\s+unreachable=(\d+)\s+failed=(\d+)\s+skipped=(\d+)\s+rescued=(\d+)')


def counted(fleet, playbook, **variables):
    """Run a playbook at -vvv; returns (Run, {host: task results}, {host: module runs})."""
    cmd = [PLAYBOOK, str(playbook), '-i', str(fleet.inventory), '-vvv', '-e', json.dumps(variables)]
    proc = subprocess.run(cmd, cwd=REPO, env=env(), capture_output=True, text=True, timeout=900, check=False)
    run = Run(proc)
    results, modules, addresses = {}, {}, {}
    for line in proc.stdout.splitlines():
        match = RECAP.match(line)
        if match:
            ok_, _changed, unreachable, failed, skipped, rescued = (int(value) for value in match.groups()[1:])
            results[match.group(1)] = ok_ + unreachable + failed + skipped + rescued
    inventory = open(str(fleet.inventory)).read()
    for host, address in re.findall(r'^(host\d+) ansible_host=(\S+)', inventory, re.M):
        addresses[address] = host
        modules[host] = 0
    for line in proc.stdout.splitlines():
        match = EXEC.match(line)
        if match and match.group('address') in addresses:
            modules[addresses[match.group('address')]] += 1
    return run, results, modules


def playbook(name):
    return os.path.join(REPO, 'playbooks', name)


@pytest.fixture
def repo(tmp_path):
    """A git repository under /var/tmp (the hosts share it) holding a small app."""
    path = '/var/tmp/capstan-budget-%s' % os.environ.get('CAPSTAN_BED_ID', '0')
    subprocess.run(['rm', '-rf', path], check=True)
    make_app(path, files=40)
    git_env = dict(os.environ, **GIT_ENV)
    for args in (['init', '-q', '-b', 'main'], ['add', '-A'], ['commit', '-qm', 'v1']):
        subprocess.run(['git'] + args, cwd=path, env=git_env, check=True)
    yield path
    subprocess.run(['rm', '-rf', path], check=True)


def commit(repo, text):
    with open(os.path.join(repo, 'VERSION'), 'w') as handle:
        handle.write(text + '\n')
    git_env = dict(os.environ, **GIT_ENV)
    subprocess.run(['git', 'add', '-A'], cwd=repo, env=git_env, check=True)
    subprocess.run(['git', 'commit', '-qm', text], cwd=repo, env=git_env, check=True)


def test_a_git_deploy_a_redeploy_and_a_rollback_keep_to_their_budget(fleet, deploy_to, repo):
    git = dict(deploy_to=deploy_to, deploy_strategy='git', deploy_repo_url='file://' + repo, deploy_version='main')
    ok(counted(fleet, playbook('deploy.yml'), **git)[0])
    commit(repo, 'v2')
    run, results, modules = counted(fleet, playbook('deploy.yml'), **git)
    ok(run)
    assert all(count <= 15 for count in results.values()), results
    assert modules == {'host1': 4, 'host2': 4, 'host3': 4}, modules

    run, results, modules = counted(fleet, playbook('deploy.yml'), **git)
    ok(run)
    assert run.changed() == {'host1': 0, 'host2': 0, 'host3': 0}, run
    assert modules == {'host1': 1, 'host2': 1, 'host3': 1}, modules
    assert fleet.each('grep -c lock_broken %s/.capstan/journal || true' % deploy_to) == ['0\n'] * 3

    run, results, modules = counted(fleet, playbook('rollback.yml'), deploy_to=deploy_to)
    ok(run)
    assert all(count <= 10 for count in results.values()), results
    assert all(count <= 3 for count in modules.values()), modules
    assert lock_files(fleet, deploy_to) == [''] * 3


def test_a_copy_deploy_keeps_to_its_budget(fleet, deploy_to, tmp_path):
    prepare_shared(fleet, deploy_to)
    variables = dict(deploy_to=deploy_to, deploy_src=str(app(tmp_path, 'v1')), deploy_linked_dirs=['log'],
                     deploy_linked_files=['config/app.yml'])
    ok(counted(fleet, playbook('deploy.yml'), **variables)[0])
    variables['deploy_src'] = str(app(tmp_path, 'v2'))
    run, results, modules = counted(fleet, playbook('deploy.yml'), **variables)
    ok(run)
    assert all(count <= 15 for count in results.values()), results
    assert all(count <= 5 for count in modules.values()), modules


def handlers_playbook(tmp_path, role, topics):
    """A play of ``role`` with one handler a topic, logging what it sees to <deploy_to>/topics."""
    lines = ['- name: Run the role and log what every topic\'s handler sees', '  hosts: all', '  gather_facts: false',
             '  roles:', '    - role: capstan.release.%s' % role, '  handlers:']
    for topic in topics:
        lines += ['    - name: Log %s' % topic,
                  '      ansible.builtin.shell: >-',
                  '        echo "%s mode={{ deploy_mode }} release={{ deploy_release_name }}' % topic,
                  '        path={{ deploy_release_path }} previous={{ deploy_previous_release }}" >> {{ deploy_to }}/topics',
                  '      listen: %s' % topic]
    path = tmp_path / ('%s-handlers.yml' % role)
    path.write_text('\n'.join(lines) + '\n')
    return str(path)


def test_every_topic_is_notified_and_handlers_see_what_hooks_see(fleet, deploy_to, tmp_path):
    prepare_shared(fleet, deploy_to)
    links = dict(deploy_linked_dirs=['log'], deploy_linked_files=['config/app.yml'])
    deploy_book = handlers_playbook(tmp_path, 'deploy',
                                    ['deploy:started', 'deploy:updated', 'deploy:published', 'deploy:finished'])
    ok(counted(fleet, deploy_book, deploy_to=deploy_to, deploy_src=str(app(tmp_path, 'v1')), **links)[0])
    first = current(fleet, deploy_to)[0]
    ok(counted(fleet, deploy_book, deploy_to=deploy_to, deploy_src=str(app(tmp_path, 'v2')), **links)[0])
    second = current(fleet, deploy_to)[0]
    rollback_book = handlers_playbook(tmp_path, 'rollback',
                                      ['deploy:started', 'deploy:reverted', 'deploy:published', 'deploy:finished'])
    ok(counted(fleet, rollback_book, deploy_to=deploy_to)[0])
    lines = fleet.sh(1, 'cat %s/topics' % deploy_to).splitlines()
    path = '%s/releases/%s' % (deploy_to, second)
    for topic in ('deploy:updated', 'deploy:published', 'deploy:finished'):
        assert '%s mode=deploy release=%s path=%s previous=%s' % (topic, second, path, first) in lines, lines
    back = '%s/releases/%s' % (deploy_to, first)
    for topic in ('deploy:started', 'deploy:reverted', 'deploy:published', 'deploy:finished'):
        assert '%s mode=rollback release=%s path=%s previous=%s' % (topic, first, back, second) in lines, lines
    # deploy_to exists before the first deploy (shared/ is prepared), so both deploys lock it at starting.
    assert sum(line.startswith('deploy:started mode=deploy') for line in lines) == 2, lines


def test_a_drill_goes_back_and_forth_through_the_health_gate_and_is_recorded(fleet, deploy_to, tmp_path):
    prepare_shared(fleet, deploy_to)
    links = dict(deploy_linked_dirs=['log'], deploy_linked_files=['config/app.yml'])
    ok(counted(fleet, playbook('deploy.yml'), deploy_to=deploy_to, deploy_src=str(app(tmp_path, 'v1')), **links)[0])
    first = current(fleet, deploy_to)
    ok(counted(fleet, playbook('deploy.yml'), deploy_to=deploy_to, deploy_src=str(app(tmp_path, 'v2')), **links)[0])
    second = current(fleet, deploy_to)
    log_before = fleet.each('cat %s/revisions.log' % deploy_to)
    health = 'cat public/VERSION >> %s/health' % deploy_to
    run = ok(counted(fleet, playbook('drill.yml'), deploy_to=deploy_to, deploy_health_command=health)[0])
    assert 'back to release %s' % first[0] in run.stdout and 'forward to release %s' % second[0] in run.stdout, run
    assert current(fleet, deploy_to) == second
    assert fleet.each('cat %s/health' % deploy_to) == ['v1\nv2\n'] * 3
    assert fleet.each('cat %s/revisions.log' % deploy_to) == log_before
    assert fleet.each('ls %s/releases' % deploy_to) == ['%s\n%s\n' % (first[0], second[0])] * 3
    assert lock_files(fleet, deploy_to) == [''] * 3
    report = ok(counted(fleet, playbook('releases.yml'), deploy_to=deploy_to)[0])
    assert 'last drill: ' in report.stdout and 'back to %s' % first[0] in report.stdout, report

    # A drift or an unhealthy release ends the drill with every host on the release that was live.
    run = counted(fleet, playbook('drill.yml'), deploy_to=deploy_to,
                  deploy_health_command='grep -q v2 public/VERSION')[0]
    assert run.rc != 0 and current(fleet, deploy_to) == second, run
    assert lock_files(fleet, deploy_to) == [''] * 3
    fleet.sh(2, 'ln -sfn %s/releases/%s %s/current' % (deploy_to, first[0], deploy_to))
    run = counted(fleet, playbook('drill.yml'), deploy_to=deploy_to)[0]
    assert run.rc != 0 and 'has drifted' in run.stdout, run
    assert current(fleet, deploy_to) == [second[0], first[0], second[0]]


def failing_playbook(tmp_path, name, plays):
    """Plays of the deploy role (each its own vars), with a deploy:failed handler logging what it sees to <deploy_to>/facts."""
    lines = []
    for variables in plays:
        lines += ['- name: Deploy', '  hosts: all', '  gather_facts: false', '  vars: %s' % json.dumps(variables),
                  '  roles:', '    - role: capstan.release.deploy', '  handlers:',
                  '    - name: Log deploy:failed',
                  '      ansible.builtin.shell: >-',
                  '        echo "handler mode={{ deploy_mode }} release={{ deploy_release_name }}',
                  '        previous={{ deploy_previous_release }}" >> {{ deploy_to }}/facts',
                  '      listen: deploy:failed']
    path = tmp_path / name
    path.write_text('\n'.join(lines) + '\n')
    return str(path)


def test_failed_hooks_and_handlers_see_their_own_runs_facts_never_an_earlier_runs(fleet, deploy_to, tmp_path):
    prepare_shared(fleet, deploy_to)
    (tmp_path / 'boom.yml').write_text('- name: Fail here\n  ansible.builtin.fail:\n    msg: boom\n')
    (tmp_path / 'log.yml').write_text(
        '- name: Log what a failed hook sees\n  ansible.builtin.shell: >-\n'
        '    echo "hook mode={{ deploy_mode }} release={{ deploy_release_name }} previous={{ deploy_previous_release }}"'
        ' >> {{ deploy_to }}/facts\n')
    links = dict(deploy_to=deploy_to, deploy_linked_dirs=['log'], deploy_linked_files=['config/app.yml'])
    # One playbook: a deploy that works, then one whose before_starting hook fails: its failed hook
    # must not see the first deploy's release as this run's (it made no plan, nothing changed).
    early = dict(links, deploy_src=str(app(tmp_path, 'v2')),
                 deploy_hooks={'before_starting': str(tmp_path / 'boom.yml'), 'failed': str(tmp_path / 'log.yml')})
    run = counted(fleet, failing_playbook(tmp_path, 'early.yml', [dict(links, deploy_src=str(app(tmp_path, 'v1'))), early]))[0]
    assert run.rc != 0, run
    first = current(fleet, deploy_to)[0]
    assert first, run
    lines = fleet.each('cat %s/facts' % deploy_to)
    assert lines == ['hook mode=deploy release= previous=\n'] * 3, lines  # none, shown empty
    # A deploy that fails after building: the failed hook and the deploy:failed handler (the
    # release was archived and removed) see this run's release and the one it would have replaced.
    fleet.each('rm %s/facts' % deploy_to)
    late = dict(links, deploy_src=str(app(tmp_path, 'v3')),
                deploy_hooks={'after_updated': str(tmp_path / 'boom.yml'), 'failed': str(tmp_path / 'log.yml')})
    run = counted(fleet, failing_playbook(tmp_path, 'late.yml', [late]))[0]
    assert run.rc != 0, run
    assert current(fleet, deploy_to) == [first] * 3
    for out in fleet.each('cat %s/facts' % deploy_to):
        hook, handler = out.splitlines()
        match = re.match(r'^hook mode=deploy release=(\d{14}) previous=%s$' % first, hook)
        assert match and match.group(1) > first, out
        assert handler == 'handler mode=deploy release=%s previous=%s' % (match.group(1), first), out
