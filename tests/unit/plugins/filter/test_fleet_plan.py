"""fleet_plan: every host computes the same plan from the batch's starts, and a refusal is a plan, never an error."""

from __future__ import annotations

import calendar
import glob
import os
import tempfile

import pytest

from ansible_collections.capstan.release.plugins.filter import fleet_plan as fleet_plan_module
from ansible_collections.capstan.release.plugins.filter.fleet_plan import FilterModule, fleet_plan

R1, R2 = '20261121221401', '20261121221402'
ASKED = calendar.timegm((2026, 11, 21, 22, 14, 10, 0, 0, 0))
RUN = {'owner': 'ctl01-4242-1-uuid', 'user': 'tester', 'host': 'ctl01', 'pid': 4242}
HOSTS = ['web1', 'web2', 'web3']


def start(host, revision='rev1', current=R1, status='other', run=None, hosts=None, **extra):
    run = RUN if run is None else run
    hosts = HOSTS if hosts is None else hosts
    found = {'changed': True, 'status': status, 'revision': revision, 'current': current, 'newest': current,
             'views': [{'name': current, 'state': 'successful', 'revision': 'rev0' if status != 'live' else revision}],
             'run': run, 'time': ASKED, 'override': '', 'what': 'deploy_src ./build', 'hosts': list(hosts),
             'deploy_to': '/srv/app', 'host': host}
    found.update(extra)
    return found


@pytest.fixture(autouse=True)
def run_folder(tmp_path, monkeypatch):
    """Each test's run folder of its own: the filter keeps a batch's plan there for the other hosts."""
    monkeypatch.setattr(tempfile, 'tempdir', str(tmp_path))
    fleet_plan_module._MADE.clear()
    return tmp_path


def hostvars_of(*starts, register='deploy__starting'):
    return dict((found['host'], {register: found}) for found in starts)


def batch(**extra):
    return [start(host, **extra) for host in HOSTS]


def test_serial_batches_is_registered_and_takes_the_batch_the_start_saw():
    serial_batches = FilterModule().filters()['serial_batches']
    hosts = ['web1', 'web2', 'web3', 'web4']
    assert serial_batches(hosts, ['web1', 'web2'])['reach_later'] == ['web3', 'web4']
    # In the failure path ansible_play_batch lost web1; the start knows the batch was web1, web2.
    assert serial_batches(hosts, ['web2'], started={'hosts': ['web1', 'web2']})['others'] == ['web3', 'web4']
    assert serial_batches(hosts, ['web2'], started={'failed': True, 'msg': 'refused'})['others'] == ['web1', 'web3', 'web4']
    assert serial_batches(hosts, ['web3', 'web4'], started=None)['release_earlier'] == ['web1', 'web2']


def test_the_filter_is_registered():
    assert FilterModule().filters()['fleet_plan'] is fleet_plan


def test_a_build_plan_names_one_release_for_the_batch():
    starts = batch()
    plan = fleet_plan(starts[0], hostvars_of(*starts))
    assert (plan['action'], plan['release'], plan['revision']) == ('build', '20261121221410', 'rev1')
    assert plan['release_path'] == '/srv/app/releases/20261121221410' and plan['shared_path'] == '/srv/app/shared'
    assert plan['hosts'] == HOSTS and plan['previous'] == dict((host, R1) for host in HOSTS)
    assert plan['run'] == RUN


def test_every_host_of_the_batch_computes_the_same_plan():
    starts = batch()
    plans = [fleet_plan(found, hostvars_of(*starts)) for found in starts]
    assert all(plan == plans[0] for plan in plans)


def test_a_host_reads_its_own_start_not_its_hostvars():
    starts = batch()
    stale = hostvars_of(*starts)
    stale['web1'] = {'deploy__starting': {'failed': True}}  # not yet set on the host the filter runs for
    assert fleet_plan(starts[0], stale)['action'] == 'build'


def test_noop_when_every_host_runs_it():
    starts = batch(status='live')
    plan = fleet_plan(starts[1], hostvars_of(*starts))
    assert (plan['action'], plan['release'], plan['release_path']) == ('noop', R1, '/srv/app/releases/' + R1)


