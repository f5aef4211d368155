"""_content.builds: releases built with hard links, from a bundle or a tarball, and what a build refuses."""

from __future__ import annotations

import io
import json
import os
import stat
import tarfile

import pytest

from ansible_collections.capstan.release.plugins.module_utils import _steps
from ansible_collections.capstan.release.plugins.module_utils._content import builds
from ansible_collections.capstan.release.plugins.module_utils._content import manifests
from ansible_collections.capstan.release.plugins.module_utils._content import plans
from ansible_collections.capstan.release.plugins.module_utils._errors import CapstanError
from ansible_collections.capstan.release.tests.unit.helpers import deploy_copy, ino, make_app, read, release_path, tar_with, write


def test_a_first_build_writes_everything_with_modes_symlinks_empty_dirs_and_times(tmp_path, deploy_to):
    src = make_app(tmp_path / 'app')
    os.utime(os.path.join(src, 'public', 'app.js'), (1700000000, 1700000000))
    planned, built = deploy_copy(deploy_to, '20260101000000', src)
    assert planned['linked'] == 0 and planned['sent'] == 3 and built['written'] == 3
    root = release_path(deploy_to, '20260101000000')
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


def test_a_mode_change_is_not_sent_and_leaves_the_older_release_alone(tmp_path, deploy_to):
    src = make_app(tmp_path / 'app')
    deploy_copy(deploy_to, '20260101000000', src)
    os.chmod(os.path.join(src, 'public', 'app.js'), 0o600)
    planned, built = deploy_copy(deploy_to, '20260101000001', src)
    assert planned['missing'] == [] and built['copied'] == 1
    old, new = release_path(deploy_to, '20260101000000', 'public', 'app.js'), release_path(deploy_to, '20260101000001', 'public', 'app.js')
    assert ino(old) != ino(new)
    assert stat.S_IMODE(os.stat(old).st_mode) == 0o644 and stat.S_IMODE(os.stat(new).st_mode) == 0o600


def test_check_mode_reports_what_would_be_sent_and_changes_nothing(tmp_path, deploy_to):
    src = make_app(tmp_path / 'app')
    deploy_copy(deploy_to, '20260101000000', src)
    write(os.path.join(src, 'public', 'app.js'), 'console.log(2)\n')
    manifest = manifests.scan_source(src)
    before = sorted(os.listdir(os.path.join(deploy_to, 'releases')))
    result = builds.build(deploy_to, '20260101000001', manifest, check=True)
    assert (result['changed'], result['linked'], result['sent']) == (True, 2, 1)
    assert sorted(os.listdir(os.path.join(deploy_to, 'releases'))) == before


def test_a_build_refuses_a_release_that_is_finished_or_holds_content(tmp_path, deploy_to):
    src = make_app(tmp_path / 'app')
    deploy_copy(deploy_to, '20260101000000', src)
    manifest = manifests.scan_source(src)
    with pytest.raises(CapstanError, match='release 20260101000000 is successful'):
        builds.build(deploy_to, '20260101000000', manifest)
    _steps.prepare_release(deploy_to, '20260101000001')
    write(release_path(deploy_to, '20260101000001', 'stray'), 'x')
    with pytest.raises(CapstanError, match='already holds content'):
        builds.build(deploy_to, '20260101000001', manifest)


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
    assert ino(release_path(deploy_to, '20260101000000', 'bin', 'run')) == ino(release_path(deploy_to, '20260101000001', 'bin', 'run'))


def test_build_from_tar_writes_nothing_outside_the_release(tmp_path, deploy_to):
    tarball = tar_with(tmp_path / 'evil.tar', ('ok', 'file', 'x'), ('../../evil', 'file', 'x'))
    _steps.prepare_release(deploy_to, '20260101000000')
    with pytest.raises(CapstanError, match='path with ".."'):
        builds.build_from_tar(deploy_to, '20260101000000', tarball)
    assert os.listdir(release_path(deploy_to, '20260101000000')) == []
    assert not os.path.exists(os.path.join(deploy_to, 'evil'))
