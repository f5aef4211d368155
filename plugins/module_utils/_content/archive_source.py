# Copyright (c) 2026, capstan.release contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""The archive source: a tarball at a URL or a path on the host, checked, then built from."""

from __future__ import annotations

import hashlib
import os
import re
import tempfile

from ansible_collections.capstan.release.plugins.module_utils import _fsops
from ansible_collections.capstan.release.plugins.module_utils import _releases
from ansible_collections.capstan.release.plugins.module_utils._content import builds
from ansible_collections.capstan.release.plugins.module_utils._content import holdings
from ansible_collections.capstan.release.plugins.module_utils._content import manifests
from ansible_collections.capstan.release.plugins.module_utils._errors import CapstanError

_CHECKSUM_RE = re.compile(r'^(md5|sha1|sha224|sha256|sha384|sha512):([0-9a-fA-F]+)\Z')


def parse_checksum(checksum, what='deploy_src_checksum'):
    """(algorithm, lower-case hex) of ``<algorithm>:<hex>``, or None for no checksum.

    The one rule for it: the roles' input check (_checks) calls it on the controller too.
    """
    if not checksum:
        return None
    match = _CHECKSUM_RE.match(checksum) if isinstance(checksum, str) else None
    if not match:
        raise CapstanError('%s must be <algorithm>:<hex digest> with an algorithm of md5, sha1, sha224, '
                           'sha256, sha384 or sha512, got %r' % (what, checksum))
    return match.group(1), match.group(2).lower()


def archive_location(src, what='deploy_src'):
    """('url', url) for http(s), ('path', path) for file:// URLs and absolute paths; refuses anything else.

    The one rule for it: the roles' input check (_checks) calls it on the controller too.
    """
    if not isinstance(src, str) or not src:
        raise CapstanError('%s must be an http(s):// or file:// URL or an absolute path on the hosts, got %r' % (what, src))
    lowered = src.lower()
    if lowered.startswith(('http://', 'https://')):
        return 'url', src
    if lowered.startswith('file://'):
        path = src[len('file://'):]
        if not path.startswith('/'):
            raise CapstanError('%s file:// URLs must name an absolute path (file:///srv/app.tar.gz), got %r' % (what, src))
        return 'path', _unquote(path)
    if src.startswith('/'):
        return 'path', src
    raise CapstanError('%s must be an http(s):// or file:// URL or an absolute path on the hosts, got %r' % (what, src))


def _unquote(path):
    try:
        from urllib.parse import unquote
    except ImportError:  # pragma: no cover - Python 2 is not supported
        return path
    return unquote(path)


def _digests(path, algorithm=None):
    """sha256 (and ``algorithm`` when another one) hex digests of the file at ``path``."""
    sha = hashlib.sha256()
    other = hashlib.new(algorithm) if algorithm and algorithm != 'sha256' else None
    with open(path, 'rb') as handle:
        while True:
            block = handle.read(manifests.CHUNK)
            if not block:
                break
            sha.update(block)
            if other is not None:
                other.update(block)
    return sha.hexdigest(), (other.hexdigest() if other is not None else sha.hexdigest())


def _check_sum(checksum, got, src):
    algorithm, expected = checksum
    if got != expected:
        raise CapstanError('deploy_src_checksum %s:%s does not match %s, whose %s is %s; nothing was deployed'
                           % (algorithm, expected, src, algorithm, got))


def _live_revision(tree):
    name = holdings.current_name(tree)
    if name is None:
        return None
    return (_fsops.read_text(os.path.join(tree.releases, name, 'REVISION'), default='') or '').strip() or None


def _fetch(opener, tree, src, url, wanted, check=False):
    """Download ``url`` into <deploy_to>/.capstan/downloads, check it; returns (sha256, path of the download).

    In check mode the download is hashed and removed, and made in the system's temp
    directory when the tree has no downloads folder yet (check mode creates nothing).
    """
    folder = os.path.join(tree.state_dir, holdings.DOWNLOADS)
    if check and not os.path.isdir(folder):
        folder = tempfile.gettempdir()
    elif not os.path.isdir(folder):
        tree.ensure_state_dir()
        os.makedirs(folder)
    partial = os.path.join(folder, '.capstan-partial-%d' % os.getpid())
    try:
        _download(opener, url, partial)
        sha, other = _digests(partial, wanted[0] if wanted else None)
        if wanted:
            _check_sum(wanted, other, src)
        manifests.open_tar(partial, 'deploy_src %s' % src).close()
        final = os.path.join(folder, '%s.archive' % sha)
        if not check:
            os.rename(partial, final)
    finally:
        _fsops.remove_file(partial)
    return sha, final


def drop_downloads(deploy_to):
    """Remove every download of the tree (a deploy that finished needs none of them any more)."""
    _drop_downloads(_releases.Tree(deploy_to))


