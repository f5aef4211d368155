"""_delivery: deploys, rollbacks, change failures and time to restore, per host and per fleet.

Histories are made the way the roles make them: the real steps (_steps) write real journals
in tmp dirs, in the order the deploy and rollback roles call them, under a clock the test
moves. A model of each scenario says what the figures must be.
"""

from __future__ import annotations

import contextlib
import datetime
import os
import shutil
import tempfile

import pytest
from hypothesis import given, settings, strategies as st

from ansible_collections.capstan.release.plugins.module_utils import _delivery
from ansible_collections.capstan.release.plugins.module_utils import _journal
from ansible_collections.capstan.release.plugins.module_utils import _releases
from ansible_collections.capstan.release.plugins.module_utils import _steps
from ansible_collections.capstan.release.plugins.module_utils._errors import CapstanError

START = 1798761600  # 2027-01-01T00:00:00Z


class Clock(object):
    """The time the journal stamps: moved by the test, never by the wall clock."""

    def __init__(self, now=START):
        self.now = now

    def tick(self, seconds):
        self.now += seconds
        return self.now

    def name(self):
        return datetime.datetime.fromtimestamp(self.now, datetime.timezone.utc).strftime(_releases.NAME_FORMAT)

    def stamp(self, now=None):
        return time_stamp(self.now if now is None else now)


time_stamp = _journal.utc_stamp


@contextlib.contextmanager
def clocked(clock):
    """Journal events stamped by ``clock`` (the one thing that is not real here)."""
    _journal.utc_stamp = clock.stamp
    try:
        yield clock
    finally:
        _journal.utc_stamp = time_stamp


class Host(object):
    """One real deploy tree, driven the way roles/deploy and roles/rollback drive the steps.

    Alongside, a model: what each scenario step means for the figures, kept by hand.
    """

    def __init__(self, deploy_to, clock):
        self.deploy_to = deploy_to
        self.clock = clock
        self.runs = 0
        # the model
        self.deploys = []        # [release, change failure?] in order
        self.rollbacks = []      # automatic? in order
        self.failed_before = []  # releases
        self.restores = []       # seconds, in order
        self.stint = None        # [release, since, bad?, deploy entry or None]
        self.latest_deploy = {}

    def run(self):
        self.runs += 1
        return 'run-%d' % self.runs

    def _went_live(self, release, deploy_entry, bad=False):
        now = self.clock.now
        if self.stint is not None and self.stint[2]:
            self.restores.append(now - self.stint[1])
        self.stint = [release, now, bad, deploy_entry]

    def _rolled_back_to(self, release):
        now = self.clock.now
        left, since, bad, _deploy = self.stint
        older = release < left
        if older and left in self.latest_deploy:
            self.latest_deploy[left][1] = True
        if older or bad:
            self.restores.append(now - since)
        self.stint = [release, now, False, None]

    def _new(self, run, name=None):
        name = name or _releases.next_release_name(
            _steps.info(self.deploy_to)['release_names'],
            now=datetime.datetime.fromtimestamp(self.clock.now, datetime.timezone.utc))
        _steps.prepare_release(self.deploy_to, name, run=run)
        self.clock.tick(2)
        _steps.finish_release(self.deploy_to, name, 'rev-' + name, run=run)
        return name

    def deploy(self, gap, name=None):
        """deploy: publish, health passes, succeeded, prune."""
        self.clock.tick(gap)
        run = self.run()
        name = self._new(run, name)
        self.clock.tick(1)
        _steps.swap_current(self.deploy_to, name, run=run)
        entry = [name, False]
        self.deploys.append(entry)
        self.latest_deploy[name] = entry
        self._went_live(name, entry)
        self.clock.tick(3)
        _steps.succeed_release(self.deploy_to, name, 'main', 'tester', run=run)
        _steps.prune(self.deploy_to, 5, 5, run=run)
        return name

    def deploy_failing_before_publish(self, gap):
        """deploy: a hook fails before publishing; failed.yml archives and removes the release."""
        self.clock.tick(gap)
        run = self.run()
        name = self._new(run)
        self.clock.tick(1)
        _steps.discard_release(self.deploy_to, name, run=run)
        self.failed_before.append(name)
        return name

    def deploy_failing_after_publish(self, gap, outage, auto_rollback=True, after_succeeded=False, name=None):
        """deploy: publish, then the health check (or, after succeeded, the prune) fails."""
        self.clock.tick(gap)
        run = self.run()
        name = self._new(run, name)
        self.clock.tick(1)
        previous = _steps.swap_current(self.deploy_to, name, run=run)['previous_release']
        # recorded succeeded and never switched back (no previous release): nothing says it failed
        entry = [name, not after_succeeded]
        self.deploys.append(entry)
        self.latest_deploy[name] = entry
        self._went_live(name, entry, bad=not after_succeeded)
        if after_succeeded:
            _steps.succeed_release(self.deploy_to, name, 'main', 'tester', run=run)
        self.clock.tick(outage)
        if auto_rollback and previous:
            _steps.swap_current(self.deploy_to, previous, rollback=True, log_user='tester', run=run)
            self.rollbacks.append(True)
            self._rolled_back_to(previous)
            if after_succeeded:
                _steps.prune(self.deploy_to, 5, 5, rolled_back=name, run=run)
            else:
                _steps.discard_release(self.deploy_to, name, run=run)
        return name

    def rollback(self, gap, release=None):
        """rollback: to the release before current (or ``release``), archive the one left."""
        self.clock.tick(gap)
        run = self.run()
        target = _steps.rollback_target(self.deploy_to, release)
        if target['noop']:
            return None
        _steps.swap_current(self.deploy_to, target['release'], rollback=True, log_user='tester', run=run)
        self.rollbacks.append(False)
        self._rolled_back_to(target['release'])
        if target['leaving']:
            _steps.prune(self.deploy_to, 5, 5, rolled_back=target['leaving'], run=run)
        return target['release']

    def history(self, **kwargs):
        kwargs.setdefault('now', self.clock.now)
        return _steps.info(self.deploy_to, history=True, **kwargs)['history']


