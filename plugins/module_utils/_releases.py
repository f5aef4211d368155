# Copyright (c) 2026, capstan.release contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""The model of a deploy tree: its layout, release names, what is live and what may go.

This is the one place that knows these rules; modules and roles ask it, never re-derive.

    <deploy_to>/current -> <deploy_to>/releases/<14 digits>
    <deploy_to>/releases/<14 digits>/{REVISION,REVISION_TIME}
    <deploy_to>/shared/  repo/  revisions.log
    <deploy_to>/{failed,rolled-back}-release-<name>.tar.gz
    <deploy_to>/.capstan/{lock,journal}
"""

from __future__ import annotations

import datetime
import os
import pwd
import re
import stat

from ansible_collections.capstan.release.plugins.module_utils import _fsops
from ansible_collections.capstan.release.plugins.module_utils import _journal
from ansible_collections.capstan.release.plugins.module_utils._errors import CapstanError

NAME_FORMAT = '%Y%m%d%H%M%S'
_NAME_RE = re.compile(r'^[0-9]{14}\Z')
ARCHIVE_KINDS = {'failed': 'failed-release-', 'rolled_back': 'rolled-back-release-'}
_ARCHIVE_RE = re.compile(r'^(failed|rolled-back)-release-([0-9]{14})\.tar\.gz\Z')
STATE_DIR = '.capstan'


def is_release_name(name):
    """True for a release name: 14 digits that are a valid UTC time ``YYYYmmddHHMMSS``.

    ``20261301000000`` (month 13) is 14 digits but no time: a foreign entry, never a release.
    """
    if not isinstance(name, str) or not _NAME_RE.match(name):
        return False
    try:
        datetime.datetime.strptime(name, NAME_FORMAT)
    except ValueError:
        return False
    return True


def check_release_name(name, what='release'):
    """Refuse anything but a plain release name (so no ``/``, ``..`` or path can get through)."""
    if not is_release_name(name):
        raise CapstanError('%s must be a release name: 14 digits of a valid UTC time YYYYmmddHHMMSS, got %r' % (what, name))
    return name


def sort_names(names):
    """Release names oldest first, by name only (never mtime); other names dropped."""
    return sorted(name for name in names if is_release_name(name))


def next_release_name(existing, now=None):
    """The name for a new release: the UTC time, or one second past the newest existing name.

    Strictly greater than every release name in ``existing`` whatever the clock says, so a
    clock behind or two deploys in one second never collide.
    """
    now = now if now is not None else datetime.datetime.now(datetime.timezone.utc)
    candidate = now.strftime(NAME_FORMAT)
    names = sort_names(existing)
    if names and candidate <= names[-1]:
        newest = names[-1]
        try:
            candidate = (datetime.datetime.strptime(newest, NAME_FORMAT) + datetime.timedelta(seconds=1)).strftime(NAME_FORMAT)
        except OverflowError:
            candidate = None
        if candidate is None or len(candidate) != 14:
            raise CapstanError('no release name after %s fits in 14 digits, and a new release must be newer than every '
                               'existing one: move release %s out of releases/ (it is dated in the year 9999)' % (newest, newest))
    return candidate


def next_free_name_before(existing, name):
    """The newest free release name older than ``name`` (for a directory moved into releases/)."""
    taken = set(existing)
    moment = datetime.datetime.strptime(check_release_name(name), NAME_FORMAT)
    while True:
        moment -= datetime.timedelta(seconds=1)
        candidate = moment.strftime(NAME_FORMAT)
        if candidate not in taken:
            return candidate


def check_relative(path, what):
    """Refuse a linked path that is not a plain relative path: empty, absolute, ``.``, ``..``, ``//`` or a trailing ``/``."""
    if not isinstance(path, str) or not path.strip('/'):
        raise CapstanError('%s entries must be non-empty relative paths, got %r' % (what, path))
    if path.startswith('/'):
        raise CapstanError('%s entries must be relative to the release, got absolute path %r' % (what, path))
    parts = path.split('/')
    if '..' in parts or '.' in parts or '' in parts or '\0' in path:
        raise CapstanError('%s entries must be plain relative paths (no ".", "..", "//" or trailing "/"), got %r' % (what, path))
    return path


