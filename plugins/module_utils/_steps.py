# Copyright (c) 2026, capstan.release contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""The whole steps the modules perform, one function a step, check mode decided first.

Each function looks, decides what would change, and acts only when ``check`` is false.
It returns the module's result (``changed``, what the next step needs, ``diff``) and
raises CapstanError, before changing anything, when the input is refused.
"""

from __future__ import annotations

import os
import time

from ansible_collections.capstan.release.plugins.module_utils import _delivery
from ansible_collections.capstan.release.plugins.module_utils import _fsops
from ansible_collections.capstan.release.plugins.module_utils import _journal
from ansible_collections.capstan.release.plugins.module_utils import _lock
from ansible_collections.capstan.release.plugins.module_utils import _releases
from ansible_collections.capstan.release.plugins.module_utils._errors import CapstanError

SWAPPABLE_STATES = ('finished', 'successful')


def _host_user():
    return _releases.user_name(os.geteuid())


def _listing(names):
    return ', '.join(names) if names else 'none'


def _diff(before, after):
    return {'before': before, 'after': after}


def _ensure_dirs(paths):
    made = []
    for path in paths:
        if not os.path.isdir(path):
            os.makedirs(path)
            made.append(path)
    return made


def _links(tree, name, linked_dirs, linked_files):
    """The links a release needs: list of (link path in release, shared target, kind).

    The entries are checked by the one rule (_releases.check_linked): plain relative paths,
    none the same as or inside another.
    """
    release_path = tree.release_path(name)
    linked_dirs, linked_files = _releases.check_linked(linked_dirs, linked_files)
    links = []
    for kind, entries in (('dir', linked_dirs), ('file', linked_files)):
        for entry in entries:
            links.append((os.path.join(release_path, entry), os.path.join(tree.shared, entry), kind))
    return links


def check_links(tree, name, linked_dirs, linked_files):
    """The links release ``name`` needs, checked (see _links); nothing is read or made."""
    return _links(tree, name, linked_dirs, linked_files)


def preflight(tree, name, linked_files):
    """Refuse, before release ``name`` is made, a linked file shared/ does not hold."""
    _releases.check_release_name(name)
    _preflight_linked_files(tree, linked_files)


def _preflight_linked_files(tree, linked_files):
    """Capistrano's check: every linked file exists in shared/ before anything is made."""
    missing = [entry for entry in (linked_files or [])
               if not os.path.lexists(os.path.join(tree.shared, _releases.check_relative(entry, 'linked_files')))]
    if missing:
        raise CapstanError('linked_files %s missing from %s on this host: put them there before deploying'
                           % (', '.join(missing), tree.shared), missing=missing)


def _link_ok(link, target):
    return os.path.islink(link) and os.readlink(link) == target


def _make_link(tree, release_path, link, target, kind):
    """Replace whatever the release has at ``link`` with a symlink to ``target`` in shared/.

    Nothing whose real path is inside shared/ is ever unlinked or removed: when a directory
    on the way to ``link`` is itself a symlink (content that links into shared/), the link
    is refused instead of being made through it.
    """
    if kind == 'dir' and not os.path.isdir(target):
        os.makedirs(target)
    parent = os.path.dirname(link)
    if not os.path.isdir(parent):
        os.makedirs(parent)
    real_parent = os.path.realpath(parent)
    expected = os.path.join(os.path.realpath(release_path), os.path.relpath(parent, release_path)).rstrip(os.sep)
    if real_parent != os.path.normpath(expected) or _fsops.inside(os.path.join(real_parent, 'x'), tree.shared):
        raise CapstanError('cannot link %s: %s leads through a symlink (to %s), and nothing inside %s is ever replaced'
                           % (os.path.relpath(link, release_path), os.path.relpath(parent, release_path), real_parent,
                              tree.shared))
    if os.path.islink(link) or os.path.isfile(link):
        os.unlink(link)
    elif os.path.isdir(link):
        _fsops.remove_tree(link, os.path.dirname(link), keep=tree.shared)
    _fsops.replace_symlink(link, target)


def _refuse_older(snapshot, name):
    if snapshot.releases and name < snapshot.releases[-1] and name not in snapshot.releases:
        raise CapstanError('release %s is older than the newest release %s in %s: a new release name must be greater than every existing one'
                           % (name, snapshot.releases[-1], snapshot.tree.releases))


