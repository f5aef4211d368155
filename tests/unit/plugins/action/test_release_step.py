"""The release_step action's failure path: what it reads of the hosts, what it asks this host to undo, what it reports.

The decisions are _fleet's (tested in test_fleet.py); these tests run the action's ``_failed``
as Ansible would, with hostvars and this host's registered stages, and the module call stubbed.
"""

from __future__ import annotations

import types

import pytest

from ansible_collections.capstan.release.plugins.action import release_step
from ansible_collections.capstan.release.plugins.action.release_step import ActionModule

HOSTS = ['host1', 'host2', 'host3']
OWNER = 'ctl-1-2-uuid'
OLD, NEW = '20261201000001', '20261201000002'
RUN = {'owner': OWNER, 'user': 'deploy', 'inventory': ['inventory/prod.yml']}
STEPS = ['deploy__starting', 'deploy__updating', 'deploy__publishing', 'deploy__finishing', 'deploy__finished']
PLAN = {'action': 'build', 'release': NEW, 'hosts': HOSTS, 'run': RUN, 'previous': dict.fromkeys(HOSTS, OLD)}
START = {'hosts': HOSTS, 'run': RUN}
ARGS = {'plan': PLAN, 'start': START, 'steps': STEPS}
PUBLISHED = {'deploy__publishing': {'changed': True, 'run_owner': OWNER}}
RECORDED = {'deploy__finished': {'changed': True, 'recorded': True, 'release': NEW, 'run_owner': OWNER}}


class Unreadable(Exception):
    pass


class HostVars(dict):
    """hostvars as the action sees them, counting the reads; a host set to Unreadable cannot be read."""

    def __init__(self, *args):
        super().__init__(*args)
        self.reads = []

    def __getitem__(self, host):
        self.reads.append(host)
        value = super().__getitem__(host)
        if value is Unreadable:
            raise Unreadable(host)
        return value


class Vars(dict):
    """A host's variables where some cannot be read (templating fails, say)."""

    def __init__(self, values, unreadable=()):
        super().__init__(values)
        self.unreadable = set(unreadable)

    def get(self, name, default=None):
        if name in self.unreadable:
            raise Unreadable(name)
        return super().get(name, default)


def action(tmp_path, rescued=None, outcome=None, me='host1', delegate_to=None, check_mode=False, mine=None, **more):
    """The action on ``me``'s failure path: the hosts in ``rescued`` (every host when None) got there too; ``more``:
    {host: its variables}."""
    rescued = HOSTS if rescued is None else rescued
    hostvars = HostVars()
    for host in HOSTS:
        value = more.get(host, {})
        if value is Unreadable or isinstance(value, Vars):
            hostvars[host] = value
        else:
            hostvars[host] = dict(value, **({'deploy__rescued': OWNER} if host in rescued else {}))
    module = ActionModule.__new__(ActionModule)
    module._task = types.SimpleNamespace(check_mode=check_mode, delegate_to=delegate_to, _role=None, _uuid='uuid')
    module._inputs = {'deploy_to': '/srv/app', 'deploy_src': str(tmp_path)}
    module._vars = dict(mine or {}, inventory_hostname=me, ansible_play_hosts_all=list(HOSTS), hostvars=hostvars)
    module._identity = lambda mode: dict(RUN, mode=mode)
    module.calls = []

    def execute(module_name, module_args, task_vars):
        module.calls.append((module_name, module_args))
        return dict(outcome or {'changed': False, 'current': OLD, 'notes': []})

    module._execute_module = execute
    return module


def failed(module, **args):
    return module._failed(dict(ARGS, **args), 'deploy')


def module_args(module):
    assert len(module.calls) == 1, module.calls
    return module.calls[0][1]


# what this host is asked to undo


def test_a_failure_after_every_host_recorded_the_deploy_keeps_it_live(tmp_path):
    module = action(tmp_path, host1=RECORDED, host2=RECORDED, host3=RECORDED)
    failed(module)
    args = module_args(module)
    assert (args['stage'], args['release'], args['keep_recorded'], args['auto_rollback']) == ('abort', NEW, True, True)
    assert args['run'] == RUN and args['log_user'] == 'deploy'


def test_a_failure_before_one_host_recorded_the_deploy_switches_back(tmp_path):
    module = action(tmp_path, host1=RECORDED, host3=RECORDED)
    failed(module)
    assert module_args(module)['keep_recorded'] is False


def test_a_host_whose_variables_cannot_be_read_did_not_record_the_deploy(tmp_path):
    module = action(tmp_path, host1=RECORDED, host2=Unreadable, host3=RECORDED)
    result = failed(module)
    assert module_args(module)['keep_recorded'] is False
    assert 'report' in result


def test_an_earlier_runs_record_is_not_this_runs(tmp_path):
    earlier = {'deploy__finished': dict(RECORDED['deploy__finished'], run_owner='ctl-1-1-earlier')}
    module = action(tmp_path, host1=RECORDED, host2=RECORDED, host3=earlier)
    failed(module)
    assert module_args(module)['keep_recorded'] is False


