# Copyright (c) 2026, capstan.release contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""The host's side of each stage of the two flows: one module run a stage, composed from _steps and _content.

A run is identified by ``run``, a dict the controller makes once: ``owner`` (the token the
lock and the journal carry), ``user``, ``host``, ``pid`` and ``command`` of the controller's
ansible-playbook, ``mode`` (deploy or rollback), ``ttl`` (seconds after which a lock looks
stale) and ``break`` (take a lock another run left). Every function decides first and acts
only when ``check`` is false; refusals (CapstanError) come before anything changes.

    deploy:   start_deploy -> build_release -> switch -> finish_deploy; abort_deploy on failure
    rollback: start_rollback -> switch -> finish_rollback; abort_rollback on failure

The content modules (_content: the strategies, manifests, copy plans) are imported by the
stages that read or build content, inside them: the host compiles a module's code on every
run, and a switch, a finish or a rollback has no use for them (~30 ms of the host's CPU a run).
"""

from __future__ import annotations

import os

from ansible_collections.capstan.release.plugins.module_utils._content import holdings
from ansible_collections.capstan.release.plugins.module_utils import _journal
from ansible_collections.capstan.release.plugins.module_utils import _lock
from ansible_collections.capstan.release.plugins.module_utils import _releases
from ansible_collections.capstan.release.plugins.module_utils import _steps
from ansible_collections.capstan.release.plugins.module_utils._errors import CapstanError

MIB = 1024 * 1024


def _take_lock(tree, run, check, **extra):
    """Take the deploy lock for ``run``; returns (taken now, the holder broken or {})."""
    action, holder = _lock.plan_acquire(tree.lock, run['owner'], run.get('break', False), run.get('ttl'))
    if action == 'held':
        return False, {}
    broken = holder if action == 'break' else {}
    if not check:
        tree.ensure_state_dir()
        new = _lock.make_holder(run['owner'], run.get('user'), run.get('host'), run.get('pid'), run.get('command'),
                                mode=run.get('mode'), **extra)
        _lock.acquire(tree.lock, new, run.get('break', False), run.get('ttl'))
        if broken:
            _journal.append_event(tree.journal, 'lock_broken', '', holder=broken, run=run['owner'])
    return True, broken


def _refuse_busy(tree, run):
    """Refuse at once when another run holds the tree (nothing is read or changed for a run that must not start)."""
    return _lock.plan_acquire(tree.lock, run['owner'], run.get('break', False), run.get('ttl'))


def _view(snapshot, name):
    """What the flow needs to know of one release: its state and revision."""
    if name is None or name not in snapshot.releases:
        return None
    return {'name': name, 'state': snapshot.states[name], 'revision': snapshot.revision_of(name)}


def live_status(snapshot, revision):
    """``live`` when current is a release recorded complete with ``revision``; ``unrecorded`` when it holds
    ``revision`` but its deploy never finished (a run stopped after the switch); else ``other``."""
    view = _view(snapshot, snapshot.current)
    if view is None or not revision or view['revision'] != revision:
        return 'other'
    if view['state'] == 'successful':
        return 'live'
    return 'unrecorded' if view['state'] == 'finished' else 'other'


def _refuse_current(snapshot, migrate_current):
    kind = snapshot.current_kind
    if kind == 'directory' and not migrate_current:
        raise CapstanError('%s is a real directory, not a symlink: set deploy_migrate_current=true to move it into releases/ '
                           '(kept as the release before the new one) and switch to the new release' % snapshot.tree.current)
    if kind == 'file':
        raise CapstanError('%s is a regular file, not a symlink to a release; move it away before deploying' % snapshot.tree.current)


def start_deploy(deploy_to, run, strategy, revision=None, manifest=None, src=None, checksum=None, repo_url=None,
                 version=None, migrate_current=False, runner=None, opener=None, check=False):
    """Read the tree and the source, and lock the tree unless it already runs what this deploy brings.

    Returns the tree's ``status`` (see live_status), ``current``, ``newest``, the views of both,
    the ``revision`` the source resolves to, and for copy the contents the host lacks
    (``missing``: the controller keeps them, they never cross back). The lock is taken only when
    the tree exists (the build makes a new tree and locks it) and the host has work to do.
    """
    tree = _releases.Tree(deploy_to)
    tree.refuse_unwritable()
    snapshot = _releases.Snapshot(tree)
    busy, _holder = _refuse_busy(tree, run)
    _refuse_current(snapshot, migrate_current)
    _releases.next_release_name(snapshot.releases)  # a tree whose newest name has no successor is refused now
    result = {'changed': False, 'exists': snapshot.exists, 'foreign': snapshot.foreign}
    if strategy == 'git':
        from ansible_collections.capstan.release.plugins.module_utils._content import git_source
        resolved = git_source.resolve_git(runner, deploy_to, repo_url, version, check=True)
        revision = resolved['revision']
        result.update(branch=resolved['branch'])
    elif strategy == 'archive':
        from ansible_collections.capstan.release.plugins.module_utils._content import archive_source
        resolved = archive_source.resolve_archive(deploy_to, src, checksum, opener=opener, check=check)
        revision = resolved['revision']
    status = live_status(snapshot, revision)
    if strategy == 'copy' and status != 'live':
        from ansible_collections.capstan.release.plugins.module_utils._content import plans
        planned = plans.plan(deploy_to, manifest)
        result.update(missing=planned['missing'], sent=planned['sent'], sent_bytes=planned['sent_bytes'],
                      linked=planned['linked'])
    locked, broken = False, {}
    if status != 'live' and snapshot.exists:
        locked, broken = _take_lock(tree, run, check)
    elif busy == 'break':
        # Nothing to do here, but the lock a run that is gone left behind is cleared as asked.
        broken = _holder
        if not check:
            _lock.release(tree.lock, run['owner'], force=True)
            _journal.append_event(tree.journal, 'lock_broken', '', holder=broken, run=run['owner'])
    newest = snapshot.releases[-1] if snapshot.releases else None
    result.update({
        'changed': locked or bool(broken),
        'locked': locked,
        'broken': broken,
        'status': status,
        'revision': revision,
        'current': snapshot.current,
        'current_kind': snapshot.current_kind,
        'newest': newest,
        'views': [view for view in (_view(snapshot, snapshot.current), _view(snapshot, newest)) if view],
        'diff': {'before': {'lock': _lock.describe(broken) if broken else 'free'},
                 'after': {'lock': 'this run' if locked else 'free'}},
    })
    return result


def _free_bytes(path):
    while not os.path.isdir(path):
        path = os.path.dirname(path)
    stats = os.statvfs(path)
    return stats.f_bavail * stats.f_frsize


def check_free_space(tree, need, margin_mb):
    """Refuse a build that would not fit: ``need`` bytes plus ``margin_mb`` MiB must be free where the tree is."""
    free = _free_bytes(tree.deploy_to)
    if free < need + margin_mb * MIB:
        raise CapstanError('not enough free space in %s on this host: the release needs about %.1f MiB and '
                           'deploy_free_space_margin_mb keeps %d MiB free, but %.1f MiB are free; free some space or '
                           'lower deploy_free_space_margin_mb' % (tree.deploy_to, need / float(MIB), margin_mb,
                                                                  free / float(MIB)), free_bytes=free, need_bytes=need)
    return free


def build_release(deploy_to, run, name, strategy, revision, linked_dirs=None, linked_files=None, manifest=None,
                  bundle=None, sent_bytes=0, src=None, checksum=None, repo_url=None, margin_mb=64, runner=None,
                  opener=None, check=False):
    """Lock (if the start did not), check free space, create release ``name``, fill it, link shared paths, finish it.

    A release ``name`` that is already finished with ``revision`` (a run that stopped after
    building it) is kept as it is: the build then only makes sure of its links.
    """
    from ansible_collections.capstan.release.plugins.module_utils._content import archive_source
    from ansible_collections.capstan.release.plugins.module_utils._content import builds
    from ansible_collections.capstan.release.plugins.module_utils._content import git_source
    from ansible_collections.capstan.release.plugins.module_utils._content import manifests
    tree = _releases.Tree(deploy_to)
    _releases.check_release_name(name)
    links = _steps.check_links(tree, name, linked_dirs, linked_files)
    _refuse_busy(tree, run)
    snapshot = _releases.Snapshot(tree)
    view = _view(snapshot, name)
    if view and view['state'] in _steps.SWAPPABLE_STATES and view['revision'] == revision:
        _take_lock(tree, run, check)
        finished = _steps.finish_release(deploy_to, name, revision, linked_dirs=linked_dirs, linked_files=linked_files,
                                         check=check, run=run['owner'])
        return dict(finished, created=False, resumed=True)
    _steps.preflight(tree, name, linked_files)
    if strategy == 'copy':
        manifest = manifests.load_manifest(manifest)
        if manifests.digest(manifest) != revision:
            raise CapstanError('the manifest has digest %s, not the revision %s this deploy resolved'
                               % (manifests.digest(manifest), revision))
    revision_time = None
    if strategy == 'git' and not check:
        _take_lock(tree, run, check)
        git_source.update_mirror(runner, deploy_to, repo_url)
        revision_time = git_source.commit_time(runner, deploy_to, revision)
        need = 2 * git_source.content_bytes(runner, deploy_to, revision)
    elif strategy == 'archive':
        need = archive_source.content_bytes(deploy_to, src, revision)
    else:
        need = sent_bytes
    check_free_space(tree, need, margin_mb)
    _take_lock(tree, run, check)
    prepared = _steps.prepare_release(deploy_to, name, linked_files=linked_files, check=check, run=run['owner'],
                                      linked_dirs=linked_dirs)
    if strategy == 'copy':
        content = builds.build(deploy_to, name, manifest, bundle=bundle, revision=revision, check=check)
    elif strategy == 'git':
        content = git_source.build_from_git(runner, deploy_to, name, revision, check=check)
    else:
        content = archive_source.build_from_archive(deploy_to, name, src, revision, checksum=checksum, opener=opener, check=check)
    finished = _steps.finish_release(deploy_to, name, revision, revision_time=revision_time, linked_dirs=linked_dirs,
                                     linked_files=linked_files, check=check, run=run['owner'])
    counts = dict((key, content[key]) for key in ('files', 'dirs', 'symlinks', 'bytes', 'linked', 'copied', 'written')
                  if key in content)
    return {'changed': True, 'created': prepared['state'] == 'unfinished' and prepared['changed'], 'resumed': False,
            'release': name, 'release_path': finished['release_path'], 'revision': revision, 'links': len(links),
            'content': counts, 'need_bytes': need,
            'diff': {'before': {'release': None}, 'after': {'release': name, 'revision': revision}}}


def switch(deploy_to, run, name, migrate=False, rollback=False, log_user=None, check=False):
    """Point current at finished release ``name`` for the run ``run`` (see _steps.swap_current)."""
    return _steps.swap_current(deploy_to, name, migrate=migrate, rollback=rollback, log_user=log_user, check=check,
                               run=run['owner'])


def finish_deploy(deploy_to, run, name, branch, log_user, keep, keep_archives, unlock=True, check=False):
    """Record release ``name`` as deployed (journal, revisions.log), prune, release the lock (unless told
    to keep it: serial batches keep theirs until the last batch is done).

    What fails after the record (a release that cannot be removed, say) is a warning: the
    deploy is done and stays live.
    """
    tree = _releases.Tree(deploy_to)
    succeeded = _steps.succeed_release(deploy_to, name, branch, log_user, check=check, run=run['owner'])
    warnings = []
    try:
        pruned = _steps.prune(deploy_to, keep, keep_archives, check=check, run=run['owner'])
        warnings.extend(pruned.pop('warnings', []))
    except (IOError, OSError, CapstanError) as error:
        pruned = {'changed': False, 'removed': [], 'archives_removed': []}
        warnings.append('old releases of %s were not pruned: %s' % (tree.deploy_to, error))
    if not check and os.path.isdir(os.path.join(tree.state_dir, holdings.DOWNLOADS)):
        from ansible_collections.capstan.release.plugins.module_utils._content import archive_source
        archive_source.drop_downloads(deploy_to)
    unlocked = _unlock(tree, run, check) if unlock else False
    result = {'changed': succeeded['changed'] or pruned['changed'], 'recorded': True, 'release': name,
              'log_line': succeeded['log_line'], 'removed': pruned['removed'], 'archives_removed': pruned['archives_removed'],
              'unlocked': unlocked}
    if warnings:
        result['warnings'] = ['%s: %s' % (tree.deploy_to, warning) for warning in warnings]
    return result


def _unlock(tree, run, check):
    """Release the lock when this run holds it; a lock of another run (or none) is left as it is."""
    if _lock.read_holder(tree.lock).get('owner') != run['owner']:
        return False
    if not check:
        _lock.release(tree.lock, run['owner'])
    return True


def unlock(deploy_to, run, check=False):
    """Release this run's lock (no change when it holds none)."""
    tree = _releases.Tree(deploy_to)
    released = _unlock(tree, run, check)
    return {'changed': False, 'unlocked': released}


def _events_of(snapshot, owner):
    return [event for event in snapshot.events if event.get('run') == owner]


def abort_deploy(deploy_to, run, name, auto_rollback=True, log_user=None, keep_recorded=False, check=False):
    """Undo what this run did on this host: switch back, archive and remove its release, unlock.

    Works from the tree and the journal (what this run's token did), so it is right wherever
    the run stopped, and only while this run holds the lock: a tree another run took over (by
    breaking the lock) is left alone. With ``keep_recorded`` a release this run recorded as
    deployed stays live (the failure came after the deploy was done everywhere). The lock is
    released whatever else fails.
    """
    tree = _releases.Tree(deploy_to)
    outcome = {'changed': False, 'switched_back': None, 'archive': None, 'removed': False, 'unlocked': False,
               'current': None, 'notes': []}
    if not os.path.isdir(tree.deploy_to):
        return outcome
    holder = _lock.read_holder(tree.lock)
    if holder.get('owner') != run['owner']:
        snapshot = _releases.Snapshot(tree)
        outcome['current'] = snapshot.current
        recorded = any(event['event'] == 'succeeded' and event['release'] == name
                       for event in _events_of(snapshot, run['owner']))
        if holder:
            outcome['notes'].append('%s is locked by %s now: nothing of this run was undone there'
                                    % (tree.deploy_to, _lock.describe(holder)))
        elif recorded and snapshot.current == name:
            outcome['notes'].append('release %s stays live: it had been recorded as deployed' % name)
        return outcome
    try:
        snapshot = _releases.Snapshot(tree)
        events = _events_of(snapshot, run['owner'])
        published = [event for event in events if event['event'] == 'published' and event['release'] == name]
        created = any(event['event'] == 'created' and event['release'] == name for event in events)
        recorded = any(event['event'] == 'succeeded' and event['release'] == name for event in events)
        current = snapshot.current
        if keep_recorded and recorded:
            outcome['notes'].append('release %s stays live: it had been recorded as deployed' % name)
            name = None
        if name and current == name and published:
            previous = published[-1].get('previous')
            if not auto_rollback:
                outcome['notes'].append('current still points to release %s (deploy_auto_rollback is false)' % name)
            elif not previous or previous not in snapshot.releases:
                outcome['notes'].append('current still points to release %s: there is no previous release to go back to' % name)
            else:
                _steps.swap_current(deploy_to, previous, rollback=True, log_user=log_user, check=check, run=run['owner'])
                outcome.update(switched_back=previous, changed=True)
                current = previous
        if name and created and name in snapshot.releases and current != name:
            state = _releases.Snapshot(tree).states.get(name) if not check else snapshot.states[name]
            # A deploy that failed leaves a failed release, even one that went live for a moment;
            # one that had been recorded complete (an earlier serial batch) was rolled back.
            kind = 'rolled_back' if recorded else 'failed'
            archive, note = _steps.retire(tree, name, state, check, run=run['owner'], kind=kind)
            outcome.update(archive=archive, removed=True, changed=True)
            if note:
                outcome['notes'].append('release %s %s' % (name, note))
        outcome['current'] = current
    finally:
        outcome['unlocked'] = _unlock(tree, run, check)
    return outcome


def start_rollback(deploy_to, run, release=None, check=False):
    """Lock the tree and find where the rollback goes (the release before current, or ``release``).

    Breaking the lock of a rollback that stopped half-way completes that rollback: the same
    target, the same release to leave, never one step further back. Naming, as
    ``release``, the release that rollback left undoes it instead (what a failed run tells a
    host it could not reach to do): that release, marked rolled back by the interrupted run,
    counts as completed again. A tree that does not exist is refused before anything is made.
    """
    tree = _releases.Tree(deploy_to)
    if not os.path.isdir(tree.releases):
        raise CapstanError('cannot roll back %s on this host: it holds no releases (%s does not exist)'
                           % (tree.deploy_to, tree.releases))
    tree.refuse_unwritable()
    action, holder = _refuse_busy(tree, run)
    snapshot = _releases.Snapshot(tree)
    completing = undoing = None
    if action == 'break' and holder.get('mode') == 'rollback' and holder.get('target') and release is None:
        completing = holder
        release = holder['target']
    elif action == 'break' and holder.get('mode') == 'rollback' and release and release == holder.get('leaving') \
            and snapshot.states.get(release) == 'rolled_back':
        undoing = release
        snapshot.states[release] = 'successful'
    target, leaving = _releases.rollback_plan(snapshot, release)
    if completing and target == snapshot.current:
        left = completing.get('leaving')
        leaving = left if left in snapshot.releases and left != target else None
    _take_lock(tree, run, check, target=target, leaving=leaving)
    if undoing and not check:
        _journal.append_event(tree.journal, 'succeeded', undoing, note='the interrupted rollback that left it was undone',
                              run=run['owner'])
    view = _view(snapshot, target)
    return {
        'changed': target != snapshot.current or bool(leaving),
        'release': target,
        'release_path': tree.release_path(target),
        'revision': view['revision'] if view else None,
        'current': snapshot.current,
        'leaving': leaving,
        'noop': target == snapshot.current and not leaving,
        'completing': bool(completing),
        'broken': holder if action == 'break' else {},
        'available': snapshot.successful(),
        'diff': {'before': {'current': snapshot.current}, 'after': {'current': target}},
    }


def finish_rollback(deploy_to, run, leaving, keep, keep_archives, unlock=True, check=False):
    """Archive and remove the release the rollback left, prune, and release the lock (unless told to keep it)."""
    tree = _releases.Tree(deploy_to)
    snapshot = _releases.Snapshot(tree)
    rolled_back = leaving if leaving and leaving in snapshot.releases and leaving != snapshot.current else None
    warnings = []
    try:
        pruned = _steps.prune(deploy_to, keep, keep_archives, rolled_back=rolled_back, check=check, run=run['owner'])
        warnings.extend(pruned.pop('warnings', []))
    except (IOError, OSError, CapstanError) as error:
        pruned = {'changed': False, 'removed': [], 'archives_removed': []}
        warnings.append('the release left, %s, and old releases were not pruned: %s' % (leaving, error))
    unlocked = _unlock(tree, run, check) if unlock else False
    result = {'changed': pruned['changed'], 'removed': pruned['removed'], 'archives_removed': pruned['archives_removed'],
              'unlocked': unlocked}
    if warnings:
        result['warnings'] = ['%s: %s' % (tree.deploy_to, warning) for warning in warnings]
    return result


def abort_rollback(deploy_to, run, log_user=None, check=False):
    """Put back what this rollback switched on this host (current to the release it left), and unlock."""
    tree = _releases.Tree(deploy_to)
    outcome = {'changed': False, 'switched_back': None, 'unlocked': False, 'current': None, 'notes': []}
    if not os.path.isdir(tree.releases):
        return outcome
    try:
        snapshot = _releases.Snapshot(tree)
        switches = [event for event in _events_of(snapshot, run['owner']) if event['event'] == 'rollback']
        current = snapshot.current
        if switches and current == switches[-1]['release'] and switches[-1].get('previous') in snapshot.releases:
            back = switches[-1]['previous']
            if not check and snapshot.states.get(back) == 'rolled_back':
                _journal.append_event(tree.journal, 'succeeded', back, note='the rollback that left it failed',
                                      run=run['owner'])
            _steps.swap_current(deploy_to, back, rollback=True, log_user=log_user, check=check, run=run['owner'])
            outcome.update(switched_back=back, changed=True)
            current = back
        outcome['current'] = current
    finally:
        outcome['unlocked'] = _unlock(tree, run, check)
    return outcome


def start_drill(deploy_to, run, check=False):
    """Lock the tree for a rollback drill and find the release before current (kept: the drill comes back to current)."""
    tree = _releases.Tree(deploy_to)
    if not os.path.isdir(tree.releases):
        raise CapstanError('cannot drill %s on this host: it holds no releases (%s does not exist)'
                           % (tree.deploy_to, tree.releases))
    tree.refuse_unwritable()
    snapshot = _releases.Snapshot(tree)
    _refuse_busy(tree, run)
    try:
        target, _leaving = _releases.rollback_plan(snapshot)
    except CapstanError as error:
        # Said by the fleet's plan, after the drift a host without an earlier release may be part of.
        return {'changed': False, 'release': None, 'current': snapshot.current, 'refusal': str(error)}
    _take_lock(tree, run, check, target=target)
    return {'changed': False, 'release': target, 'current': snapshot.current,
            'revision': snapshot.revision_of(target), 'release_path': tree.release_path(target)}


def drill_switch(deploy_to, run, name, check=False):
    """Switch current to ``name`` as a drill does: atomically, recorded as a drill (not a deploy or rollback)."""
    tree = _releases.Tree(deploy_to)
    if _lock.read_holder(tree.lock).get('owner') != run['owner']:
        raise CapstanError('%s is not locked by this drill; it switches nothing' % tree.deploy_to)
    return _steps.swap_current(deploy_to, name, drill=True, check=check, run=run['owner'])


def finish_drill(deploy_to, run, release, target, back_seconds, forward_seconds, check=False):
    """Record the drill in the journal and release the lock."""
    tree = _releases.Tree(deploy_to)
    if not check:
        _journal.append_event(tree.journal, 'drill', release, target=target, back_seconds=back_seconds,
                              forward_seconds=forward_seconds, run=run['owner'])
    return {'changed': False, 'unlocked': _unlock(tree, run, check)}


def abort_drill(deploy_to, run, release, check=False):
    """Put current back on ``release`` (the one live before the drill) when the drill moved it, and unlock."""
    tree = _releases.Tree(deploy_to)
    outcome = {'changed': False, 'switched_back': None, 'unlocked': False, 'current': None, 'notes': []}
    if not os.path.isdir(tree.releases) or _lock.read_holder(tree.lock).get('owner') != run['owner']:
        return outcome
    try:
        snapshot = _releases.Snapshot(tree)
        if release and snapshot.current != release and release in snapshot.releases:
            _steps.swap_current(deploy_to, release, drill=True, check=check, run=run['owner'])
            outcome.update(switched_back=release, changed=True)
        outcome['current'] = release if outcome['switched_back'] else snapshot.current
    finally:
        outcome['unlocked'] = _unlock(tree, run, check)
    return outcome
