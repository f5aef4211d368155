# Copyright (c) 2026, capstan.release contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Controller-side hook lookup: every task file deploy_hooks names, found before anything changes."""

from __future__ import annotations

from ansible.errors import AnsibleFilterError

from ansible_collections.capstan.release.plugins.plugin_utils import _hooks


def resolve_hook_files(hooks, search=()):
    """``{'files': {key: [absolute paths]}, 'problems': [sentences]}`` for a deploy_hooks mapping (see _hooks.resolve)."""
    if not isinstance(hooks, dict):
        raise AnsibleFilterError('deploy_hooks must be a mapping of hook points to task files, got %r' % (hooks,))
    return _hooks.resolve(hooks, search)


def hook_list(points, hooks, search=()):
    """The hook files of ``points``, in order, as ``[{'point': ..., 'file': absolute path}]`` (what the roles include)."""
    files = _hooks.resolve(hooks if isinstance(hooks, dict) else {}, search)['files']
    return [{'point': point, 'file': path} for point in points or [] for path in files.get(point, [])]


class FilterModule(object):
    def filters(self):
        return {'hook_files': resolve_hook_files, 'hook_list': hook_list}