@pytest.fixture
def host(tmp_path):
    clock = Clock()
    with clocked(clock):
        yield Host(str(tmp_path / 'app'), clock)


def test_a_deploy_that_goes_live_and_succeeds(host):
    name = host.deploy(60)

    history = host.history()

    assert history['source'] == 'journal'
    assert history['deploys'] == [{'release': name, 'run': 'run-1', 'live_at': '2027-01-01T00:01:03Z',
                                   'outcome': 'succeeded', 'rolled_back': False, 'change_failure': False}]
    assert history['figures'] == {
        'deploys': 1, 'rollbacks': 0, 'automatic_rollbacks': 0, 'failed_before_live': 0, 'change_failures': 0,
        'change_failure_rate': 0.0, 'time_to_restore': {'restores': 0, 'median': None, 'max': None}, 'unrestored': 0}


def test_the_four_deploys_of_the_integration_scenario(host):
    """v1, v2, v3 failing its health check (switched back), v4 failing a hook, v5, rollback."""
    first = host.deploy(60)
    second = host.deploy(600)
    third = host.deploy_failing_after_publish(600, outage=7)
    fourth = host.deploy_failing_before_publish(600)
    fifth = host.deploy(600)
    assert host.rollback(30) == second

    history = host.history()

    assert [(d['release'], d['outcome'], d['change_failure']) for d in history['deploys']] == [
        (first, 'succeeded', False), (second, 'succeeded', False), (third, 'failed', True), (fifth, 'succeeded', True)]
    assert [(r['release'], r['left'], r['automatic']) for r in history['rollbacks']] == [
        (second, third, True), (second, fifth, False)]
    assert [f['release'] for f in history['failed_before_live']] == [fourth]
    assert [(r['release'], r['seconds'], r['by'], r['restored_to']) for r in history['restores']] == [
        (third, 7, 'automatic rollback', second), (fifth, 33, 'rollback', second)]
    figures = history['figures']
    assert (figures['deploys'], figures['rollbacks'], figures['automatic_rollbacks']) == (4, 2, 1)
    assert (figures['failed_before_live'], figures['change_failures'], figures['change_failure_rate']) == (1, 2, 0.5)
    assert figures['time_to_restore'] == {'restores': 2, 'median': 20, 'max': 33}
    assert figures['unrestored'] == 0


