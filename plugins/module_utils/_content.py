# Copyright (c) 2026, capstan.release contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""What a release holds, and how it gets there: manifests, plans, safe builds, the three sources.

A manifest lists every entry of a release's content, sorted by path:

    {"path": "public/index.html", "type": "file", "mode": 420, "size": 11, "sha256": "...", "mtime": 1763700000}
    {"path": "public", "type": "dir", "mode": 493}
    {"path": "public/latest", "type": "symlink", "target": "index.html"}

Its digest (``digest``) covers paths, types, modes, contents and link targets, never times,
so modes, symlinks and empty directories count. Each release built here keeps its manifest
in ``<deploy_to>/.capstan/manifests/<release>.json`` with the inode, size and mtime each file
had when built, so a later build finds identical content by a stat instead of a read.

Building a release (``build``) hard links every non-empty file whose content and mode an
earlier release already holds, and writes only the rest, from a tarball: the controller's
bundle of missing content (copy), ``git archive`` of the mirror (git), or the archive itself
(archive). Nothing is written outside the release: no absolute path, no ``..``, nothing
through a symlink, no device, fifo or socket.

Controller side (copy): ``scan_source`` and ``write_bundle``. Host side: ``plan``, ``build``,
``resolve_git``, ``resolve_archive``, ``build_from_tar``.
"""

from __future__ import annotations

import errno
import hashlib
import io
import json
import os
import re
import stat
import tarfile
import tempfile

from ansible_collections.capstan.release.plugins.module_utils import _fsops
from ansible_collections.capstan.release.plugins.module_utils import _releases
from ansible_collections.capstan.release.plugins.module_utils._errors import CapstanError

TYPES = ('dir', 'file', 'symlink')
CHUNK = 1024 * 1024
MANIFESTS = 'manifests'
DOWNLOADS = 'downloads'
TARBALL_SUFFIXES = ('.tar', '.tar.gz', '.tgz', '.tar.bz2', '.tbz2', '.tar.xz', '.txz')
_SHA256_RE = re.compile(r'^[0-9a-f]{64}\Z')
_SHA1_RE = re.compile(r'^[0-9a-f]{40}\Z')
_CHECKSUM_RE = re.compile(r'^(md5|sha1|sha224|sha256|sha384|sha512):([0-9a-fA-F]+)\Z')
DIR_MODE = 0o755


# ---------------------------------------------------------------------------------------------
# Manifests


def _hash_stream(handle, sink=None):
    """sha256 hex and size of what ``handle`` yields, copied to ``sink`` on the way if given."""
    digest = hashlib.sha256()
    size = 0
    while True:
        block = handle.read(CHUNK)
        if not block:
            break
        digest.update(block)
        size += len(block)
        if sink is not None:
            sink(block)
    return digest.hexdigest(), size


def hash_file(path):
    """sha256 hex and size of the file at ``path`` (not followed if it is a symlink)."""
    fd = os.open(path, os.O_RDONLY | getattr(os, 'O_NOFOLLOW', 0))
    with os.fdopen(fd, 'rb') as handle:
        return _hash_stream(handle)


def clean_path(name, what):
    """``name`` as a plain relative path (``a/b``), or None for the root; refuses escapes."""
    if not isinstance(name, str) or '\x00' in name:
        raise CapstanError('%s holds an entry whose name is not text: %r' % (what, name))
    try:
        name.encode('utf-8')
    except UnicodeError:
        raise CapstanError('%s holds a name that is not UTF-8: %r; rename it' % (what, name))
    if name.startswith('/'):
        raise CapstanError('%s holds an absolute path %r: every entry must be relative to the release' % (what, name))
    parts = [part for part in name.split('/') if part not in ('', '.')]
    if '..' in parts:
        raise CapstanError('%s holds %r, a path with "..": every entry must stay inside the release' % (what, name))
    return '/'.join(parts) or None


def _link_escapes(path, target):
    """True when symlink ``path`` -> ``target`` would point outside the release."""
    if not target or target.startswith('/'):
        return True
    depth = len(path.split('/')) - 1
    for part in target.split('/'):
        if part in ('', '.'):
            continue
        depth = depth - 1 if part == '..' else depth + 1
        if depth < 0:
            return True
    return False


def _dir_entry(path, mode):
    return {'path': path, 'type': 'dir', 'mode': stat.S_IMODE(mode) & 0o777}


def _file_entry(path, mode, size, sha256, mtime=None):
    entry = {'path': path, 'type': 'file', 'mode': stat.S_IMODE(mode) & 0o777, 'size': size, 'sha256': sha256}
    if mtime is not None:
        entry['mtime'] = int(mtime)
    return entry


def _link_entry(path, target):
    return {'path': path, 'type': 'symlink', 'target': target}


def check_manifest(manifest, what='manifest'):
    """Validate a manifest and return it sorted by path, in its plain form.

    Every entry's parent must be a directory of the manifest (so nothing is ever written
    through a symlink), symlinks must stay inside the release, paths are unique.
    """
    if not isinstance(manifest, list):
        raise CapstanError('%s must be a list of entries, got %r' % (what, type(manifest).__name__))
    entries = {}
    for raw in manifest:
        if not isinstance(raw, dict) or raw.get('type') not in TYPES:
            raise CapstanError('%s entries must have a type of %s, got %r' % (what, ', '.join(TYPES), raw))
        path = clean_path(raw.get('path'), what)
        if path is None:
            raise CapstanError('%s holds an entry for the release root itself: %r' % (what, raw))
        if path in entries:
            raise CapstanError('%s lists %s twice' % (what, path))
        kind = raw['type']
        if kind == 'symlink':
            target = raw.get('target')
            if not isinstance(target, str) or _link_escapes(path, target):
                raise CapstanError('%s holds symlink %s -> %s, which points outside the release; only links within '
                                   'the release are deployed (shared paths: deploy_linked_dirs, deploy_linked_files)'
                                   % (what, path, target))
            entry = _link_entry(path, target)
        else:
            mode = raw.get('mode')
            if not isinstance(mode, int) or isinstance(mode, bool) or not 0 <= mode <= 0o7777:
                raise CapstanError('%s entry %s has mode %r; a permission number is expected' % (what, path, mode))
            if kind == 'dir':
                entry = _dir_entry(path, mode)
            else:
                size, sha = raw.get('size'), raw.get('sha256')
                if not isinstance(size, int) or isinstance(size, bool) or size < 0 or not isinstance(sha, str) or not _SHA256_RE.match(sha):
                    raise CapstanError('%s entry %s needs a size and a sha256 (64 hex digits), got %r, %r' % (what, path, size, sha))
                mtime = raw.get('mtime')
                entry = _file_entry(path, mode, size, sha, mtime if isinstance(mtime, int) and not isinstance(mtime, bool) else None)
        entries[path] = entry
    for path in entries:
        parent = path.rpartition('/')[0]
        if parent and (parent not in entries or entries[parent]['type'] != 'dir'):
            found = entries.get(parent)
            raise CapstanError('%s holds %s, but its parent %s is %s: entries may only sit in directories'
                               % (what, path, parent, 'a ' + found['type'] if found else 'missing'))
    return [entries[path] for path in sorted(entries)]


def scan_dir(root, what='deploy_src'):
    """The manifest of directory ``root``: every entry under it, symlinks not followed."""
    if not _fsops.is_real_dir(root):
        raise CapstanError('%s must be a directory or a tarball, got %r' % (what, root))
    entries = []
    pending = ['']
    while pending:
        rel_dir = pending.pop()
        with os.scandir(os.path.join(root, rel_dir)) as listing:
            found = sorted(listing, key=lambda item: item.name)
        for item in found:
            rel = clean_path(rel_dir + '/' + item.name if rel_dir else item.name, what)
            info = item.stat(follow_symlinks=False)
            if stat.S_ISDIR(info.st_mode):
                entries.append(_dir_entry(rel, info.st_mode))
                pending.append(rel)
            elif stat.S_ISREG(info.st_mode):
                sha, size = hash_file(item.path)
                entries.append(_file_entry(rel, info.st_mode, size, sha, info.st_mtime))
            elif stat.S_ISLNK(info.st_mode):
                entries.append(_link_entry(rel, os.readlink(item.path)))
            else:
                raise CapstanError('%s holds %s, which is not a file, directory or symlink (a device, fifo or socket); '
                                   'only those three are deployed' % (what, rel))
    return check_manifest(entries, what)


def _tar_members(tar, what):
    """(clean path, member) of every member but the root; refuses what cannot be deployed."""
    for member in tar:
        path = clean_path(member.name, what)
        if path is None:
            if member.isdir():
                continue
            raise CapstanError('%s holds a member named %r that is not a directory' % (what, member.name))
        if not (member.isdir() or member.isreg() or member.islnk() or member.issym()):
            raise CapstanError('%s holds %s, which is not a file, directory or symlink (a device, fifo or socket); '
                               'only those three are deployed' % (what, member.name))
        yield path, member


def open_tar(path, what):
    """Open a tarball (plain, gzip, bzip2 or xz; a path, or bytes) for reading, or refuse it naming ``what``."""
    try:
        if isinstance(path, bytes):
            return tarfile.open(fileobj=io.BytesIO(path), mode='r:*')
        return tarfile.open(path, 'r:*')
    except (tarfile.TarError, EOFError, OSError) as error:
        raise CapstanError('%s %s is not a readable tarball (.tar, .tar.gz, .tgz, .tar.bz2, .tar.xz): %s'
                           % (what, '(inline)' if isinstance(path, bytes) else path, error))


def scan_tar(path, what='deploy_src'):
    """The manifest of tarball ``path``, as ``tar -x`` into an empty release would leave it.

    A path may repeat only as a directory (the last mode wins); a hard link member is a file
    with its target's content; directories only implied by a member's path get mode 0755.
    """
    entries = {}
    tar = open_tar(path, what)
    try:
        for rel, member in _tar_members(tar, what):
            if rel in entries and not (member.isdir() and entries[rel]['type'] == 'dir'):
                raise CapstanError('%s holds %s twice; only directories may repeat in a tarball that is deployed' % (what, rel))
            if member.isdir():
                entries[rel] = _dir_entry(rel, member.mode)
            elif member.issym():
                entries[rel] = _link_entry(rel, member.linkname)
            else:
                handle = tar.extractfile(member)
                if handle is None:
                    raise CapstanError('%s holds %s whose content cannot be read' % (what, member.name))
                with handle:
                    sha, size = _hash_stream(handle)
                entries[rel] = _file_entry(rel, member.mode, size, sha, member.mtime)
    except (tarfile.TarError, EOFError, KeyError) as error:
        raise CapstanError('%s %s is not a readable tarball: %s' % (what, path, error))
    finally:
        tar.close()
    for rel in list(entries):
        parent = rel.rpartition('/')[0]
        while parent and parent not in entries:
            entries[parent] = _dir_entry(parent, DIR_MODE)
            parent = parent.rpartition('/')[0]
    return check_manifest(list(entries.values()), what)


def is_tarball_name(path):
    return isinstance(path, str) and path.lower().endswith(TARBALL_SUFFIXES)


def scan_source(src, what='deploy_src'):
    """The manifest of a controller source: a directory or a tarball (``src`` itself may be a symlink to one)."""
    src = os.path.realpath(src) if isinstance(src, str) and src else src
    if _fsops.is_real_dir(src):
        return scan_dir(src, what)
    if os.path.isfile(src) and is_tarball_name(src):
        return scan_tar(src, what)
    raise CapstanError('%s must be a directory or a tarball (%s) on the controller, got %r'
                       % (what, ', '.join(TARBALL_SUFFIXES), src))


def digest(manifest):
    """The revision of a content: sha256 over paths, types, modes, contents and link targets."""
    hasher = hashlib.sha256()
    for entry in sorted(manifest, key=lambda item: item['path']):
        if entry['type'] == 'file':
            line = ['file', entry['path'], entry['mode'], entry['sha256']]
        elif entry['type'] == 'dir':
            line = ['dir', entry['path'], entry['mode']]
        else:
            line = ['symlink', entry['path'], entry['target']]
        hasher.update(json.dumps(line, separators=(',', ':'), ensure_ascii=False).encode('utf-8') + b'\n')
    return hasher.hexdigest()


def summary(manifest):
    """How many entries of each kind a manifest holds, and the bytes of its files."""
    counts = {'files': 0, 'dirs': 0, 'symlinks': 0, 'bytes': 0}
    for entry in manifest:
        counts[{'file': 'files', 'dir': 'dirs', 'symlink': 'symlinks'}[entry['type']]] += 1
        counts['bytes'] += entry.get('size', 0)
    return counts


# ---------------------------------------------------------------------------------------------
# The controller's bundle of missing content (copy)


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
            tar = open_tar(src, what)
            try:
                for rel, member in _tar_members(tar, what):
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


# ---------------------------------------------------------------------------------------------
# Host side: stored manifests, plans, builds


def manifest_path(tree, name):
    return os.path.join(tree.state_dir, MANIFESTS, '%s.json' % _releases.check_release_name(name))


def read_stored(tree, name):
    """The manifest stored for release ``name`` (a dict), or None when it has none or it is unreadable."""
    text = _fsops.read_text(manifest_path(tree, name))
    if not text:
        return None
    try:
        stored = json.loads(text)
    except ValueError:
        return None
    if not isinstance(stored, dict) or not isinstance(stored.get('entries'), list):
        return None
    return stored


def _release_dirs(tree):
    try:
        names = os.listdir(tree.releases)
    except OSError:
        return []
    return _releases.sort_names(name for name in names if _fsops.is_real_dir(os.path.join(tree.releases, name)))


def _current_name(tree):
    try:
        target = os.readlink(tree.current)
    except OSError:
        return None
    name = os.path.basename(os.path.normpath(os.path.join(tree.deploy_to, target)))
    return name if _releases.is_release_name(name) else None


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
    names = [name for name in _release_dirs(tree) if name != exclude]
    current = _current_name(tree)
    order = ([current] if current in names else []) + [name for name in reversed(names) if name != current]
    for name in order:
        stored = read_stored(tree, name)
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
                rel = clean_path(recorded.get('path'), 'stored manifest')
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
                if hash_file(found[0])[0] == entry['sha256']:
                    sources[entry['sha256']] = found[0]
            except OSError:
                continue
    return sources


def load_manifest(manifest, what='manifest'):
    """A manifest given as a list of entries or as that list in JSON (how the action plugin sends it), checked."""
    if isinstance(manifest, str):
        try:
            manifest = json.loads(manifest)
        except ValueError as error:
            raise CapstanError('%s must be a list of entries or that list as JSON: %s' % (what, error))
    return check_manifest(manifest, what)


def dump_manifest(manifest):
    """The manifest as compact JSON: one string crosses Ansible far faster than thousands of dicts."""
    return json.dumps(manifest, separators=(',', ':'), ensure_ascii=False)


def plan(deploy_to, manifest, release=None):
    """What a build of ``manifest`` on this host needs sent: read-only, the same in check mode.

    The build works the same sources out again (under the deploy lock nothing moves in
    between), so only the missing contents cross the wire.
    """
    tree = _releases.Tree(deploy_to)
    manifest = load_manifest(manifest)
    if release is not None:
        _releases.check_release_name(release)
    sources = find_sources(tree, manifest, exclude=release)
    return dict(_counts(manifest, sources), changed=False, revision=digest(manifest),
                missing=sorted(_missing(manifest, sources)))


def _missing(manifest, sources):
    return set(entry['sha256'] for entry in manifest
               if entry['type'] == 'file' and entry['size'] > 0 and entry['sha256'] not in sources)


def _counts(manifest, sources):
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
    counts = summary(manifest)
    counts.update({'linked': linked, 'sent': len(missing), 'sent_bytes': sum(missing.values())})
    return counts


class _Builder(object):
    """Makes the entries of a manifest inside an empty release directory."""

    def __init__(self, root, manifest, sources):
        self.root = root
        self.manifest = manifest
        self.sources = sources
        self.done = {}      # sha256 -> path in this release holding it (with the mode of its first entry)
        self.linked = 0
        self.copied = 0
        self.written = 0
        self.uid = os.geteuid()
        self.gid = os.getegid()

    def path(self, entry):
        return os.path.join(self.root, entry['path'])

    def make_dirs(self):
        for entry in self.manifest:
            if entry['type'] == 'dir':
                os.mkdir(self.path(entry), 0o700)

    def finish_dirs(self):
        for entry in reversed(self.manifest):
            if entry['type'] == 'dir':
                os.chmod(self.path(entry), entry['mode'])
        for entry in self.manifest:
            if entry['type'] == 'dir':
                _fsops.fsync_dir(self.path(entry))
        _fsops.fsync_dir(self.root)

    def make_links(self):
        for entry in self.manifest:
            if entry['type'] == 'symlink':
                os.symlink(entry['target'], self.path(entry))

    def _link(self, source, entry):
        """Hard link ``source`` to the entry when it can stand for it; False when it cannot."""
        try:
            info = os.lstat(source)
        except OSError:
            return False
        if not (stat.S_ISREG(info.st_mode) and info.st_size == entry['size'] and stat.S_IMODE(info.st_mode) == entry['mode']
                and info.st_uid == self.uid and info.st_gid == self.gid):
            return False
        try:
            os.link(source, self.path(entry))
        except OSError as error:
            if error.errno in (errno.EMLINK, errno.EXDEV, errno.EPERM, errno.EACCES):
                return False
            raise
        return True

    def write(self, entry, handle, what):
        """Write ``handle``'s content as the entry's file, checked against its sha256 on the way."""
        fd = os.open(self.path(entry), os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, 'O_NOFOLLOW', 0), 0o600)
        try:
            sha, size = _hash_stream(handle, lambda block: _write_all(fd, block))
            if sha != entry['sha256'] or size != entry['size']:
                raise CapstanError('%s: the content of %s does not match its manifest (sha256 %s, expected %s)'
                                   % (what, entry['path'], sha, entry['sha256']))
            os.fchmod(fd, entry['mode'])
            if 'mtime' in entry:
                os.utime(fd, (entry['mtime'], entry['mtime']))
            os.fsync(fd)
        finally:
            os.close(fd)
        self.done.setdefault(entry['sha256'], self.path(entry))

    def place_known(self, what):
        """Every file whose content is local: linked from an earlier release (or this one), else copied."""
        for entry in self.manifest:
            if entry['type'] != 'file':
                continue
            if entry['size'] == 0:
                self.write(entry, _Empty(), what)
                continue
            source = self.done.get(entry['sha256']) or self.sources.get(entry['sha256'])
            if source is None:
                continue
            if self._link(source, entry):
                self.linked += 1
                self.done.setdefault(entry['sha256'], self.path(entry))
                continue
            fd = os.open(source, os.O_RDONLY | getattr(os, 'O_NOFOLLOW', 0))
            with os.fdopen(fd, 'rb') as handle:
                self.write(entry, handle, what)
            self.copied += 1

    def pending(self):
        """Entries still without content: sha256 -> list of entries."""
        waiting = {}
        for entry in self.manifest:
            if entry['type'] == 'file' and not os.path.lexists(self.path(entry)):
                waiting.setdefault(entry['sha256'], []).append(entry)
        return waiting

    def place(self, entries, handle, what):
        """Write the first entry of a content from ``handle``, link (or copy) the others to it."""
        first = entries[0]
        self.write(first, handle, what)
        self.written += 1
        for entry in entries[1:]:
            if self._link(self.path(first), entry):
                self.linked += 1
            else:
                fd = os.open(self.path(first), os.O_RDONLY)
                with os.fdopen(fd, 'rb') as source:
                    self.write(entry, source, what)
                self.copied += 1


class _Empty(object):
    def read(self, _size=-1):
        return b''


def _write_all(fd, block):
    view = memoryview(block)
    while view:
        view = view[os.write(fd, view):]


def _check_target(tree, name, check):
    """The release to build into: unfinished and empty (missing only in check mode)."""
    path = tree.release_path(name)
    state = _releases.Snapshot(tree).states.get(name)
    if state is None:
        if check:
            return path
        raise CapstanError('release %s does not exist in %s; create it first (release_dir state=present)' % (name, tree.releases))
    if state != 'unfinished':
        raise CapstanError('release %s is %s; content only goes into a new, unfinished release' % (name, state))
    if os.listdir(path):
        raise CapstanError('release %s already holds content; a new deploy needs a new release' % name)
    return path


def _store_manifest(tree, name, manifest, revision):
    """Record the manifest of a built release with each file's inode, size and mtime; drop those of gone releases."""
    root = tree.release_path(name)
    entries = []
    for entry in manifest:
        entry = dict(entry)
        if entry['type'] == 'file':
            info = os.lstat(os.path.join(root, entry['path']))
            entry.update({'ino': info.st_ino, 'mtime_ns': info.st_mtime_ns})
        entries.append(entry)
    folder = os.path.join(tree.state_dir, MANIFESTS)
    if not os.path.isdir(folder):
        os.makedirs(folder)
    path = manifest_path(tree, name)
    _fsops.write_file_atomic(path, json.dumps({'release': name, 'revision': revision, 'entries': entries},
                                              sort_keys=True, separators=(',', ':')) + '\n', 0o600)
    existing = set(_release_dirs(tree))
    removed = []
    for item in sorted(os.listdir(folder)):
        stem = item[:-len('.json')] if item.endswith('.json') else None
        if stem and _releases.is_release_name(stem) and stem not in existing:
            _fsops.remove_file(os.path.join(folder, item))
            removed.append(stem)
    return path, removed


