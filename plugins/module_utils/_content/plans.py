# Copyright (c) 2026, capstan.release contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""The copy plan: which contents earlier releases of a host hold, what it lacks, and the bundle of that.

Host side: ``find_sources`` (also used by every build) and ``plan``. Controller side:
``write_bundle``, the tarball of only the contents the plan found missing.
"""

from __future__ import annotations

import hashlib
import os
import stat
import tarfile

from ansible_collections.capstan.release.plugins.module_utils import _fsops
from ansible_collections.capstan.release.plugins.module_utils import _releases
from ansible_collections.capstan.release.plugins.module_utils._content import holdings
from ansible_collections.capstan.release.plugins.module_utils._content import manifests
from ansible_collections.capstan.release.plugins.module_utils._errors import CapstanError


def _same_stat(info, recorded):
    return (stat.S_ISREG(info.st_mode) and info.st_size == recorded.get('size')
            and info.st_ino == recorded.get('ino') and info.st_mtime_ns == recorded.get('mtime_ns'))


def _plain_file(base, rel, real_dirs=None):
    """``base/rel`` and its lstat when it is a regular file reached through real directories only, else None.

    ``real_dirs`` caches the realpath of the directories seen (one per directory, not per file).
    """
    path = os.path.join(base, rel)
    try:
        info = os.lstat(path)
    except OSError:
        return None
    if not stat.S_ISREG(info.st_mode):
        return None
    real_dirs = {} if real_dirs is None else real_dirs
    parent = os.path.dirname(path)
    if parent not in real_dirs:
        real_dirs[parent] = os.path.realpath(parent)
    if base not in real_dirs:
        real_dirs[base] = os.path.realpath(base)
    if real_dirs[parent] != os.path.join(real_dirs[base], os.path.dirname(rel)).rstrip(os.sep):
        return None  # a directory on the way is a symlink (a linked dir into shared/, say)
    return path, info


def find_sources(tree, manifest, exclude=None):
    """{sha256: path} of files in earlier releases holding content ``manifest`` needs.

    Stored manifests are trusted when the file's inode, size and mtime still match what was
    recorded (a file edited in place is not); the current release's files at the same path
    are hashed when no trusted entry has their content (releases made by Capistrano, or an
    older tool, have no manifest). Empty files are never shared: they cost nothing to make.
    Nothing reached through a symlink counts.
    """
    needed = set(entry['sha256'] for entry in manifest if entry['type'] == 'file' and entry['size'] > 0)
    sources = {}
    real_dirs = {}
    names = [name for name in holdings.release_dirs(tree) if name != exclude]
    current = holdings.current_name(tree)
    order = ([current] if current in names else []) + [name for name in reversed(names) if name != current]
    for name in order:
        stored = holdings.read_stored(tree, name)
        if stored is None:
            continue
        base = tree.release_path(name)
        for recorded in stored['entries']:
            if not isinstance(recorded, dict) or recorded.get('type') != 'file':
                continue
            sha = recorded.get('sha256')
            if sha not in needed or sha in sources:
                continue
            try:
                rel = manifests.clean_path(recorded.get('path'), 'stored manifest')
            except CapstanError:
                continue
            found = _plain_file(base, rel, real_dirs) if rel else None
            if found and _same_stat(found[1], recorded):
                sources[sha] = found[0]
    fallback = current if current in names else (names[-1] if names else None)
    if fallback is not None:
        base = tree.release_path(fallback)
        for entry in manifest:
            if entry['type'] != 'file' or entry['sha256'] in sources or entry['sha256'] not in needed:
                continue
            found = _plain_file(base, entry['path'], real_dirs)
            if found is None or found[1].st_size != entry['size']:
                continue
            try:
                if manifests.hash_file(found[0])[0] == entry['sha256']:
                    sources[entry['sha256']] = found[0]
            except OSError:
                continue
    return sources


def plan(deploy_to, manifest, release=None):
    """What a build of ``manifest`` on this host needs sent: read-only, the same in check mode.

    The build works the same sources out again (under the deploy lock nothing moves in
    between), so only the missing contents cross the wire.
    """
    tree = _releases.Tree(deploy_to)
    manifest = manifests.load_manifest(manifest)
    if release is not None:
        _releases.check_release_name(release)
    sources = find_sources(tree, manifest, exclude=release)
    return dict(plan_counts(manifest, sources), changed=False, revision=manifests.digest(manifest),
                missing=sorted(missing_shas(manifest, sources)))


def missing_shas(manifest, sources):
    return set(entry['sha256'] for entry in manifest
               if entry['type'] == 'file' and entry['size'] > 0 and entry['sha256'] not in sources)


def plan_counts(manifest, sources):
    """linked: files an earlier release holds; sent: files to transfer (unique contents) and their bytes."""
    missing = {}
    linked = 0
    for entry in manifest:
        if entry['type'] != 'file' or entry['size'] == 0:
            continue
        if entry['sha256'] in sources:
            linked += 1
        else:
            missing[entry['sha256']] = entry['size']
    counts = manifests.summary(manifest)
    counts.update({'linked': linked, 'sent': len(missing), 'sent_bytes': sum(missing.values())})
    return counts


class _HashingReader(object):
    """A file wrapper that hashes what tarfile reads from it."""

    def __init__(self, handle):
        self.handle = handle
        self.hasher = hashlib.sha256()

    def read(self, size=-1):
        block = self.handle.read(size)
        self.hasher.update(block)
        return block


def _changed(what, path):
    return CapstanError('%s changed while it was being deployed (%s); run the deploy again' % (what, path))


def write_bundle(src, manifest, missing, dest, what='deploy_src'):
    """Write the tarball of the contents ``missing`` (sha256 list) to ``dest``, members named by sha256.

    Each content is read from ``src`` (directory or tarball) once and checked against the
    manifest on the way: a file changed since the manifest was made fails the bundle.
    Returns the number of bytes of content bundled.
    """
    wanted = set(missing)
    by_sha = {}
    for entry in manifest:
        if entry['type'] == 'file' and entry['sha256'] in wanted:
            by_sha.setdefault(entry['sha256'], entry)
    src = os.path.realpath(src)
    absent = wanted - set(by_sha)
    if absent:
        raise CapstanError('the plan asks for content the manifest does not hold: %s' % ', '.join(sorted(absent)))
    total = 0
    with tarfile.open(dest, 'w:gz', compresslevel=1) as bundle:
        if _fsops.is_real_dir(src):
            for sha in sorted(by_sha):
                entry = by_sha[sha]
                path = os.path.join(src, entry['path'])
                info = tarfile.TarInfo(sha)
                info.size, info.mode = entry['size'], 0o600
                fd = os.open(path, os.O_RDONLY | getattr(os, 'O_NOFOLLOW', 0))
                with os.fdopen(fd, 'rb') as handle:
                    if os.fstat(handle.fileno()).st_size != entry['size']:
                        raise _changed(what, entry['path'])
                    reader = _HashingReader(handle)
                    bundle.addfile(info, reader)
                if reader.hasher.hexdigest() != sha:
                    raise _changed(what, entry['path'])
                total += entry['size']
        else:
            paths = dict((entry['path'], sha) for sha, entry in by_sha.items())
            tar = manifests.open_tar(src, what)
            try:
                for rel, member in manifests.tar_members(tar, what):
                    sha = paths.pop(rel, None)
                    if sha is None or member.isdir() or member.issym():
                        continue
                    info = tarfile.TarInfo(sha)
                    info.size, info.mode = by_sha[sha]['size'], 0o600
                    handle = tar.extractfile(member)
                    if handle is None or member.size != info.size and member.isreg():
                        raise _changed(what, rel)
                    reader = _HashingReader(handle)
                    bundle.addfile(info, reader)
                    if reader.hasher.hexdigest() != sha:
                        raise _changed(what, rel)
                    total += info.size
            finally:
                tar.close()
            if paths:
                raise _changed(what, ', '.join(sorted(paths)))
    return total
