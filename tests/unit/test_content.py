"""_content: manifests, digests, plans and builds with hard links, safe extraction, git and archive sources."""

from __future__ import annotations

import functools
import hashlib
import http.server
import io
import json
import os
import stat
import subprocess
import tarfile
import threading
import urllib.request

import pytest

from ansible_collections.capstan.release.plugins.module_utils import _steps
from ansible_collections.capstan.release.plugins.module_utils._content import archive_source
from ansible_collections.capstan.release.plugins.module_utils._content import builds
from ansible_collections.capstan.release.plugins.module_utils._content import git_source
from ansible_collections.capstan.release.plugins.module_utils._content import manifests
from ansible_collections.capstan.release.plugins.module_utils._content import plans
from ansible_collections.capstan.release.plugins.module_utils._errors import CapstanError

from conftest import read, write


def make_app(root):
    """A small app: files of two modes, an empty file, an empty dir, a relative symlink."""
    root = str(root)
    write(os.path.join(root, 'public', 'index.html'), '<h1>v1</h1>\n')
    write(os.path.join(root, 'public', 'app.js'), 'console.log(1)\n')
    write(os.path.join(root, 'bin', 'run'), '#!/bin/sh\necho run\n')
    os.chmod(os.path.join(root, 'bin', 'run'), 0o755)
    write(os.path.join(root, 'log', '.keep'), '')
    os.makedirs(os.path.join(root, 'tmp', 'cache'))
    os.symlink('public/index.html', os.path.join(root, 'index'))
    return root


def ino(path):
    return os.lstat(str(path)).st_ino


def deploy_copy(deploy_to, name, src, live=True):
    """What the copy strategy does for one host: plan, bundle of the missing, build, finish, switch."""
    manifest = manifests.scan_source(str(src))
    _steps.prepare_release(deploy_to, name)
    planned = plans.plan(deploy_to, manifest, name)
    bundle = os.path.join(os.path.dirname(deploy_to), 'bundle-%s.tar.gz' % name)
    plans.write_bundle(str(src), manifest, planned['missing'], bundle)
    built = builds.build(deploy_to, name, manifest, bundle=bundle, revision=planned['revision'])
    _steps.finish_release(deploy_to, name, built['revision'])
    if live:
        _steps.swap_current(deploy_to, name)
        _steps.succeed_release(deploy_to, name, 'main', 'tester')
    return planned, built


def release(deploy_to, name, *parts):
    return os.path.join(deploy_to, 'releases', name, *parts)


# --- manifests and digests ---------------------------------------------------------------------


def test_a_directory_manifest_lists_files_dirs_empty_dirs_and_symlinks_with_modes(tmp_path):
    src = make_app(tmp_path / 'app')
    manifest = manifests.scan_source(src)
    by_path = dict((entry['path'], entry) for entry in manifest)
    assert [entry['path'] for entry in manifest] == sorted(by_path)
    assert by_path['bin/run']['mode'] == 0o755 and by_path['public/app.js']['mode'] == 0o644
    assert by_path['public/index.html']['sha256'] == hashlib.sha256(b'<h1>v1</h1>\n').hexdigest()
    assert by_path['public/index.html']['size'] == 12
    assert by_path['tmp/cache'] == {'path': 'tmp/cache', 'type': 'dir', 'mode': 0o755}
    assert by_path['index'] == {'path': 'index', 'type': 'symlink', 'target': 'public/index.html'}
    assert by_path['log/.keep']['size'] == 0
    assert manifests.summary(manifest) == {'files': 4, 'dirs': 5, 'symlinks': 1, 'bytes': 12 + 15 + 19}


def test_a_tarball_of_the_same_content_has_the_same_digest(tmp_path):
    src = make_app(tmp_path / 'app')
    tarball = str(tmp_path / 'app.tar.gz')
    with tarfile.open(tarball, 'w:gz') as tar:
        tar.add(src, arcname='.')
    assert manifests.digest(manifests.scan_source(tarball)) == manifests.digest(manifests.scan_source(src))


def test_a_tarball_without_directory_members_gets_its_parents_as_0755_dirs(tmp_path):
    tarball = str(tmp_path / 'flat.tar')
    with tarfile.open(tarball, 'w') as tar:
        info = tarfile.TarInfo('./a/b/c.txt')
        info.size, info.mode = 2, 0o640
        tar.addfile(info, io.BytesIO(b'hi'))
    manifest = manifests.scan_source(tarball)
    assert [(e['path'], e['type'], e['mode']) for e in manifest] == [
        ('a', 'dir', 0o755), ('a/b', 'dir', 0o755), ('a/b/c.txt', 'file', 0o640)]


