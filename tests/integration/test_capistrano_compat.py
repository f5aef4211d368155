"""Trees move between Capistrano 3 and capstan both ways, through the playbooks, on three real SSH hosts.

Capistrano is Debian's `capistrano` package (3.17); its projects are made by capistrano.py.
capstan runs as an operator runs it: playbooks/deploy.yml, rollback.yml and releases.yml.
Where capstan does what `cap deploy:rollback` does, a twin of the tree (copied on each host,
mtimes kept, since cap picks releases by mtime) is rolled back by cap, and the two trees must
match: the same entries, `current` in the same absolute form, revisions.log byte for byte, and
the same members in the rolled-back release's archive.
"""

from __future__ import annotations

import os
import pwd
import shutil
import tempfile

import pytest

import bed
from ansible_collections.capstan.release.tests.integration.capistrano import Project
from ansible_collections.capstan.release.tests.integration.helpers import APP, LINKS, app, ok, play

# The playbooks log the controller's user (`id -un`); cap logs $USER: capuser, or this for a twin.
OPERATOR = pwd.getpwuid(os.getuid()).pw_name


def addresses(inventory):
    with open(str(inventory)) as handle:
        return [line.split('ansible_host=')[1].split()[0] for line in handle if line.startswith('host')]


@pytest.fixture
def cap_project(fleet, deploy_to):
    """make(keep=N): a Capistrano project for this test's deploy_to; its git repo lives in /var/tmp, which hosts share."""
    workdirs = []

    def make(keep=5):
        workdirs.append(tempfile.mkdtemp(prefix='capstan-cap-', dir='/var/tmp'))
        return Project(workdirs[-1], addresses(fleet.inventory), str(bed.state_dir() / 'id_ed25519'), deploy_to, APP,
                       keep=keep, linked_files=['config/app.yml'], linked_dirs=['log'])
    yield make
    for workdir in workdirs:
        shutil.rmtree(workdir)


def cap_ok(project, *tasks, **env):
    proc = project.cap(*tasks, **env)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]


def seed_shared(fleet, deploy_to):
    for index in (1, 2, 3):
        fleet.sh(index, 'mkdir -p %s/shared/config && echo "greeting: hi" > %s/shared/config/app.yml' % (deploy_to, deploy_to))


def same(fleet, command):
    """The output of ``command``, which must be the same on every host."""
    outputs = set(fleet.each(command))
    assert len(outputs) == 1, 'hosts differ on %r: %s' % (command, outputs)
    return outputs.pop()


def link(fleet, deploy_to):
    """What current points to, as written: cap writes <deploy_to>/releases/<name>, absolute."""
    return same(fleet, 'readlink %s/current' % deploy_to).strip()


def current(fleet, deploy_to):
    return os.path.basename(link(fleet, deploy_to))


def entries(fleet, deploy_to):
    """Everything in releases/, dot entries too: cap's `ls -xt` would take a stray entry for a release."""
    return same(fleet, 'ls -A %s/releases' % deploy_to).split()


def log_lines(fleet, deploy_to):
    return same(fleet, 'cat %s/revisions.log' % deploy_to).splitlines(True)


def cap_deploys(fleet, project, count):
    """``count`` cap deploys, each of a new commit (VERSION cap0, cap1, ...); their release names, oldest first."""
    names = []
    for index in range(count):
        project.commit('release %d' % index, {'VERSION': 'cap%d\n' % index})
        cap_ok(project, 'deploy')
        names.append(current(fleet, project.deploy_to))
    assert names == sorted(set(names)), names
    return names


def twin(fleet, deploy_to):
    """Copy the tree to <deploy_to>-cap on every host, mtimes kept, current pointing into the copy."""
    copy = deploy_to + '-cap'
    name = current(fleet, deploy_to)
    for index in (1, 2, 3):
        fleet.sh(index, 'cp -a {0} {1} && ln -sfn {1}/releases/{2} {1}/current'.format(deploy_to, copy, name))
    return copy