def prepare_release(deploy_to, name, linked_files=None, check=False, run=None, linked_dirs=None):
    """Create the tree and an empty, unfinished release ``name``.

    ``linked_dirs`` and ``linked_files`` are only checked here (the linking is finish_release's),
    so bad input is refused before the release exists.
    """
    tree = _releases.Tree(deploy_to)
    _releases.check_release_name(name)
    _links(tree, name, linked_dirs, linked_files)
    _preflight_linked_files(tree, linked_files)
    snapshot = _releases.Snapshot(tree)
    state = snapshot.states.get(name)
    if state in ('failed', 'rolled_back', 'removed'):
        raise CapstanError('release %s is %s on this host; a new release needs a new name' % (name, state))
    _refuse_older(snapshot, name)
    dirs = [tree.deploy_to, tree.releases, tree.shared]
    missing_dirs = [path for path in dirs if not os.path.isdir(path)]
    changed = state is None or bool(missing_dirs)
    if changed and not check:
        _ensure_dirs(dirs)
        tree.ensure_state_dir()
        if state is None:
            _journal.append_event(tree.journal, 'created', name, user=_host_user(), run=run)
            os.mkdir(tree.release_path(name))
            _fsops.fsync_dir(tree.releases)
    return {
        'changed': changed,
        'release': name,
        'release_path': tree.release_path(name),
        'shared_path': tree.shared,
        'previous_release': snapshot.current,
        'state': state or 'unfinished',
        'diff': _diff({'releases': snapshot.releases}, {'releases': _releases.sort_names(set(snapshot.releases) | {name})}),
    }


def finish_release(deploy_to, name, revision, revision_time=None, linked_dirs=None, linked_files=None,
                   check=False, run=None):
    """Link shared paths into release ``name``, write REVISION and REVISION_TIME, mark it finished.

    Creates the release first when it does not exist, so a release with no content to copy
    is made in one call. A finished release is immutable: another revision is refused.
    """
    tree = _releases.Tree(deploy_to)
    _releases.check_release_name(name)
    if not revision or '\n' in revision:
        raise CapstanError('revision must be a non-empty single line (a git sha or content digest), got %r' % (revision,))
    links = _links(tree, name, linked_dirs, linked_files)
    # Refuse before prepare_release creates anything; a release it creates is unfinished.
    state = _releases.Snapshot(tree).states.get(name, 'unfinished')
    release_path = tree.release_path(name)
    revision_file = os.path.join(release_path, 'REVISION')
    old_revision = (_fsops.read_text(revision_file, default='') or '').strip() or None
    if state in ('finished', 'successful'):
        if old_revision != revision:
            raise CapstanError('release %s is already finished with revision %s; a different revision (%s) needs a new release'
                               % (name, old_revision, revision))
    elif state != 'unfinished':
        raise CapstanError('release %s is %s and cannot be finished' % (name, state))
    prepared = prepare_release(deploy_to, name, linked_files=linked_files, check=check, run=run)
    todo = [link for link in links if not _link_ok(link[0], link[1])]
    changed = prepared['changed'] or state == 'unfinished' or bool(todo)
    if changed and not check:
        for link, target, kind in todo:
            _make_link(tree, release_path, link, target, kind)
        if state == 'unfinished':
            stamp = revision_time if revision_time is not None else str(int(time.time()))
            _fsops.write_file_atomic(revision_file, revision + '\n')
            _fsops.write_file_atomic(os.path.join(release_path, 'REVISION_TIME'), str(stamp) + '\n')
            _journal.append_event(tree.journal, 'finished', name, revision=revision, run=run)
    result = dict(prepared)
    result.update({
        'changed': changed,
        'state': 'finished' if state == 'unfinished' else state,
        'revision': revision,
        'links': [link for link, _target, _kind in links],
        'diff': _diff({'release': name, 'state': prepared['state'] if prepared['changed'] else state, 'revision': old_revision},
                      {'release': name, 'state': 'finished' if state == 'unfinished' else state, 'revision': revision}),
    })
    return result


def succeed_release(deploy_to, name, branch, log_user, check=False, run=None):
    """Record that release ``name`` went live and completed: journal and Capistrano's revisions.log."""
    tree = _releases.Tree(deploy_to)
    _releases.check_release_name(name)
    snapshot = _releases.Snapshot(tree)
    if name not in snapshot.releases:
        raise CapstanError('release %s does not exist in %s; releases: %s' % (name, tree.releases, _listing(snapshot.releases)))
    if snapshot.current != name:
        raise CapstanError('release %s cannot be recorded as deployed: current points to %s' % (name, snapshot.current))
    state = snapshot.states[name]
    if state not in SWAPPABLE_STATES:
        raise CapstanError('release %s is %s, only a finished release can be recorded as deployed' % (name, state))
    changed = state != 'successful'
    revision = snapshot.revision_of(name) or 'unknown'
    log_user = log_user or _host_user()
    line = _journal.deploy_line(branch, revision, name, log_user)
    if changed and not check:
        tree.ensure_state_dir()
        _journal.append_event(tree.journal, 'succeeded', name, revision=revision, user=log_user, run=run)
        _fsops.append_line(tree.revisions_log, line)
    return {'changed': changed, 'release': name, 'state': 'successful', 'revision': revision,
            'release_path': tree.release_path(name), 'log_line': line,
            'diff': _diff({'state': state}, {'state': 'successful'})}