@pytest.mark.parametrize('change', ['content', 'mode', 'symlink', 'empty dir', 'rename'])
def test_the_digest_counts_contents_modes_symlinks_and_empty_dirs(tmp_path, change):
    src = make_app(tmp_path / 'app')
    before = manifests.digest(manifests.scan_source(src))
    if change == 'content':
        write(os.path.join(src, 'public', 'app.js'), 'console.log(2)\n')
    elif change == 'mode':
        os.chmod(os.path.join(src, 'public', 'app.js'), 0o600)
    elif change == 'symlink':
        os.unlink(os.path.join(src, 'index'))
        os.symlink('public/app.js', os.path.join(src, 'index'))
    elif change == 'empty dir':
        os.mkdir(os.path.join(src, 'tmp', 'pids'))
    else:
        os.rename(os.path.join(src, 'public', 'app.js'), os.path.join(src, 'public', 'main.js'))
    assert manifests.digest(manifests.scan_source(src)) != before


def test_a_source_given_as_a_symlink_to_a_directory_is_read_through_it(tmp_path, deploy_to):
    src = make_app(tmp_path / 'app')
    os.symlink(src, str(tmp_path / 'build'))
    assert manifests.scan_source(str(tmp_path / 'build')) == manifests.scan_source(src)
    _planned, built = deploy_copy(deploy_to, '20260101000000', str(tmp_path / 'build'))
    assert built['written'] == 3


def test_the_digest_ignores_times(tmp_path):
    src = make_app(tmp_path / 'app')
    before = manifests.digest(manifests.scan_source(src))
    os.utime(os.path.join(src, 'public', 'app.js'), (1000000000, 1000000000))
    assert manifests.digest(manifests.scan_source(src)) == before


def test_a_fifo_in_the_source_is_refused(tmp_path):
    src = make_app(tmp_path / 'app')
    os.mkfifo(os.path.join(src, 'public', 'pipe'))
    with pytest.raises(CapstanError, match='deploy_src holds public/pipe, which is not a file, directory or symlink'):
        manifests.scan_source(src)


@pytest.mark.parametrize('target', ['/etc/passwd', '../../outside', 'public/../../../x'])
def test_a_symlink_pointing_outside_the_release_is_refused(tmp_path, target):
    src = make_app(tmp_path / 'app')
    os.symlink(target, os.path.join(src, 'public', 'escape'))
    with pytest.raises(CapstanError, match='symlink public/escape -> .* points outside the release'):
        manifests.scan_source(src)


def test_a_symlink_climbing_up_but_staying_inside_is_kept(tmp_path):
    src = make_app(tmp_path / 'app')
    os.symlink('../bin/run', os.path.join(src, 'public', 'run'))
    assert {'path': 'public/run', 'type': 'symlink', 'target': '../bin/run'} in manifests.scan_source(src)


def test_a_source_that_is_neither_a_directory_nor_a_tarball_is_refused(tmp_path):
    write(tmp_path / 'notes.txt', 'x')
    with pytest.raises(CapstanError, match='deploy_src must be a directory or a tarball'):
        manifests.scan_source(str(tmp_path / 'notes.txt'))
    write(tmp_path / 'fake.tar.gz', 'not a tarball')
    with pytest.raises(CapstanError, match='is not a readable tarball'):
        manifests.scan_source(str(tmp_path / 'fake.tar.gz'))


def tar_with(path, *members):
    """A tarball holding ``members``: (name, type, extra) with type file, dir, symlink, link, fifo or chr."""
    with tarfile.open(path, 'w') as tar:
        for name, kind, extra in members:
            info = tarfile.TarInfo(name)
            data = None
            if kind == 'file':
                data = extra.encode()
                info.size = len(data)
            elif kind == 'dir':
                info.type = tarfile.DIRTYPE
            elif kind == 'symlink':
                info.type, info.linkname = tarfile.SYMTYPE, extra
            elif kind == 'link':
                info.type, info.linkname = tarfile.LNKTYPE, extra
            elif kind == 'fifo':
                info.type = tarfile.FIFOTYPE
            else:
                info.type = tarfile.CHRTYPE
            tar.addfile(info, io.BytesIO(data) if data is not None else None)
    return str(path)


