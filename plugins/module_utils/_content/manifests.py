# Copyright (c) 2026, capstan.release contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Manifests: what a release's content is, read from a directory or a tarball, checked, digested.

A manifest lists every entry of a release's content, sorted by path:

    {"path": "public/index.html", "type": "file", "mode": 420, "size": 11, "sha256": "...", "mtime": 1763700000}
    {"path": "public", "type": "dir", "mode": 493}
    {"path": "public/latest", "type": "symlink", "target": "index.html"}

Its digest (``digest``) covers paths, types, modes, contents and link targets, never times,
so modes, symlinks and empty directories count. ``check_manifest`` refuses what could write
outside a release: an absolute path, a ``..``, an entry under a symlink, a link that points
out, a device, fifo or socket. Used on the controller (``scan_source``) and on the hosts.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import re
import stat
import tarfile

from ansible_collections.capstan.release.plugins.module_utils import _fsops
from ansible_collections.capstan.release.plugins.module_utils._errors import CapstanError

TYPES = ('dir', 'file', 'symlink')
CHUNK = 1024 * 1024
TARBALL_SUFFIXES = ('.tar', '.tar.gz', '.tgz', '.tar.bz2', '.tbz2', '.tar.xz', '.txz')
SHA256_RE = re.compile(r'^[0-9a-f]{64}\Z')
DIR_MODE = 0o755


def hash_stream(handle, sink=None):
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
        return hash_stream(handle)


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
                if not isinstance(size, int) or isinstance(size, bool) or size < 0 or not isinstance(sha, str) or not SHA256_RE.match(sha):
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


def tar_members(tar, what):
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
        for rel, member in tar_members(tar, what):
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
                    sha, size = hash_stream(handle)
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
