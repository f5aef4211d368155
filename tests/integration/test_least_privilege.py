"""Least privilege on three real SSH hosts: a deploy user that owns deploy_to, no become anywhere, and a
restart through one narrow sudo rule in the user's own handler (DESIGN.md; docs/security.md).

/etc is the machine's own, shared by the controller and every bed host, so the user and its sudo rule
are made once; /srv is each host's own, so its home, deploy_to and the restart script are made on each.
"""

from __future__ import annotations

import json
import os
import pwd
import subprocess
import time

import pytest

import bed
from ansible_collections.capstan.release.tests.integration.helpers import (ANSIBLE, HOSTS, REPO, Fleet, ansible_env, app,
                                                                           current, deploy, ok, play)

USER = 'capstan-deploy'
HOME = '/srv/' + USER
DEPLOY_TO = '/srv/least-privilege'
RESTART = '/srv/restart-app'
RESTARTS = '/srv/app-restarts'
STARTING = 'Deploy:starting - check the input, lock the hosts that need it, read every tree and the source'
SUDOERS = '/etc/sudoers.d/capstan-deploy-test'
RULE = '%s ALL=(root) NOPASSWD: %s\n' % (USER, RESTART)

# Root's restart script: what it records can only have been written by root (the file is root's).
RESTART_SCRIPT = '#!/bin/sh\necho "$(readlink %s/current) $(id -u)" >> %s\n' % (DEPLOY_TO, RESTARTS)

HANDLER = '''\
  handlers:
    - name: Restart the app through the deploy user's sudo rule
      ansible.builtin.command:
        cmd: sudo -n %s
      changed_when: true
      listen: deploy:published
''' % RESTART

# While the run holds the lock (after publishing, before finishing), the hook records what it looks like.
LOCK_HOOK = '''\
- name: Record the state dir and the lock while the run holds it
  ansible.builtin.shell:
    cmd: stat -c '%%a %%U %%n' {{ deploy_to }}/.capstan {{ deploy_to }}/.capstan/lock >> %s/held
  changed_when: false
''' % HOME


def sh(command):
    """Run ``command`` on the controller as root (it shares /etc with the hosts); returns stdout."""
    done = subprocess.run(['sh', '-c', command], capture_output=True, text=True, check=False)
    assert done.returncode == 0, (command, done.stdout, done.stderr)
    return done.stdout


def user_exists():
    try:
        pwd.getpwnam(USER)
    except KeyError:
        return False
    return True


def remove_user():
    """userdel, once the user's last SSH session on the hosts (same kernel, same process table) has ended."""
    for attempt in range(50):
        done = subprocess.run(['userdel', USER], capture_output=True, text=True, check=False)
        if done.returncode != 8:  # 8: the user still runs a process
            break
        time.sleep(0.1 * min(attempt + 1, 5))
    assert done.returncode == 0 and not user_exists(), done.stderr


def install_sudo_rule(folder):
    """The one rule, checked by visudo before sudo ever reads it."""
    draft = os.path.join(str(folder), 'sudoers')
    with open(draft, 'w') as handle:
        handle.write(RULE)
    os.chmod(draft, 0o440)
    sh('visudo -cf %s' % draft)
    sh('install -o root -g root -m 0440 %s %s' % (draft, SUDOERS))


def prepare_host(fleet, index, key):
    """As root on the host: the user's home and key, the restart script, deploy_to and its shared files."""
    fleet.sh(index, '\n'.join([
        'set -e',
        'install -d -o %s -g %s -m 0700 %s %s/.ssh' % (USER, USER, HOME, HOME),
        "printf '%%s\\n' '%s' > %s/.ssh/authorized_keys" % (key, HOME),
        'chown %s:%s %s/.ssh/authorized_keys && chmod 0600 %s/.ssh/authorized_keys' % (USER, USER, HOME, HOME),
        "printf '%%s' '%s' > %s && chmod 0755 %s" % (RESTART_SCRIPT, RESTART, RESTART),
        ': > %s && chmod 0644 %s' % (RESTARTS, RESTARTS),
        'mkdir -p %s/shared/config' % DEPLOY_TO,
        'echo "greeting: hello from host%d" > %s/shared/config/app.yml' % (index, DEPLOY_TO),
        'chown -R %s:%s %s && chmod 0755 %s' % (USER, USER, DEPLOY_TO, DEPLOY_TO),
    ]))