@pytest.mark.parametrize('members, message', [
    ([('/etc/cron.d/x', 'file', 'x')], 'absolute path'),
    ([('a/../../x', 'file', 'x')], 'path with ".."'),
    ([('dev', 'chr', None)], 'not a file, directory or symlink'),
    ([('pipe', 'fifo', None)], 'not a file, directory or symlink'),
    ([('sub', 'dir', None), ('up', 'symlink', 'sub'), ('up/passwd', 'file', 'x')], 'its parent up is a symlink'),
    ([('a', 'file', 'x'), ('a', 'file', 'y')], 'holds a twice'),
    ([('link', 'symlink', '../..')], 'points outside the release'),
])
def test_unsafe_tarball_members_are_refused(tmp_path, members, message):
    tarball = tar_with(tmp_path / 'bad.tar', *members)
    with pytest.raises(CapstanError, match=message):
        manifests.scan_source(tarball)


def test_a_hard_link_member_is_a_file_with_its_target_content(tmp_path):
    tarball = tar_with(tmp_path / 'links.tar', ('a', 'file', 'same'), ('b', 'link', 'a'))
    by_path = dict((e['path'], e) for e in manifests.scan_source(tarball))
    assert by_path['b']['type'] == 'file' and by_path['b']['sha256'] == by_path['a']['sha256']


def test_check_manifest_refuses_a_file_under_a_missing_parent_and_bad_shas():
    with pytest.raises(CapstanError, match='parent a is missing'):
        manifests.check_manifest([{'path': 'a/b', 'type': 'dir', 'mode': 0o755}])
    with pytest.raises(CapstanError, match='needs a size and a sha256'):
        manifests.check_manifest([{'path': 'f', 'type': 'file', 'mode': 0o644, 'size': 1, 'sha256': 'nope'}])
    with pytest.raises(CapstanError, match='permission number'):
        manifests.check_manifest([{'path': 'd', 'type': 'dir', 'mode': 'rwx'}])


# --- building releases ---------------------------------------------------------------------------


def test_a_first_build_writes_everything_with_modes_symlinks_empty_dirs_and_times(tmp_path, deploy_to):
    src = make_app(tmp_path / 'app')
    os.utime(os.path.join(src, 'public', 'app.js'), (1700000000, 1700000000))
    planned, built = deploy_copy(deploy_to, '20260101000000', src)
    assert planned['linked'] == 0 and planned['sent'] == 3 and built['written'] == 3
    root = release(deploy_to, '20260101000000')
    assert read(os.path.join(root, 'public', 'index.html')) == '<h1>v1</h1>\n'
    assert stat.S_IMODE(os.stat(os.path.join(root, 'bin', 'run')).st_mode) == 0o755
    assert stat.S_IMODE(os.stat(os.path.join(root, 'public', 'app.js')).st_mode) == 0o644
    assert os.stat(os.path.join(root, 'public', 'app.js')).st_mtime == 1700000000
    assert os.readlink(os.path.join(root, 'index')) == 'public/index.html'
    assert os.listdir(os.path.join(root, 'tmp', 'cache')) == []
    assert os.path.getsize(os.path.join(root, 'log', '.keep')) == 0
    stored = json.loads(read(built['manifest_path']))
    assert stored['revision'] == built['revision'] == manifests.digest(manifests.scan_source(src))
    assert read(os.path.join(root, 'REVISION')) == built['revision'] + '\n'


def test_a_second_build_sends_only_the_changed_file_and_links_the_rest(tmp_path, deploy_to):
    src = make_app(tmp_path / 'app')
    deploy_copy(deploy_to, '20260101000000', src)
    write(os.path.join(src, 'public', 'app.js'), 'console.log(2)\n')
    planned, built = deploy_copy(deploy_to, '20260101000001', src)
    assert planned['missing'] == [hashlib.sha256(b'console.log(2)\n').hexdigest()]
    assert (planned['sent'], planned['linked'], built['written'], built['linked']) == (1, 2, 1, 2)
    old, new = release(deploy_to, '20260101000000'), release(deploy_to, '20260101000001')
    for same in ('public/index.html', 'bin/run'):
        assert ino(os.path.join(old, same)) == ino(os.path.join(new, same)), same
    assert ino(os.path.join(old, 'public/app.js')) != ino(os.path.join(new, 'public/app.js'))
    assert read(os.path.join(new, 'public/app.js')) == 'console.log(2)\n'
    assert read(os.path.join(old, 'public/app.js')) == 'console.log(1)\n'
    # empty files are never shared: a file written at run time must not leak across releases
    assert ino(os.path.join(old, 'log/.keep')) != ino(os.path.join(new, 'log/.keep'))


