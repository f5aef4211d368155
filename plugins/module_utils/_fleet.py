# Copyright (c) 2026, capstan.release contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""The fleet's decisions, made on the controller from what every host's starting stage found.

Plain functions over plain data, the same on every host that asks (they are evaluated once per
host, and must agree): the release name for the whole run, whether there is anything to
deploy, whether an interrupted run is finished instead, where a rollback goes, and what to
tell the operator when a run fails (with the command that brings a host that could not be
reached back in line).

A host's start (``starts``: a list of ``(host, start)`` pairs in play order) is what
_stages.start_deploy or start_rollback returned, plus ``run`` (the run's identity) and
``time`` (when the controller asked, seconds since the epoch).
"""

from __future__ import annotations

import datetime
import shlex

from ansible_collections.capstan.release.plugins.module_utils import _checks
from ansible_collections.capstan.release.plugins.module_utils import _releases
from ansible_collections.capstan.release.plugins.module_utils._errors import CapstanError

SWAPPABLE = ('finished', 'successful')


def _hosts(starts):
    return [host for host, _start in starts]


def _listing(pairs):
    """``abc on host1, host2; def on host3`` for {value: [hosts]}."""
    return '; '.join('%s on %s' % (value if value else 'nothing', ', '.join(hosts)) for value, hosts in pairs)


def _group(starts, key):
    groups = []
    for host, start in starts:
        value = start.get(key)
        for entry in groups:
            if entry[0] == value:
                entry[1].append(host)
                break
        else:
            groups.append((value, [host]))
    return groups


def _when(starts):
    """One moment for the whole run: the latest time a host was asked (so every host computes the same name)."""
    moment = max(float(start.get('time') or 0) for _host, start in starts)
    return datetime.datetime.fromtimestamp(moment, datetime.timezone.utc) if moment else None


def _view(start, name):
    for view in start.get('views') or []:
        if view.get('name') == name:
            return view
    return None


def resumable(starts, revision):
    """The release an interrupted deploy of ``revision`` left to finish, or None.

    That is the release current points to where a run stopped after the switch (current
    holds ``revision`` but its deploy was never recorded), or else the newest release of
    the fleet; it qualifies only when it is the newest release of every host and is
    finished there with ``revision`` (so nothing is half-built anywhere).
    """
    unrecorded = set(start['current'] for _host, start in starts if start.get('status') == 'unrecorded')
    if len(unrecorded) > 1:
        return None
    newest = [start.get('newest') for _host, start in starts]
    candidate = unrecorded.pop() if unrecorded else (newest[0] if newest and len(set(newest)) == 1 else None)
    if candidate is None:
        return None
    for _host, start in starts:
        view = _view(start, candidate)
        if start.get('newest') != candidate or view is None or view.get('state') not in SWAPPABLE \
                or view.get('revision') != revision:
            return None
    if all(start.get('status') == 'live' for _host, start in starts):
        return None
    return candidate


def deploy_plan(starts, override='', what='the source'):
    """The deploy the fleet makes: ``{'action': 'noop' | 'resume' | 'build', 'release': name, ...}``.

    ``noop``: every host already runs the revision, recorded complete. ``resume``: finish the
    release an interrupted run left (see resumable). ``build``: a new release, named once for
    every host: ``override`` (deploy_release_name) or the UTC time, strictly newer than every
    host's newest release. Raises CapstanError when the hosts resolve ``what`` to different
    revisions or ``override`` is not newer than every host's releases.
    """
    if not starts:
        raise CapstanError('no host to deploy to')
    revisions = _group(starts, 'revision')
    if len(revisions) > 1:
        raise CapstanError('%s resolves to different revisions on the hosts (%s); every host must deploy the same revision'
                           % (what, _listing(revisions)))
    revision = revisions[0][0]
    plan = {'revision': revision, 'hosts': _hosts(starts),
            'previous': dict((host, start.get('current')) for host, start in starts)}
    if all(start.get('status') == 'live' for _host, start in starts):
        currents = set(start.get('current') for _host, start in starts)
        plan.update(action='noop', release=currents.pop() if len(currents) == 1 else None)
        return plan
    candidate = resumable(starts, revision)
    if candidate and (not override or override == candidate):
        plan.update(action='resume', release=candidate)
        return plan
    newest = [start.get('newest') for _host, start in starts if start.get('newest')]
    if override:
        behind = [(host, start['newest']) for host, start in starts if start.get('newest') and start['newest'] >= override]
        if behind:
            found = ', '.join('%s on %s' % (name, host) for host, name in behind)
            raise CapstanError('deploy_release_name %s is not newer than every release on the hosts (%s); a new release '
                               'needs a name greater than all of them' % (override, found))
        plan.update(action='build', release=override)
        return plan
    plan.update(action='build', release=_releases.next_release_name(newest, now=_when(starts)))
    return plan


def continuing(plan, starts, what='the source'):
    """The plan of the first serial batch, for a later batch: refused when this batch resolved another revision."""
    revisions = _group(starts, 'revision')
    if len(revisions) > 1 or revisions[0][0] != plan['revision']:
        raise CapstanError('%s changed between serial batches: the first batch deployed revision %s, this batch resolves '
                           '%s; no host of this batch deploys' % (what, plan['revision'], _listing(revisions)))
    return dict(plan, hosts=_hosts(starts))


def rollback_plan(starts):
    """Where the fleet rolls back: every host must go to the same release.

    ``noop`` when every host is there already with nothing left to archive. When some hosts
    complete an interrupted rollback (their lock was broken), the fleet completes it: a host
    that finished that rollback before the run stopped is already on its target, and stays
    there (it does not step back further on its own).
    """
    if not starts:
        raise CapstanError('no host to roll back')
    completing = _group([(host, start) for host, start in starts if start.get('completing')], 'release')
    if len(completing) == 1:
        target = completing[0][0]
        starts = [(host, start if start.get('completing') or start.get('current') != target
                   else dict(start, release=target, leaving=None, noop=True)) for host, start in starts]
    targets = _group(starts, 'release')
    if len(targets) > 1:
        raise CapstanError('the hosts would roll back to different releases (%s): their histories differ; name one with '
                           '-e rollback_release=<name>' % _listing(targets))
    return {'action': 'noop' if all(start.get('noop') for _host, start in starts) else 'rollback',
            'release': targets[0][0], 'hosts': _hosts(starts),
            'previous': dict((host, start.get('current')) for host, start in starts),
            'leaving': dict((host, start.get('leaving')) for host, start in starts)}


def drill_plan(starts):
    """A drill needs a fleet that agrees: every host on the same release, going back to the same one."""
    if not starts:
        raise CapstanError('no host to drill')
    currents = _group(starts, 'current')
    if len(currents) > 1:
        raise CapstanError('the fleet has drifted (%s); a drill needs every host on the same release: deploy or roll back '
                           'first' % _listing(currents))
    refused = [(host, start['refusal']) for host, start in starts if start.get('refusal')]
    if refused:
        raise CapstanError('%s on %s, so no host drills' % (refused[0][1], refused[0][0]))
    targets = _group(starts, 'release')
    if len(targets) > 1:
        raise CapstanError('the hosts would go back to different releases (%s): their histories differ, so no host drills'
                           % _listing(targets))
    return {'action': 'drill', 'release': currents[0][0], 'target': targets[0][0], 'hosts': _hosts(starts),
            'previous': dict((host, start.get('current')) for host, start in starts), 'revision': None}


def wanted(starts):
    """What some host of ``starts`` needs between the stages: ``{hooks: [points], confirm: bool, health: bool}``.

    Each start says what its host needs (``needs``): the hook points its deploy_hooks name, the
    go/no-go prompt, a health check. A stretch between two stages that no host needs is skipped
    on the first host only (the roles' ``run_once``), not on every host. A start that does not
    say needs everything.
    """
    union = {'hooks': set(), 'confirm': False, 'health': False}
    for _host, start in starts:
        needs = start.get('needs')
        if not isinstance(needs, dict):
            return {'hooks': sorted(_checks.HOOK_POINTS), 'confirm': True, 'health': True}
        union['hooks'].update(needs.get('hooks') or ())
        union['confirm'] = union['confirm'] or bool(needs.get('confirm'))
        union['health'] = union['health'] or bool(needs.get('health'))
    union['hooks'] = sorted(union['hooks'])
    return union


def batches(hosts_all, batch):
    """Where ``batch`` (the hosts of one serial batch) stands among ``hosts_all`` (every host of the play, in order).

    ``earlier`` / ``later``: the hosts of the batches before and after it; ``first`` / ``last``:
    no batch before or after it. The serial hand-off: the first batch also locks and reads the
    hosts of the later batches (``reach_later``), so every host is checked before any changes;
    the last batch releases the locks the earlier batches kept (``release_earlier``); a failure
    sends ``others`` (every host outside the batch) back too. Without serial the batch is every
    host: nothing before or after it.
    """
    hosts_all = list(hosts_all or [])
    inside = set(batch or [])
    where = [index for index, host in enumerate(hosts_all) if host in inside]
    if not where:
        earlier, later = [], []
    else:
        earlier, later = hosts_all[:where[0]], hosts_all[where[-1] + 1:]
    first, last = not earlier, not later
    return {'earlier': earlier, 'later': later, 'first': first, 'last': last,
            'reach_later': later if first else [], 'release_earlier': earlier if last else [],
            'others': [host for host in hosts_all if host not in inside]}


def line_up_command(run, deploy_to, release, host):
    """The command that brings ``host`` back in line with the fleet on ``release`` once it can be reached."""
    words = ['ansible-playbook', 'capstan.release.rollback']
    for source in run.get('inventory') or []:
        words.extend(['-i', source])
    words.extend(['-e', 'deploy_to=%s' % deploy_to, '-e', 'rollback_release=%s' % release, '-e', 'deploy_break_lock=true',
                  '--limit', host])
    return ' '.join(shlex.quote(word) for word in words)


def failure_report(failure, outcome, unreachable, run, deploy_to, release, mode='deploy', others=None):
    """The message a host of a failed run shows: what failed where, what this host did about it, what is left.

    ``failure``: (host, stage, message) of the first failure found; ``outcome``: what this
    host's failed stage did (see _stages.abort_deploy); ``unreachable``: {host: the release
    to line it up with, or None} for hosts that could not be reached.
    """
    host, stage, message = failure
    what = 'deploy of release %s' % release if mode == 'deploy' and release else mode
    parts = ['%s failed on %s at %s: %s' % (what, host, stage, message)]
    if outcome.get('switched_back'):
        parts.append('current switched back to release %s here' % outcome['switched_back'])
    elif release and outcome.get('current') == release:
        parts.append('current still points to release %s here' % release)
    elif mode == 'deploy':
        parts.append('nothing was published here')
    if outcome.get('archive'):
        parts.append('release %s was archived as %s and removed' % (release, outcome['archive']))
    parts.extend(outcome.get('notes') or [])
    back = sorted(name for name, other in (others or {}).items() if other.get('switched_back'))
    if back:
        parts.append('the earlier batches went back too (%s)' % ', '.join(back))
    for name, target in sorted(unreachable.items()):
        if target:
            parts.append('%s could not be reached and may still run another release and hold the lock: to bring it in line, '
                         'run `%s`' % (name, line_up_command(run, deploy_to, target, name)))
        else:
            parts.append('%s could not be reached and may still hold the lock: once it is back, re-run with '
                         '-e deploy_break_lock=true' % name)
    return '; '.join(parts)


# --- the failure path ------------------------------------------------------------------------
#
# When a run fails, every host of it decides from what the hosts registered: ``seen`` is
# {host: {variable: value}}, read once from hostvars by the action (see failure_variables). A
# host whose variables could not be read is not in it; a variable that could not be read is not
# in its host's dict; a variable the host does not have is None there.

FAILED_RESULT = 'ansible_failed_result'
FAILED_TASK = 'ansible_failed_task'
FINISHED = 'deploy__finished'


def _facts(seen, host):
    return seen.get(host) or {}


def _owner(plan):
    return ((plan or {}).get('run') or {}).get('owner')


def failure_variables(mode, steps, switch, plans=True):
    """The variables of the run's hosts the failure path decides from, each named once (what the action reads).

    ``steps``: what the flow registers its stages as; ``switch``: the one of its first switch;
    ``plans``: whether the plans the hosts left (``<mode>__plan``) are needed, which they are not
    when the failure path was given this run's plan.
    """
    names = [FAILED_RESULT, FAILED_TASK, '%s__rescued' % mode, switch] + list(steps or [])
    if mode == 'deploy':
        names.append(FINISHED)
    if plans:
        names.append('%s__plan' % mode)
    return list(dict.fromkeys(names))


def of_run(plan, owner):
    """True when ``plan`` is a plan the run ``owner`` made."""
    return isinstance(plan, dict) and (plan.get('run') or {}).get('owner') == owner


def find_plan(given, owner, hosts, seen, mode):
    """This run's plan: ``given`` when the run ``owner`` made it, else the one an earlier serial batch left.

    That is the ``<mode>__plan`` of the first of ``hosts`` (play order) that holds one of this
    run; {} when this run made none (it failed before the plan).
    """
    if of_run(given, owner):
        return given
    for host in hosts:
        found = _facts(seen, host).get('%s__plan' % mode)
        if of_run(found, owner):
            return found
    return {}


def recorded_everywhere(plan, start, seen):
    """True when every host of this batch recorded this run's deploy: a failure after that never switches back.

    The batch is the hosts of this host's ``start`` (the plan's for a host of another batch,
    which has no start). A host recorded it when its finished stage (``deploy__finished``) of
    this run (the plan's owner) did not fail and says ``recorded``; a host whose variables are
    missing did not. False when there is no plan of a run or no host.
    """
    owner = _owner(plan)
    hosts = (start or {}).get('hosts') or plan.get('hosts') or []
    if not owner or not hosts:
        return False
    for host in hosts:
        finished = _facts(seen, host).get(FINISHED)
        if not isinstance(finished, dict) or finished.get('failed') or not finished.get('recorded') \
                or finished.get('run_owner') != owner:
            return False
    return True


def dropped(plan, start, seen, mode):
    """Hosts of this batch (``start``'s) that never got to the failure path: Ansible dropped them, unreachable.

    Every host that gets there notes the run first (``<mode>__rescued``: the run's owner); a
    host of the batch without this run's note (none, an earlier run's, or variables that cannot
    be read) went dark in a task whose result nobody registered (a hook's). [] without a plan of
    a run.
    """
    owner = _owner(plan)
    if not owner:
        return []
    return [host for host in (start or {}).get('hosts') or [] if _facts(seen, host).get('%s__rescued' % mode) != owner]


def last_step(steps, registered, owner):
    """Where a host stopped: after the last of ``steps`` it got through in the run ``owner``.

    ``registered``: {step: what the host registered as it}; a failed result, or one of another
    run, does not count. ``the stretch after the <stage> stage`` or ``the start of the run``.
    """
    passed = None
    for name in steps or []:
        result = registered.get(name)
        if isinstance(result, dict) and not result.get('failed') and result.get('run_owner') == owner:
            passed = name.split('__', 1)[-1]
    return 'the stretch after the %s stage' % passed if passed else 'the start of the run'


def first_failure(me, hosts, seen, plan, start, mode, stage):
    """(host, stage, message) of the failure that sent the run to its failure path.

    The first host, ``me`` then the others of ``hosts`` in play order, whose
    ``ansible_failed_result`` failed or was unreachable, at its ``ansible_failed_task`` (a host
    whose failed result or task cannot be read is passed over); else the first host of the
    batch that went dark without a result (see dropped), during ``stage`` (see last_step); else
    ``me`` at ``stage``, Ansible having given no result. The message is as the host had it: the
    caller masks it.
    """
    for host in [me] + [host for host in hosts or [] if host != me]:
        facts = _facts(seen, host)
        if FAILED_RESULT not in facts or FAILED_TASK not in facts:
            continue
        result, task = facts[FAILED_RESULT], facts[FAILED_TASK]
        if isinstance(result, dict) and (result.get('failed') or result.get('unreachable')):
            return host, (task or {}).get('name') or 'a task', result.get('msg') or result.get('reason') or 'failed'
    dark = dropped(plan, start, seen, mode)
    if dark:
        return dark[0], stage, 'it could not be reached (see the task above)'
    return me, stage, 'Ansible reported the failure without a result (see the task above)'


def switch_began(name, plan, seen):
    """True when some host of ``plan`` got to its switch: its stage registered as ``name`` was unreachable,
    or is this run's (the plan's owner) and says whether it changed."""
    for host in plan.get('hosts') or []:
        result = _facts(seen, host).get(name)
        if isinstance(result, dict) and (result.get('unreachable') or (
                'changed' in result and result.get('run_owner') == _owner(plan))):
            return True
    return False


def unreachable(plan, start, seen, mode, steps, switch, hosts=(), ends_on=None):
    """{host: release to line it up with, or None} for the hosts of this run that could not be reached.

    Those are the hosts Ansible dropped (see dropped) and the hosts of ``plan`` (or ``hosts``,
    the play's, without a plan) with one of ``steps`` registered unreachable; a stage that cannot
    be read ends the look at its host. Once the switch (``switch``, see switch_began) began, a
    host that went dark may run another release than the fleet: it gets the release the fleet
    ends on (``ends_on``: this host's current after its failure path, switched back or kept once
    recorded), else its previous release. One that went dark before keeps the old release and may
    hold the lock: None, so the report says to re-run breaking it.
    """
    dark = set(dropped(plan, start, seen, mode))
    for host in plan.get('hosts') or hosts or []:
        facts = _facts(seen, host)
        for name in steps or []:
            if name not in facts:
                break
            if isinstance(facts[name], dict) and facts[name].get('unreachable'):
                dark.add(host)
                break
    switching = switch_began(switch, plan, seen)
    return dict((host, (ends_on or (plan.get('previous') or {}).get(host)) if switching else None) for host in dark)
