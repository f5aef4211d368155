# Copyright (c) 2026, capstan.release contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Controller-side hook checking: every task file deploy_hooks names, found before anything changes."""

from __future__ import annotations

import os

from ansible.errors import AnsibleFilterError


def resolve_hook_files(hooks, search=()):
    """``{'files': {key: [absolute paths]}, 'problems': [sentences]}`` for a deploy_hooks mapping.

    An absolute path must be a file; a relative one is looked up in each directory of
    ``search`` in turn (the roles pass the playbook's directory), then in the current
    directory, the one ansible-playbook was started in. Values are a path or a list of paths.
    """
    search = [str(d) for d in search if d] + [os.getcwd()]
    if not isinstance(hooks, dict):
        raise AnsibleFilterError('deploy_hooks must be a mapping of hook points to task files, got %r' % (hooks,))
    files, problems = {}, []
    for key in sorted(hooks):
        value = hooks[key]
        paths = value if isinstance(value, (list, tuple)) else [value]
        files[key] = []
        for path in paths:
            if not isinstance(path, str) or not path:
                problems.append('deploy_hooks.%s must be a task file path or a list of them, got %r' % (key, path))
                continue
            candidates = [path] if os.path.isabs(path) else [os.path.join(d, path) for d in search]
            found = next((os.path.normpath(c) for c in candidates if os.path.isfile(c)), None)
            if found is None:
                where = 'is not a file' if os.path.isabs(path) else 'is in none of %s' % ', '.join(search)
                problems.append('deploy_hooks.%s names %s, which %s' % (key, path, where))
            else:
                files[key].append(found)
    return {'files': files, 'problems': problems}


class FilterModule(object):
    def filters(self):
        return {'hook_files': resolve_hook_files}