def test_a_file_moved_to_another_path_is_linked_not_sent(tmp_path, deploy_to):
    src = make_app(tmp_path / 'app')
    deploy_copy(deploy_to, '20260101000000', src)
    os.rename(os.path.join(src, 'public', 'app.js'), os.path.join(src, 'app.js'))
    planned, _built = deploy_copy(deploy_to, '20260101000001', src)
    assert planned['missing'] == []
    assert ino(release(deploy_to, '20260101000000', 'public', 'app.js')) == ino(release(deploy_to, '20260101000001', 'app.js'))


def test_a_mode_change_is_not_sent_and_leaves_the_older_release_alone(tmp_path, deploy_to):
    src = make_app(tmp_path / 'app')
    deploy_copy(deploy_to, '20260101000000', src)
    os.chmod(os.path.join(src, 'public', 'app.js'), 0o600)
    planned, built = deploy_copy(deploy_to, '20260101000001', src)
    assert planned['missing'] == [] and built['copied'] == 1
    old, new = release(deploy_to, '20260101000000', 'public', 'app.js'), release(deploy_to, '20260101000001', 'public', 'app.js')
    assert ino(old) != ino(new)
    assert stat.S_IMODE(os.stat(old).st_mode) == 0o644 and stat.S_IMODE(os.stat(new).st_mode) == 0o600


def test_a_file_edited_in_place_in_an_old_release_is_not_trusted(tmp_path, deploy_to):
    src = make_app(tmp_path / 'app')
    deploy_copy(deploy_to, '20260101000000', src)
    with open(release(deploy_to, '20260101000000', 'public', 'app.js'), 'w') as handle:
        handle.write('console.log(9)\n')   # same size, other content, new mtime
    planned, _built = deploy_copy(deploy_to, '20260101000001', src)
    assert planned['missing'] == [hashlib.sha256(b'console.log(1)\n').hexdigest()]
    assert read(release(deploy_to, '20260101000001', 'public', 'app.js')) == 'console.log(1)\n'


def test_a_release_without_manifest_is_hashed_at_the_same_paths(tmp_path, deploy_to):
    # What Capistrano leaves: a current release and no .capstan/manifests.
    src = make_app(tmp_path / 'app')
    cap = release(deploy_to, '20251231000000')
    os.makedirs(cap)
    for entry in manifests.scan_source(src):
        path = os.path.join(cap, entry['path'])
        if entry['type'] == 'dir':
            os.makedirs(path, exist_ok=True)
        elif entry['type'] == 'symlink':
            os.symlink(entry['target'], path)
        else:
            with open(os.path.join(src, entry['path']), 'rb') as source, open(path, 'wb') as dest:
                dest.write(source.read())
            os.chmod(path, entry['mode'])
    write(os.path.join(cap, 'REVISION'), 'abc\n')
    os.symlink(cap, os.path.join(deploy_to, 'current'))
    planned, _built = deploy_copy(deploy_to, '20260101000000', src)
    assert planned['missing'] == [] and planned['linked'] == 3
    assert ino(os.path.join(cap, 'bin', 'run')) == ino(release(deploy_to, '20260101000000', 'bin', 'run'))


def test_identical_files_within_a_release_are_sent_once(tmp_path, deploy_to):
    src = str(tmp_path / 'app')
    for name in ('a.txt', 'b.txt', 'c/d.txt'):
        write(os.path.join(src, name), 'same\n')
    planned, built = deploy_copy(deploy_to, '20260101000000', src)
    assert planned['sent'] == 1 and built['written'] == 1 and built['linked'] == 2
    assert ino(release(deploy_to, '20260101000000', 'a.txt')) == ino(release(deploy_to, '20260101000000', 'c', 'd.txt'))


def test_check_mode_reports_what_would_be_sent_and_changes_nothing(tmp_path, deploy_to):
    src = make_app(tmp_path / 'app')
    deploy_copy(deploy_to, '20260101000000', src)
    write(os.path.join(src, 'public', 'app.js'), 'console.log(2)\n')
    manifest = manifests.scan_source(src)
    before = sorted(os.listdir(os.path.join(deploy_to, 'releases')))
    result = builds.build(deploy_to, '20260101000001', manifest, check=True)
    assert (result['changed'], result['linked'], result['sent']) == (True, 2, 1)
    assert sorted(os.listdir(os.path.join(deploy_to, 'releases'))) == before