def _result(name, path, revision, manifest, counts, changed=True, **extra):
    result = dict(counts)
    result.update({
        'changed': changed,
        'release': name,
        'release_path': path,
        'revision': revision,
        'diff': {'before': {'release': name, 'files': 0},
                 'after': {'release': name, 'files': counts['files'], 'dirs': counts['dirs'], 'symlinks': counts['symlinks'],
                           'linked': counts['linked'], 'sent': counts['sent']}},
    })
    result.update(extra)
    return result


def build(deploy_to, name, manifest, bundle=None, revision=None, check=False, what='deploy_src'):
    """Put the content of ``manifest`` into release ``name``: links for what earlier releases hold, the rest from ``bundle``.

    ``bundle`` is a tarball whose members are named by the sha256 of their content (see
    write_bundle), holding what plan() found missing: its path on the host, or its bytes. When
    ``revision`` is given it must be the manifest's digest.
    """
    tree = _releases.Tree(deploy_to)
    manifest = load_manifest(manifest, what)
    _releases.check_release_name(name)
    revision_of = digest(manifest)
    if revision is not None and revision != revision_of:
        raise CapstanError('the manifest has digest %s, not the revision %s this deploy resolved' % (revision_of, revision))
    sources = find_sources(tree, manifest, exclude=name)
    path = _check_target(tree, name, check)
    counts = _counts(manifest, sources)
    if check:
        return _result(name, path, revision_of, manifest, counts, linked=counts['linked'], copied=0, written=counts['sent'])
    builder = _Builder(path, manifest, sources)
    builder.make_dirs()
    builder.place_known(what)
    waiting = builder.pending()
    if waiting:
        if bundle is None:
            raise CapstanError('%s: %d contents are neither in an earlier release nor sent' % (what, len(waiting)))
        tar = open_tar(bundle, 'the bundle')
        try:
            for member in tar:
                entries = waiting.pop(member.name, None)
                if entries is None or not member.isreg():
                    continue
                handle = tar.extractfile(member)
                with handle:
                    builder.place(entries, handle, what)
        finally:
            tar.close()
        if waiting:
            raise CapstanError('%s: the bundle lacks the content of %s' % (what, ', '.join(sorted(e['path'] for v in waiting.values() for e in v))))
    builder.make_links()
    builder.finish_dirs()
    stored, removed = _store_manifest(tree, name, manifest, revision_of)
    counts['linked'] = builder.linked
    return _result(name, path, revision_of, manifest, counts, linked=builder.linked, copied=builder.copied,
                   written=builder.written, manifest_path=stored, manifests_removed=removed)


