# Copyright (c) 2026, capstan.release contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Hook files, found and read on the controller before anything changes.

A relative path is looked up in the playbook's directory, then in the directory
ansible-playbook was started in; an absolute one must be a file. Every file is parsed as
Ansible parses a task file, and must be a list of tasks whose actions Ansible can resolve,
so a hook that cannot run is refused before the deploy starts, not found out half-way.
"""

from __future__ import annotations

import os

from ansible.errors import AnsibleError

from ansible_collections.capstan.release.plugins.module_utils import _checks
from ansible_collections.capstan.release.plugins.module_utils._errors import CapstanError


def resolve(hooks, search=()):
    """``{'files': {point: [absolute paths]}, 'problems': [sentences]}`` for a deploy_hooks mapping."""
    search = [str(folder) for folder in search if folder] + [os.getcwd()]
    if not isinstance(hooks, dict):
        return {'files': {}, 'problems': ['deploy_hooks must be a mapping of hook points to task files, got %r' % (hooks,)]}
    files, problems = {}, []
    for point in sorted(hooks):
        value = hooks[point]
        paths = value if isinstance(value, (list, tuple)) else [value]
        files[point] = []
        for path in paths:
            if not isinstance(path, str) or not path:
                problems.append('deploy_hooks.%s must be a task file path or a list of them, got %r' % (point, path))
                continue
            candidates = [path] if os.path.isabs(path) else [os.path.join(folder, path) for folder in search]
            found = next((os.path.normpath(candidate) for candidate in candidates if os.path.isfile(candidate)), None)
            if found is None:
                where = 'is not a file' if os.path.isabs(path) else 'is in none of %s' % ', '.join(search)
                problems.append('deploy_hooks.%s names %s, which %s' % (point, path, where))
            else:
                files[point].append(found)
    return {'files': files, 'problems': problems}


def _first_line(error):
    text = getattr(error, 'message', None) or str(error)
    return ' '.join(text.strip().splitlines()[:1]) or type(error).__name__


def load(hooks, search, loader, play=None):
    """Resolve, parse and shape-check every hook file; returns {point: [paths]} or raises one sentence."""
    checked = _checks.hooks(hooks)
    resolved = resolve(checked, search)
    if resolved['problems']:
        raise CapstanError(resolved['problems'][0])
    for point, paths in sorted(resolved['files'].items()):
        for path in paths:
            if os.stat(path).st_mode & 0o022:
                raise CapstanError('deploy_hooks.%s names %s, which users other than its owner can write; a hook runs on '
                                   'every host, so it must be writable by its owner only (chmod go-w)' % (point, path))
            try:
                data = loader.load_from_file(path)
            except AnsibleError as error:
                raise CapstanError('deploy_hooks.%s names %s, which is not valid YAML: %s' % (point, path, _first_line(error)))
            tasks = _checks.hook_tasks(data, point, path)
            if tasks and play is not None:
                _parse_tasks(tasks, point, path, loader, play)
    return resolved['files']


def _parse_tasks(tasks, point, path, loader, play):
    """Parse the tasks as Ansible will when it includes the file: unknown modules and bad keywords are refused now."""
    from ansible.playbook.block import Block  # the controller's parser, loaded only when a hook exists
    try:
        Block.load({'block': tasks}, play=play, loader=loader)
    except AnsibleError as error:
        raise CapstanError('deploy_hooks.%s names %s, which Ansible cannot load as tasks: %s' % (point, path, _first_line(error)))
    except Exception:  # pylint: disable=broad-exception-caught
        # Some tasks (includes) need the run's variables to be parsed: they are parsed when they run,
        # and a failure then goes through the flow's failure path like any other.
        return