def test_manifests_of_releases_that_are_gone_are_removed(tmp_path, deploy_to):
    src = make_app(tmp_path / 'app')
    deploy_copy(deploy_to, '20260101000000', src)
    deploy_copy(deploy_to, '20260101000001', src)
    _steps.prune(deploy_to, 1, 5)
    _planned, built = deploy_copy(deploy_to, '20260101000002', src)
    assert built['manifests_removed'] == ['20260101000000']
    assert sorted(os.listdir(os.path.join(deploy_to, '.capstan', 'manifests'))) == [
        '20260101000001.json', '20260101000002.json']


def test_a_build_refuses_a_release_that_is_finished_or_holds_content(tmp_path, deploy_to):
    src = make_app(tmp_path / 'app')
    deploy_copy(deploy_to, '20260101000000', src)
    manifest = manifests.scan_source(src)
    with pytest.raises(CapstanError, match='release 20260101000000 is successful'):
        builds.build(deploy_to, '20260101000000', manifest)
    _steps.prepare_release(deploy_to, '20260101000001')
    write(release(deploy_to, '20260101000001', 'stray'), 'x')
    with pytest.raises(CapstanError, match='already holds content'):
        builds.build(deploy_to, '20260101000001', manifest)


def test_a_manifest_crosses_as_json_and_comes_back_the_same(tmp_path, deploy_to):
    manifest = manifests.scan_source(make_app(tmp_path / 'app'))
    text = manifests.dump_manifest(manifest)
    assert manifests.load_manifest(text) == manifest
    assert plans.plan(deploy_to, text)['revision'] == manifests.digest(manifest)
    with pytest.raises(CapstanError, match='manifest must be a list of entries or that list as JSON'):
        manifests.load_manifest('[{"path": ')


def test_a_bundle_whose_content_does_not_match_the_manifest_is_refused(tmp_path, deploy_to):
    src = make_app(tmp_path / 'app')
    manifest = manifests.scan_source(src)
    _steps.prepare_release(deploy_to, '20260101000000')
    planned = plans.plan(deploy_to, manifest, '20260101000000')
    bundle = str(tmp_path / 'forged.tar')
    with tarfile.open(bundle, 'w') as tar:
        for sha in planned['missing']:
            info = tarfile.TarInfo(sha)
            info.size = 4
            tar.addfile(info, io.BytesIO(b'evil'))
    with pytest.raises(CapstanError, match='does not match its manifest'):
        builds.build(deploy_to, '20260101000000', manifest, bundle=bundle)


def test_a_revision_other_than_the_manifest_digest_is_refused(tmp_path, deploy_to):
    src = make_app(tmp_path / 'app')
    _steps.prepare_release(deploy_to, '20260101000000')
    with pytest.raises(CapstanError, match='not the revision'):
        builds.build(deploy_to, '20260101000000', manifests.scan_source(src), revision='0' * 64)


def test_a_source_changed_after_its_manifest_fails_the_bundle(tmp_path):
    src = make_app(tmp_path / 'app')
    manifest = manifests.scan_source(src)
    write(os.path.join(src, 'public', 'app.js'), 'console.log(3)\n')
    shas = [e['sha256'] for e in manifest if e['type'] == 'file' and e['size']]
    with pytest.raises(CapstanError, match='changed while it was being deployed'):
        plans.write_bundle(src, manifest, shas, str(tmp_path / 'bundle.tar.gz'))


def test_a_bundle_from_a_tarball_source_builds_the_same_release(tmp_path, deploy_to):
    src = make_app(tmp_path / 'app')
    tarball = str(tmp_path / 'app.tgz')
    with tarfile.open(tarball, 'w:gz') as tar:
        tar.add(src, arcname='.')
    _planned, built = deploy_copy(deploy_to, '20260101000000', tarball)
    assert built['revision'] == manifests.digest(manifests.scan_source(src))
    assert os.readlink(release(deploy_to, '20260101000000', 'index')) == 'public/index.html'
    assert read(release(deploy_to, '20260101000000', 'bin', 'run')) == '#!/bin/sh\necho run\n'


def test_a_linked_dir_of_an_old_release_is_never_a_source(tmp_path, deploy_to):
    # public/ of the old release became a link into shared/: its files are not the release's.
    src = make_app(tmp_path / 'app')
    deploy_copy(deploy_to, '20260101000000', src)
    old_public = release(deploy_to, '20260101000000', 'public')
    shared = os.path.join(deploy_to, 'shared', 'public')
    os.rename(old_public, shared)
    os.symlink(shared, old_public)
    planned, _built = deploy_copy(deploy_to, '20260101000001', src)
    assert sorted(planned['missing']) == sorted(
        hashlib.sha256(data).hexdigest() for data in (b'<h1>v1</h1>\n', b'console.log(1)\n'))