def archive_members(fleet, deploy_to, name):
    """The members of rolled-back-release-<name>.tar.gz as (mode owner size path [-> target]), paths from <name>/.

    cap archives the absolute release path (members srv/.../releases/<name>/...), capstan from
    releases/ (members <name>/...): only that prefix is taken off before comparing.
    """
    prefix = deploy_to.lstrip('/') + '/releases/'
    listing = same(fleet, "tar -tzvf %s/rolled-back-release-%s.tar.gz | awk '{print $1, $2, $3, $6, $7, $8}'"
                   % (deploy_to, name))
    members = []
    for line in listing.splitlines():
        mode, owner, size, path, rest = (line.split(' ', 4) + [''])[:5]
        path = path[len(prefix):] if path.startswith(prefix) else path
        members.append(' '.join([mode, owner, size, path, rest]).strip())
    assert members, 'rolled-back-release-%s.tar.gz is empty' % name
    return sorted(members)


def assert_like_cap(fleet, ours, theirs, rolled_back):
    """capstan's rollback of ``ours`` left what cap's rollback of its twin ``theirs`` left.

    capstan's own .capstan/ aside, and cap's git mirror (repo/, copied as it was, untouched by a rollback).
    """
    listing = "cd %s && find . \\( -path ./.capstan -o -path ./repo \\) -prune -o -printf '%%y %%p %%l\\n' | LC_ALL=C sort"
    assert same(fleet, listing % ours) == same(fleet, listing % theirs).replace(theirs, ours)
    assert link(fleet, ours) == link(fleet, theirs).replace(theirs, ours)
    assert log_lines(fleet, ours) == log_lines(fleet, theirs)
    assert archive_members(fleet, ours, rolled_back) == archive_members(fleet, theirs, rolled_back)


def test_the_playbooks_roll_back_and_deploy_a_cap_tree_and_cap_carries_on(fleet, deploy_to, cap_project, tmp_path):
    seed_shared(fleet, deploy_to)
    project = cap_project(keep=3)
    first, second, third = cap_deploys(fleet, project, 3)
    before = log_lines(fleet, deploy_to)
    copy = twin(fleet, deploy_to)

    ok(play(fleet, 'rollback.yml', deploy_to))
    assert link(fleet, deploy_to) == '%s/releases/%s' % (deploy_to, second)
    assert entries(fleet, deploy_to) == [first, second]
    assert log_lines(fleet, deploy_to) == before + ['%s rolled back to release %s\n' % (OPERATOR, second)]
    assert same(fleet, 'cat %s/current/VERSION' % deploy_to) == 'cap1\n'
    cap_ok(project, 'deploy:rollback', deploy_to=copy, USER=OPERATOR)
    assert_like_cap(fleet, deploy_to, copy, third)

    ok(play(fleet, 'deploy.yml', deploy_to, deploy_src=str(app(tmp_path, 'v9')), deploy_keep_releases=2, **LINKS))
    ours = current(fleet, deploy_to)
    assert ours > third, 'a capstan release sorts after every cap release'
    assert link(fleet, deploy_to) == '%s/releases/%s' % (deploy_to, ours)
    assert entries(fleet, deploy_to) == [second, ours], 'keep 2 counts the cap release; the older one goes'
    assert same(fleet, 'cat %s/current/public/VERSION' % deploy_to) == 'v9\n'
    assert same(fleet, 'readlink %s/current/config/app.yml' % deploy_to) == '%s/shared/config/app.yml\n' % deploy_to
    assert same(fleet, 'readlink %s/current/log' % deploy_to) == '%s/shared/log\n' % deploy_to
    assert same(fleet, 'cat %s/shared/config/app.yml' % deploy_to) == 'greeting: hi\n'
    revision = same(fleet, 'cat %s/current/REVISION' % deploy_to).strip()
    assert log_lines(fleet, deploy_to)[-1] == 'Branch main (at %s) deployed as release %s by %s\n' % (revision, ours, OPERATOR)

    cap_ok(project, 'deploy', keep_releases=2)
    newest = current(fleet, deploy_to)
    assert newest > ours and entries(fleet, deploy_to) == [ours, newest], 'cap keeps 2 counting the capstan release'
    cap_ok(project, 'deploy:rollback')
    assert link(fleet, deploy_to) == '%s/releases/%s' % (deploy_to, ours), 'cap goes back to the capstan release'
    assert entries(fleet, deploy_to) == [ours]
    assert log_lines(fleet, deploy_to)[-1] == 'capuser rolled back to release %s\n' % ours
    assert same(fleet, 'tar -tzf %s/rolled-back-release-%s.tar.gz | grep -c /VERSION' % (deploy_to, newest)) == '1\n'
    assert same(fleet, 'cat %s/current/public/VERSION' % deploy_to) == 'v9\n'


