"""_fleet: the fleet's decisions on the controller, from every host's start (plain data in, plain data out)."""

from __future__ import annotations

import calendar
import datetime
import shlex

import pytest

from hypothesis import given, strategies as st

from ansible_collections.capstan.release.plugins.module_utils import _fleet
from ansible_collections.capstan.release.plugins.module_utils import _releases
from ansible_collections.capstan.release.tests.unit.helpers import refusal

R1, R2, R3, R4 = '20261121221401', '20261121221402', '20261121221403', '20261121221404'
# 2026-11-21T22:14:10Z, when the controller asked.
ASKED = calendar.timegm((2026, 11, 21, 22, 14, 10, 0, 0, 0))
RUN = {'owner': 'ctl-4242-1-uuid', 'inventory': ['inventory/prod.yml']}

names = st.integers(min_value=0, max_value=40 * 365 * 86400).map(
    lambda seconds: (datetime.datetime(2000, 1, 1) + datetime.timedelta(seconds=seconds)).strftime('%Y%m%d%H%M%S'))


def view(name, state='successful', revision='rev1'):
    return {'name': name, 'state': state, 'revision': revision}


def start(status='other', current=None, newest=None, revision='rev1', views=(), time=ASKED):
    return {'status': status, 'current': current, 'newest': newest, 'revision': revision, 'views': list(views),
            'time': time}


def live(name, revision='rev1'):
    return start('live', name, name, revision, [view(name, revision=revision)])


# deploy_plan: noop


def test_noop_when_every_host_runs_the_revision_recorded_complete():
    plan = _fleet.deploy_plan([('web1', live(R2)), ('web2', live(R2))])
    assert (plan['action'], plan['release'], plan['revision']) == ('noop', R2, 'rev1')
    assert plan['hosts'] == ['web1', 'web2'] and plan['previous'] == {'web1': R2, 'web2': R2}


def test_one_host_behind_is_no_noop():
    plan = _fleet.deploy_plan([('web1', live(R2)), ('web2', start('other', R1, R1, views=[view(R1, revision='rev0')]))])
    assert plan['action'] == 'build' and plan['release'] > R2


# deploy_plan: resume


def test_resume_the_release_a_run_left_switched_but_unrecorded():
    switched = start('unrecorded', R2, R2, views=[view(R2, 'finished')])
    behind = start('other', R1, R2, views=[view(R1, revision='rev0'), view(R2, 'finished')])
    plan = _fleet.deploy_plan([('web1', switched), ('web2', behind)])
    assert (plan['action'], plan['release']) == ('resume', R2)


def test_resume_a_release_built_everywhere_before_the_switch():
    built = start('other', R1, R2, views=[view(R1, revision='rev0'), view(R2, 'finished')])
    plan = _fleet.deploy_plan([('web1', built), ('web2', dict(built))])
    assert (plan['action'], plan['release']) == ('resume', R2)


@pytest.mark.parametrize('other', [
    start('other', R1, R1, views=[view(R1, revision='rev0')]),                      # never built there
    start('other', R1, R2, views=[view(R1, revision='rev0'), view(R2, 'unfinished')]),  # half-built there
    start('other', R1, R2, views=[view(R1, revision='rev0'), view(R2, 'finished', 'rev9')]),  # another revision
    start('other', R1, R3, views=[view(R1, revision='rev0'), view(R3, 'unfinished')]),  # something newer there
])
def test_no_resume_unless_the_release_is_newest_and_finished_with_the_revision_everywhere(other):
    built = start('other', R1, R2, views=[view(R1, revision='rev0'), view(R2, 'finished')])
    plan = _fleet.deploy_plan([('web1', built), ('web2', other)])
    assert plan['action'] == 'build'
    assert plan['release'] > max(R2, other['newest'])


def test_no_resume_of_a_release_that_was_rolled_back():
    left = start('other', R1, R2, views=[view(R1, revision='rev0'), view(R2, 'rolled_back')])
    assert _fleet.deploy_plan([('web1', left)])['action'] == 'build'