# --- tarballs on the host (git export, archive) --------------------------------------------------


def test_build_from_tar_links_what_earlier_releases_hold(tmp_path, deploy_to):
    src = make_app(tmp_path / 'app')
    tarball = str(tmp_path / 'app.tar')
    with tarfile.open(tarball, 'w') as tar:
        tar.add(src, arcname='.')
    _steps.prepare_release(deploy_to, '20260101000000')
    first = builds.build_from_tar(deploy_to, '20260101000000', tarball, revision='r1')
    _steps.finish_release(deploy_to, '20260101000000', 'r1')
    _steps.swap_current(deploy_to, '20260101000000')
    assert first['written'] == 3 and first['linked'] == 0
    _steps.prepare_release(deploy_to, '20260101000001')
    second = builds.build_from_tar(deploy_to, '20260101000001', tarball, revision='r1')
    assert second['written'] == 0 and second['linked'] == 3
    assert ino(release(deploy_to, '20260101000000', 'bin', 'run')) == ino(release(deploy_to, '20260101000001', 'bin', 'run'))


def test_build_from_tar_writes_nothing_outside_the_release(tmp_path, deploy_to):
    tarball = tar_with(tmp_path / 'evil.tar', ('ok', 'file', 'x'), ('../../evil', 'file', 'x'))
    _steps.prepare_release(deploy_to, '20260101000000')
    with pytest.raises(CapstanError, match='path with ".."'):
        builds.build_from_tar(deploy_to, '20260101000000', tarball)
    assert os.listdir(release(deploy_to, '20260101000000')) == []
    assert not os.path.exists(os.path.join(deploy_to, 'evil'))


# --- git ----------------------------------------------------------------------------------------


def runner(argv, cwd=None):
    proc = subprocess.run(argv, cwd=cwd, capture_output=True, text=True, check=False,
                          env=dict(os.environ, GIT_TERMINAL_PROMPT='0', LC_ALL='C'))
    return proc.returncode, proc.stdout, proc.stderr


GIT_ENV = {'GIT_AUTHOR_NAME': 'T', 'GIT_AUTHOR_EMAIL': 't@example.com', 'GIT_COMMITTER_NAME': 'T',
           'GIT_COMMITTER_EMAIL': 't@example.com'}


def git(repo, *args, **env):
    proc = subprocess.run(['git'] + list(args), cwd=str(repo), capture_output=True, text=True, check=True,
                          env=dict(os.environ, **dict(GIT_ENV, **env)))
    return proc.stdout.strip()


@pytest.fixture
def origin(tmp_path):
    """A repository with two commits on main (tag v1 on the first) and a branch next."""
    repo = tmp_path / 'origin'
    repo.mkdir()
    git(repo, 'init', '-q', '-b', 'main')
    make_app(repo)
    git(repo, 'add', '-A')
    git(repo, 'commit', '-q', '-m', 'one', GIT_COMMITTER_DATE='1700000000 +0000', GIT_AUTHOR_DATE='1700000000 +0000')
    git(repo, 'tag', '-a', 'v1', '-m', 'v1')
    write(repo / 'public' / 'app.js', 'console.log(2)\n')
    git(repo, 'commit', '-q', '-am', 'two', GIT_COMMITTER_DATE='1700000100 +0000', GIT_AUTHOR_DATE='1700000100 +0000')
    git(repo, 'branch', 'next', 'v1')
    return 'file://%s' % repo


def shas(origin):
    repo = origin[len('file://'):]
    return {'main': git(repo, 'rev-parse', 'main'), 'v1': git(repo, 'rev-parse', 'v1^{commit}')}


def test_git_resolves_branches_tags_shas_and_the_default_branch(deploy_to, origin):
    known = shas(origin)
    head = git_source.resolve_git(runner, deploy_to, origin, '')
    assert (head['revision'], head['branch'], head['revision_time'], head['changed']) == (known['main'], 'main', '1700000100', True)
    assert os.path.isdir(os.path.join(deploy_to, 'repo', 'objects'))
    assert git_source.resolve_git(runner, deploy_to, origin, 'v1')['revision'] == known['v1']
    assert git_source.resolve_git(runner, deploy_to, origin, 'next')['branch'] == 'next'
    again = git_source.resolve_git(runner, deploy_to, origin, known['v1'][:10])
    assert (again['revision'], again['changed']) == (known['v1'], False)


