"""Network faults at every hook point of both flows: one host cut off (`bed cut 2`), or slowed
(`bed slow 2 300`). Cut before publishing: no host switches. Cut after publishing, before the run is
recorded: the hosts that switched go back, and the cut host is named with the command (in backticks,
after "in line") that brings it in line; healed and that command run, the fleet is consistent.
Cut after the run is recorded: every host keeps the new release. Slowed: the run succeeds."""

from __future__ import annotations

import pytest

import harness
from harness import POINTS, STAGES, bed, nothing_lost

CUT = 2                       # the host that is cut off or slowed
SLOW_MS = 300
ALL_POINTS = [(flow, point) for flow in STAGES for point in POINTS[flow]]


def stop_at(case, flow, point):
    """A run of ``flow`` stopped at ``point`` on every host."""
    play = case.start(case.command(flow, points=[point]))
    case.hooks.wait_marked(point, [play], case.fleet.names)
    return play


@pytest.mark.parametrize('flow, point', ALL_POINTS)
def test_a_host_cut_off_at_a_hook_point(case, flow, point):
    play = stop_at(case, flow, point)
    bed.cut(CUT)
    case.hooks.go(point)
    run = case.ended(play.wait())
    cut = case.fleet.names[CUT - 1]
    others = [name for name in case.fleet.names if name != cut]
    currents = dict(zip(case.fleet.names, case.currents()))
    where = harness.phase(flow, point)
    if where == 'before':
        assert currents == dict.fromkeys(case.fleet.names, case.previous), (
            '%s was cut off before publishing, yet a host switched: %s' % (cut, currents))
    elif where == 'live':
        assert dict((name, currents[name]) for name in others) == dict.fromkeys(others, case.previous), (
            'the hosts that switched did not go back to %s: %s' % (case.previous, currents))
        command = harness.in_line_command(run, cut)
    else:
        harness.assert_intended(case, flow)

    bed.heal(CUT)
    harness.quiesce(case.fleet)
    if where == 'live':
        fixed = case.run_printed(command)
        assert fixed.rc == 0, 'the printed command did not bring %s in line: %r' % (cut, fixed)
    looks = nothing_lost(case)
    intended = case.target if flow == 'rollback' else looks[0]['current'] if looks[0]['version'] == 'v4' else None
    assert looks[0]['current'] in (case.previous, intended), (
        'the fleet ended on %s: neither where it was (%s) nor where the run went (v4 / %s)'
        % (looks[0]['current'], case.previous, case.target))


@pytest.mark.parametrize('flow, point', ALL_POINTS)
def test_a_host_slowed_at_a_hook_point_still_completes(case, flow, point):
    play = stop_at(case, flow, point)
    bed.slow(CUT, SLOW_MS)
    case.hooks.go(point)
    run = case.ended(play.wait())
    assert run.rc == 0, 'the run failed with %s slowed by %d ms: %r' % (case.fleet.names[CUT - 1], SLOW_MS, run)
    harness.assert_intended(case, flow)
    nothing_lost(case)
