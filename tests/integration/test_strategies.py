"""The deploy role's strategies (copy, git, archive) on three real SSH hosts: content, hard links, revisions, refusals."""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import tarfile

import pytest

from ansible_collections.capstan.release.plugins.module_utils._content import manifests
from ansible_collections.capstan.release.tests.integration.helpers import (PLAYBOOK, REPO, Run, current, env, git,
                                                                           lock_files, make_app, ok, play, web_server)


SHARED_TMP = '/var/tmp'   # the one directory every bed host shares with the controller


def deploy(fleet, deploy_to, **variables):
    return play(fleet, 'deploy.yml', deploy_to, **variables)


def revisions(fleet, deploy_to):
    return [out.strip() for out in fleet.each('cat %s/current/REVISION' % deploy_to)]


def inodes(fleet, path):
    """The inode number of ``path`` on each host."""
    return [int(out) for out in fleet.each('stat -c %%i %s' % path)]


def tree_state(fleet, deploy_to):
    """Everything a refused deploy must leave as it was (the lock file comes and goes)."""
    return fleet.each('cd %s 2>/dev/null && find . -path ./repo -prune -o -print | sort && cat revisions.log .capstan/journal || true'
                      % deploy_to)


def refused(run, variable, fleet):
    assert run.rc != 0, run
    messages = run.failures() or dict((host, result.get('msg')) for _task, host, result in run.fatal)
    assert set(messages) == set(fleet.names), run
    assert all(variable in str(message) for message in messages.values()), messages
    assert all('Traceback' not in str(message) for message in messages.values()), messages
    return messages


@pytest.fixture
def shared_dir(request):
    """A directory under /var/tmp that the controller and every host see alike."""
    path = os.path.join(SHARED_TMP, 'capstan-bed%s-%s' % (os.environ.get('CAPSTAN_BED_ID', ''), request.node.name))
    shutil.rmtree(path, ignore_errors=True)
    os.makedirs(path)
    yield path
    shutil.rmtree(path, ignore_errors=True)


# --- copy ---------------------------------------------------------------------------------------


def test_copy_sends_only_the_changed_file_and_hard_links_the_rest(fleet, deploy_to, tmp_path):
    src = make_app(tmp_path / 'app', files=40)
    ok(deploy(fleet, deploy_to, deploy_src=src))
    first = current(fleet, deploy_to)
    assert revisions(fleet, deploy_to) == [manifests.digest(manifests.scan_source(src))] * 3

    with open(os.path.join(src, 'lib', 'part1', 'file005.txt'), 'w') as handle:
        handle.write('changed\n')
    ok(deploy(fleet, deploy_to, deploy_src=src))
    second = current(fleet, deploy_to)
    assert second[0] > first[0] and len(set(second)) == 1
    old, new = '%s/releases/%s' % (deploy_to, first[0]), '%s/releases/%s' % (deploy_to, second[0])
    for same in ('lib/part0/file000.txt', 'lib/part3/file039.txt', 'bin/run'):
        assert inodes(fleet, '%s/%s' % (old, same)) == inodes(fleet, '%s/%s' % (new, same)), same
    assert all(a != b for a, b in zip(inodes(fleet, old + '/lib/part1/file005.txt'), inodes(fleet, new + '/lib/part1/file005.txt')))
    assert fleet.each('cat %s/lib/part1/file005.txt' % new) == ['changed\n'] * 3
    assert fleet.each('cat %s/lib/part1/file005.txt' % old) == ['content of file 5\n'] * 3
    assert fleet.each('stat -c %%a %s/bin/run && readlink %s/start && test -d %s/tmp/cache && echo dir' % (new, new, new)) == [
        '755\nbin/run\ndir\n'] * 3
    assert fleet.each('ls %s/.capstan/manifests' % deploy_to) == ['%s.json\n%s.json\n' % (first[0], second[0])] * 3

    again = ok(deploy(fleet, deploy_to, deploy_src=src))
    assert again.changed() == {'host1': 0, 'host2': 0, 'host3': 0}
    assert current(fleet, deploy_to) == second

    os.chmod(os.path.join(src, 'bin', 'run'), 0o700)   # a mode alone is a new revision
    ok(deploy(fleet, deploy_to, deploy_src=src))
    assert fleet.each('stat -c %%a %s/current/bin/run %s/bin/run' % (deploy_to, new)) == ['700\n755\n'] * 3