def test_git_fetches_new_commits_into_the_mirror(deploy_to, origin):
    git_source.resolve_git(runner, deploy_to, origin, 'main')
    repo = origin[len('file://'):]
    write(os.path.join(repo, 'new.txt'), 'new\n')
    git(repo, 'add', 'new.txt')
    git(repo, 'commit', '-q', '-m', 'three')
    assert git_source.resolve_git(runner, deploy_to, origin, 'main')['revision'] == git(repo, 'rev-parse', 'main')


def test_git_refuses_an_unknown_version_and_option_like_input(deploy_to, origin):
    with pytest.raises(CapstanError, match="deploy_version 'nope' is not a branch, tag or commit of file://"):
        git_source.resolve_git(runner, deploy_to, origin, 'nope')
    with pytest.raises(CapstanError, match='deploy_version must be a branch, tag or commit sha'):
        git_source.resolve_git(runner, deploy_to, origin, '--upload-pack=touch /tmp/x')
    with pytest.raises(CapstanError, match='deploy_repo_url must be the URL of a git repository'):
        git_source.resolve_git(runner, deploy_to, '--upload-pack=x', 'main')
    with pytest.raises(CapstanError, match='deploy_repo_url: git clone failed'):
        git_source.resolve_git(runner, deploy_to + '2', 'file:///nonexistent/repo', 'main')


def test_git_check_mode_asks_the_remote_and_leaves_no_mirror(deploy_to, origin):
    known = shas(origin)
    result = git_source.resolve_git(runner, deploy_to, origin, 'v1', check=True)
    assert result['revision'] == known['v1']
    assert git_source.resolve_git(runner, deploy_to, origin, '', check=True)['branch'] == 'main'
    assert not os.path.exists(deploy_to)


def test_git_exports_the_commit_without_dot_git_and_links_unchanged_files(deploy_to, origin):
    known = shas(origin)
    git_source.resolve_git(runner, deploy_to, origin, 'v1')
    _steps.prepare_release(deploy_to, '20260101000000')
    first = git_source.build_from_git(runner, deploy_to, '20260101000000', known['v1'])
    _steps.finish_release(deploy_to, '20260101000000', known['v1'])
    _steps.swap_current(deploy_to, '20260101000000')
    root = release(deploy_to, '20260101000000')
    assert not os.path.exists(os.path.join(root, '.git'))
    assert read(os.path.join(root, 'public', 'app.js')) == 'console.log(1)\n'
    assert stat.S_IMODE(os.stat(os.path.join(root, 'bin', 'run')).st_mode) == 0o755
    assert stat.S_IMODE(os.stat(os.path.join(root, 'public', 'app.js')).st_mode) == 0o644
    assert os.readlink(os.path.join(root, 'index')) == 'public/index.html'
    assert first['written'] == 3
    _steps.prepare_release(deploy_to, '20260101000001')
    second = git_source.build_from_git(runner, deploy_to, '20260101000001', known['main'])
    assert (second['written'], second['linked']) == (1, 2)
    new = release(deploy_to, '20260101000001')
    assert ino(os.path.join(root, 'bin', 'run')) == ino(os.path.join(new, 'bin', 'run'))
    assert read(os.path.join(new, 'public', 'app.js')) == 'console.log(2)\n'
    assert os.listdir(os.path.join(deploy_to, '.capstan', 'downloads')) == []


# --- archive ------------------------------------------------------------------------------------


@pytest.fixture
def archive(tmp_path):
    src = make_app(tmp_path / 'app')
    path = str(tmp_path / 'app-1.tar.gz')
    with tarfile.open(path, 'w:gz') as tar:
        tar.add(src, arcname='.')
    with open(path, 'rb') as handle:
        return path, hashlib.sha256(handle.read()).hexdigest()