def build_from_tar(deploy_to, name, tarball, revision=None, check=False, what='deploy_src', manifest=None):
    """Put the content of tarball ``tarball`` (on this host) into release ``name``, linking what earlier releases hold.

    The tarball is read twice: once for its manifest, once for the contents no earlier release
    has. ``revision`` is recorded in the stored manifest as is (git sha or archive sha256).
    """
    tree = _releases.Tree(deploy_to)
    _releases.check_release_name(name)
    manifest = manifest if manifest is not None else scan_tar(tarball, what)
    sources = find_sources(tree, manifest, exclude=name)
    path = _check_target(tree, name, check)
    counts = _counts(manifest, sources)
    counts['sent'] = counts['sent_bytes'] = 0
    if check:
        return _result(name, path, revision, manifest, counts, linked=counts['linked'], copied=0,
                       written=len(_missing(manifest, sources)))
    builder = _Builder(path, manifest, sources)
    builder.make_dirs()
    builder.place_known(what)
    waiting = builder.pending()
    by_path = dict((entry['path'], sha) for sha, entries in waiting.items() for entry in entries)
    if waiting:
        tar = open_tar(tarball, what)
        try:
            for rel, member in _tar_members(tar, what):
                sha = by_path.get(rel)
                if sha is None or sha not in waiting or member.isdir() or member.issym():
                    continue
                handle = tar.extractfile(member)
                with handle:
                    builder.place(waiting.pop(sha), handle, what)
        finally:
            tar.close()
        if waiting:
            raise CapstanError('%s changed while it was being deployed: %s' % (what, ', '.join(sorted(
                entry['path'] for entries in waiting.values() for entry in entries))))
    builder.make_links()
    builder.finish_dirs()
    stored, removed = _store_manifest(tree, name, manifest, revision or digest(manifest))
    return _result(name, path, revision, manifest, counts, linked=builder.linked, copied=builder.copied,
                   written=builder.written, manifest_path=stored, manifests_removed=removed)