def test_a_failed_health_check_without_auto_rollback_stays_live_until_the_next_switch(host):
    host.deploy(60)
    bad = host.deploy_failing_after_publish(600, outage=5, auto_rollback=False)

    history = host.history()

    assert history['figures']['change_failures'] == 1 and history['figures']['unrestored'] == 1
    assert history['unrestored'] == [{'release': bad, 'live_at': history['deploys'][1]['live_at'], 'run': 'run-2'}]
    assert history['restores'] == []

    fix = host.deploy(120)
    history = host.history()

    assert history['unrestored'] == []
    assert [(r['release'], r['by'], r['restored_to'], r['seconds']) for r in history['restores']] == [
        (bad, 'deploy', fix, 5 + 120 + 2 + 1)]
    assert [d['change_failure'] for d in history['deploys']] == [False, True, False]


def test_a_failure_after_the_deploy_was_recorded_is_still_a_change_failure(host):
    good = host.deploy(60)
    bad = host.deploy_failing_after_publish(600, outage=4, after_succeeded=True)

    history = host.history()

    assert [(d['release'], d['outcome'], d['rolled_back'], d['change_failure']) for d in history['deploys']] == [
        (good, 'succeeded', False, False), (bad, 'succeeded', True, True)]
    assert [(r['release'], r['by'], r['seconds']) for r in history['restores']] == [(bad, 'automatic rollback', 4)]


def test_a_deploy_whose_run_still_holds_the_lock_is_in_progress_not_failed(host):
    host.deploy(60)
    run = host.run()
    name = host._new(run)
    _steps.lock(host.deploy_to, 'present', run, user='alice', host='ctl01', pid=1, command='deploy')
    _steps.swap_current(host.deploy_to, name, run=run)

    history = host.history()

    assert history['deploys'][-1]['outcome'] == 'in_progress'
    assert history['figures']['change_failures'] == 0 and history['figures']['unrestored'] == 0

    _steps.lock(host.deploy_to, 'absent', run)
    history = host.history()

    assert history['deploys'][-1]['outcome'] == 'failed' and history['figures']['unrestored'] == 1


def test_two_rollbacks_in_a_row_restore_twice_and_fail_both_releases_left(host):
    first = host.deploy(60)
    second = host.deploy(600)
    third = host.deploy(600)
    host.rollback(100)
    host.rollback(50)

    history = host.history()

    assert [(d['release'], d['change_failure']) for d in history['deploys']] == [
        (first, False), (second, True), (third, True)]
    # second went live again by the first rollback: its time to restore counts from then
    assert [(r['release'], r['seconds'], r['restored_to']) for r in history['restores']] == [
        (third, 3 + 100, second), (second, 50, first)]
    assert history['figures']['time_to_restore'] == {'restores': 2, 'median': 76.5, 'max': 103}


def test_a_rollback_forward_to_a_newer_release_is_a_rollback_but_no_failure(host):
    first = host.deploy(60)
    second = host.deploy(600)
    host.deploy(600)
    assert host.rollback(100, release=first) == first
    assert host.rollback(100, release=second) == second

    history = host.history()

    assert history['figures']['rollbacks'] == 2
    assert [r['release'] for r in history['restores']] == [history['deploys'][2]['release']]
    assert [d['change_failure'] for d in history['deploys']] == [False, False, True]


def test_the_window_counts_each_thing_by_when_it_happened(host):
    host.deploy(60)
    bad = host.deploy_failing_after_publish(600, outage=9)
    host.deploy_failing_before_publish(3 * _delivery.DAY)
    late = host.deploy(600)
    host.clock.tick(_delivery.DAY)

    recent = host.history(history_days=2)
    everything = host.history()

    assert recent['days'] == 2 and recent['since'] == _delivery.iso(host.clock.now - 2 * _delivery.DAY)
    assert [d['release'] for d in recent['deploys']] == [late]
    assert recent['figures']['deploys'] == 1 and recent['figures']['rollbacks'] == 0
    assert recent['figures']['failed_before_live'] == 1
    assert recent['figures']['change_failure_rate'] == 0.0 and recent['restores'] == []
    assert everything['days'] is None and everything['since'] is None
    assert everything['figures']['deploys'] == 3 and everything['restores'][0]['release'] == bad