def check_linked(linked_dirs, linked_files, names=('linked_dirs', 'linked_files')):
    """The linked dirs and files as two lists of plain relative paths, or a refusal naming ``names``.

    Entries that overlap are refused: the same path twice, or one inside another
    (``config`` and ``config/app.yml``, ``public`` and ``public/uploads``). Linking both
    would replace shared content with links to itself, so what shared/ holds would be lost.
    """
    checked = []
    for name, entries in zip(names, (linked_dirs, linked_files)):
        if entries is None:
            entries = []
        if not isinstance(entries, (list, tuple)):
            raise CapstanError('%s must be a list of paths relative to the release, got %r' % (name, entries))
        checked.append([check_relative(entry, name) for entry in entries])
    everything = [(name, entry) for name, entries in zip(names, checked) for entry in entries]
    for index, (name, entry) in enumerate(everything):
        for other_name, other in everything[index + 1:]:
            if entry == other or other.startswith(entry + '/') or entry.startswith(other + '/'):
                where = name if name == other_name else '%s and %s' % (name, other_name)
                raise CapstanError('%s overlap: %r and %r; shared/ would be linked into itself, so each linked path '
                                   'must be neither the same as nor inside another' % (where, entry, other))
    return checked[0], checked[1]


def normalise_deploy_to(deploy_to, what='deploy_to'):
    """``deploy_to`` normalised (``//``, ``.``, ``..`` resolved lexically); refused when not absolute or when it is /."""
    if not isinstance(deploy_to, str) or not deploy_to.startswith('/') or '\0' in deploy_to:
        raise CapstanError('%s must be an absolute path, got %r' % (what, deploy_to))
    normal = '/' + os.path.normpath(deploy_to).lstrip('/')
    if normal == '/':
        raise CapstanError('%s must be a directory below /, got %r, which is / once normalised' % (what, deploy_to))
    return normal


class Tree(object):
    """The paths of one deploy tree.

    ``deploy_to`` is normalised first and refused when it is, or (on the host, ``resolve``)
    resolves through symlinks to, the root directory: the one look at the filesystem this
    class makes. The controller names paths of a host's tree with ``resolve=False``.
    """

    def __init__(self, deploy_to, resolve=True):
        self.deploy_to = normalise_deploy_to(deploy_to)
        if resolve and os.path.realpath(self.deploy_to) == '/':
            raise CapstanError('deploy_to must be a directory below /, got %r, which resolves to /' % (deploy_to,))
        self.releases = os.path.join(self.deploy_to, 'releases')
        self.shared = os.path.join(self.deploy_to, 'shared')
        self.repo = os.path.join(self.deploy_to, 'repo')
        self.current = os.path.join(self.deploy_to, 'current')
        self.revisions_log = os.path.join(self.deploy_to, 'revisions.log')
        self.state_dir = os.path.join(self.deploy_to, STATE_DIR)
        self.lock = os.path.join(self.state_dir, 'lock')
        self.journal = os.path.join(self.state_dir, 'journal')

    def release_path(self, name):
        return os.path.join(self.releases, check_release_name(name))

    def ensure_state_dir(self):
        """Make <deploy_to>/.capstan (and deploy_to) when missing; the tool's state is its owner's only (0700)."""
        if not os.path.isdir(self.state_dir):
            os.makedirs(self.state_dir, exist_ok=True)
            os.chmod(self.state_dir, 0o700)
        return self.state_dir

    def archive_path(self, name, kind):
        return os.path.join(self.deploy_to, '%s%s.tar.gz' % (ARCHIVE_KINDS[kind], check_release_name(name)))

    def refuse_unwritable(self):
        """Refuse, before anything is read or made, a tree the user running the module cannot change.

        Every flow writes only under deploy_to, as the user the host is reached as (least privilege:
        the deploy user owns deploy_to, no become). Checked: deploy_to, or where it would be made, and
        releases/ and .capstan/ when they exist. A read-only filesystem is left to the write that meets it.
        """
        user = user_name(os.geteuid())
        if not os.path.lexists(self.deploy_to):
            parent = os.path.dirname(self.deploy_to)
            while not os.path.isdir(parent):
                parent = os.path.dirname(parent)
            if not _writable(parent, os.X_OK):
                raise CapstanError('%s cannot reach deploy_to %s: %s is %s; the user that deploys must be able to reach '
                                   'deploy_to and own it' % (user, self.deploy_to, parent, _owned(parent)))
            if not _writable(parent):
                raise CapstanError('deploy_to %s does not exist and %s cannot make it: %s is %s; make deploy_to for '
                                   'the user that deploys (as root: install -d -o %s %s)'
                                   % (self.deploy_to, user, parent, _owned(parent), user, self.deploy_to))
            return
        for path in (self.deploy_to, self.releases, self.state_dir):
            if os.path.isdir(path) and not _writable(path):
                raise CapstanError('%s is %s and %s cannot write it: the user that deploys must own deploy_to and '
                                   'everything under it (as root: chown -R %s %s)'
                                   % ('deploy_to %s' % path if path == self.deploy_to else path, _owned(path), user,
                                      user, self.deploy_to))