def _append(tree, event, name, pending, **fields):
    """Add a journal event now, or keep it in ``pending`` when the disk is full (written once space is freed)."""
    try:
        tree.ensure_state_dir()
        _journal.append_event(tree.journal, event, name, **fields)
    except (IOError, OSError) as error:
        if not _fsops.out_of_space(error):
            raise
        pending.append((event, name, fields))


def retire(tree, name, state, check, run=None, kind=None, archive=True):
    """Archive (when its state calls for it and ``archive``) and delete release ``name``.

    Returns (archive path or None, note). The journal says ``removing`` before the delete
    starts, so a release whose delete stops half-way is never counted or chosen again. On a
    full disk the release is removed without an archive (writing one would fail, and the
    release would be left behind), and the journal is written once the delete freed space.
    """
    kind = kind or _releases.archive_kind(state)
    path = tree.archive_path(name, kind) if kind and archive else None
    if check:
        return path, None
    note = None
    pending = []
    if kind == 'failed' and state not in ('failed', 'removing'):
        _append(tree, 'failed', name, pending, run=run)
    elif kind == 'rolled_back' and state != 'rolled_back':
        _append(tree, 'rolled_back', name, pending, run=run)
    if path:
        try:
            _fsops.archive_dir(tree.release_path(name), path, name)
        except (IOError, OSError) as error:
            if not _fsops.out_of_space(error):
                raise
            path, note = None, 'removed without an archive: no space left for one (%s)' % error
    _append(tree, 'removing', name, pending, run=run)
    _fsops.remove_tree(tree.release_path(name), tree.releases, keep=tree.shared)
    for event, event_name, fields in pending:
        _journal.append_event(tree.journal, event, event_name, **fields)
    _journal.append_event(tree.journal, 'removed', name, archive=path, run=run)
    return path, note


def discard_release(deploy_to, name, check=False, run=None):
    """Remove the failed release ``name``: tarred to failed-release-<name>.tar.gz first.

    Never the release ``current`` points to, never one that went live successfully.
    """
    tree = _releases.Tree(deploy_to)
    _releases.check_release_name(name)
    snapshot = _releases.Snapshot(tree)
    if name not in snapshot.releases:
        return {'changed': False, 'release': name, 'state': 'absent', 'archive': None,
                'diff': _diff({'release': None}, {'release': None})}
    if name == snapshot.current:
        raise CapstanError('release %s is the one current points to and is never removed; switch current away first' % name)
    state = snapshot.states[name]
    if state == 'successful':
        raise CapstanError('release %s went live successfully; only release_prune removes it, by keep_releases' % name)
    archive, note = retire(tree, name, state, check, run=run, kind='failed')
    result = {'changed': True, 'release': name, 'state': 'absent', 'archive': archive,
              'diff': _diff({'release': name, 'state': state}, {'release': None, 'archive': archive})}
    if note:
        result['warnings'] = ['release %s %s' % (name, note)]
    return result


