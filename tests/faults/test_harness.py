"""The harness's own rules, without hosts: the one mapping of task names to steps, and the phases."""

from __future__ import annotations

import harness


def test_step_banners_are_recognised_in_todays_names_and_in_the_rewritten_ones():
    today = {
        ('deploy', 'Take the deploy lock and read the tree (a later serial batch holds the lock already)'): 'starting',
        ('deploy', 'Put the content of the new release in place with strategy copy'): 'updating',
        ('deploy', 'Switch current to release 20261121221404'): 'publishing',
        ('deploy', 'Switch current back to release 20261121221359'): None,     # the failure path's
        ('deploy', 'Prune old releases, keep 5'): 'finishing',
        ('rollback', 'Switch current back to the target release'): 'publishing',
        ('rollback', 'Archive and remove the release the rollback left'): 'finishing_rollback',
        ('rollback', 'Release the deploy lock'): 'finished',
    }
    rewritten = {
        ('deploy', 'Deploy:updating - create the release'): 'updating',
        ('deploy', 'Deploy:finishing'): 'finishing',
        ('deploy', 'Deploy:finishing_rollback'): None,
        ('rollback', 'Deploy:finishing_rollback - archive the release left'): 'finishing_rollback',
        ('rollback', 'Deploy:finished'): 'finished',
        ('rollback', 'Deploy:updating'): None,
    }
    for (flow, task), step in list(today.items()) + list(rewritten.items()):
        assert harness.step_of(flow, task) == step, (flow, task)


def test_hook_points_fall_before_the_switch_while_it_is_live_or_after_it_is_recorded():
    assert [harness.phase('deploy', point) for point in harness.POINTS['deploy']] == (
        ['before'] * 9 + ['live'] * 6 + ['recorded'] * 1)  # the deploy is recorded at finished, as Capistrano logs it
    assert harness.phase('rollback', 'before_publishing') == 'before'
    assert harness.phase('rollback', 'after_publishing') == 'live'
    assert harness.phase('rollback', 'after_finishing_rollback') == 'recorded'