@pytest.mark.parametrize('days', [0, -1, True, 1.5, '3'])
def test_a_window_that_is_not_a_whole_number_of_days_is_refused(days, tmp_path):
    with pytest.raises(CapstanError) as error:
        _steps.info(str(tmp_path), history=True, history_days=days)
    assert str(error.value) == 'history_days must be a whole number of days, at least 1, got %r' % (days,)


def test_live_at_is_the_last_time_each_release_went_live(host):
    first = host.deploy(60)
    second = host.deploy(600)
    host.rollback(100)

    releases = _steps.info(host.deploy_to, history=True)['releases']

    assert [(r['name'], r['live_at']) for r in releases] == [(first, host.clock.stamp())]
    assert 'live_at' not in _steps.info(host.deploy_to)['releases'][0]
    assert second not in [r['name'] for r in releases]


def test_a_tree_with_neither_journal_nor_log():
    history = _delivery.host_history([], [], now=START)

    assert history['source'] == 'none'
    assert history['figures']['deploys'] == 0 and history['figures']['change_failure_rate'] is None
    assert history['figures']['time_to_restore'] == {'restores': 0, 'median': None, 'max': None}


A, B, C, D = '20270101000000', '20270102000000', '20270103000000', '20270104000000'


def capistrano_log(*lines):
    return _journal.parse_revisions('\n'.join(lines) + '\n')


def deployed(name):
    return _journal.deploy_line('main', 'sha-' + name, name, 'alice')


def test_a_capistrano_tree_counts_deploys_and_rollbacks_from_revisions_log():
    entries = capistrano_log(deployed(A), deployed(B), deployed(C), _journal.rollback_line('alice', B), deployed(D))

    history = _delivery.host_history([], entries, now=START + 10 * _delivery.DAY)

    assert history['source'] == 'revisions.log'
    assert [(d['release'], d['live_at'], d['change_failure']) for d in history['deploys']] == [
        (A, '2027-01-01T00:00:00Z', False), (B, '2027-01-02T00:00:00Z', False),
        (C, '2027-01-03T00:00:00Z', True), (D, '2027-01-04T00:00:00Z', False)]
    assert history['rollbacks'] == [{'release': B, 'left': C, 'run': None, 'at': None,
                                     'after': '2027-01-03T00:00:00Z', 'automatic': None}]
    assert history['figures'] == {
        'deploys': 4, 'rollbacks': 1, 'automatic_rollbacks': None, 'failed_before_live': None,
        'change_failures': 1, 'change_failure_rate': 0.25, 'time_to_restore': None, 'unrestored': None}


def test_a_capistrano_window_keeps_a_rollback_only_when_the_release_it_left_is_in_it():
    entries = capistrano_log(deployed(A), deployed(B), _journal.rollback_line('alice', A), deployed(C), deployed(D),
                             _journal.rollback_line('alice', C))

    history = _delivery.host_history([], entries, days=2, now=START + 3 * _delivery.DAY + 60)

    assert [d['release'] for d in history['deploys']] == [C, D]
    assert [(r['release'], r['left']) for r in history['rollbacks']] == [(C, D)]
    assert history['figures']['change_failures'] == 1


def test_the_journal_wins_over_revisions_log_when_it_has_events(host):
    host.deploy(60)
    entries = capistrano_log(deployed(A), deployed(B))

    history = _delivery.host_history(_steps.info(host.deploy_to)['events'], entries, now=host.clock.now)

    assert history['source'] == 'journal' and history['figures']['deploys'] == 1