def test_an_override_naming_the_resumable_release_resumes_it():
    built = start('other', R1, R2, views=[view(R1, revision='rev0'), view(R2, 'finished')])
    assert _fleet.deploy_plan([('web1', built)], override=R2)['action'] == 'resume'


def test_hosts_switched_to_different_unrecorded_releases_are_not_resumed():
    one = start('unrecorded', R2, R3, views=[view(R2, 'finished'), view(R3, 'finished')])
    two = start('unrecorded', R3, R3, views=[view(R3, 'finished')])
    assert _fleet.resumable([('web1', one), ('web2', two)], 'rev1') is None


# deploy_plan: build


def test_build_names_the_release_by_the_controllers_time():
    plan = _fleet.deploy_plan([('web1', start()), ('web2', start())])
    assert (plan['action'], plan['release']) == ('build', '20261121221410')


def test_build_takes_the_latest_time_any_host_was_asked():
    plan = _fleet.deploy_plan([('web1', start(time=ASKED - 5)), ('web2', start(time=ASKED))])
    assert plan['release'] == '20261121221410'


def test_build_with_a_clock_behind_is_still_newer_than_every_hosts_newest():
    future = '20301231235959'
    plan = _fleet.deploy_plan([('web1', start('other', R1, R1)), ('web2', start('other', R1, future))])
    assert plan['release'] == '20310101000000'


def test_build_on_a_tree_dated_in_9999_is_one_sentence():
    assert 'no release name after 99991231235959 fits' in refusal(
        _fleet.deploy_plan, [('web1', start('other', None, '99991231235959'))])


@st.composite
def fleets(draw):
    """Hosts with arbitrary newest releases (none resumable), asked at arbitrary times."""
    count = draw(st.integers(min_value=1, max_value=6))
    return [('web%d' % index, start('other', None, draw(st.none() | names), 'rev1', [],
                                    draw(st.integers(min_value=0, max_value=2 * 10 ** 9))))
            for index in range(count)]


@given(fleets(), st.randoms())
def test_build_name_is_newer_than_every_hosts_newest_and_the_same_whatever_the_order(starts, rng):
    plan = _fleet.deploy_plan(starts)
    assert plan['action'] == 'build' and _releases.is_release_name(plan['release'])
    assert all(plan['release'] > found['newest'] for _host, found in starts if found['newest'])
    shuffled = list(starts)
    rng.shuffle(shuffled)
    assert _fleet.deploy_plan(shuffled)['release'] == plan['release']


# deploy_plan: override and refusals


def test_override_newer_than_every_host_is_the_release():
    plan = _fleet.deploy_plan([('web1', start('other', R1, R1)), ('web2', start())], override=R3)
    assert (plan['action'], plan['release']) == ('build', R3)


@given(st.lists(names, min_size=1, max_size=5), names)
def test_override_is_refused_exactly_when_some_host_has_a_name_as_new(newest, override):
    starts = [('web%d' % index, start('other', None, name)) for index, name in enumerate(newest)]
    if override > max(newest):
        assert _fleet.deploy_plan(starts, override=override)['release'] == override
    else:
        assert refusal(_fleet.deploy_plan, starts, override=override).startswith(
            'deploy_release_name %s is not newer than every release on the hosts' % override)


def test_override_refusal_lists_each_host_in_the_way():
    message = refusal(_fleet.deploy_plan, [('web1', start('other', R3, R3)), ('web2', start('other', R1, R1)),
                                           ('web3', start('other', R2, R2))], override=R2)
    assert '(%s on web1, %s on web3)' % (R3, R2) in message


def test_hosts_resolving_different_revisions_are_refused_naming_them():
    message = refusal(_fleet.deploy_plan, [('web1', start(revision='abc')), ('web2', start(revision='def')),
                                           ('web3', start(revision='abc'))], what="deploy_version 'main' of deploy_repo_url")
    assert message == ("deploy_version 'main' of deploy_repo_url resolves to different revisions on the hosts "
                       '(abc on web1, web3; def on web2); every host must deploy the same revision')


def test_no_host_is_refused():
    assert refusal(_fleet.deploy_plan, []) == 'no host to deploy to'