@pytest.fixture(scope='module')
def deploy_user(fleet, tmp_path_factory):
    """The bed's hosts as the unprivileged user capstan-deploy sees them over SSH: its own inventory."""
    folder = tmp_path_factory.mktemp('least-privilege')
    control_dir = str(folder / 'cp')
    os.mkdir(control_dir)
    created = not user_exists()
    try:
        if created:
            # A password of '*' logs in by key only; useradd's default '!' is a locked account to sshd without PAM.
            sh("useradd --system --shell /bin/sh --home-dir %s --no-create-home --password '*' %s" % (HOME, USER))
        install_sudo_rule(folder)
        state = bed.state_dir()
        with open(str(state / 'id_ed25519.pub')) as handle:
            key = handle.read().strip()
        for index in range(1, HOSTS + 1):
            prepare_host(fleet, index, key)
        with open(str(fleet.inventory)) as handle:
            text = handle.read()
        assert 'ansible_user=root\n' in text, text
        inventory = folder / 'inventory.ini'
        # The user's SSH masters get a directory of their own, so they can be closed before the user goes.
        inventory.write_text(text.replace('ansible_user=root\n', 'ansible_user=%s\nansible_control_path_dir=%s\n'
                                          % (USER, control_dir)))
        yield Fleet(str(inventory), HOSTS)
    finally:
        subprocess.run(['rm', '-f', SUDOERS], check=True)
        for socket in os.listdir(control_dir):
            subprocess.run(['ssh', '-O', 'exit', '-S', os.path.join(control_dir, socket), 'bed'], capture_output=True,
                           check=False)
        for index in range(1, HOSTS + 1):
            bed.run_on(index, 'rm -rf %s %s %s %s /srv/least-privilege-*' % (HOME, DEPLOY_TO, RESTART, RESTARTS))
        if created:
            remove_user()


def as_user(deploy_user, command):
    """Run ``command`` on every host over SSH as the deploy user; returns {host: (rc, stdout)}."""
    cmd = [ANSIBLE, 'bed', '-i', deploy_user.inventory, '-m', 'ansible.builtin.command', '-a', command]
    proc = subprocess.run(cmd, cwd=REPO, env=ansible_env(), capture_output=True, text=True, timeout=300, check=False)
    results = {}
    for line in proc.stdout.splitlines():
        if line.startswith('{"host": '):
            record = json.loads(line)
            assert record['status'] != 'unreachable', record
            results[record['host']] = (record['result'].get('rc'), record['result'].get('stdout', '').strip())
    assert set(results) == set(deploy_user.names), (proc.stdout[-2000:], proc.stderr[-2000:])
    return results


def playbook(folder, role):
    """A play of ``role`` with the restart handler, as a user writes it: no become anywhere."""
    path = folder / ('%s.yml' % role)
    path.write_text('- name: Run capstan.release.%s as the deploy user\n  hosts: all\n  gather_facts: false\n'
                    '  roles:\n    - role: capstan.release.%s\n%s' % (role, role, HANDLER))
    return str(path)


def hook(folder, mode=0o600):
    path = folder / 'record-lock.yml'
    path.write_text(LOCK_HOOK)
    os.chmod(str(path), mode)
    return str(path)


def modes(fleet, pattern):
    """{path: permission bits} of what ``pattern`` (a shell glob) names, on each host."""
    found = []
    for out in fleet.each("for path in %s; do [ -e \"$path\" ] && stat -c '%%a %%n' \"$path\"; done; true" % pattern):
        found.append(dict((line.split(' ', 1)[1], int(line.split(' ', 1)[0], 8)) for line in out.splitlines()))
    return found


def tree(fleet, path):
    """Every entry under ``path`` with its owner and mode, and the restarts recorded, on each host."""
    return fleet.each("find %s -printf '%%p %%u %%m\n' 2>/dev/null | sort; cat %s" % (path, RESTARTS))