def test_cap_rolls_back_and_deploys_a_playbook_tree_and_the_playbooks_carry_on(fleet, deploy_to, cap_project, tmp_path):
    seed_shared(fleet, deploy_to)
    ok(play(fleet, 'deploy.yml', deploy_to, deploy_src=str(app(tmp_path, 'v1')), **LINKS))
    first = current(fleet, deploy_to)
    ok(play(fleet, 'deploy.yml', deploy_to, deploy_src=str(app(tmp_path, 'v2')), **LINKS))
    second = current(fleet, deploy_to)
    assert second > first
    project = cap_project()

    cap_ok(project, 'deploy:rollback')
    assert link(fleet, deploy_to) == '%s/releases/%s' % (deploy_to, first), 'cap picks the capstan release before'
    assert entries(fleet, deploy_to) == [first]
    assert log_lines(fleet, deploy_to)[-1] == 'capuser rolled back to release %s\n' % first
    assert same(fleet, 'tar -tzf %s/rolled-back-release-%s.tar.gz | grep -c public/VERSION' % (deploy_to, second)) == '1\n'
    infos = fleet.ok('release_info', {'deploy_to': deploy_to})
    assert all(info['current'] == first and info['successful'] == [first] for info in infos.values()), infos

    cap_ok(project, 'deploy')
    by_cap = current(fleet, deploy_to)
    assert by_cap > second and entries(fleet, deploy_to) == [first, by_cap]
    assert same(fleet, 'readlink %s/current/config/app.yml' % deploy_to) == '%s/shared/config/app.yml\n' % deploy_to

    ok(play(fleet, 'rollback.yml', deploy_to, deploy_keep_archives=1))
    assert link(fleet, deploy_to) == '%s/releases/%s' % (deploy_to, first)
    assert entries(fleet, deploy_to) == [first]
    assert log_lines(fleet, deploy_to)[-1] == '%s rolled back to release %s\n' % (OPERATOR, first)
    assert same(fleet, 'tar -tzf %s/rolled-back-release-%s.tar.gz | grep -c /REVISION' % (deploy_to, by_cap)) == '1\n'
    assert same(fleet, 'cd %s && ls *.tar.gz' % deploy_to).split() == ['rolled-back-release-%s.tar.gz' % by_cap], (
        "capstan's archive retention counts cap's archives too")
    assert same(fleet, 'cat %s/current/public/VERSION' % deploy_to) == 'v1\n'

    listing = ok(play(fleet, 'releases.yml', deploy_to))
    assert first in listing.stdout, listing


def test_rollback_release_names_a_cap_release_as_cap_rollback_release_does(fleet, deploy_to, cap_project):
    seed_shared(fleet, deploy_to)
    project = cap_project()
    first, second, third = cap_deploys(fleet, project, 3)
    copy = twin(fleet, deploy_to)

    ok(play(fleet, 'rollback.yml', deploy_to, rollback_release=first))
    assert link(fleet, deploy_to) == '%s/releases/%s' % (deploy_to, first)
    assert entries(fleet, deploy_to) == [first, second], 'only the release left is archived and removed'
    assert same(fleet, 'cat %s/current/VERSION' % deploy_to) == 'cap0\n'
    assert log_lines(fleet, deploy_to)[-1] == '%s rolled back to release %s\n' % (OPERATOR, first)
    cap_ok(project, 'deploy:rollback', deploy_to=copy, USER=OPERATOR, ROLLBACK_RELEASE=first)
    assert_like_cap(fleet, deploy_to, copy, third)