def swap_current(deploy_to, name, migrate=False, rollback=False, log_user=None, check=False, run=None, drill=False):
    """Point ``current`` at finished release ``name`` with a temp symlink and one rename(2).

    With ``drill`` the switch is a rollback drill's: recorded as such in the journal only (no
    revisions.log line, no release marked rolled back), and never counted as a deploy or rollback.
    """
    tree = _releases.Tree(deploy_to)
    _releases.check_release_name(name)
    snapshot = _releases.Snapshot(tree)
    if name not in snapshot.releases:
        raise CapstanError('release %s does not exist in %s; releases: %s' % (name, tree.releases, _listing(snapshot.releases)))
    state = snapshot.states[name]
    if state not in SWAPPABLE_STATES:
        raise CapstanError('release %s is %s; current only ever points to a finished release' % (name, state))
    if snapshot.current_kind == 'file':
        raise CapstanError('%s is a regular file, not a symlink; move it away before deploying' % tree.current)
    if snapshot.current_kind == 'directory' and not migrate:
        raise CapstanError('%s is a real directory, not a symlink; set migrate=true to move it into releases/ and switch'
                           % tree.current)
    target = tree.release_path(name)
    before = snapshot.current_link
    changed = snapshot.current != name
    migrated = None
    if snapshot.current_kind == 'directory':
        # Foreign entries too: a 14-digit file or link in releases/ is not a free name.
        migrated = _releases.next_free_name_before(snapshot.releases + snapshot.foreign, name)
    previous = migrated or snapshot.current
    if changed and not check:
        if migrated:
            # Recorded first and moved right before the switch: the moment without current
            # (a directory cannot be renamed over) is two renames long.
            tree.ensure_state_dir()
            _journal.append_event(tree.journal, 'succeeded', migrated, note='migrated from a current directory', run=run)
            os.rename(tree.current, tree.release_path(migrated))
        _fsops.replace_symlink(tree.current, target)
        if migrated:
            _fsops.fsync_dir(tree.releases)
        tree.ensure_state_dir()
        mode = 'drill' if drill else 'rollback' if rollback else 'deploy'
        _journal.append_event(tree.journal, 'published', name, previous=previous, mode=mode, run=run)
        if rollback:
            user = log_user or _host_user()
            _journal.append_event(tree.journal, 'rollback', name, previous=previous, user=user, run=run)
            if previous and previous > name and snapshot.states.get(previous) != 'rolled_back':
                # What a rollback leaves is never live again by accident: not counted, not a target,
                # even when the run stops before it is archived.
                _journal.append_event(tree.journal, 'rolled_back', previous, run=run)
            _fsops.append_line(tree.revisions_log, _journal.rollback_line(user, name))
    return {
        'changed': changed,
        'release': name,
        'release_path': target,
        'previous_release': previous,
        'previous_path': tree.release_path(previous) if previous else None,
        'previous_link': before,
        'migrated': migrated,
        'diff': _diff({'current': before}, {'current': target}),
    }


def prune(deploy_to, keep, keep_archives, exclude=None, rolled_back=None, check=False, run=None):
    """Keep the newest ``keep`` successful releases (current always kept) and ``keep_archives`` archives.

    ``rolled_back`` names the release a rollback just left: it is archived as
    rolled-back-release-<name>.tar.gz and removed. Leftovers of runs that did not complete
    are archived as failed-release-<name>.tar.gz and removed; an archive that archive
    retention would delete at once is never written. Temporary files of crashed runs
    (half-written archives, swap links) are removed. Foreign entries are reported.

    A release that cannot be removed does not stop the prune: it is reported in
    ``warnings`` (and, marked ``removing``, never counted or chosen again).
    """
    tree = _releases.Tree(deploy_to)
    exclude = [_releases.check_release_name(name, 'exclude') for name in (exclude or [])]
    snapshot = _releases.Snapshot(tree)
    steps = []
    if rolled_back is not None:
        _releases.check_release_name(rolled_back, 'rolled_back')
        if rolled_back == snapshot.current:
            raise CapstanError('rolled_back %s is the release current points to; it is never removed' % rolled_back)
        if rolled_back in snapshot.releases:
            # Half removed already (a run that stopped while deleting it): finish the delete, no new archive.
            kind = None if snapshot.states[rolled_back] == 'removing' else 'rolled_back'
            steps.append((rolled_back, 'rolled_back', kind))
    plan = _releases.prune_plan(snapshot, keep, exclude, leaving=[rolled_back] if rolled_back else [])
    steps.extend((name, reason, _releases.archive_kind(snapshot.states[name])) for name, reason in plan)
    new_archives = [os.path.basename(tree.archive_path(name, kind)) for name, _reason, kind in steps if kind]
    old_archives = _releases.archives_plan(snapshot, keep_archives, adding=new_archives)
    unwritten = set(old_archives) & set(new_archives)
    leftovers = (_fsops.temp_leftovers(tree.deploy_to, [r'(failed|rolled-back)-release-[0-9]{14}\.tar\.gz', 'current'])
                 + _fsops.temp_leftovers(tree.state_dir, ['lock', 'journal']))
    removed, warnings = [], []
    for name, reason, kind in steps:
        archived = kind and os.path.basename(tree.archive_path(name, kind)) not in unwritten
        try:
            archive, note = retire(tree, name, snapshot.states[name], check, run=run, kind=kind, archive=archived)
        except (IOError, OSError, CapstanError) as error:
            warnings.append('release %s could not be removed from %s (%s); it is no longer counted, and the next '
                            'prune tries again' % (name, tree.releases, error))
            continue
        if note:
            warnings.append('release %s %s' % (name, note))
        removed.append({'name': name, 'reason': reason, 'archive': archive})
    if not check:
        for entry in sorted(set(old_archives) - unwritten):
            _fsops.remove_file(os.path.join(tree.deploy_to, entry))
        for path in leftovers:
            _fsops.remove_file(path)
    gone = set(entry['name'] for entry in removed)
    kept = [name for name in snapshot.releases if name not in gone]
    result = {
        'changed': bool(removed or old_archives or leftovers),
        'removed': removed,
        'archives_removed': sorted(set(old_archives) - unwritten),
        'leftovers_removed': leftovers,
        'kept': kept,
        'current': snapshot.current,
        'foreign': snapshot.foreign,
        'diff': _diff({'releases': snapshot.releases, 'archives': snapshot.archives},
                      {'releases': kept, 'archives': sorted((set(snapshot.archives) | set(new_archives)) - set(old_archives))}),
    }
    if warnings:
        result['warnings'] = warnings
    return result