def test_a_deploy_user_deploys_and_rolls_back_without_become_and_restarts_through_its_one_sudo_rule(
        deploy_user, fleet, tmp_path):
    assert as_user(deploy_user, 'id -un') == dict((host, (0, USER)) for host in fleet.names)
    hooks = {'before_published': hook(tmp_path)}
    book = playbook(tmp_path, 'deploy')
    ok(deploy(deploy_user, DEPLOY_TO, app(tmp_path, 'v1'), playbook=book, deploy_hooks=hooks))
    first = current(fleet, DEPLOY_TO)
    ok(deploy(deploy_user, DEPLOY_TO, app(tmp_path, 'v2'), playbook=book, deploy_hooks=hooks))
    second = current(fleet, DEPLOY_TO)
    ok(play(deploy_user, playbook(tmp_path, 'rollback'), DEPLOY_TO, deploy_hooks=hooks))
    assert current(fleet, DEPLOY_TO) == first and len(set(first)) == 1 and second[0] > first[0], (first, second)

    # Everything the runs made is the deploy user's; nothing of its state is open to anyone else.
    assert fleet.each('find %s ! -user %s' % (DEPLOY_TO, USER)) == [''] * 3
    for found in modes(fleet, '%s/.capstan %s/*-release-*.tar.gz' % (DEPLOY_TO, DEPLOY_TO)):
        assert '%s/rolled-back-release-%s.tar.gz' % (DEPLOY_TO, second[0]) in found, found
        assert all(mode & 0o077 == 0 for mode in found.values()), found
    for out in fleet.each('cat %s/held' % HOME):
        held = [line.split(' ') for line in out.splitlines()]
        assert [path for mode, owner, path in held] == ['%s/.capstan' % DEPLOY_TO, '%s/.capstan/lock' % DEPLOY_TO] * 3, held
        assert all(owner == USER and int(mode, 8) & 0o077 == 0 for mode, owner, path in held), held

    # The handler restarted the app as root, through the rule, at each switch; the rule allows nothing else.
    restarts = ''.join('%s/releases/%s 0\n' % (DEPLOY_TO, name) for name in (first[0], second[0], first[0]))
    assert fleet.each('stat -c %%U %s; cat %s' % (RESTARTS, RESTARTS)) == ['root\n' + restarts] * 3
    for command in ('sudo -n true', 'sudo -n /bin/sh -c id'):
        done = as_user(deploy_user, command)
        assert all(rc != 0 for rc, out in done.values()), (command, done)


@pytest.mark.parametrize('made, refusal', [
    ('root-owned', 'deploy_to {target} is owned by root (mode 0755) and capstan-deploy cannot write it: the user that '
                   'deploys must own deploy_to and everything under it (as root: chown -R capstan-deploy {target})'),
    ('missing', 'deploy_to {target} does not exist and capstan-deploy cannot make it: /srv is owned by root (mode 0755); '
                'make deploy_to for the user that deploys (as root: install -d -o capstan-deploy {target})'),
], ids=['root-owned', 'missing'])
def test_a_deploy_into_a_deploy_to_the_user_cannot_write_is_refused_in_one_sentence_and_changes_nothing(
        deploy_user, fleet, tmp_path, made, refusal):
    target = '/srv/least-privilege-%s' % made
    if made == 'root-owned':
        fleet.each('mkdir -p %s/shared/config && touch %s/shared/config/app.yml && chmod 0755 %s' % (target, target, target))
    before = tree(fleet, target)
    run = deploy(deploy_user, target, app(tmp_path, 'v1'), playbook=playbook(tmp_path, 'deploy'))
    assert run.rc != 0, run
    messages = run.failures()
    assert set(messages) == set(fleet.names), run
    for host, message in messages.items():
        assert message == 'deploy failed on %s at %s: %s; nothing was published here' % (
            host, STARTING, refusal.format(target=target)), message
    assert 'Traceback' not in run.stdout + run.stderr, run
    assert tree(fleet, target) == before


def test_a_hook_file_others_can_write_is_refused_before_any_host_changes(deploy_user, fleet, tmp_path):
    path = hook(tmp_path, 0o620)
    before = tree(fleet, DEPLOY_TO)
    run = deploy(deploy_user, DEPLOY_TO, app(tmp_path, 'v3'), playbook=playbook(tmp_path, 'deploy'),
                 deploy_hooks={'before_published': path})
    assert run.rc != 0, run
    messages = run.failures()
    assert set(messages) == set(fleet.names), run
    for host, message in messages.items():
        assert message == ('deploy failed on %s at %s: deploy_hooks.before_published names %s, which users other than '
                           'its owner can write; a hook runs on every host, so it must be writable by its owner only '
                           '(chmod go-w); nothing was published here' % (host, STARTING, path)), message
    assert tree(fleet, DEPLOY_TO) == before