def test_a_journal_record_without_a_time_is_counted_but_never_timed():
    events = [
        {'event': 'published', 'release': A, 'mode': 'deploy', 'run': 'r1', 'time': 'yesterday'},
        {'event': 'published', 'release': '20260101000000', 'previous': A, 'mode': 'rollback', 'run': 'r2',
         'time': '2027-01-01T00:10:00Z'},
    ]

    history = _delivery.host_history(events, now=START + 3600)

    assert history['figures']['deploys'] == 1 and history['figures']['rollbacks'] == 1
    assert history['restores'][0]['seconds'] is None
    assert history['figures']['time_to_restore'] == {'restores': 0, 'median': None, 'max': None}
    assert _delivery.host_history(events, days=1, now=START + 3600)['figures']['deploys'] == 0


@pytest.mark.parametrize('values, expected', [([], None), ([5], 5), ([9, 1], 5), ([1, 2], 1.5), ([3, 1, 2], 2)])
def test_median(values, expected):
    assert _delivery.median(values) == expected


# Fleets: several hosts of the same runs.

def fleet_of(tmp_path, size, clock):
    return [Host(str(tmp_path / ('host%d' % i) / 'app'), clock) for i in range(1, size + 1)]


def test_one_run_on_three_hosts_counts_once_and_restores_span_the_fleet(tmp_path):
    clock = Clock()
    with clocked(clock):
        hosts = fleet_of(tmp_path, 3, clock)
        runs = []
        clock.tick(60)
        names = []
        # a deploy that succeeds everywhere, then one that fails its health check after publishing
        for bad in (False, True):
            run = 'fleet-run-%d' % len(runs)
            runs.append(run)
            name = clock.name()
            names.append(name)
            for host in hosts:
                _steps.prepare_release(host.deploy_to, name, run=run)
                _steps.finish_release(host.deploy_to, name, 'rev-' + name, run=run)
            for host in hosts:
                clock.tick(1)
                _steps.swap_current(host.deploy_to, name, run=run)
            if not bad:
                for host in hosts:
                    _steps.succeed_release(host.deploy_to, name, 'main', 'tester', run=run)
                clock.tick(600)
                continue
            clock.tick(5)
            for host in hosts:
                clock.tick(2)
                _steps.swap_current(host.deploy_to, names[0], rollback=True, log_user='tester', run=run)
                _steps.discard_release(host.deploy_to, name, run=run)
        # and a failure before publishing on every host
        clock.tick(60)
        failed = clock.name()
        for host in hosts:
            _steps.finish_release(host.deploy_to, failed, 'rev-x', run='fleet-run-2')
            _steps.discard_release(host.deploy_to, failed, run='fleet-run-2')

        per_host = dict(('host%d' % i, host.history()) for i, host in enumerate(hosts, 1))

    # each host: live 1 s after the one before, switched back 2 s after the one before
    assert [h['figures']['time_to_restore']['max'] for h in per_host.values()] == [9, 10, 11]
    fleet = _delivery.fleet_history(per_host)

    assert fleet['sources'] == {'journal': ['host1', 'host2', 'host3'], 'revisions.log': [], 'none': []}
    assert [(d['release'], d['hosts'], d['change_failure']) for d in fleet['deploys']] == [
        (names[0], ['host1', 'host2', 'host3'], False), (names[1], ['host1', 'host2', 'host3'], True)]
    assert [(r['release'], r['left'], r['automatic'], r['hosts']) for r in fleet['rollbacks']] == [
        (names[0], names[1], True, ['host1', 'host2', 'host3'])]
    assert [(f['release'], f['hosts']) for f in fleet['failed_before_live']] == [(failed, ['host1', 'host2', 'host3'])]
    # host1 went live first, host3 was switched back last: 3 switches 1 s apart, 5 s, 3 switch-backs 2 s apart
    assert [(r['release'], r['seconds']) for r in fleet['restores']] == [(names[1], 2 + 5 + 6)]
    assert fleet['figures'] == {
        'deploys': 2, 'rollbacks': 1, 'automatic_rollbacks': 1, 'failed_before_live': 1, 'change_failures': 1,
        'change_failure_rate': 0.5, 'time_to_restore': {'restores': 1, 'median': 13, 'max': 13}, 'unrestored': 0}


