# Copyright (c) 2026, capstan.release contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""The fleet's plan for a run, on the controller, from what every host's starting stage found."""

from __future__ import annotations

import hashlib
import os

from ansible_collections.capstan.release.plugins.module_utils import _fleet
from ansible_collections.capstan.release.plugins.module_utils import _releases
from ansible_collections.capstan.release.plugins.module_utils._errors import CapstanError
from ansible_collections.capstan.release.plugins.plugin_utils import _run

# One plan per run and batch in a worker: the role asks for it once per variable it sets.
_MADE = {}
# What a refusal plan needs between the stages: nothing (the next stage fails on every host).
NEEDS_NOTHING = {'hooks': [], 'confirm': False, 'health': False}


def _starts(start, hostvars, register, later):
    starts = []
    for host in start['hosts']:
        starts.append((host, start if host == start.get('host') else _start_of(hostvars, host, register)))
    for item in later or []:
        if isinstance(item, dict) and item.get('item') and 'run' in item:
            starts.append((item['item'], item))
    return starts


def _start_of(hostvars, host, register):
    try:
        found = hostvars[host][register]
    except Exception:  # HostVars raise their own errors for a host or variable they lack
        found = None
    if not isinstance(found, dict) or found.get('failed') or 'run' not in found:
        raise CapstanError('%s has no start in this run (it did not get through the starting stage); no host goes on' % host)
    return found


def _earlier_plan(start, hostvars, hosts_all, plan_var):
    """The plan an earlier serial batch of this run made (it is kept on the hosts of that batch)."""
    for host in hosts_all or []:
        if host in start['hosts']:
            continue
        try:
            plan = hostvars[host].get(plan_var)
        except Exception:  # a host whose variables cannot be read: look at the next one
            continue
        if isinstance(plan, dict) and (plan.get('run') or {}).get('owner') == start['run']['owner'] and plan.get('action'):
            return plan
    return None


def fleet_plan(start, hostvars, flow='deploy', register='deploy__starting', later=None, hosts_all=None, plan_var='deploy__plan'):
    """The plan every host of the batch computes alike from the batch's starts (see _fleet.deploy_plan, rollback_plan).

    The first worker of the batch to ask makes it and keeps it in the run's folder on the
    controller; the other hosts' workers read it there. So reading every host's start through
    hostvars (a variable lookup per host) is done once per batch, not once per host.

    Never raises: a refusal is a plan with ``action: refuse`` and ``msg``, which the next
    stage fails with on every host (a filter error would reach the operator as a templating error).
    """
    if not isinstance(start, dict) or start.get('failed') or 'run' not in start:
        return {'action': 'refuse', 'msg': 'this host did not start this run', 'needs': dict(NEEDS_NOTHING)}
    key = (start['run']['owner'], tuple(start['hosts']), start.get('time'), flow, id(hostvars))
    if key in _MADE:
        return _MADE[key]
    batch = hashlib.sha256('\n'.join([flow] + list(start['hosts'])).encode('utf-8')).hexdigest()[:16]
    plan = dict(_run.once(os.path.join(_run.run_dir(start['run']), 'plan-%s.json' % batch),
                          lambda: _make(start, hostvars, flow, register, later, hosts_all, plan_var)))
    # What is this host's own: its run (its lock settings) and the paths in its own deploy_to.
    plan['run'] = start['run']
    tree = _releases.Tree(start['deploy_to'], resolve=False)
    plan['release_path'] = tree.release_path(plan['release']) if plan['release'] else None
    plan['shared_path'] = tree.shared
    _MADE.clear()
    _MADE[key] = plan
    return plan


def _make(start, hostvars, flow, register, later, hosts_all, plan_var):
    try:
        starts = _starts(start, hostvars, register, later)
        owners = set(found.get('run', {}).get('owner') for _host, found in starts)
        if len(owners) != 1:
            raise CapstanError('the hosts of this batch did not all start the same run; start again')
        earlier = _earlier_plan(start, hostvars, hosts_all, plan_var) if flow == 'deploy' else None
        if earlier:
            plan = _fleet.continuing(earlier, starts, start.get('what'))
        elif flow == 'deploy':
            plan = _fleet.deploy_plan(starts, start.get('override') or '', start.get('what') or 'the source')
        elif flow == 'drill':
            plan = _fleet.drill_plan(starts)
        else:
            plan = _fleet.rollback_plan(starts)
        plan['needs'] = _fleet.wanted(starts)
    except CapstanError as error:
        plan = {'action': 'refuse', 'msg': str(error)}
    plan.setdefault('needs', dict(NEEDS_NOTHING))
    for field in ('release', 'revision', 'hosts', 'previous', 'target'):
        plan.setdefault(field, None)
    return plan


def serial_batches(hosts_all, batch, started=None):
    """The serial hand-off of ``batch`` among ``hosts_all`` (see _fleet.batches).

    ``started``: this host's registered start, when the role has one: its ``hosts`` are the
    batch as the starting stage saw it (in the failure path Ansible's ansible_play_batch no
    longer lists the hosts that failed first).
    """
    if isinstance(started, dict) and started.get('hosts'):
        batch = started['hosts']
    return _fleet.batches(hosts_all, batch)


class FilterModule(object):
    def filters(self):
        return {'fleet_plan': fleet_plan, 'serial_batches': serial_batches}