def test_different_revisions_are_a_refusal_plan_not_an_error():
    starts = batch()
    starts[2]['revision'] = 'rev2'
    plan = fleet_plan(starts[0], hostvars_of(*starts))
    assert plan['action'] == 'refuse'
    assert plan['msg'].startswith('deploy_src ./build resolves to different revisions on the hosts (rev1 on web1, web2; '
                                  'rev2 on web3)')
    assert (plan['release'], plan['release_path'], plan['run']) == (None, None, RUN)


def test_an_override_not_newer_is_a_refusal_plan():
    starts = batch(override=R1)
    plan = fleet_plan(starts[0], hostvars_of(*starts))
    assert plan['action'] == 'refuse' and plan['msg'].startswith('deploy_release_name %s is not newer' % R1)


def test_a_host_that_did_not_start_is_refused():
    refused = {'action': 'refuse', 'msg': 'this host did not start this run', 'needs': {'hooks': [], 'confirm': False, 'health': False}}
    assert fleet_plan({'failed': True, 'msg': 'x'}, {}) == refused
    assert fleet_plan(None, {})['action'] == 'refuse'


def test_a_host_of_the_batch_without_a_start_is_a_refusal_not_an_error():
    starts = batch()
    hostvars = hostvars_of(*starts)
    hostvars['web3'] = {}  # its start was never registered
    assert fleet_plan(starts[0], hostvars)['action'] == 'refuse'


def test_hosts_of_different_runs_are_refused():
    starts = batch()
    starts[1]['run'] = dict(RUN, owner='another-run')
    plan = fleet_plan(starts[0], hostvars_of(*starts))
    assert plan == dict(plan, action='refuse', msg='the hosts of this batch did not all start the same run; start again')


def test_a_later_serial_batch_continues_the_first_batches_plan():
    first = [start('web1', hosts=['web1'])]
    plan = fleet_plan(first[0], hostvars_of(*first))
    later = [start(host, hosts=['web2', 'web3'], time=ASKED + 60) for host in ('web2', 'web3')]
    hostvars = hostvars_of(*later)
    hostvars['web1'] = {'deploy__plan': plan}
    again = fleet_plan(later[0], hostvars, hosts_all=HOSTS)
    assert (again['action'], again['release'], again['hosts']) == ('build', plan['release'], ['web2', 'web3'])


def test_a_later_serial_batch_with_another_revision_is_refused():
    first = [start('web1', hosts=['web1'])]
    plan = fleet_plan(first[0], hostvars_of(*first))
    later = [start('web2', hosts=['web2'], revision='rev2', time=ASKED + 60)]
    hostvars = hostvars_of(*later)
    hostvars['web1'] = {'deploy__plan': plan}
    again = fleet_plan(later[0], hostvars, hosts_all=HOSTS)
    assert again['action'] == 'refuse' and 'changed between serial batches' in again['msg']


def test_the_plan_of_an_earlier_run_is_not_continued():
    first = [start('web1', hosts=['web1'], run=dict(RUN, owner='yesterday'))]
    old = fleet_plan(first[0], hostvars_of(*first))
    later = [start('web2', hosts=['web2'], revision='rev2')]
    hostvars = hostvars_of(*later)
    hostvars['web1'] = {'deploy__plan': old}
    assert fleet_plan(later[0], hostvars, hosts_all=HOSTS)['action'] == 'build'


def test_the_starts_of_later_hosts_can_come_from_a_loop():
    mine = start('web1', hosts=['web1'])
    looped = [dict(start(host, hosts=['web1']), item=host) for host in ('web2', 'web3')] + [{'item': 'web4', 'skipped': True}]
    plan = fleet_plan(mine, hostvars_of(mine), later=looped)
    assert (plan['action'], plan['hosts']) == ('build', HOSTS)


def rollback_start(host, release=R1, current=R2, noop=False):
    return {'release': release, 'current': current, 'leaving': current if release < current else None, 'noop': noop,
            'run': RUN, 'time': ASKED, 'hosts': ['web1', 'web2'], 'deploy_to': '/srv/app', 'host': host}