# continuing (serial batches)


def test_a_later_batch_deploys_the_first_batches_release():
    plan = _fleet.deploy_plan([('web1', start())])
    later = _fleet.continuing(plan, [('web2', start()), ('web3', start())])
    assert (later['release'], later['hosts']) == (plan['release'], ['web2', 'web3'])


def test_a_later_batch_resolving_another_revision_is_refused():
    plan = _fleet.deploy_plan([('web1', start())])
    message = refusal(_fleet.continuing, plan, [('web2', start(revision='rev2'))], 'deploy_src ./build')
    assert message.startswith('deploy_src ./build changed between serial batches: the first batch deployed revision rev1')
    assert message.endswith('no host of this batch deploys')


# batches (the serial hand-off)

HOSTS = ['web1', 'web2', 'web3', 'web4', 'web5']


def test_without_serial_the_batch_is_every_host_and_hands_nothing_off():
    assert _fleet.batches(HOSTS, HOSTS) == {'earlier': [], 'later': [], 'first': True, 'last': True, 'reach_later': [],
                                            'release_earlier': [], 'others': []}


def test_the_first_batch_reaches_the_later_hosts_and_releases_no_earlier_lock():
    serial = _fleet.batches(HOSTS, ['web1', 'web2'])
    assert (serial['first'], serial['last']) == (True, False)
    assert serial['reach_later'] == serial['later'] == serial['others'] == ['web3', 'web4', 'web5']
    assert serial['release_earlier'] == []


def test_a_middle_batch_hands_nothing_off():
    serial = _fleet.batches(HOSTS, ['web3', 'web4'])
    assert (serial['earlier'], serial['later']) == (['web1', 'web2'], ['web5'])
    assert (serial['reach_later'], serial['release_earlier']) == ([], [])
    assert serial['others'] == ['web1', 'web2', 'web5']


def test_the_last_batch_releases_the_earlier_locks():
    serial = _fleet.batches(HOSTS, ['web5'])
    assert (serial['first'], serial['last'], serial['release_earlier'], serial['reach_later']) == \
        (False, True, ['web1', 'web2', 'web3', 'web4'], [])


def test_a_batch_whose_first_host_failed_still_stands_where_its_hosts_are():
    # ansible_play_batch no longer lists a host that failed; the batch is where the others are.
    serial = _fleet.batches(HOSTS, ['web4'])
    assert (serial['earlier'], serial['later'], serial['first'], serial['last']) == (['web1', 'web2', 'web3'], ['web5'], False, False)


def test_an_empty_batch_hands_nothing_off_and_every_host_is_another():
    serial = _fleet.batches(HOSTS, [])
    assert (serial['reach_later'], serial['release_earlier'], serial['others']) == ([], [], HOSTS)


@given(st.integers(min_value=1, max_value=8), st.data())
def test_batches_cut_the_play_into_earlier_batch_later(count, data):
    hosts = ['h%d' % index for index in range(count)]
    start = data.draw(st.integers(min_value=0, max_value=count - 1))
    end = data.draw(st.integers(min_value=start + 1, max_value=count))
    serial = _fleet.batches(hosts, hosts[start:end])
    assert serial['earlier'] + hosts[start:end] + serial['later'] == hosts
    assert serial['others'] == serial['earlier'] + serial['later']
    assert serial['first'] == (start == 0) and serial['last'] == (end == count)


# rollback_plan


def rollback_start(release, current, leaving=None, noop=False):
    return {'release': release, 'current': current, 'leaving': leaving, 'noop': noop}


def test_rollback_every_host_to_the_same_release():
    plan = _fleet.rollback_plan([('web1', rollback_start(R1, R2, R2)), ('web2', rollback_start(R1, R1))])
    assert (plan['action'], plan['release']) == ('rollback', R1)
    assert plan['previous'] == {'web1': R2, 'web2': R1} and plan['leaving'] == {'web1': R2, 'web2': None}