def test_a_host_of_an_earlier_batch_keeps_the_deploy_when_the_failing_batch_recorded_it(tmp_path):
    """Delegated to host1 of an earlier batch (no start): the batch that failed (the plan's hosts) decides."""
    module = action(tmp_path, me='host3', delegate_to='host1', host3=RECORDED,
                    outcome={'changed': False, 'current': NEW, 'unlocked': True, 'notes': []})
    result = module._failed({'plan': dict(PLAN, hosts=['host3'])}, 'deploy')
    assert module_args(module)['keep_recorded'] is True
    assert result == {'changed': False, 'switched_back': None, 'unlocked': True, 'host': 'host1'}


def test_a_host_of_an_earlier_batch_switches_back_when_the_failing_batch_did_not_record_it(tmp_path):
    module = action(tmp_path, me='host3', delegate_to='host1', host1=RECORDED, host2=RECORDED,
                    outcome={'changed': True, 'switched_back': OLD, 'current': OLD, 'unlocked': True})
    result = module._failed({'plan': dict(PLAN, hosts=['host3'])}, 'deploy')
    assert module_args(module)['keep_recorded'] is False
    assert result['switched_back'] == OLD


def test_the_plan_an_earlier_batch_left_is_used_when_the_failure_came_before_this_batchs(tmp_path):
    module = action(tmp_path, host2={'deploy__plan': PLAN})
    failed(module, plan={})
    assert module_args(module)['release'] == NEW


def test_without_a_plan_no_release_is_undone_and_nothing_is_kept(tmp_path):
    module = action(tmp_path, host1=RECORDED, host2=RECORDED, host3=RECORDED)
    failed(module, plan={}, start={})
    args = module_args(module)
    assert args['release'] is None and args['keep_recorded'] is False


def test_check_mode_undoes_nothing_and_still_reports(tmp_path):
    module = action(tmp_path, check_mode=True)
    result = failed(module)
    assert module.calls == [] and result['changed'] is False and 'failed on host1' in result['report']


def test_each_host_is_read_once(tmp_path):
    module = action(tmp_path, host1=PUBLISHED)
    failed(module)
    assert sorted(module._vars['hostvars'].reads) == HOSTS


# what the report says


def test_the_report_names_another_hosts_failure_masked(tmp_path):
    failure = {'ansible_failed_result': {'failed': True, 'msg': 'cannot fetch https://deploy:s3cret@git.example.com/app.git'},
               'ansible_failed_task': {'name': 'Deploy:updating'}}
    module = action(tmp_path, host2=failure)
    report = failed(module)['report']
    assert report.startswith('deploy of release %s failed on host2 at Deploy:updating: cannot fetch '
                             'https://***@git.example.com/app.git; nothing was published here' % NEW), report
    assert 's3cret' not in report


def test_this_hosts_own_failure_comes_first(tmp_path):
    def failure(msg):
        return {'ansible_failed_result': {'failed': True, 'msg': msg}, 'ansible_failed_task': {'name': 'Deploy:finishing'}}
    report = failed(action(tmp_path, me='host3', host1=failure('theirs'), host3=failure('mine')))['report']
    assert 'failed on host3 at Deploy:finishing: mine' in report


def test_a_host_that_never_got_to_the_failure_path_is_told_to_break_the_lock_before_the_switch(tmp_path):
    report = failed(action(tmp_path, rescued=['host1', 'host3']))['report']
    assert report.endswith('host2 could not be reached and may still hold the lock: once it is back, re-run with '
                           '-e deploy_break_lock=true'), report


def test_the_first_failure_names_the_dark_host_and_where_this_host_stopped(tmp_path):
    mine = {'deploy__starting': {'changed': True, 'run_owner': OWNER}, 'deploy__updating': {'changed': True, 'run_owner': OWNER}}
    report = failed(action(tmp_path, rescued=['host1', 'host3'], mine=mine))['report']
    assert report.startswith('deploy of release %s failed on host2 at the stretch after the updating stage: it could not '
                             'be reached (see the task above)' % NEW), report


def test_an_earlier_runs_note_is_not_this_runs(tmp_path):
    module = action(tmp_path)
    module._vars['hostvars']['host3']['deploy__rescued'] = 'ctl-1-1-earlier'
    assert 'host3 could not be reached and may still hold the lock' in failed(module)['report']


def test_a_host_dark_once_the_switch_began_is_lined_up_with_the_release_the_fleet_is_back_on(tmp_path):
    module = action(tmp_path, rescued=['host1', 'host3'], host1=PUBLISHED, host3=PUBLISHED,
                    outcome={'changed': True, 'switched_back': OLD, 'current': OLD})
    result = failed(module)
    assert 'current switched back to release %s here' % OLD in result['report']
    assert 'host2 could not be reached and may still run another release and hold the lock: to bring it in line, run ' \
           '`ansible-playbook capstan.release.rollback -i inventory/prod.yml -e deploy_to=/srv/app -e rollback_release=%s ' \
           '-e deploy_break_lock=true --limit host2`' % OLD in result['report']
    assert result['_ansible_notify'] == ['deploy:published', 'deploy:failed']