@pytest.fixture
def http_root(tmp_path):
    """A real HTTP server on 127.0.0.1 serving tmp_path; yields its base URL."""
    handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=str(tmp_path))
    handler.log_message = lambda *args: None
    server = http.server.ThreadingHTTPServer(('127.0.0.1', 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield 'http://127.0.0.1:%d' % server.server_address[1]
    finally:
        server.shutdown()
        server.server_close()


def opener(url):
    return urllib.request.urlopen(url, timeout=10)


def test_archive_from_a_path_resolves_to_its_sha256(deploy_to, archive):
    path, sha = archive
    result = archive_source.resolve_archive(deploy_to, path, 'sha256:' + sha)
    assert (result['revision'], result['archive'], result['changed']) == (sha, path, False)
    assert archive_source.resolve_archive(deploy_to, 'file://' + path)['revision'] == sha


def test_archive_with_a_bad_checksum_or_missing_path_is_refused(deploy_to, archive, http_root):
    path, _sha = archive
    with pytest.raises(CapstanError, match='deploy_src_checksum sha256:0000 does not match'):
        archive_source.resolve_archive(deploy_to, path, 'sha256:0000')
    with pytest.raises(CapstanError, match='deploy_src_checksum must be <algorithm>:<hex digest>'):
        archive_source.resolve_archive(deploy_to, path, 'crc32:abcd')
    with pytest.raises(CapstanError, match='deploy_src /nope.tgz is not a file on this host'):
        archive_source.resolve_archive(deploy_to, '/nope.tgz')
    with pytest.raises(CapstanError, match='deploy_src_checksum sha256:0000 does not match'):
        archive_source.resolve_archive(deploy_to, http_root + '/app-1.tar.gz', 'sha256:0000', opener=opener)
    assert os.listdir(os.path.join(deploy_to, '.capstan', 'downloads')) == []
    with pytest.raises(CapstanError, match='could not be downloaded on this host: HTTP Error 404'):
        archive_source.resolve_archive(deploy_to, http_root + '/missing.tar.gz', opener=opener)


def test_archive_from_a_url_is_downloaded_into_the_tree_checked_built_and_removed(deploy_to, archive, http_root):
    _path, sha = archive
    url = http_root + '/app-1.tar.gz'
    resolved = archive_source.resolve_archive(deploy_to, url, 'sha256:' + sha, opener=opener)
    assert resolved['archive'] == os.path.join(deploy_to, '.capstan', 'downloads', sha + '.archive')
    assert os.path.isfile(resolved['archive']) and resolved['changed']
    _steps.prepare_release(deploy_to, '20260101000000')
    built = archive_source.build_from_archive(deploy_to, '20260101000000', url, sha, opener=opener)
    assert built['written'] == 3
    assert read(release(deploy_to, '20260101000000', 'public', 'index.html')) == '<h1>v1</h1>\n'
    assert os.listdir(os.path.join(deploy_to, '.capstan', 'downloads')) == []


def test_archive_already_live_keeps_no_download_and_a_build_downloads_again(deploy_to, archive, http_root):
    _path, sha = archive
    url = http_root + '/app-1.tar.gz'
    archive_source.resolve_archive(deploy_to, url, opener=opener)
    _steps.prepare_release(deploy_to, '20260101000000')
    archive_source.build_from_archive(deploy_to, '20260101000000', url, sha, opener=opener)
    _steps.finish_release(deploy_to, '20260101000000', sha)
    _steps.swap_current(deploy_to, '20260101000000')
    again = archive_source.resolve_archive(deploy_to, url, opener=opener)
    assert (again['changed'], again['archive']) == (False, None)
    assert os.listdir(os.path.join(deploy_to, '.capstan', 'downloads')) == []
    _steps.prepare_release(deploy_to, '20260101000001')
    rebuilt = archive_source.build_from_archive(deploy_to, '20260101000001', url, sha, opener=opener)
    assert rebuilt['linked'] == 3 and rebuilt['written'] == 0


def test_archive_check_mode_keeps_no_download_and_creates_nothing(deploy_to, archive, http_root):
    _path, sha = archive
    result = archive_source.resolve_archive(deploy_to, http_root + '/app-1.tar.gz', opener=opener, check=True)
    assert (result['revision'], result['changed'], result['archive']) == (sha, True, None)
    assert not os.path.exists(deploy_to)
    os.makedirs(os.path.join(deploy_to, '.capstan', 'downloads'))
    assert archive_source.resolve_archive(deploy_to, http_root + '/app-1.tar.gz', opener=opener, check=True)['revision'] == sha
    assert os.listdir(os.path.join(deploy_to, '.capstan', 'downloads')) == []


def test_archive_that_is_not_a_tarball_is_refused(deploy_to, tmp_path):
    write(tmp_path / 'fake.tgz', 'hello')
    with pytest.raises(CapstanError, match='not a readable tarball'):
        archive_source.resolve_archive(deploy_to, str(tmp_path / 'fake.tgz'))


def test_archive_changed_since_it_was_resolved_is_refused(deploy_to, archive):
    path, sha = archive
    _steps.prepare_release(deploy_to, '20260101000000')
    with pytest.raises(CapstanError, match='changed since the deploy started'):
        archive_source.build_from_archive(deploy_to, '20260101000000', path, 'f' * 64)
    assert os.listdir(release(deploy_to, '20260101000000')) == []
    assert archive_source.build_from_archive(deploy_to, '20260101000000', path, sha)['written'] == 3