def test_rollback_is_noop_when_every_host_is_there_with_nothing_to_archive():
    assert _fleet.rollback_plan([('web1', rollback_start(R1, R1, noop=True))])['action'] == 'noop'


def test_rollback_to_different_releases_is_refused():
    message = refusal(_fleet.rollback_plan, [('web1', rollback_start(R1, R2)), ('web2', rollback_start(R2, R3))])
    assert message == ('the hosts would roll back to different releases (%s on web1; %s on web2): their histories differ; '
                       'name one with -e rollback_release=<name>' % (R1, R2))


def test_a_rollback_completed_on_some_hosts_is_completed_by_the_rest_never_stepping_further_back():
    # web1 finished the interrupted rollback to R2 (no lock left: its own start goes on to R1);
    # web2's broken lock completes it, to R2 leaving R3.
    done = rollback_start(R1, R2, R2)
    completing = dict(rollback_start(R2, R2, R3), completing=True)
    plan = _fleet.rollback_plan([('web1', done), ('web2', completing)])
    assert (plan['action'], plan['release']) == ('rollback', R2)
    assert plan['leaving'] == {'web1': None, 'web2': R3}


def test_a_host_elsewhere_than_the_interrupted_rollbacks_target_still_refuses():
    completing = dict(rollback_start(R2, R2, R3), completing=True)
    message = refusal(_fleet.rollback_plan, [('web1', rollback_start(R2, R3, R3)), ('web2', completing),
                                             ('web3', rollback_start(R1, R3, R3))])
    assert message.startswith('the hosts would roll back to different releases')


def test_rollback_of_no_host_is_refused():
    assert refusal(_fleet.rollback_plan, []) == 'no host to roll back'


# line_up_command and failure_report


def test_line_up_command_is_the_rollback_with_the_lock_broken():
    assert _fleet.line_up_command(RUN, '/srv/app', R1, 'web2') == (
        'ansible-playbook capstan.release.rollback -i inventory/prod.yml -e deploy_to=/srv/app -e rollback_release=%s '
        '-e deploy_break_lock=true --limit web2' % R1)


def test_line_up_command_without_an_inventory_source_has_no_double_space():
    assert '  ' not in _fleet.line_up_command({}, '/srv/app', R1, 'web2')


def test_line_up_command_can_be_pasted_into_a_shell_as_it_is():
    command = _fleet.line_up_command({'inventory': ['/home/ops/my inventory/hosts.yml']}, '/srv/my app', R1, 'web2')
    argv = shlex.split(command)
    assert argv[argv.index('-i') + 1] == '/home/ops/my inventory/hosts.yml'
    assert 'deploy_to=/srv/my app' in argv


def test_failure_report_before_publishing():
    report = _fleet.failure_report(('web2', 'Deploy:updating', 'disk full'), {'archive': '/srv/app/failed-release-%s.tar.gz' % R2},
                                   {}, RUN, '/srv/app', R2)
    assert report == ('deploy of release %s failed on web2 at Deploy:updating: disk full; nothing was published here; '
                      'release %s was archived as /srv/app/failed-release-%s.tar.gz and removed' % (R2, R2, R2))


def test_failure_report_says_current_switched_back():
    report = _fleet.failure_report(('web1', 'Deploy:finishing', 'health check failed'), {'switched_back': R1}, {}, RUN,
                                   '/srv/app', R2)
    assert 'current switched back to release %s' % R1 in report


def test_failure_report_says_current_still_points_to_the_release():
    report = _fleet.failure_report(('web1', 'Deploy:finishing', 'x'), {'current': R2, 'notes': ['no previous']}, {}, RUN,
                                   '/srv/app', R2)
    assert report.endswith('; current still points to release %s here; no previous' % R2)


def test_failure_report_of_a_rollback():
    report = _fleet.failure_report(('web1', 'Rollback:publishing', 'x'), {}, {}, RUN, '/srv/app', R1, mode='rollback')
    assert report == 'rollback failed on web1 at Rollback:publishing: x'