def test_copy_from_a_tarball_on_the_controller_with_a_bundle_too_big_to_go_inline(fleet, deploy_to, tmp_path):
    src = make_app(tmp_path / 'app', files=8)
    blob = os.urandom(3 * 1024 * 1024 // 2)   # incompressible: the bundle exceeds 1 MiB and goes as a file
    os.makedirs(os.path.join(src, 'assets'))
    with open(os.path.join(src, 'assets', 'blob.bin'), 'wb') as handle:
        handle.write(blob)
    tarball = str(tmp_path / 'app-1.tar.gz')
    with tarfile.open(tarball, 'w:gz') as tar:
        tar.add(src, arcname='.')
    ok(deploy(fleet, deploy_to, deploy_src=tarball))
    assert revisions(fleet, deploy_to) == [manifests.digest(manifests.scan_source(src))] * 3
    assert fleet.each('cat %s/current/lib/part3/file007.txt; readlink %s/current/start' % (deploy_to, deploy_to)) == [
        'content of file 7\nbin/run\n'] * 3
    assert fleet.each('sha256sum < %s/current/assets/blob.bin' % deploy_to) == ['%s  -\n' % hashlib.sha256(blob).hexdigest()] * 3
    assert fleet.each('ls -A /root/.ansible/tmp 2>/dev/null | grep -c . || true') == ['0\n'] * 3


# --- git ----------------------------------------------------------------------------------------


@pytest.fixture
def origin(shared_dir):
    """A repository every host reaches at file:///var/tmp/...: tag v1, then main one commit later."""
    repo = os.path.join(shared_dir, 'origin')
    os.makedirs(repo)
    git(repo, 'init', '-q', '-b', 'main')
    make_app(repo, files=8)
    git(repo, 'add', '-A')
    git(repo, 'commit', '-q', '-m', 'one')
    git(repo, 'tag', 'v1')
    with open(os.path.join(repo, 'lib', 'part0', 'file000.txt'), 'w') as handle:
        handle.write('second commit\n')
    git(repo, 'commit', '-q', '-am', 'two')
    return repo


def test_git_deploys_a_branch_a_tag_and_a_sha_from_a_mirror(fleet, deploy_to, origin):
    url = 'file://' + origin
    main, v1 = git(origin, 'rev-parse', 'main'), git(origin, 'rev-parse', 'v1')
    ok(deploy(fleet, deploy_to, deploy_strategy='git', deploy_repo_url=url, deploy_version='main'))
    first = current(fleet, deploy_to)
    assert revisions(fleet, deploy_to) == [main] * 3
    assert fleet.each('cat %s/current/REVISION_TIME' % deploy_to) == [git(origin, 'show', '-s', '--format=%ct', main) + '\n'] * 3
    assert fleet.each('test -e %s/current/.git && echo git || echo none' % deploy_to) == ['none\n'] * 3
    assert fleet.each('cat %s/current/lib/part0/file000.txt' % deploy_to) == ['second commit\n'] * 3
    assert fleet.each('git -C %s/repo config --get remote.origin.mirror; git -C %s/repo rev-parse --is-bare-repository'
                      % (deploy_to, deploy_to)) == ['true\ntrue\n'] * 3
    assert fleet.each('tail -n 1 %s/revisions.log' % deploy_to) == [
        'Branch main (at %s) deployed as release %s by root\n' % (main, first[0])] * 3

    again = ok(deploy(fleet, deploy_to, deploy_strategy='git', deploy_repo_url=url, deploy_version=main))
    assert again.changed() == {'host1': 0, 'host2': 0, 'host3': 0}
    assert current(fleet, deploy_to) == first

    ok(deploy(fleet, deploy_to, deploy_strategy='git', deploy_repo_url=url, deploy_version='v1'))
    second = current(fleet, deploy_to)
    assert second[0] > first[0] and revisions(fleet, deploy_to) == [v1] * 3
    assert fleet.each('tail -n 1 %s/revisions.log' % deploy_to) == [
        'Branch v1 (at %s) deployed as release %s by root\n' % (v1, second[0])] * 3
    old, new = '%s/releases/%s' % (deploy_to, first[0]), '%s/releases/%s' % (deploy_to, second[0])
    assert inodes(fleet, old + '/lib/part1/file001.txt') == inodes(fleet, new + '/lib/part1/file001.txt')
    assert fleet.each('cat %s/lib/part0/file000.txt' % new) == ['content of file 0\n'] * 3


def test_git_with_hosts_resolving_different_commits_is_refused(fleet, deploy_to):
    # /srv is private to each host: each host's "origin" there has a commit of its own.
    origin = deploy_to + '-origin'
    for index in range(1, 4):
        fleet.sh(index, 'rm -rf {o} && mkdir -p {o} && cd {o} && git init -q -b main && echo host{i} > who && git add who && '
                        'git -c user.name=T -c user.email=t@e commit -q -m host{i}'.format(o=origin, i=index))
    run = deploy(fleet, deploy_to, deploy_strategy='git', deploy_repo_url='file://' + origin)
    messages = refused(run, 'deploy_repo_url', fleet)
    assert all('host1' in m and 'host2' in m and 'host3' in m for m in messages.values()), messages
    assert fleet.each('ls %s/releases 2>/dev/null | wc -l' % deploy_to) == ['0\n'] * 3
    assert lock_files(fleet, deploy_to) == [''] * 3


def test_git_with_an_unknown_version_is_refused_before_a_release_is_made(fleet, deploy_to, origin):
    url = 'file://' + origin
    ok(deploy(fleet, deploy_to, deploy_strategy='git', deploy_repo_url=url))
    before = tree_state(fleet, deploy_to)
    run = deploy(fleet, deploy_to, deploy_strategy='git', deploy_repo_url=url, deploy_version='no-such-branch')
    refused(run, "deploy_version 'no-such-branch' is not a branch, tag or commit", fleet)
    assert tree_state(fleet, deploy_to) == before


# --- archive ------------------------------------------------------------------------------------


def sha256(path):
    with open(path, 'rb') as handle:
        return hashlib.sha256(handle.read()).hexdigest()


@pytest.fixture
def artifacts(shared_dir):
    """Two release tarballs in /var/tmp (seen by every host), the second with one file changed."""
    src = make_app(os.path.join(shared_dir, 'app'), files=8)
    paths = []
    for version in (1, 2):
        if version == 2:
            with open(os.path.join(src, 'lib', 'part2', 'file002.txt'), 'w') as handle:
                handle.write('version 2\n')
        path = os.path.join(shared_dir, 'app-%d.tar.gz' % version)
        with tarfile.open(path, 'w:gz') as tar:
            tar.add(src, arcname='.')
        paths.append(path)
    return paths


@pytest.fixture
def http_base(shared_dir):
    """The base URL of a web server on the bed's bridge (reached by the hosts only), serving shared_dir."""
    with web_server(shared_dir) as server:
        yield server.base


def test_archive_from_a_path_on_the_hosts(fleet, deploy_to, artifacts):
    first, second = artifacts
    ok(deploy(fleet, deploy_to, deploy_strategy='archive', deploy_src=first, deploy_src_checksum='sha256:' + sha256(first)))
    assert revisions(fleet, deploy_to) == [sha256(first)] * 3
    one = current(fleet, deploy_to)
    ok(deploy(fleet, deploy_to, deploy_strategy='archive', deploy_src='file://' + second))
    two = current(fleet, deploy_to)
    assert revisions(fleet, deploy_to) == [sha256(second)] * 3
    old, new = '%s/releases/%s' % (deploy_to, one[0]), '%s/releases/%s' % (deploy_to, two[0])
    assert inodes(fleet, old + '/lib/part1/file001.txt') == inodes(fleet, new + '/lib/part1/file001.txt')
    assert fleet.each('cat %s/lib/part2/file002.txt' % new) == ['version 2\n'] * 3


def test_archive_from_a_url_with_a_checksum_and_a_bad_checksum_refused(fleet, deploy_to, artifacts, http_base):
    first, second = artifacts
    url = http_base + '/' + os.path.basename(first)
    ok(deploy(fleet, deploy_to, deploy_strategy='archive', deploy_src=url, deploy_src_checksum='sha256:' + sha256(first)))
    assert revisions(fleet, deploy_to) == [sha256(first)] * 3
    assert fleet.each('cat %s/current/lib/part2/file002.txt' % deploy_to) == ['content of file 2\n'] * 3
    assert fleet.each('ls -A %s/.capstan/downloads' % deploy_to) == [''] * 3

    again = ok(deploy(fleet, deploy_to, deploy_strategy='archive', deploy_src=url))
    assert again.changed() == {'host1': 0, 'host2': 0, 'host3': 0}
    assert fleet.each('ls -A %s/.capstan/downloads' % deploy_to) == [''] * 3

    before = tree_state(fleet, deploy_to)
    run = deploy(fleet, deploy_to, deploy_strategy='archive', deploy_src=http_base + '/' + os.path.basename(second),
                 deploy_src_checksum='sha256:' + sha256(first))
    refused(run, 'deploy_src_checksum sha256:%s does not match' % sha256(first), fleet)
    assert tree_state(fleet, deploy_to) == before


def check_run(fleet, deploy_to, **variables):
    """deploy.yml with --check --diff."""
    proc = subprocess.run([PLAYBOOK, os.path.join(REPO, 'playbooks', 'deploy.yml'), '-i', str(fleet.inventory), '--check', '--diff',
                           '-e', json.dumps(dict(variables, deploy_to=deploy_to))],
                          cwd=REPO, env=env(), capture_output=True, text=True, timeout=900, check=False)
    return Run(proc)


def test_check_mode_of_git_and_archive_creates_nothing_on_a_fresh_host(fleet, deploy_to, origin, artifacts, http_base):
    run = check_run(fleet, deploy_to, deploy_strategy='git', deploy_repo_url='file://' + origin, deploy_version='v1')
    assert run.rc == 0, run
    assert 'current would switch from release none to release' in run.stdout, run
    run = check_run(fleet, deploy_to, deploy_strategy='archive', deploy_src=http_base + '/' + os.path.basename(artifacts[0]),
                    deploy_src_checksum='sha256:' + sha256(artifacts[0]))
    assert run.rc == 0, run
    assert fleet.each('test -e %s && echo exists || echo absent' % deploy_to) == ['absent\n'] * 3
    assert fleet.each('ls -A /tmp | grep -c capstan-partial || true') == ['0\n'] * 3


# --- refusals before any host changes -----------------------------------------------------------


@pytest.mark.parametrize('bad, variable', [
    ({'deploy_src': ''}, 'deploy_src'),
    ({'deploy_src': 'NOTES.txt'}, 'deploy_src'),
    ({'deploy_src': 'unsafe.tar'}, 'deploy_src'),
    ({'deploy_strategy': 'git'}, 'deploy_repo_url'),
    ({'deploy_strategy': 'git', 'deploy_repo_url': 'file:///var/tmp/x', 'deploy_version': '--upload-pack=x'}, 'deploy_version'),
    ({'deploy_strategy': 'archive', 'deploy_src': ''}, 'deploy_src'),
    ({'deploy_strategy': 'archive', 'deploy_src': 'app.tar.gz'}, 'deploy_src'),
    ({'deploy_strategy': 'archive', 'deploy_src': '/var/tmp/no-such-app.tar.gz'}, 'deploy_src'),
    ({'deploy_strategy': 'archive', 'deploy_src': 'https://artifacts.invalid/app.tgz', 'deploy_src_checksum': 'sha256'},
     'deploy_src_checksum'),
])
def test_bad_strategy_input_is_refused_before_any_host_changes(fleet, deploy_to, tmp_path, bad, variable):
    notes = tmp_path / 'NOTES.txt'
    notes.write_text('not an app\n')
    with tarfile.open(str(tmp_path / 'unsafe.tar'), 'w') as tar:
        info = tarfile.TarInfo('../escape')
        tar.addfile(info)
    variables = dict(bad)
    if variables.get('deploy_src') in ('NOTES.txt', 'unsafe.tar'):
        variables['deploy_src'] = str(tmp_path / variables['deploy_src'])
    run = deploy(fleet, deploy_to, **variables)
    refused(run, variable, fleet)
    assert fleet.each('test -e %s && echo exists || echo absent' % deploy_to) == ['absent\n'] * 3
