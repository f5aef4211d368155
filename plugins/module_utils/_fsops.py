# Copyright (c) 2026, capstan.release contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Filesystem primitives with the guarantees the invariants need.

Every write that must survive a crash goes through a temporary name, a rename(2) and an
fsync of the directory; nothing here follows a symlink out of the tree it was given.
"""

from __future__ import annotations

import errno
import os
import re
import shutil
import tarfile

from ansible_collections.capstan.release.plugins.module_utils._errors import CapstanError


def fsync_dir(path):
    """Flush a directory's entries (a rename or a new name) to disk."""
    fd = os.open(path, os.O_RDONLY | getattr(os, 'O_DIRECTORY', 0))
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


# Temporary names this module makes (see _temp_name): ``.<name>.<tag>-<pid>``. Under the deploy
# lock nothing else writes them, so any found then is what a crashed run left.
_TEMP_RE = re.compile(r'^\.(?P<name>.+)\.(?:tmp|new|swap|partial)-[0-9]+\Z')
OUT_OF_SPACE = (errno.ENOSPC, getattr(errno, 'EDQUOT', errno.ENOSPC))
# gzip level of release archives (see archive_dir).
ARCHIVE_LEVEL = 6


def out_of_space(error):
    """True for an OSError that says the filesystem (or the user's quota) is full."""
    return isinstance(error, (IOError, OSError)) and getattr(error, 'errno', None) in OUT_OF_SPACE


def temp_leftovers(folder, names=None):
    """Temporary files this module made in ``folder`` (for ``names`` only, when given): leftovers of crashed runs."""
    try:
        entries = os.listdir(folder)
    except OSError:
        return []
    found = []
    for entry in sorted(entries):
        match = _TEMP_RE.match(entry)
        if match and (names is None or any(re.match('(?:%s)\\Z' % name, match.group('name')) for name in names)):
            path = os.path.join(folder, entry)
            if not is_real_dir(path):
                found.append(path)
    return found


def write_all(fd, data):
    """Write every byte of ``data`` to file descriptor ``fd`` (os.write may write fewer than asked)."""
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view):]


def _temp_name(path, tag):
    return os.path.join(os.path.dirname(path), '.%s.%s-%d' % (os.path.basename(path), tag, os.getpid()))


def _unlink_quietly(path):
    try:
        os.unlink(path)
    except OSError as exc:
        if exc.errno != errno.ENOENT:
            raise


def _write_temp(path, tag, data, mode):
    """Write ``data`` (bytes or text) to a fresh temp file beside ``path``, fsynced; returns its name."""
    if not isinstance(data, bytes):
        data = data.encode('utf-8')
    tmp = _temp_name(path, tag)
    _unlink_quietly(tmp)
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, mode)
    try:
        os.write(fd, data)
        os.fsync(fd)
    finally:
        os.close(fd)
    return tmp


def write_file_atomic(path, data, mode=0o644):
    """Replace ``path`` with ``data`` (bytes or text): temp file, fsync, rename, fsync dir."""
    tmp = _write_temp(path, 'tmp', data, mode)
    os.chmod(tmp, mode)
    os.rename(tmp, path)
    fsync_dir(os.path.dirname(path))


def create_file_exclusive(path, data, mode=0o644):
    """Create ``path`` holding ``data`` only if no such name exists; False if it did.

    The content is complete before the name appears: written to a temp file, then
    hard-linked to ``path`` (link(2) is atomic and fails when the name exists).
    """
    tmp = _write_temp(path, 'new', data, mode)
    try:
        os.link(tmp, path)
    except OSError as exc:
        if exc.errno == errno.EEXIST:
            return False
        raise
    finally:
        _unlink_quietly(tmp)
    fsync_dir(os.path.dirname(path))
    return True


def _ends_torn(fd):
    """True when the open file is not empty and does not end with a newline."""
    size = os.fstat(fd).st_size
    return size > 0 and os.pread(fd, 1, size - 1) != b'\n'


def append_line(path, line, mode=0o644):
    """Append one line to a log file and flush it to disk.

    If a crash tore the file's last line, the new line starts on a line of its own rather
    than being lost with the torn one.
    """
    fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_APPEND, mode)
    try:
        data = line.rstrip('\n') + '\n'
        if _ends_torn(fd):
            data = '\n' + data
        os.write(fd, data.encode('utf-8'))
        os.fsync(fd)
    finally:
        os.close(fd)


def read_text(path, default=None):
    """The text of a file, or ``default`` when it does not exist."""
    try:
        with open(path, 'rb') as handle:
            return handle.read().decode('utf-8', 'replace')
    except (IOError, OSError) as exc:
        if exc.errno in (errno.ENOENT, errno.ENOTDIR):
            return default
        raise


def replace_symlink(link, target):
    """Point ``link`` at ``target`` with one rename(2): there is no moment without ``link``.

    A temporary symlink is made beside ``link`` and renamed over it; the directory is then
    fsynced so the switch survives a crash.
    """
    tmp = _temp_name(link, 'swap')
    _unlink_quietly(tmp)
    os.symlink(target, tmp)
    try:
        os.rename(tmp, link)
    except OSError:
        _unlink_quietly(tmp)
        raise
    fsync_dir(os.path.dirname(link))


def is_real_dir(path):
    """True for a directory that is not itself a symlink."""
    try:
        return os.path.isdir(path) and not os.path.islink(path)
    except OSError:
        return False


def inside(path, root):
    """True when ``path`` (not followed if it is a link) lies strictly under ``root``."""
    parent = os.path.realpath(os.path.dirname(os.path.abspath(path)))
    root = os.path.realpath(root)
    return parent == root or parent.startswith(root.rstrip(os.sep) + os.sep)


def archive_dir(src, dest, arcname):
    """Tar and gzip directory ``src`` into ``dest`` (mode 0600), symlinks stored, never followed.

    Written to a temp name and renamed into place, so a half-written archive never carries
    the final name. gzip level 6, as GNU tar's -z (Capistrano's archives): tarfile's default 9
    costs twice the CPU for archives a few percent smaller.
    """
    tmp = _temp_name(dest, 'partial')
    _unlink_quietly(tmp)
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        with os.fdopen(fd, 'wb') as raw:
            with tarfile.open(fileobj=raw, mode='w:gz', compresslevel=ARCHIVE_LEVEL, dereference=False) as tar:
                tar.add(src, arcname=arcname, recursive=True)
            raw.flush()
            os.fsync(raw.fileno())
    except BaseException:
        _unlink_quietly(tmp)
        raise
    os.rename(tmp, dest)
    fsync_dir(os.path.dirname(dest))


def remove_tree(path, root, keep=None):
    """Delete directory ``path`` that must be a real directory strictly under ``root``.

    shutil.rmtree removes symlinks found inside without following them, so the shared
    files a release links to are never touched. With ``keep`` (a directory, shared/), a
    ``path`` whose real location is inside it is refused.
    """
    if not inside(path, root) or not is_real_dir(path):
        raise CapstanError('refusing to delete %s: only real directories under %s are deleted' % (path, root))
    if keep is not None and inside(os.path.join(os.path.realpath(path), 'x'), keep):
        raise CapstanError('refusing to delete %s: its real path is inside %s' % (path, keep))
    shutil.rmtree(path)
    fsync_dir(os.path.dirname(path))


def remove_file(path):
    """Delete a file if it exists; True when something was deleted."""
    try:
        os.unlink(path)
    except OSError as exc:
        if exc.errno == errno.ENOENT:
            return False
        raise
    return True