def test_failure_report_names_the_earlier_batches_that_went_back():
    report = _fleet.failure_report(('web3', 'Deploy:finishing', 'x'), {'switched_back': R1}, {}, RUN, '/srv/app', R2,
                                   others={'web2': {'switched_back': R1}, 'web1': {'switched_back': R1},
                                           'web4': {'switched_back': None}})
    assert report.endswith('; the earlier batches went back too (web1, web2)')


def test_failure_report_tells_how_to_line_up_an_unreachable_host():
    report = _fleet.failure_report(('web3', 'Deploy:publishing', 'unreachable'), {'switched_back': R1},
                                   {'web3': R1, 'web4': None}, RUN, '/srv/app', R2)
    assert ('web3 could not be reached and may still run another release and hold the lock: to bring it in line, run `%s`'
            % _fleet.line_up_command(RUN, '/srv/app', R1, 'web3')) in report
    assert report.endswith('web4 could not be reached and may still hold the lock: once it is back, re-run with '
                           '-e deploy_break_lock=true')


# what the hosts need between the stages


def test_wanted_is_the_union_of_what_the_hosts_need():
    quiet = {'hooks': [], 'confirm': False, 'health': False}
    starts = [('web1', {'needs': dict(quiet, hooks=['before_published'])}),
              ('web2', {'needs': dict(quiet, hooks=['after_published', 'before_published'], confirm=True)}),
              ('web3', {'needs': quiet})]
    assert _fleet.wanted(starts) == {'hooks': ['after_published', 'before_published'], 'confirm': True, 'health': False}
    assert _fleet.wanted([('web1', {'needs': quiet}), ('web2', {'needs': quiet})]) == quiet


def test_a_start_that_does_not_say_what_it_needs_needs_everything():
    wanted = _fleet.wanted([('web1', {'needs': {'hooks': [], 'confirm': False, 'health': False}}), ('web2', {})])
    assert wanted['confirm'] and wanted['health'] and 'after_finished' in wanted['hooks'] and 'failed' in wanted['hooks']


# the failure path: decided from what the hosts registered (``seen``: {host: {variable: value}})

OWNER = RUN['owner']
EARLIER = 'ctl-4242-0-uuid'
WEB = ['web1', 'web2', 'web3']
STEPS = ['deploy__starting', 'deploy__updating', 'deploy__publishing', 'deploy__finishing', 'deploy__finished']
FAILURE_PLAN = {'action': 'build', 'release': R2, 'hosts': WEB, 'run': RUN, 'previous': dict.fromkeys(WEB, R1)}
BATCH = {'hosts': WEB, 'run': RUN}


def recorded(owner=OWNER, **more):
    """What a host's finished stage registers once it recorded the deploy."""
    return dict({'changed': True, 'recorded': True, 'release': R2, 'run_owner': owner}, **more)


def everywhere(name, value, hosts=None):
    return dict((host, {name: value}) for host in (WEB if hosts is None else hosts))


def test_the_failure_path_reads_each_variable_once_and_the_plans_only_when_it_has_none():
    names = _fleet.failure_variables('deploy', STEPS, 'deploy__publishing')
    assert names == ['ansible_failed_result', 'ansible_failed_task', 'deploy__rescued', 'deploy__publishing',
                     'deploy__starting', 'deploy__updating', 'deploy__finishing', 'deploy__finished', 'deploy__plan']
    assert 'deploy__plan' not in _fleet.failure_variables('deploy', STEPS, 'deploy__publishing', plans=False)
    rollback = _fleet.failure_variables('rollback', ['rollback__starting'], 'rollback__publishing')
    assert 'deploy__finished' not in rollback and 'rollback__rescued' in rollback and 'rollback__plan' in rollback


# find_plan


def test_the_plan_given_is_taken_when_this_run_made_it():
    other = dict(FAILURE_PLAN, release=R3)
    assert _fleet.find_plan(FAILURE_PLAN, OWNER, WEB, everywhere('deploy__plan', other), 'deploy') is FAILURE_PLAN


