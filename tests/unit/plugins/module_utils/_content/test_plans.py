"""_content.plans: what earlier releases hold, what a host lacks, and the bundle of only that."""

from __future__ import annotations

import hashlib
import os
import tarfile

import pytest

from ansible_collections.capstan.release.plugins.module_utils._content import manifests
from ansible_collections.capstan.release.plugins.module_utils._content import plans
from ansible_collections.capstan.release.plugins.module_utils._errors import CapstanError
from ansible_collections.capstan.release.tests.unit.helpers import deploy_copy, ino, make_app, read, release_path, write


def test_a_second_build_sends_only_the_changed_file_and_links_the_rest(tmp_path, deploy_to):
    src = make_app(tmp_path / 'app')
    deploy_copy(deploy_to, '20260101000000', src)
    write(os.path.join(src, 'public', 'app.js'), 'console.log(2)\n')
    planned, built = deploy_copy(deploy_to, '20260101000001', src)
    assert planned['missing'] == [hashlib.sha256(b'console.log(2)\n').hexdigest()]
    assert (planned['sent'], planned['linked'], built['written'], built['linked']) == (1, 2, 1, 2)
    old, new = release_path(deploy_to, '20260101000000'), release_path(deploy_to, '20260101000001')
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
    assert ino(release_path(deploy_to, '20260101000000', 'public', 'app.js')) == ino(release_path(deploy_to, '20260101000001', 'app.js'))


def test_a_file_edited_in_place_in_an_old_release_is_not_trusted(tmp_path, deploy_to):
    src = make_app(tmp_path / 'app')
    deploy_copy(deploy_to, '20260101000000', src)
    with open(release_path(deploy_to, '20260101000000', 'public', 'app.js'), 'w') as handle:
        handle.write('console.log(9)\n')   # same size, other content, new mtime
    planned, _built = deploy_copy(deploy_to, '20260101000001', src)
    assert planned['missing'] == [hashlib.sha256(b'console.log(1)\n').hexdigest()]
    assert read(release_path(deploy_to, '20260101000001', 'public', 'app.js')) == 'console.log(1)\n'


def test_a_release_without_manifest_is_hashed_at_the_same_paths(tmp_path, deploy_to):
    # What Capistrano leaves: a current release and no .capstan/manifests.
    src = make_app(tmp_path / 'app')
    cap = release_path(deploy_to, '20251231000000')
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
    assert ino(os.path.join(cap, 'bin', 'run')) == ino(release_path(deploy_to, '20260101000000', 'bin', 'run'))


def test_identical_files_within_a_release_are_sent_once(tmp_path, deploy_to):
    src = str(tmp_path / 'app')
    for name in ('a.txt', 'b.txt', 'c/d.txt'):
        write(os.path.join(src, name), 'same\n')
    planned, built = deploy_copy(deploy_to, '20260101000000', src)
    assert planned['sent'] == 1 and built['written'] == 1 and built['linked'] == 2
    assert ino(release_path(deploy_to, '20260101000000', 'a.txt')) == ino(release_path(deploy_to, '20260101000000', 'c', 'd.txt'))


def test_a_linked_dir_of_an_old_release_is_never_a_source(tmp_path, deploy_to):
    # public/ of the old release became a link into shared/: its files are not the release's.
    src = make_app(tmp_path / 'app')
    deploy_copy(deploy_to, '20260101000000', src)
    old_public = release_path(deploy_to, '20260101000000', 'public')
    shared = os.path.join(deploy_to, 'shared', 'public')
    os.rename(old_public, shared)
    os.symlink(shared, old_public)
    planned, _built = deploy_copy(deploy_to, '20260101000001', src)
    assert sorted(planned['missing']) == sorted(
        hashlib.sha256(data).hexdigest() for data in (b'<h1>v1</h1>\n', b'console.log(1)\n'))


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
    assert os.readlink(release_path(deploy_to, '20260101000000', 'index')) == 'public/index.html'
    assert read(release_path(deploy_to, '20260101000000', 'bin', 'run')) == '#!/bin/sh\necho run\n'