def rollback_target(deploy_to, release=None):
    """Resolve where a rollback goes; read-only."""
    tree = _releases.Tree(deploy_to)
    snapshot = _releases.Snapshot(tree)
    target, leaving = _releases.rollback_plan(snapshot, release)
    return {
        'changed': False,
        'release': target,
        'release_path': tree.release_path(target),
        'current': snapshot.current,
        'leaving': leaving,
        'noop': target == snapshot.current,
        'available': snapshot.successful(),
    }


def info(deploy_to, history=False, history_days=None, now=None):
    """Everything about one deploy tree, read-only.

    With ``history``, also each release's last time live (``live_at``) and the delivery
    history and figures of the tree (``_delivery.host_history``), over the last
    ``history_days`` days when given.
    """
    tree = _releases.Tree(deploy_to)
    _delivery.check_days(history_days)
    snapshot = _releases.Snapshot(tree)
    holder = _lock.read_holder(tree.lock)
    releases = [snapshot.describe(name) for name in snapshot.releases]
    result = {
        'changed': False,
        'exists': snapshot.exists,
        'deploy_to': tree.deploy_to,
        'current': snapshot.current,
        'current_kind': snapshot.current_kind,
        'current_link': snapshot.current_link,
        'releases': releases,
        'release_names': snapshot.releases,
        'successful': snapshot.successful(),
        'foreign': snapshot.foreign,
        'archives': snapshot.archives,
        'lock': holder,
        'revisions': snapshot.revisions,
        'events': snapshot.events,
    }
    if history:
        live = _delivery.live_times(snapshot.events)
        for release in releases:
            release['live_at'] = live.get(release['name'])
        result['history'] = _delivery.host_history(snapshot.events, snapshot.revisions, lock_owner=holder.get('owner'),
                                                   days=history_days, now=now)
    return result


def lock(deploy_to, state, owner, user=None, host=None, pid=None, command=None, force=False, check=False, read=False):
    """Take (``present``) or release (``absent``) the deploy lock of ``deploy_to``.

    With ``read``, taking the lock also returns the tree as ``info`` reads it once locked
    (``tree``), so a run locks and reads in one round trip.
    """
    tree = _releases.Tree(deploy_to)
    if state == 'present':
        result = _take_lock(tree, owner, user, host, pid, command, force, check)
        if read:
            result['tree'] = info(deploy_to)
        return result
    return _release_lock(tree, owner, force, check)


def _take_lock(tree, owner, user, host, pid, command, force, check):
    new_holder = _lock.make_holder(owner, user, host, pid, command)
    action, holder = _lock.plan_acquire(tree.lock, owner, force)
    changed = action != 'held'
    if changed and not check:
        # Runs racing for a new tree all create these: exist_ok, or the losers fail here
        # with EEXIST instead of being refused with the winner's name.
        tree.ensure_state_dir()
        _lock.acquire(tree.lock, new_holder, force)
    after = new_holder if check and changed else _lock.read_holder(tree.lock)
    return {'changed': changed, 'locked': True, 'broken': holder if action == 'break' else {},
            'holder': after, 'lock_path': tree.lock,
            'diff': _diff({'holder': _lock.describe(holder)}, {'holder': _lock.describe(after)})}


def _release_lock(tree, owner, force, check):
    if not owner:
        raise CapstanError('owner must be a non-empty token identifying this run')
    action, holder = _lock.plan_release(tree.lock, owner, force)
    changed = action == 'release'
    if changed and not check:
        _lock.release(tree.lock, owner, force)
    return {'changed': changed, 'locked': False, 'broken': holder if force and holder.get('owner') != owner else {},
            'holder': {}, 'lock_path': tree.lock,
            'diff': _diff({'holder': _lock.describe(holder)}, {'holder': 'nobody'})}