def test_without_a_plan_of_this_run_the_first_host_that_holds_one_gives_it():
    """An earlier serial batch made it: the hosts of this batch failed before their own."""
    earlier = dict(FAILURE_PLAN, run={'owner': EARLIER})
    seen = {'web2': {'deploy__plan': earlier}, 'web3': {'deploy__plan': FAILURE_PLAN}}  # web1: variables unreadable
    for given in (None, {}, earlier, 'not a plan'):
        assert _fleet.find_plan(given, OWNER, WEB, seen, 'deploy') is FAILURE_PLAN


def test_no_plan_is_an_empty_one():
    seen = {'web1': {'deploy__plan': dict(FAILURE_PLAN, run={'owner': EARLIER})}, 'web2': {}}
    assert _fleet.find_plan({}, OWNER, WEB, seen, 'deploy') == {}
    assert _fleet.find_plan(None, OWNER, [], {}, 'deploy') == {}
    assert _fleet.find_plan(None, OWNER, WEB, everywhere('rollback__plan', FAILURE_PLAN), 'deploy') == {}


# recorded_everywhere (keep_recorded: a failure after every host recorded the deploy never switches back)


def test_a_deploy_recorded_on_every_host_of_the_batch_is_recorded_everywhere():
    assert _fleet.recorded_everywhere(FAILURE_PLAN, BATCH, everywhere('deploy__finished', recorded())) is True


def test_a_deploy_recorded_on_all_hosts_but_one_is_not():
    seen = everywhere('deploy__finished', recorded())
    seen['web2']['deploy__finished'] = None  # web2 failed before its finished stage
    assert _fleet.recorded_everywhere(FAILURE_PLAN, BATCH, seen) is False


def test_a_host_whose_variables_are_missing_did_not_record_it():
    seen = everywhere('deploy__finished', recorded(), hosts=['web1', 'web3'])
    assert _fleet.recorded_everywhere(FAILURE_PLAN, BATCH, seen) is False
    seen['web2'] = {}  # read, but without the variable
    assert _fleet.recorded_everywhere(FAILURE_PLAN, BATCH, seen) is False


@pytest.mark.parametrize('finished', [
    recorded(owner=EARLIER),                  # another run's record
    recorded(owner=None),
    recorded(failed=True, msg='prune failed'),
    recorded(recorded=False),
    {'changed': False, 'skipped': True},
    'recorded',
])
def test_a_host_whose_finished_stage_is_not_this_runs_record_did_not_record_it(finished):
    seen = everywhere('deploy__finished', recorded())
    seen['web3']['deploy__finished'] = finished
    assert _fleet.recorded_everywhere(FAILURE_PLAN, BATCH, seen) is False


def test_the_batch_is_the_hosts_of_the_start_else_of_the_plan():
    """A host of another serial batch (no start) judges by the plan's hosts: the batch that failed."""
    seen = everywhere('deploy__finished', recorded(), hosts=['web3'])
    assert _fleet.recorded_everywhere(dict(FAILURE_PLAN, hosts=['web3']), None, seen) is True
    assert _fleet.recorded_everywhere(FAILURE_PLAN, {'hosts': ['web3']}, seen) is True
    assert _fleet.recorded_everywhere(FAILURE_PLAN, None, seen) is False


def test_without_a_run_or_a_host_nothing_is_recorded_everywhere():
    seen = everywhere('deploy__finished', recorded())
    assert _fleet.recorded_everywhere({}, BATCH, seen) is False
    assert _fleet.recorded_everywhere(dict(FAILURE_PLAN, run={}), BATCH, seen) is False
    assert _fleet.recorded_everywhere(dict(FAILURE_PLAN, hosts=[]), {'hosts': []}, seen) is False


# dropped


def test_a_host_of_the_batch_that_did_not_note_the_run_was_dropped():
    seen = everywhere('deploy__rescued', OWNER)
    assert _fleet.dropped(FAILURE_PLAN, BATCH, seen, 'deploy') == []
    seen['web2']['deploy__rescued'] = None
    assert _fleet.dropped(FAILURE_PLAN, BATCH, seen, 'deploy') == ['web2']


