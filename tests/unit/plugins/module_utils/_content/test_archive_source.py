"""_content.archive_source: archives at a path or a URL, checksums, downloads kept and removed."""

from __future__ import annotations

import functools
import hashlib
import http.server
import os
import tarfile
import threading
import urllib.request

import pytest

from ansible_collections.capstan.release.plugins.module_utils import _steps
from ansible_collections.capstan.release.plugins.module_utils._content import archive_source
from ansible_collections.capstan.release.plugins.module_utils._errors import CapstanError
from ansible_collections.capstan.release.tests.unit.helpers import make_app, read, release_path, write


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
    assert read(release_path(deploy_to, '20260101000000', 'public', 'index.html')) == '<h1>v1</h1>\n'
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
    assert os.listdir(release_path(deploy_to, '20260101000000')) == []
    assert archive_source.build_from_archive(deploy_to, '20260101000000', path, sha)['written'] == 3