def user_name(uid):
    """The name of user ``uid`` on this host, or the number when it has none."""
    try:
        return pwd.getpwuid(uid).pw_name
    except KeyError:
        return str(uid)


def _writable(path, mode=os.W_OK | os.X_OK):
    """True when this process (its effective user) may make and remove entries in directory ``path`` (or ``mode``)."""
    effective = os.access in os.supports_effective_ids
    if os.access(path, mode, effective_ids=effective):
        return True
    try:
        return bool(os.statvfs(path).f_flag & os.ST_RDONLY)
    except OSError:
        return False


def _owned(path):
    """``owned by root (mode 0755)``."""
    info = os.stat(path)
    return 'owned by %s (mode %04o)' % (user_name(info.st_uid), stat.S_IMODE(info.st_mode))


class Snapshot(object):
    """What one look at a deploy tree found.

    ``releases``: release names of real directories, oldest first.
    ``foreign``: other entries of ``releases/`` (reported, never counted, never deleted).
    ``current``: the release ``current`` points to, or None; ``current_kind`` says what
    ``current`` is: missing, release, dangling, directory, or outside (a link elsewhere).
    ``states``: release name -> unfinished | finished | successful | failed | rolled_back | removing | unknown.
    """

    def __init__(self, tree):
        self.tree = tree
        self.exists = os.path.isdir(tree.deploy_to)
        self.releases, self.foreign = self._list_releases()
        self.current_link, self.current_kind, self.current = self._read_current()
        self.events = _journal.read_events(tree.journal)
        self.revisions = _journal.parse_revisions(_fsops.read_text(tree.revisions_log, default=''))
        self.states = self._states()
        self.archives = self._list_archives()

    def _list_releases(self):
        try:
            entries = os.listdir(self.tree.releases)
        except OSError:
            return [], []
        releases, foreign = [], []
        for entry in entries:
            if is_release_name(entry) and _fsops.is_real_dir(os.path.join(self.tree.releases, entry)):
                releases.append(entry)
            else:
                foreign.append(entry)
        return sort_names(releases), sorted(foreign)

    def _read_current(self):
        path = self.tree.current
        if not os.path.lexists(path):
            return None, 'missing', None
        if not os.path.islink(path):
            return None, 'directory' if os.path.isdir(path) else 'file', None
        link = os.readlink(path)
        target = os.path.normpath(os.path.join(self.tree.deploy_to, link))
        name = os.path.basename(target)
        parent = os.path.dirname(target)
        same_parent = parent == self.tree.releases or (
            os.path.isdir(parent) and os.path.realpath(parent) == os.path.realpath(self.tree.releases))
        if not same_parent or not is_release_name(name):
            return link, 'outside', None
        if name not in self.releases:
            return link, 'dangling', None
        return link, 'release', name

    def _states(self):
        journal = _journal.states_from(self.events)
        deployed = set(entry['release'] for entry in self.revisions if entry['kind'] == 'deploy')
        states = {}
        for name in self.releases:
            if name in journal:
                states[name] = journal[name]
            elif name in deployed or name == self.current:
                # Made by Capistrano or an earlier tool: its log, or being live, says it went live.
                states[name] = 'successful'
            elif self.current is not None and name < self.current and os.path.exists(
                    os.path.join(self.tree.releases, name, 'REVISION')):
                states[name] = 'successful'
            else:
                states[name] = 'unknown'
        return states

    def _list_archives(self):
        try:
            entries = os.listdir(self.tree.deploy_to)
        except OSError:
            return []
        return sorted((e for e in entries if _ARCHIVE_RE.match(e)), key=lambda e: (_ARCHIVE_RE.match(e).group(2), e))

    def successful(self):
        """Names of releases that went live successfully, oldest first."""
        return [name for name in self.releases if self.states[name] == 'successful']

    def revision_of(self, name):
        return (_fsops.read_text(os.path.join(self.tree.releases, name, 'REVISION'), default='') or '').strip() or None

    def describe(self, name):
        path = os.path.join(self.tree.releases, name)
        revision_time = (_fsops.read_text(os.path.join(path, 'REVISION_TIME'), default='') or '').strip() or None
        return {
            'name': name,
            'path': path,
            'state': self.states[name],
            'revision': self.revision_of(name),
            'revision_time': revision_time,
            'current': name == self.current,
        }