def test_a_host_dark_after_the_record_is_lined_up_with_the_release_this_host_kept(tmp_path):
    module = action(tmp_path, rescued=['host1', 'host3'], host1=dict(PUBLISHED, **RECORDED), host3=dict(PUBLISHED, **RECORDED),
                    outcome={'changed': False, 'current': NEW, 'notes': ['release %s stays live: it had been recorded as '
                                                                         'deployed' % NEW]})
    result = failed(module)
    assert 'current still points to release %s here; release %s stays live' % (NEW, NEW) in result['report']
    assert 'rollback_release=%s ' % NEW in result['report'] and '_ansible_notify' not in result


def test_an_earlier_runs_switch_is_not_this_runs(tmp_path):
    earlier = {'deploy__publishing': {'changed': True, 'run_owner': 'ctl-1-1-earlier'}}
    report = failed(action(tmp_path, rescued=['host1', 'host3'], host1=earlier))['report']
    assert 'host2 could not be reached and may still hold the lock' in report


def test_a_registered_unreachable_step_counts(tmp_path):
    report = failed(action(tmp_path, host2={'deploy__updating': {'unreachable': True}}))['report']
    assert 'host2 could not be reached and may still hold the lock' in report


def test_a_variable_that_cannot_be_read_leaves_the_rest_of_its_host_readable(tmp_path):
    host2 = Vars(dict(RECORDED, deploy__rescued=OWNER), unreadable=['ansible_failed_result'])
    module = action(tmp_path, host1=RECORDED, host2=host2, host3=RECORDED)
    result = failed(module)
    assert module_args(module)['keep_recorded'] is True
    assert 'could not be reached' not in result['report']


@pytest.mark.parametrize('mode, stage', [('rollback', 'rollback_abort'), ('drill', 'drill_abort')])
def test_the_other_flows_undo_their_own_stage_without_keep_recorded(tmp_path, mode, stage):
    module = action(tmp_path)
    plan = dict(PLAN, action=mode, release=OLD)
    module._failed({'plan': plan, 'start': START, 'steps': ['%s__starting' % mode]}, mode)
    args = module_args(module)
    assert args['stage'] == stage and 'keep_recorded' not in args


# --- the start of the failure path (stage rescued): the run's owner and the facts hooks and handlers see

RESCUE_OWNER = 'ctl-1-2-this-run'


class KeptTemplar(object):
    """Values in task_vars are taken as they are (set_fact left them concrete)."""

    @staticmethod
    def template(value):
        return value


def rescue_action(**task_vars):
    module = ActionModule.__new__(ActionModule)
    module._vars = task_vars
    module._templar = KeptTemplar()
    module._identity = lambda mode: {'owner': RESCUE_OWNER, 'mode': mode}
    return module


THIS_RUN = {'deploy__plan': {'run': {'owner': RESCUE_OWNER}, 'release': '20261201000002'}, 'deploy_release_name': '20261201000002',
            'deploy_release_path': '/srv/app/releases/20261201000002', 'deploy_previous_release': '20261201000001',
            'deploy_shared_path': '/srv/app/shared', 'deploy_revision': 'abc123'}


def test_a_run_that_made_its_plan_keeps_its_own_facts_in_the_failure_path():
    rescued = rescue_action(**THIS_RUN)._rescued('deploy')
    assert rescued['owner'] == RESCUE_OWNER and not rescued['changed']
    assert rescued['facts'] == dict(deploy_mode='deploy', **dict((name, THIS_RUN[name]) for name in release_step.PUBLIC_FACTS))


@pytest.mark.parametrize('mode', ['deploy', 'rollback', 'drill'])
def test_a_run_that_failed_before_its_plan_never_shows_an_earlier_runs_facts(mode):
    earlier = dict(THIS_RUN)
    earlier['%s__plan' % mode] = {'run': {'owner': 'ctl-1-1-earlier-run'}, 'release': '20261201000002'}
    rescued = rescue_action(**earlier)._rescued(mode)
    assert rescued['owner'] == RESCUE_OWNER
    assert rescued['facts'] == dict(dict.fromkeys(release_step.PUBLIC_FACTS), deploy_mode=mode)


def test_the_first_run_of_a_playbook_failing_early_has_no_facts_yet():
    assert rescue_action()._rescued('rollback')['facts'] == dict(dict.fromkeys(release_step.PUBLIC_FACTS), deploy_mode='rollback')


def test_each_flow_has_the_stage():
    module = rescue_action()
    assert [getattr(module, '_%s_rescued' % flow)({})['facts']['deploy_mode'] for flow in ('deploy', 'rollback', 'drill')] == \
        ['deploy', 'rollback', 'drill']
