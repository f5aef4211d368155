# Copyright (c) 2026, capstan.release contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""The rules every input of the flows must pass, checked once on the controller before anything changes.

Each rule is a plain function that returns the value as the flow uses it (normalised) or
raises CapstanError with one sentence naming the variable and what is allowed. The roles'
action plugin calls them with the role variable's name (``deploy_linked_dirs``); the modules
call the same rules, through _releases and _content, with their option's name. A rule the
hosts apply too (a release name, linked paths, deploy_to, a git version or repository URL, an
archive's location or checksum) lives beside the code that needs it there and is called from here.
"""

from __future__ import annotations

import re

from ansible_collections.capstan.release.plugins.module_utils import _releases
from ansible_collections.capstan.release.plugins.module_utils._content import archive_source
from ansible_collections.capstan.release.plugins.module_utils._content import git_source
from ansible_collections.capstan.release.plugins.module_utils._errors import CapstanError

# Capistrano's stages of both flows: hook points are before_/after_ each, and failed.
STAGES = ('starting', 'started', 'updating', 'updated', 'reverting', 'reverted',
          'publishing', 'published', 'finishing', 'finishing_rollback', 'finished')
HOOK_POINTS = tuple('%s_%s' % (when, stage) for stage in STAGES for when in ('before', 'after')) + ('failed',)
STRATEGIES = ('copy', 'git', 'archive')
_TRUE = ('true', 'yes', 'on', '1', 'y')
_FALSE = ('false', 'no', 'off', '0', 'n', '')
_URL_RE = re.compile(r'^https?://[^/?#\s]+', re.IGNORECASE)


def boolean(value, what):
    """``value`` as a bool (true/false, yes/no, 1/0 as Ansible reads them)."""
    if isinstance(value, bool):
        return value
    if isinstance(value, int) and value in (0, 1):
        return bool(value)
    if isinstance(value, str) and value.strip().lower() in _TRUE + _FALSE:
        return value.strip().lower() in _TRUE
    raise CapstanError('%s must be true or false, got %r' % (what, value))


def whole(value, what, least=0, unit=''):
    """``value`` as a whole number of at least ``least`` (a string of digits from -e is one too)."""
    number = None
    if isinstance(value, int) and not isinstance(value, bool):
        number = value
    elif isinstance(value, str) and re.match(r'^\s*[0-9]+\s*\Z', value):
        number = int(value)
    if number is None or number < least:
        raise CapstanError('%s must be a whole number%s of at least %d, got %r' % (what, unit, least, value))
    return number


def text(value, what, allow_empty=True):
    """``value`` as a single-line string."""
    if value is None and allow_empty:
        return ''
    if not isinstance(value, str) or '\n' in value or (not allow_empty and not value.strip()):
        raise CapstanError('%s must be %s single line of text, got %r' % (what, 'a' if allow_empty else 'a non-empty', value))
    return value


def release_name(value, what):
    """An optional release name: '' (none) or 14 digits of a valid UTC time."""
    if value is None or value == '':
        return ''
    if isinstance(value, int) and not isinstance(value, bool):
        value = '%014d' % value
    return _releases.check_release_name(value if isinstance(value, str) else repr(value), what)


def health(url, status, retries, delay, command):
    """The health gate: (url, status, retries, delay, command) checked."""
    url = text(url, 'deploy_health_url')
    if url and not _URL_RE.match(url):
        raise CapstanError('deploy_health_url must be an http:// or https:// URL, got %r' % url)
    status = whole(status, 'deploy_health_status', 100)
    if status > 599:
        raise CapstanError('deploy_health_status must be an HTTP status from 100 to 599, got %r' % status)
    return (url, status, whole(retries, 'deploy_health_retries'), whole(delay, 'deploy_health_delay', unit=' of seconds'),
            text(command, 'deploy_health_command'))


def hooks(value, what='deploy_hooks'):
    """deploy_hooks as ``{point: [path, ...]}``: known points only, each a task file path or a list of them."""
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise CapstanError('%s must be a mapping of hook points to task files, got %r' % (what, value))
    unknown = sorted(str(key) for key in value if key not in HOOK_POINTS)
    if unknown:
        raise CapstanError('%s has unknown keys %s; allowed are before_<stage> and after_<stage> for %s, and failed'
                           % (what, ', '.join(unknown), ', '.join(STAGES)))
    checked = {}
    for point in sorted(value):
        paths = value[point] if isinstance(value[point], (list, tuple)) else [value[point]]
        for path in paths:
            if not isinstance(path, str) or not path.strip():
                raise CapstanError('%s.%s must be a task file path or a list of them, got %r' % (what, point, value[point]))
        checked[point] = list(paths)
    return checked


def hook_tasks(data, point, path, what='deploy_hooks'):
    """Refuse a hook file whose YAML is not a list of tasks (a mapping, a scalar, a list of non-mappings)."""
    if data is None:
        return []
    if not isinstance(data, list) or not all(isinstance(task, dict) and task for task in data):
        if isinstance(data, dict):
            kind = 'a mapping'
        elif isinstance(data, list):
            kind = 'a list whose entries are not all tasks (mappings)'
        elif isinstance(data, str):
            kind = 'a str'
        elif isinstance(data, bool):
            kind = 'a bool'
        elif isinstance(data, (int, float)):
            kind = 'a number'
        else:
            kind = 'a %s' % type(data).__name__
        raise CapstanError('%s.%s names %s, which is %s, not a list of tasks' % (what, point, path, kind))
    return data


def strategy(name, src, repo_url, version, checksum):
    """The strategy and the variables it reads, as far as the controller can tell (copy's source is read later)."""
    name = text(name, 'deploy_strategy')
    if name not in STRATEGIES:
        raise CapstanError('deploy_strategy must be copy, git or archive, got %r' % name)
    src = text(src, 'deploy_src')
    if name == 'copy' and not src:
        raise CapstanError('deploy_src must be a directory or a tarball on the controller for deploy_strategy=copy, got %r' % src)
    if name == 'git':
        if repo_url is None or (isinstance(repo_url, str) and not repo_url.strip()):
            raise CapstanError("deploy_repo_url is required for deploy_strategy=git: the URL git clone takes, got %r"
                               % (repo_url,))
        git_source.check_repo_url(repo_url, 'deploy_repo_url')
        git_source.check_version(text(version, 'deploy_version'), 'deploy_version')
    if name == 'archive':
        archive_source.archive_location(src, 'deploy_src')
        archive_source.parse_checksum(text(checksum, 'deploy_src_checksum'), 'deploy_src_checksum')
    return name


def _linked(inputs):
    dirs, files = inputs.get('deploy_linked_dirs'), inputs.get('deploy_linked_files')
    return _releases.check_linked(dirs, files, names=('deploy_linked_dirs', 'deploy_linked_files'))


def common(inputs):
    """What both flows read: the tree, retention, the lock, the hooks (their files are read by the caller)."""
    checked = {
        'deploy_to': _releases.normalise_deploy_to(inputs.get('deploy_to')),
        'deploy_keep_releases': whole(inputs.get('deploy_keep_releases', 5), 'deploy_keep_releases', 1),
        'deploy_keep_archives': whole(inputs.get('deploy_keep_archives', 5), 'deploy_keep_archives', 0),
        'deploy_break_lock': boolean(inputs.get('deploy_break_lock', False), 'deploy_break_lock'),
        'deploy_lock_ttl': whole(inputs.get('deploy_lock_ttl', 3600), 'deploy_lock_ttl', 0, ' of seconds'),
        'deploy_hooks': hooks(inputs.get('deploy_hooks')),
    }
    checked['deploy_health_url'], checked['deploy_health_status'], checked['deploy_health_retries'], \
        checked['deploy_health_delay'], checked['deploy_health_command'] = health(
            inputs.get('deploy_health_url', ''), inputs.get('deploy_health_status', 200), inputs.get('deploy_health_retries', 0),
            inputs.get('deploy_health_delay', 2), inputs.get('deploy_health_command', ''))
    return checked


def deploy(inputs):
    """Every input of the deploy role, checked and normalised, or the first refusal."""
    checked = common(inputs)
    checked['deploy_strategy'] = strategy(inputs.get('deploy_strategy', 'copy'), inputs.get('deploy_src', ''),
                                          inputs.get('deploy_repo_url', ''), inputs.get('deploy_version', ''),
                                          inputs.get('deploy_src_checksum', ''))
    checked.update({
        'deploy_src': text(inputs.get('deploy_src', ''), 'deploy_src'),
        'deploy_src_checksum': text(inputs.get('deploy_src_checksum', ''), 'deploy_src_checksum'),
        'deploy_repo_url': text(inputs.get('deploy_repo_url', ''), 'deploy_repo_url'),
        'deploy_version': text(inputs.get('deploy_version', ''), 'deploy_version'),
        'deploy_branch': text(inputs.get('deploy_branch', ''), 'deploy_branch'),
        'deploy_release_name': release_name(inputs.get('deploy_release_name', ''), 'deploy_release_name'),
        'deploy_auto_rollback': boolean(inputs.get('deploy_auto_rollback', True), 'deploy_auto_rollback'),
        'deploy_confirm': boolean(inputs.get('deploy_confirm', False), 'deploy_confirm'),
        'deploy_confirm_timeout': whole(inputs.get('deploy_confirm_timeout', 300), 'deploy_confirm_timeout', 1, ' of seconds'),
        'deploy_free_space_margin_mb': whole(inputs.get('deploy_free_space_margin_mb', 64), 'deploy_free_space_margin_mb', 0),
        'deploy_migrate_current': boolean(inputs.get('deploy_migrate_current', False), 'deploy_migrate_current'),
    })
    checked['deploy_linked_dirs'], checked['deploy_linked_files'] = _linked(inputs)
    return checked


def drill(inputs):
    """Every input of the drill role, checked and normalised, or the first refusal."""
    return common(inputs)


def rollback(inputs):
    """Every input of the rollback role, checked and normalised, or the first refusal."""
    checked = common(inputs)
    checked['rollback_release'] = release_name(inputs.get('rollback_release', ''), 'rollback_release')
    return checked
