# Copyright (c) 2026, capstan.release contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Building a release: hard links for what earlier releases hold, the rest written from a tarball.

``build`` hard links every non-empty file whose content and mode an earlier release already
holds, and writes only the rest, from the controller's bundle of missing content (copy);
``build_from_tar`` does the same from a tarball on the host (``git archive`` of the mirror, or
the archive itself). Nothing is written outside the release: no absolute path, no ``..``,
nothing through a symlink, no device, fifo or socket.
"""

from __future__ import annotations

import errno
import os
import stat

from ansible_collections.capstan.release.plugins.module_utils import _fsops
from ansible_collections.capstan.release.plugins.module_utils import _releases
from ansible_collections.capstan.release.plugins.module_utils._content import holdings
from ansible_collections.capstan.release.plugins.module_utils._content import manifests
from ansible_collections.capstan.release.plugins.module_utils._content import plans
from ansible_collections.capstan.release.plugins.module_utils._errors import CapstanError


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
            sha, size = manifests.hash_stream(handle, lambda block: _fsops.write_all(fd, block))
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


def check_target(tree, name, check):
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


def build_result(name, path, revision, manifest, counts, changed=True, **extra):
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
    manifest = manifests.load_manifest(manifest, what)
    _releases.check_release_name(name)
    revision_of = manifests.digest(manifest)
    if revision is not None and revision != revision_of:
        raise CapstanError('the manifest has digest %s, not the revision %s this deploy resolved' % (revision_of, revision))
    sources = plans.find_sources(tree, manifest, exclude=name)
    path = check_target(tree, name, check)
    counts = plans.plan_counts(manifest, sources)
    if check:
        return build_result(name, path, revision_of, manifest, counts, linked=counts['linked'], copied=0, written=counts['sent'])
    builder = _Builder(path, manifest, sources)
    builder.make_dirs()
    builder.place_known(what)
    waiting = builder.pending()
    if waiting:
        if bundle is None:
            raise CapstanError('%s: %d contents are neither in an earlier release nor sent' % (what, len(waiting)))
        tar = manifests.open_tar(bundle, 'the bundle')
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
    stored, removed = holdings.store_manifest(tree, name, manifest, revision_of)
    counts['linked'] = builder.linked
    return build_result(name, path, revision_of, manifest, counts, linked=builder.linked, copied=builder.copied,
                        written=builder.written, manifest_path=stored, manifests_removed=removed)


def build_from_tar(deploy_to, name, tarball, revision=None, check=False, what='deploy_src', manifest=None):
    """Put the content of tarball ``tarball`` (on this host) into release ``name``, linking what earlier releases hold.

    The tarball is read twice: once for its manifest, once for the contents no earlier release
    has. ``revision`` is recorded in the stored manifest as is (git sha or archive sha256).
    """
    tree = _releases.Tree(deploy_to)
    _releases.check_release_name(name)
    manifest = manifest if manifest is not None else manifests.scan_tar(tarball, what)
    sources = plans.find_sources(tree, manifest, exclude=name)
    path = check_target(tree, name, check)
    counts = plans.plan_counts(manifest, sources)
    counts['sent'] = counts['sent_bytes'] = 0
    if check:
        return build_result(name, path, revision, manifest, counts, linked=counts['linked'], copied=0,
                            written=len(plans.missing_shas(manifest, sources)))
    builder = _Builder(path, manifest, sources)
    builder.make_dirs()
    builder.place_known(what)
    waiting = builder.pending()
    by_path = dict((entry['path'], sha) for sha, entries in waiting.items() for entry in entries)
    if waiting:
        tar = manifests.open_tar(tarball, what)
        try:
            for rel, member in manifests.tar_members(tar, what):
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
    stored, removed = holdings.store_manifest(tree, name, manifest, revision or manifests.digest(manifest))
    return build_result(name, path, revision, manifest, counts, linked=builder.linked, copied=builder.copied,
                        written=builder.written, manifest_path=stored, manifests_removed=removed)
