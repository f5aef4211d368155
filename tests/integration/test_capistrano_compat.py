"""Trees move between Capistrano 3 and capstan both ways, on three real SSH hosts.

Capistrano is Debian's `capistrano` package (3.17); its projects are made by capistrano.py.
"""

from __future__ import annotations

import os
import shutil
import tempfile

import pytest

import bed
from capistrano import Project

from ansible_collections.capstan.release.plugins.module_utils._releases import next_release_name

APP = os.path.join(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))), 'examples', 'app')


def addresses(inventory):
    with open(str(inventory)) as handle:
        return [line.split('ansible_host=')[1].split()[0] for line in handle if line.startswith('host')]


@pytest.fixture
def project(fleet, deploy_to):
    """A Capistrano project for this test's deploy_to; the git repo lives in /var/tmp, which hosts share."""
    workdir = tempfile.mkdtemp(prefix='capstan-cap-', dir='/var/tmp')
    try:
        yield Project(workdir, addresses(fleet.inventory), str(bed.state_dir() / 'id_ed25519'), deploy_to, APP,
                      linked_files=['config/app.yml'], linked_dirs=['log'])
    finally:
        shutil.rmtree(workdir)


def cap_ok(project, *tasks):
    proc = project.cap(*tasks)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]


def capstan_deploy(fleet, deploy_to, revision):
    """A deploy through the modules: name once for the fleet, finish, publish, record."""
    infos = fleet.ok('release_info', {'deploy_to': deploy_to})
    name = next_release_name([n for info in infos.values() for n in info['release_names']])
    fleet.ok('release_dir', {'deploy_to': deploy_to, 'release': name, 'state': 'finished', 'revision': revision,
                             'linked_dirs': ['log'], 'linked_files': ['config/app.yml']})
    fleet.ok('symlink_swap', {'deploy_to': deploy_to, 'release': name})
    fleet.ok('release_dir', {'deploy_to': deploy_to, 'release': name, 'state': 'succeeded', 'branch': 'main',
                             'log_user': 'capuser'})
    return name


def capstan_rollback(fleet, deploy_to):
    targets = fleet.ok('rollback_target', {'deploy_to': deploy_to})
    (target, leaving), = set((r['release'], r['leaving']) for r in targets.values())
    fleet.ok('symlink_swap', {'deploy_to': deploy_to, 'release': target, 'rollback': True, 'log_user': 'capuser'})
    fleet.ok('release_prune', {'deploy_to': deploy_to, 'keep_releases': 5, 'rolled_back': leaving})
    return target, leaving


def releases(fleet, deploy_to):
    listings = set(fleet.each('ls %s/releases' % deploy_to))
    assert len(listings) == 1, 'hosts differ: %s' % listings
    return listings.pop().split()


def current(fleet, deploy_to):
    links = set(fleet.each('readlink %s/current' % deploy_to))
    assert len(links) == 1, 'hosts differ: %s' % links
    return os.path.basename(links.pop().strip())


def seed_shared(fleet, deploy_to):
    for index in (1, 2, 3):
        fleet.sh(index, 'mkdir -p %s/shared/config && echo "greeting: hi" > %s/shared/config/app.yml' % (deploy_to, deploy_to))


def test_a_capistrano_tree_rolls_back_and_deploys_with_capstan_then_cap_again(fleet, deploy_to, project):
    seed_shared(fleet, deploy_to)
    cap_ok(project, 'deploy')
    project.commit('second', {'VERSION': '2\n'})
    cap_ok(project, 'deploy')
    first, second = releases(fleet, deploy_to)
    infos = fleet.ok('release_info', {'deploy_to': deploy_to})
    assert all(info['successful'] == [first, second] for info in infos.values()), 'revisions.log names both'

    target, leaving = capstan_rollback(fleet, deploy_to)
    assert (target, leaving) == (first, second)
    assert current(fleet, deploy_to) == first
    assert fleet.each('tail -1 %s/revisions.log' % deploy_to) == ['capuser rolled back to release %s\n' % first] * 3
    assert fleet.each('test -s %s/rolled-back-release-%s.tar.gz && echo ok' % (deploy_to, second)) == ['ok\n'] * 3

    ours = capstan_deploy(fleet, deploy_to, 'f' * 40)
    assert ours > second and current(fleet, deploy_to) == ours
    assert fleet.each('cat %s/current/config/app.yml' % deploy_to) == ['greeting: hi\n'] * 3

    cap_ok(project, 'deploy')
    newest = releases(fleet, deploy_to)[-1]
    assert newest > ours and current(fleet, deploy_to) == newest
    cap_ok(project, 'deploy:rollback')
    assert current(fleet, deploy_to) == ours, 'cap deploy:rollback goes back to the release capstan made'


def test_a_capstan_tree_rolls_back_and_deploys_with_cap(fleet, deploy_to, project):
    seed_shared(fleet, deploy_to)
    first = capstan_deploy(fleet, deploy_to, 'a' * 40)
    second = capstan_deploy(fleet, deploy_to, 'b' * 40)

    cap_ok(project, 'deploy:rollback')
    assert current(fleet, deploy_to) == first
    assert releases(fleet, deploy_to) == [first]
    assert fleet.each('tail -1 %s/revisions.log' % deploy_to) == ['capuser rolled back to release %s\n' % first] * 3
    infos = fleet.ok('release_info', {'deploy_to': deploy_to})
    assert all(info['current'] == first and info['successful'] == [first] for info in infos.values())

    cap_ok(project, 'deploy')
    by_cap = releases(fleet, deploy_to)[-1]
    assert by_cap > second and current(fleet, deploy_to) == by_cap
    target, leaving = capstan_rollback(fleet, deploy_to)
    assert (target, leaving) == (first, by_cap)
    assert current(fleet, deploy_to) == first