def test_a_rollback_plan():
    starts = [rollback_start('web1'), rollback_start('web2')]
    plan = fleet_plan(starts[0], hostvars_of(*starts, register='rollback__starting'), flow='rollback',
                      register='rollback__starting')
    assert (plan['action'], plan['release'], plan['leaving']) == ('rollback', R1, {'web1': R2, 'web2': R2})
    assert plan['release_path'] == '/srv/app/releases/' + R1


def test_a_rollback_to_different_releases_is_a_refusal_plan():
    starts = [rollback_start('web1'), rollback_start('web2', release=R2, current='20261121221403')]
    plan = fleet_plan(starts[0], hostvars_of(*starts, register='r'), flow='rollback', register='r')
    assert plan['action'] == 'refuse' and plan['msg'].startswith('the hosts would roll back to different releases')


def test_the_plan_is_made_once_per_run_and_batch():
    starts = batch()
    hostvars = hostvars_of(*starts)
    first = fleet_plan(starts[0], hostvars)
    assert fleet_plan(starts[0], hostvars) is first
    assert list(fleet_plan_module._MADE.values()) == [first]


def test_the_plan_says_what_some_host_of_the_batch_needs_between_the_stages():
    quiet = {'hooks': [], 'confirm': False, 'health': False}
    starts = [start('web1', needs=quiet), start('web2', needs=dict(quiet, hooks=['after_published'])),
              start('web3', needs=dict(quiet, health=True))]
    assert fleet_plan(starts[0], hostvars_of(*starts))['needs'] == {'hooks': ['after_published'], 'confirm': False, 'health': True}
    starts = [start(host, needs=quiet, run=dict(RUN, owner='ctl01-4242-2-again')) for host in HOSTS]
    assert fleet_plan(starts[0], hostvars_of(*starts))['needs'] == quiet


def test_a_refusal_plan_needs_nothing_between_the_stages():
    starts = batch(revision='rev1')
    starts[2] = start('web3', revision='rev2')
    plan = fleet_plan(starts[0], hostvars_of(*starts))
    assert plan['action'] == 'refuse' and plan['needs'] == {'hooks': [], 'confirm': False, 'health': False}


class CountingHostvars(dict):
    """hostvars that count the lookups (each is a variable computation for that host in Ansible)."""

    def __init__(self, *args):
        super().__init__(*args)
        self.lookups = 0

    def __getitem__(self, host):
        self.lookups += 1
        return super().__getitem__(host)


def test_the_batch_reads_the_starts_once_the_other_hosts_read_the_plan_from_the_run_folder(run_folder):
    starts = batch()
    first = CountingHostvars(hostvars_of(*starts))
    plan = fleet_plan(starts[0], first)
    assert first.lookups == 2  # the other two hosts' starts
    plans = []
    for found in starts[1:]:
        fleet_plan_module._MADE.clear()  # each host's set_fact runs in a worker of its own
        counting = CountingHostvars(hostvars_of(*starts))
        plans.append(fleet_plan(found, counting))
        assert counting.lookups == 0
    assert plans == [plan, plan]
    assert len(glob.glob(os.path.join(str(run_folder), 'capstan-run-*', 'plan-*.json'))) == 1


def test_each_host_gets_the_shared_plan_with_its_own_paths_and_run():
    starts = [start('web1', deploy_to='/srv/a'), start('web2', deploy_to='/opt/b', run=dict(RUN, ttl=60)), start('web3')]
    hostvars = hostvars_of(*starts)
    plans = {}
    for found in starts:
        fleet_plan_module._MADE.clear()  # each host's set_fact runs in a worker of its own
        plans[found['host']] = fleet_plan(found, hostvars)
    release = plans['web1']['release']
    assert [plans[host]['release'] for host in HOSTS] == [release] * 3
    assert plans['web1']['release_path'] == '/srv/a/releases/%s' % release and plans['web1']['shared_path'] == '/srv/a/shared'
    assert plans['web2']['release_path'] == '/opt/b/releases/%s' % release and plans['web2']['shared_path'] == '/opt/b/shared'
    assert plans['web3']['release_path'] == '/srv/app/releases/%s' % release
    assert plans['web2']['run'] == dict(RUN, ttl=60) and plans['web1']['run'] == RUN