def test_a_failure_on_one_host_only_is_a_failure_of_the_fleet_deploy(tmp_path):
    clock = Clock()
    with clocked(clock):
        one, two = fleet_of(tmp_path, 2, clock)
        name = Clock(clock.tick(60)).name()
        one.deploy(0, name=name)
        two.deploy_failing_after_publish(0, outage=3, auto_rollback=False, name=name)
        clock.tick(1)
        history = {'one': one.history(), 'two': two.history()}

    fleet = _delivery.fleet_history(history)

    assert fleet['figures']['deploys'] == 1 and fleet['figures']['change_failures'] == 1
    assert fleet['deploys'][0]['outcome'] == 'failed' and fleet['deploys'][0]['hosts'] == ['one', 'two']
    assert [(u['release'], u['hosts']) for u in fleet['unrestored']] == [(fleet['deploys'][0]['release'], ['two'])]


def test_a_fleet_of_capistrano_trees_leaves_what_the_log_cannot_tell_unknown():
    entries = capistrano_log(deployed(A), deployed(B), _journal.rollback_line('alice', A))
    hosts = dict((h, _delivery.host_history([], entries, now=START)) for h in ('web1', 'web2'))

    fleet = _delivery.fleet_history(hosts)

    assert fleet['figures']['deploys'] == 2 and fleet['figures']['rollbacks'] == 1
    assert fleet['figures']['change_failure_rate'] == 0.5
    assert fleet['figures']['time_to_restore'] is None and fleet['figures']['failed_before_live'] is None
    assert fleet['rollbacks'][0]['hosts'] == ['web1', 'web2']


# Property: any sequence of runs, the figures are what the model of the scenario says.

STEPS = st.lists(st.tuples(
    st.sampled_from(['deploy', 'deploy', 'fail_before', 'fail_after', 'fail_after_no_rollback',
                     'fail_after_succeeded', 'rollback']),
    st.integers(min_value=1, max_value=5000),
    st.integers(min_value=0, max_value=900)), min_size=1, max_size=12)


def play(host, steps):
    for step, gap, outage in steps:
        if step == 'deploy':
            host.deploy(gap)
        elif step == 'fail_before':
            host.deploy_failing_before_publish(gap)
        elif step == 'fail_after':
            host.deploy_failing_after_publish(gap, outage)
        elif step == 'fail_after_no_rollback':
            host.deploy_failing_after_publish(gap, outage, auto_rollback=False)
        elif step == 'fail_after_succeeded':
            host.deploy_failing_after_publish(gap, outage, after_succeeded=True)
        else:
            try:
                host.rollback(gap)
            except CapstanError:
                pass  # nothing to roll back to: the rollback playbook refuses, nothing happens


@settings(max_examples=60, deadline=None)
@given(STEPS)
def test_figures_follow_the_model_of_any_sequence_of_runs(steps):
    root = tempfile.mkdtemp(prefix='capstan-delivery-')
    try:
        clock = Clock()
        with clocked(clock):
            host = Host(os.path.join(root, 'app'), clock)
            play(host, steps)
            history = host.history()
        figures = history['figures']
        deploys = len(host.deploys)
        failures = len([entry for entry in host.deploys if entry[1]])
        assert figures['deploys'] == deploys
        assert figures['rollbacks'] == len(host.rollbacks)
        assert figures['automatic_rollbacks'] == len([auto for auto in host.rollbacks if auto])
        assert figures['failed_before_live'] == len(host.failed_before)
        assert figures['change_failures'] == failures
        assert figures['change_failure_rate'] == (round(float(failures) / deploys, 4) if deploys else None)
        assert [r['seconds'] for r in history['restores']] == host.restores
        assert figures['unrestored'] == (1 if host.stint and host.stint[2] else 0)
        # one host alone is a fleet of one; the same host twice counts once
        assert _delivery.fleet_history({'a': history})['figures'] == figures
        assert _delivery.fleet_history({'a': history, 'b': history})['figures'] == figures
    finally:
        shutil.rmtree(root)
