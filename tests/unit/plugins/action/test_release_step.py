"""The release_step action's view of hosts that went dark: which they are, and what the report offers them."""

from __future__ import annotations

from ansible_collections.capstan.release.plugins.action.release_step import ActionModule

HOSTS = ['host1', 'host2', 'host3']
OWNER = 'ctl-1-2-uuid'
STEPS = ['deploy__starting', 'deploy__updating', 'deploy__publishing', 'deploy__finishing', 'deploy__finished']
PLAN = {'hosts': HOSTS, 'run': {'owner': OWNER}, 'previous': dict.fromkeys(HOSTS, '20261201000001')}
START = {'hosts': HOSTS, 'run': {'owner': OWNER}}
ARGS = {'steps': STEPS, 'start': START}


def action(rescued, **more):
    """An ActionModule seen from host1's failure path: the hosts in ``rescued`` got there too."""
    hostvars = dict((host, dict(more.get(host, {}))) for host in HOSTS)
    for host in rescued:
        hostvars[host]['deploy__rescued'] = OWNER
    module = ActionModule.__new__(ActionModule)
    module._vars = {'inventory_hostname': 'host1', 'ansible_play_hosts_all': list(HOSTS), 'hostvars': hostvars}
    module._mine = lambda start, mode: start
    return module


def test_a_host_that_never_got_to_the_failure_path_is_dark_even_without_a_registered_result():
    assert action(['host1', 'host3'])._dropped(PLAN, START, 'deploy') == ['host2']
    assert action(HOSTS)._dropped(PLAN, START, 'deploy') == []


def test_an_earlier_runs_note_is_not_this_runs():
    module = action(HOSTS)
    module._vars['hostvars']['host3']['deploy__rescued'] = 'ctl-1-1-earlier'
    assert module._dropped(PLAN, START, 'deploy') == ['host3']


def test_without_a_plan_or_a_start_nobody_is_taken_for_dark():
    assert action([])._dropped({}, START, 'deploy') == []
    assert action([])._dropped(PLAN, None, 'deploy') == []


def test_a_host_dark_before_the_switch_is_told_to_break_the_lock_not_to_roll_back():
    assert action(['host1', 'host3'])._unreachable(ARGS, PLAN, 'deploy') == {'host2': None}


def test_a_host_dark_once_the_switch_began_is_lined_up_with_the_release_the_fleet_is_back_on():
    published = {'deploy__publishing': {'changed': True, 'run_owner': OWNER}}
    module = action(['host1', 'host3'], host1=published, host3=published)
    assert module._unreachable(ARGS, PLAN, 'deploy') == {'host2': '20261201000001'}


def test_an_earlier_runs_switch_is_not_this_runs():
    earlier = {'deploy__publishing': {'changed': True, 'run_owner': 'ctl-1-1-earlier'}}
    assert action(['host1', 'host3'], host1=earlier)._unreachable(ARGS, PLAN, 'deploy') == {'host2': None}


def test_a_registered_unreachable_step_counts():
    module = action(HOSTS, host2={'deploy__updating': {'unreachable': True}})
    assert module._unreachable(ARGS, PLAN, 'deploy') == {'host2': None}


def test_the_first_failure_names_the_dark_host_when_no_host_has_a_failed_result():
    module = action(['host1', 'host3'])
    module._find_plan = lambda plan, mode: PLAN
    module._last_step = lambda args: 'the stretch after the publishing stage'
    assert module._first_failure(ARGS, 'deploy') == (
        'host2', 'the stretch after the publishing stage', 'it could not be reached (see the task above)')


def test_a_host_dark_after_the_record_is_lined_up_with_the_release_this_host_kept():
    published = {'deploy__publishing': {'changed': True, 'run_owner': OWNER}}
    module = action(['host1', 'host3'], host1=published, host3=published)
    assert module._unreachable(ARGS, PLAN, 'deploy', {'current': '20261201000002'}) == {'host2': '20261201000002'}