# ---------------------------------------------------------------------------------------------
# git: a mirror in <deploy_to>/repo, releases exported with git archive


def _git(runner, args, cwd=None, what='deploy_repo_url'):
    rc, out, err = runner(['git'] + args, cwd)
    if rc != 0:
        detail = (err or out or '').strip()
        detail = detail.splitlines()[-1] if detail else 'exit code %d' % rc
        command = [arg for arg in args if not arg.startswith('-') and '=' not in arg][:1] or args[:1]
        raise CapstanError('%s: git %s failed: %s' % (what, command[0], detail))
    return out


def check_version(version):
    """Refuse a deploy_version git would read as an option or cannot name."""
    if version and (version.startswith('-') or any(ch.isspace() or ord(ch) < 32 for ch in version) or '..' in version):
        raise CapstanError('deploy_version must be a branch, tag or commit sha, got %r' % version)
    return version or ''


def check_repo_url(url):
    if not isinstance(url, str) or not url.strip() or url.startswith('-') or '\n' in url:
        raise CapstanError('deploy_repo_url must be the URL of a git repository, got %r' % (url,))
    return url


def _remote_url(runner, repo):
    rc, out, _err = runner(['git', 'config', '--get', 'remote.origin.url'], repo)
    return out.strip() if rc == 0 else None