def test_an_earlier_runs_note_or_missing_variables_are_no_note_of_this_run():
    seen = everywhere('deploy__rescued', OWNER)
    seen['web1']['deploy__rescued'] = EARLIER
    del seen['web3']
    assert _fleet.dropped(FAILURE_PLAN, BATCH, seen, 'deploy') == ['web1', 'web3']


def test_the_note_is_the_flows_own():
    assert _fleet.dropped(FAILURE_PLAN, BATCH, everywhere('deploy__rescued', OWNER), 'rollback') == WEB


def test_only_the_hosts_of_the_batch_can_be_dropped():
    assert _fleet.dropped(FAILURE_PLAN, {'hosts': ['web2']}, {}, 'deploy') == ['web2']
    assert _fleet.dropped(FAILURE_PLAN, None, {}, 'deploy') == []
    assert _fleet.dropped({}, BATCH, {}, 'deploy') == []


# last_step


def test_the_last_step_is_the_last_stage_this_run_got_through():
    registered = {'deploy__starting': {'changed': True, 'run_owner': OWNER},
                  'deploy__updating': {'changed': True, 'run_owner': OWNER},
                  'deploy__publishing': {'failed': True, 'run_owner': OWNER},
                  'deploy__finished': {'changed': True, 'run_owner': EARLIER}}
    assert _fleet.last_step(STEPS, registered, OWNER) == 'the stretch after the updating stage'
    assert _fleet.last_step(STEPS, {}, OWNER) == 'the start of the run'
    assert _fleet.last_step([], registered, OWNER) == 'the start of the run'


# first_failure


def failed(msg='boom', task='Deploy:finishing', **more):
    return {'ansible_failed_result': dict({'failed': True, 'msg': msg}, **more), 'ansible_failed_task': {'name': task}}


def test_the_first_failure_is_this_hosts_own_before_the_others():
    seen = {'web1': failed('first in play order'), 'web2': failed('mine', 'Deploy:publishing')}
    assert _fleet.first_failure('web2', WEB, seen, FAILURE_PLAN, BATCH, 'deploy', 'x') == ('web2', 'Deploy:publishing', 'mine')


def test_the_first_failure_is_another_hosts_in_play_order_when_this_host_has_none():
    seen = {'web1': {'ansible_failed_result': None, 'ansible_failed_task': None},
            'web2': failed('health check failed'), 'web3': failed('later')}
    assert _fleet.first_failure('web1', WEB, seen, FAILURE_PLAN, BATCH, 'deploy', 'x') == (
        'web2', 'Deploy:finishing', 'health check failed')


def test_an_unreachable_result_is_a_failure_and_its_reason_the_message():
    seen = {'web3': {'ansible_failed_result': {'unreachable': True, 'reason': 'no route to host'},
                     'ansible_failed_task': {}}}
    assert _fleet.first_failure('web1', WEB, seen, FAILURE_PLAN, BATCH, 'deploy', 'x') == ('web3', 'a task', 'no route to host')
    seen['web3']['ansible_failed_result'] = {'failed': True}
    assert _fleet.first_failure('web1', WEB, seen, FAILURE_PLAN, BATCH, 'deploy', 'x') == ('web3', 'a task', 'failed')


def test_a_host_whose_failed_result_or_task_cannot_be_read_is_passed_over():
    unreadable_task = failed('unread')
    del unreadable_task['ansible_failed_task']
    seen = {'web1': unreadable_task, 'web2': failed('read')}
    assert _fleet.first_failure('web1', WEB, seen, FAILURE_PLAN, BATCH, 'deploy', 'x')[:3] == ('web2', 'Deploy:finishing', 'read')


def test_without_a_failed_result_the_first_dropped_host_failed():
    seen = dict(everywhere('deploy__rescued', OWNER), web2={}, web3={})
    assert _fleet.first_failure('web1', WEB, seen, FAILURE_PLAN, BATCH, 'deploy', 'the stretch after the publishing stage') == (
        'web2', 'the stretch after the publishing stage', 'it could not be reached (see the task above)')


