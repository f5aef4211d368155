"""_content.manifests: manifests of directories and tarballs, their digest, what they refuse, JSON both ways."""

from __future__ import annotations

import hashlib
import io
import os
import tarfile

import pytest

from ansible_collections.capstan.release.plugins.module_utils._content import manifests
from ansible_collections.capstan.release.plugins.module_utils._content import plans
from ansible_collections.capstan.release.plugins.module_utils._errors import CapstanError
from ansible_collections.capstan.release.tests.unit.helpers import deploy_copy, make_app, tar_with, write


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


def test_a_manifest_crosses_as_json_and_comes_back_the_same(tmp_path, deploy_to):
    manifest = manifests.scan_source(make_app(tmp_path / 'app'))
    text = manifests.dump_manifest(manifest)
    assert manifests.load_manifest(text) == manifest
    assert plans.plan(deploy_to, text)['revision'] == manifests.digest(manifest)
    with pytest.raises(CapstanError, match='manifest must be a list of entries or that list as JSON'):
        manifests.load_manifest('[{"path": ')