def update_mirror(runner, deploy_to, repo_url):
    """Clone ``repo_url`` as a mirror in <deploy_to>/repo the first time, fetch it later (pruned)."""
    tree = _releases.Tree(deploy_to)
    check_repo_url(repo_url)
    if os.path.isdir(os.path.join(tree.repo, 'objects')):
        if _remote_url(runner, tree.repo) != repo_url:
            _git(runner, ['remote', 'set-url', 'origin', repo_url], tree.repo)
        _git(runner, ['remote', 'update', '--prune'], tree.repo)
        return False
    if os.path.lexists(tree.repo):
        raise CapstanError('%s exists and is not a git mirror; move it away to deploy with deploy_strategy=git' % tree.repo)
    if not os.path.isdir(tree.deploy_to):
        os.makedirs(tree.deploy_to)
    _git(runner, ['clone', '--mirror', '--quiet', '--', repo_url, tree.repo])
    return True


def _rev_parse(runner, repo, version):
    rc, out, _err = runner(['git', 'rev-parse', '--verify', '--quiet', '%s^{commit}' % version], repo)
    return out.strip() if rc == 0 and _SHA1_RE.match(out.strip()) else None


def _default_branch(runner, repo):
    rc, out, _err = runner(['git', 'symbolic-ref', '--quiet', '--short', 'HEAD'], repo)
    return out.strip() if rc == 0 and out.strip() else None