def test_without_a_failed_result_or_a_dropped_host_this_host_failed_without_a_result():
    seen = everywhere('deploy__rescued', OWNER)
    assert _fleet.first_failure('web3', WEB, seen, FAILURE_PLAN, BATCH, 'deploy', 'the start of the run') == (
        'web3', 'the start of the run', 'Ansible reported the failure without a result (see the task above)')


# switch_began and unreachable


def published(owner=OWNER, **more):
    return dict({'changed': True, 'run_owner': owner}, **more)


def test_the_switch_began_once_a_host_of_the_run_got_to_it():
    assert _fleet.switch_began('deploy__publishing', FAILURE_PLAN, {'web3': {'deploy__publishing': published()}}) is True
    assert _fleet.switch_began('deploy__publishing', FAILURE_PLAN,
                               {'web3': {'deploy__publishing': published(changed=False)}}) is True
    assert _fleet.switch_began('deploy__publishing', FAILURE_PLAN,
                               {'web3': {'deploy__publishing': {'unreachable': True}}}) is True


def test_an_earlier_runs_switch_or_none_is_no_switch_of_this_run():
    assert _fleet.switch_began('deploy__publishing', FAILURE_PLAN, {'web1': {'deploy__publishing': published(EARLIER)}}) is False
    assert _fleet.switch_began('deploy__publishing', FAILURE_PLAN, {'web1': {'deploy__publishing': {'run_owner': OWNER}}}) is False
    assert _fleet.switch_began('deploy__publishing', FAILURE_PLAN, {'web1': {'deploy__updating': published()}}) is False
    assert _fleet.switch_began('deploy__publishing', FAILURE_PLAN, {}) is False
    assert _fleet.switch_began('deploy__publishing', dict(FAILURE_PLAN, hosts=['web2']),
                               {'web1': {'deploy__publishing': published()}}) is False


def dark_web2(**more):
    """web1 and web3 got to the failure path, web2 did not."""
    seen = everywhere('deploy__rescued', OWNER)
    seen['web2'] = {}
    for host, facts in more.items():
        seen[host].update(facts)
    return seen


def unreachable(seen, ends_on=None, plan=None, start=None):
    plan, start = (FAILURE_PLAN if plan is None else plan), (BATCH if start is None else start)
    return _fleet.unreachable(plan, start, seen, 'deploy', STEPS, 'deploy__publishing', WEB, ends_on)


def test_a_host_dark_before_the_switch_began_is_told_to_break_the_lock():
    assert unreachable(dark_web2()) == {'web2': None}
    assert unreachable(dark_web2(), ends_on=R2) == {'web2': None}


def test_a_host_dark_after_the_switch_began_is_lined_up_with_the_release_the_fleet_ends_on():
    seen = dark_web2(web1={'deploy__publishing': published()}, web3={'deploy__publishing': published()})
    assert unreachable(seen) == {'web2': R1}  # its previous release: the fleet went back
    assert unreachable(seen, ends_on=R2) == {'web2': R2}  # this host kept the release, recorded


def test_a_host_with_a_stage_registered_unreachable_is_dark():
    seen = everywhere('deploy__rescued', OWNER)
    seen['web3']['deploy__publishing'] = {'unreachable': True, 'msg': 'ssh: connect to host web3 port 22: timed out'}
    for name in STEPS:
        seen['web3'].setdefault(name, None)
    assert unreachable(seen) == {'web3': R1}  # its publishing was the switch beginning


def test_without_a_plan_the_play_hosts_are_looked_at_and_nobody_is_lined_up():
    seen = {'web1': dict.fromkeys(STEPS), 'web2': dict(dict.fromkeys(STEPS), deploy__starting={'unreachable': True})}
    assert unreachable(seen, plan={}) == {'web2': None}


def test_a_stage_that_cannot_be_read_ends_the_look_at_its_host():
    seen = everywhere('deploy__rescued', OWNER)
    seen['web3'].update(dict.fromkeys(STEPS), deploy__finished={'unreachable': True})
    del seen['web3']['deploy__updating']  # it could not be read
    assert unreachable(seen) == {}
    seen['web3']['deploy__updating'] = None
    assert unreachable(seen) == {'web3': None}