def content_bytes(deploy_to, src, revision):
    """Bytes the files of the archive of ``revision`` take once extracted (0 when it is not on the host yet)."""
    tree = _releases.Tree(deploy_to)
    kind, location = archive_location(src)
    if kind == 'url':
        location = os.path.join(tree.state_dir, holdings.DOWNLOADS, '%s.archive' % revision)
    if not os.path.isfile(location):
        return 0
    tar = manifests.open_tar(location, 'deploy_src %s' % src)
    try:
        return sum(member.size for member in tar if member.isreg())
    finally:
        tar.close()


def _drop_downloads(tree, keep=None):
    folder = os.path.join(tree.state_dir, holdings.DOWNLOADS)
    try:
        items = os.listdir(folder)
    except OSError:
        return
    for item in items:
        if item.endswith('.archive') and os.path.join(folder, item) != keep:
            _fsops.remove_file(os.path.join(folder, item))


def resolve_archive(deploy_to, src, checksum=None, opener=None, check=False):
    """The sha256 of the archive ``src``; a URL is downloaded into <deploy_to>/.capstan/downloads.

    A bad checksum or an unreadable tarball is refused and its download removed. The
    download is kept for the build unless it is what the host already runs (or in check
    mode); downloads left by runs that stopped early are removed.
    """
    tree = _releases.Tree(deploy_to)
    wanted = parse_checksum(checksum)
    kind, location = archive_location(src)
    if kind == 'path':
        if not os.path.isfile(location):
            raise CapstanError('deploy_src %s is not a file on this host' % location)
        sha, other = _digests(location, wanted[0] if wanted else None)
        if wanted:
            _check_sum(wanted, other, src)
        manifests.open_tar(location, 'deploy_src').close()
        return {'changed': False, 'revision': sha, 'archive': location, 'downloaded': False,
                'diff': {'before': {}, 'after': {'archive': location, 'revision': sha}}}
    sha, final = _fetch(opener, tree, src, location, wanted, check=check)
    live = sha == _live_revision(tree)
    kept = not (live or check)
    if not check:
        _drop_downloads(tree, keep=final if kept else None)
    return {'changed': not live, 'revision': sha, 'archive': final if kept else None, 'downloaded': True,
            'diff': {'before': {'download': None}, 'after': {'download': final if kept else None, 'revision': sha}}}


def _download(opener, url, dest):
    if opener is None:
        raise CapstanError('deploy_src %s is a URL, and this call has no way to download it' % url)
    try:
        response = opener(url)
    except CapstanError:
        raise
    except Exception as error:  # urllib's and ansible's errors alike; one sentence for the operator
        raise CapstanError('deploy_src %s could not be downloaded on this host: %s' % (url, error))
    fd = os.open(dest, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        while True:
            block = response.read(manifests.CHUNK)
            if not block:
                break
            _fsops.write_all(fd, block)
        os.fsync(fd)
    except (IOError, OSError) as error:
        raise CapstanError('deploy_src %s could not be downloaded on this host: %s' % (url, error))
    finally:
        os.close(fd)
        close = getattr(response, 'close', None)
        if close:
            close()


def build_from_archive(deploy_to, name, src, revision, checksum=None, opener=None, check=False):
    """Put the archive of ``revision`` (its sha256) into release ``name``; a download is removed after.

    A URL's download is the one resolve_archive kept, or, when that host already ran the
    revision, a new one that must have the same sha256.
    """
    tree = _releases.Tree(deploy_to)
    _releases.check_release_name(name)
    if not isinstance(revision, str) or not manifests.SHA256_RE.match(revision):
        raise CapstanError('revision must be the sha256 of the archive (64 hex digits), got %r' % (revision,))
    kind, location = archive_location(src)
    if kind == 'url':
        location = os.path.join(tree.state_dir, holdings.DOWNLOADS, '%s.archive' % revision)
        if check:
            path = builds.check_target(tree, name, check)
            return builds.build_result(name, path, revision, [], dict(manifests.summary([]), linked=0, sent=0, sent_bytes=0),
                                       linked=0, copied=0, written=0)
        if not os.path.isfile(location):
            sha, location = _fetch(opener, tree, src, src, parse_checksum(checksum))
            if sha != revision:
                _fsops.remove_file(location)
                raise CapstanError('deploy_src %s changed since the deploy started (its sha256 is %s, not %s)' % (src, sha, revision))
    elif _digests(location)[0] != revision:
        raise CapstanError('deploy_src %s changed since the deploy started (its sha256 is no longer %s)' % (src, revision))
    try:
        return builds.build_from_tar(deploy_to, name, location, revision=revision, check=check, what='deploy_src %s' % src)
    finally:
        if kind == 'url':
            _fsops.remove_file(location)