def resolve_git(runner, deploy_to, repo_url, version=None, check=False):
    """The commit ``version`` (branch, tag or sha; empty: the remote's HEAD) names, after updating the mirror.

    In check mode the mirror is left alone: the remote is asked with ls-remote (a full sha is
    taken as it is), or the mirror as it stands answers for an abbreviated sha.
    """
    tree = _releases.Tree(deploy_to)
    check_repo_url(repo_url)
    version = check_version(version)
    if check:
        return _resolve_git_check(runner, tree, repo_url, version)
    created = update_mirror(runner, deploy_to, repo_url)
    sha = _rev_parse(runner, tree.repo, version or 'HEAD')
    if sha is None:
        raise CapstanError('deploy_version %r is not a branch, tag or commit of %s' % (version or 'HEAD', repo_url))
    when = _git(runner, ['show', '-s', '--format=%ct', sha], tree.repo).strip()
    branch = version or _default_branch(runner, tree.repo) or 'HEAD'
    return {'changed': created, 'revision': sha, 'revision_time': when, 'branch': branch, 'repo_path': tree.repo,
            'diff': {'before': {'repo': tree.repo if not created else None}, 'after': {'repo': tree.repo, 'revision': sha}}}


def _resolve_git_check(runner, tree, repo_url, version):
    branch = version
    if version and _SHA1_RE.match(version):
        sha = version
    else:
        args = ['ls-remote', '--symref', '--', repo_url] + ([version, version + '^{}'] if version else ['HEAD'])
        refs = {}
        for line in _git(runner, args).splitlines():
            left, _tab, ref = line.partition('\t')
            if left.startswith('ref: '):
                branch = branch or left[len('ref: '):].replace('refs/heads/', '', 1)
            elif ref:
                refs[ref] = left
        sha = None
        for ref in ('HEAD',) if not version else ('refs/heads/' + version, 'refs/tags/' + version + '^{}', 'refs/tags/' + version):
            if ref in refs:
                sha = refs[ref]
                break
        if sha is None and version and os.path.isdir(os.path.join(tree.repo, 'objects')):
            sha = _rev_parse(runner, tree.repo, version)
        if sha is None:
            raise CapstanError('deploy_version %r is not a branch, tag or commit of %s' % (version or 'HEAD', repo_url))
    return {'changed': not os.path.isdir(os.path.join(tree.repo, 'objects')), 'revision': sha, 'revision_time': None,
            'branch': branch or 'HEAD', 'repo_path': tree.repo,
            'diff': {'before': {'repo': None}, 'after': {'repo': tree.repo, 'revision': sha}}}