def prune_plan(snapshot, keep, exclude=(), leaving=()):
    """Which releases a prune removes, and why, as a list of (name, reason) oldest first.

    ``reason`` is ``old`` (a successful release beyond the newest ``keep``), or the state of
    a leftover (unfinished, finished, failed, rolled_back, unknown) of a run that did not
    complete. Never the current release, never a name in ``exclude`` (the release this run
    is building), never a foreign entry. Only successful releases count toward ``keep``.
    ``leaving`` names releases the caller removes itself (the one a rollback left): they are
    not in the plan and take no place among the kept.
    """
    if not isinstance(keep, int) or isinstance(keep, bool) or keep < 1:
        raise CapstanError('keep_releases must be a whole number of at least 1, got %r' % (keep,))
    protected = set(exclude) | set(leaving)
    if snapshot.current is not None:
        protected.add(snapshot.current)
    successful = [name for name in snapshot.successful() if name not in leaving]
    kept = set(successful[-keep:])
    if snapshot.current in successful and snapshot.current not in kept:
        # current always counts among the kept: it takes the place of the oldest of them.
        kept = set(successful[-(keep - 1):]) if keep > 1 else set()
        kept.add(snapshot.current)
    plan = []
    for name in snapshot.releases:
        if name in protected or name in kept:
            continue
        state = snapshot.states[name]
        plan.append((name, 'old' if state == 'successful' else state))
    return plan


def archives_plan(snapshot, keep_archives, adding=()):
    """Archive file names to delete so that at most ``keep_archives`` remain, newest by release name."""
    if not isinstance(keep_archives, int) or isinstance(keep_archives, bool) or keep_archives < 0:
        raise CapstanError('keep_archives must be a whole number of at least 0, got %r' % (keep_archives,))
    names = set(snapshot.archives) | set(adding)
    ordered = sorted(names, key=lambda e: (_ARCHIVE_RE.match(e).group(2), e))
    if keep_archives == 0:
        return ordered
    return ordered[:-keep_archives] if len(ordered) > keep_archives else []


def archive_kind(state):
    """Which archive a release leaving in ``state`` goes to, or None for a plain old release.

    A release whose removal already began (``removing``) is half gone: it is not archived again.
    """
    if state in ('successful', 'removing'):
        return None
    return 'rolled_back' if state == 'rolled_back' else 'failed'


def rollback_plan(snapshot, release=None):
    """Where a rollback goes: returns (target, leaving) or raises with what is available.

    Without ``release``: the newest successful release older than current. With one: that
    release, which must exist and have completed. ``leaving`` is the current release when a
    rollback moves off it to an older one (it is then archived and removed); None when the
    target is current or newer.
    """
    available = snapshot.successful()
    listing = ', '.join(available) if available else 'none'
    if snapshot.current is None:
        raise CapstanError('cannot roll back %s: current is %s, not a release (releases that completed: %s)'
                           % (snapshot.tree.deploy_to, snapshot.current_kind, listing))
    if release is None:
        earlier = [name for name in available if name < snapshot.current]
        if not earlier:
            raise CapstanError('no earlier release to roll back to in %s: current is %s and the releases that completed are %s'
                               % (snapshot.tree.deploy_to, snapshot.current, listing))
        target = earlier[-1]
    else:
        if not is_release_name(release):
            raise CapstanError('rollback_release must be a release name of 14 digits, got %r; releases that completed: %s'
                               % (release, listing))
        if release not in snapshot.releases:
            raise CapstanError('rollback_release %s does not exist in %s; releases that completed: %s'
                               % (release, snapshot.tree.releases, listing))
        if release != snapshot.current and snapshot.states[release] != 'successful':
            raise CapstanError('rollback_release %s is %s, not a release that completed; releases that completed: %s'
                               % (release, snapshot.states[release], listing))
        target = release
    leaving = snapshot.current if target < snapshot.current else None
    return target, leaving
