"""Controller crash: the whole ansible-playbook process tree killed with SIGKILL at every hook point of
both flows and while each step's module runs on the hosts. The next run, the same command (and, if
that is refused, the command the refusal prints), completes: the deploy's release is live on every
host; the rollback reaches its target, never one further back."""

from __future__ import annotations

import time

import pytest

import harness
from harness import POINTS, STAGES, STEPS, bed, nothing_lost

SLOW_MS = 200        # every host slowed so that a step's module is still in flight when the kill comes
AFTER_BANNER = 0.2   # seconds from the step's TASK banner to the kill


def finish(case, flow, argv, crashed):
    """The next run after the crash, and what it must leave."""
    looks = case.look()
    if flow == 'rollback' and all(not e['lock'] and e['current'] == case.target for e in looks):
        # The killed rollback had finished (its lock released everywhere): running it again would be a
        # new rollback, one further back. There is nothing to finish.
        case.ended(crashed)
    else:
        run = case.recover(argv, crashed)
        assert run.rc == 0, 'the next run did not complete: %r' % run
    harness.assert_intended(case, flow)
    nothing_lost(case)


@pytest.mark.parametrize('flow, point', [(flow, point) for flow in STAGES for point in POINTS[flow]])
def test_a_crash_at_a_hook_point_is_completed_by_the_next_run(case, flow, point):
    argv = case.command(flow, points=[point])
    play = case.start(argv)
    case.hooks.wait_marked(point, [play], case.fleet.names)
    crashed = play.kill()
    case.hooks.go(point)   # the hosts' waiting hook tasks end; the next run passes the point at once
    harness.quiesce(case.fleet)
    finish(case, flow, argv, crashed)


@pytest.mark.parametrize('flow, step', [(flow, step) for flow in STAGES for step in STEPS[flow]])
def test_a_crash_while_a_step_module_runs_is_completed_by_the_next_run(case, flow, step):
    argv = case.command(flow)
    hosts = range(1, len(case.fleet.names) + 1)
    for index in hosts:
        bed.slow(index, SLOW_MS)
    play = case.start(argv)
    play.wait_step(flow, step)
    time.sleep(AFTER_BANNER)
    crashed = play.kill()
    for index in hosts:
        bed.slow(index, 0)
    harness.quiesce(case.fleet)
    finish(case, flow, argv, crashed)