def build_from_git(runner, deploy_to, name, sha, check=False):
    """Export commit ``sha`` of the mirror (no .git) into release ``name``, linking what earlier releases hold."""
    tree = _releases.Tree(deploy_to)
    _releases.check_release_name(name)
    if not isinstance(sha, str) or not _SHA1_RE.match(sha):
        raise CapstanError('revision must be the full sha (40 hex digits) of the commit to deploy, got %r' % (sha,))
    if check:
        path = _check_target(tree, name, check)
        counts = dict(summary([]), linked=0, sent=0, sent_bytes=0)
        return _result(name, path, sha, [], counts, linked=0, copied=0, written=0)
    if not os.path.isdir(os.path.join(tree.repo, 'objects')):
        raise CapstanError('%s is not a git mirror; the deploy resolves deploy_version (and makes the mirror) first' % tree.repo)
    folder = os.path.join(tree.state_dir, DOWNLOADS)
    if not os.path.isdir(folder):
        os.makedirs(folder)
    tarball = os.path.join(folder, 'git-%s.tar' % name)
    _fsops.remove_file(tarball)
    try:
        _git(runner, ['-c', 'tar.umask=0022', 'archive', '--format=tar', '-o', tarball, sha], tree.repo, what='deploy_version')
        return build_from_tar(deploy_to, name, tarball, revision=sha, what='commit %s of deploy_repo_url' % sha[:12])
    finally:
        _fsops.remove_file(tarball)


