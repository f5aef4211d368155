# Copyright (c) 2026, capstan.release contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""What a host's tree holds of earlier content: its release dirs, the live one, the manifests stored of builds.

Each release built here keeps its manifest in ``<deploy_to>/.capstan/manifests/<release>.json``
with the inode, size and mtime each file had when built, so a later build finds identical
content by a stat instead of a read. Downloads and exports wait in ``<deploy_to>/.capstan/downloads``.
"""

from __future__ import annotations

import json
import os

from ansible_collections.capstan.release.plugins.module_utils import _fsops
from ansible_collections.capstan.release.plugins.module_utils import _releases

MANIFESTS = 'manifests'
DOWNLOADS = 'downloads'


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


def release_dirs(tree):
    try:
        names = os.listdir(tree.releases)
    except OSError:
        return []
    return _releases.sort_names(name for name in names if _fsops.is_real_dir(os.path.join(tree.releases, name)))


def current_name(tree):
    try:
        target = os.readlink(tree.current)
    except OSError:
        return None
    name = os.path.basename(os.path.normpath(os.path.join(tree.deploy_to, target)))
    return name if _releases.is_release_name(name) else None


def store_manifest(tree, name, manifest, revision):
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
        tree.ensure_state_dir()
        os.makedirs(folder)
    path = manifest_path(tree, name)
    _fsops.write_file_atomic(path, json.dumps({'release': name, 'revision': revision, 'entries': entries},
                                              sort_keys=True, separators=(',', ':')) + '\n', 0o600)
    existing = set(release_dirs(tree))
    removed = []
    for item in sorted(os.listdir(folder)):
        stem = item[:-len('.json')] if item.endswith('.json') else None
        if stem and _releases.is_release_name(stem) and stem not in existing:
            _fsops.remove_file(os.path.join(folder, item))
            removed.append(stem)
    return path, removed