# ---------------------------------------------------------------------------------------------
# archive: a tarball at a URL or a path on the host


def parse_checksum(checksum):
    """(algorithm, lower-case hex) of ``<algorithm>:<hex>``, or None for no checksum."""
    if not checksum:
        return None
    match = _CHECKSUM_RE.match(checksum)
    if not match:
        raise CapstanError('deploy_src_checksum must be <algorithm>:<hex digest> with an algorithm of md5, sha1, sha224, '
                           'sha256, sha384 or sha512, got %r' % (checksum,))
    return match.group(1), match.group(2).lower()


def archive_location(src):
    """('url', url) for http(s), ('path', path) for file:// URLs and absolute paths; refuses anything else."""
    if not isinstance(src, str) or not src:
        raise CapstanError('deploy_src must be an http(s):// or file:// URL or an absolute path on the hosts, got %r' % (src,))
    lowered = src.lower()
    if lowered.startswith(('http://', 'https://')):
        return 'url', src
    if lowered.startswith('file://'):
        path = src[len('file://'):]
        if not path.startswith('/'):
            raise CapstanError('deploy_src file:// URLs must name an absolute path (file:///srv/app.tar.gz), got %r' % src)
        return 'path', _unquote(path)
    if src.startswith('/'):
        return 'path', src
    raise CapstanError('deploy_src must be an http(s):// or file:// URL or an absolute path on the hosts, got %r' % src)


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
            block = handle.read(CHUNK)
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
    name = _current_name(tree)
    if name is None:
        return None
    return (_fsops.read_text(os.path.join(tree.releases, name, 'REVISION'), default='') or '').strip() or None


def _fetch(opener, tree, src, url, wanted, check=False):
    """Download ``url`` into <deploy_to>/.capstan/downloads, check it; returns (sha256, path of the download).

    In check mode the download is hashed and removed, and made in the system's temp
    directory when the tree has no downloads folder yet (check mode creates nothing).
    """
    folder = os.path.join(tree.state_dir, DOWNLOADS)
    if check and not os.path.isdir(folder):
        folder = tempfile.gettempdir()
    elif not os.path.isdir(folder):
        os.makedirs(folder)
    partial = os.path.join(folder, '.capstan-partial-%d' % os.getpid())
    try:
        _download(opener, url, partial)
        sha, other = _digests(partial, wanted[0] if wanted else None)
        if wanted:
            _check_sum(wanted, other, src)
        open_tar(partial, 'deploy_src %s' % src).close()
        final = os.path.join(folder, '%s.archive' % sha)
        if not check:
            os.rename(partial, final)
    finally:
        _fsops.remove_file(partial)
    return sha, final


def _drop_downloads(tree, keep=None):
    folder = os.path.join(tree.state_dir, DOWNLOADS)
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
        open_tar(location, 'deploy_src').close()
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
            block = response.read(CHUNK)
            if not block:
                break
            _write_all(fd, block)
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
    if not isinstance(revision, str) or not _SHA256_RE.match(revision):
        raise CapstanError('revision must be the sha256 of the archive (64 hex digits), got %r' % (revision,))
    kind, location = archive_location(src)
    if kind == 'url':
        location = os.path.join(tree.state_dir, DOWNLOADS, '%s.archive' % revision)
        if check:
            path = _check_target(tree, name, check)
            return _result(name, path, revision, [], dict(summary([]), linked=0, sent=0, sent_bytes=0),
                           linked=0, copied=0, written=0)
        if not os.path.isfile(location):
            sha, location = _fetch(opener, tree, src, src, parse_checksum(checksum))
            if sha != revision:
                _fsops.remove_file(location)
                raise CapstanError('deploy_src %s changed since the deploy started (its sha256 is %s, not %s)' % (src, sha, revision))
    elif _digests(location)[0] != revision:
        raise CapstanError('deploy_src %s changed since the deploy started (its sha256 is no longer %s)' % (src, revision))
    try:
        return build_from_tar(deploy_to, name, location, revision=revision, check=check, what='deploy_src %s' % src)
    finally:
        if kind == 'url':
            _fsops.remove_file(location)
