"""Two runs on the same deploy_to started together (deploy+deploy, deploy+rollback, rollback+rollback),
held at before_starting until both reach it on every host, then let go at once. At most one succeeds;
a refused run fails cleanly naming the holder (the other run's ansible-playbook pid); no host is left
mixed; the locks are free afterwards; and a following deploy works."""

from __future__ import annotations

import os

import pytest

import harness
from harness import nothing_lost

POINT = 'before_starting'


@pytest.mark.parametrize('first, second', [('deploy', 'deploy'), ('deploy', 'rollback'), ('rollback', 'rollback')])
def test_two_runs_started_together(case, first, second):
    hooks = [case.hooks, harness.Hooks(os.path.join(str(case.workdir), 'hooks-2'))]
    argvs = [case.command(first, points=[POINT], version='v4', hooks=hooks[0]),
             case.command(second, points=[POINT], version='v5', hooks=hooks[1])]
    plays = [case.start(argv) for argv in argvs]
    for hook in hooks:
        hook.wait_marked(POINT, plays, case.fleet.names)
    for hook in hooks:
        hook.go(POINT)
    runs = [case.ended(play.wait()) for play in plays]

    succeeded = [index for index, run in enumerate(runs) if run.rc == 0]
    assert len(succeeded) <= 1, 'both runs succeeded on the same deploy_to: %r' % runs
    for index, run in enumerate(runs):
        if index not in succeeded:
            harness.assert_failed_cleanly(run)
    looks = case.look()
    assert not any(entry['lock'] for entry in looks), 'locks left: %s' % [entry['lock'] for entry in looks]
    looks = nothing_lost(case)
    if succeeded:
        winner = (first, second)[succeeded[0]]
        if winner == 'deploy':
            assert looks[0]['version'] == ('v4', 'v5')[succeeded[0]], looks[0]
        else:
            assert looks[0]['current'] == case.target, looks[0]
    else:
        assert looks[0]['current'] == case.previous, 'both runs failed, yet the fleet moved: %r' % looks[0]

    after = case.run(case.command('deploy', version='v6'))
    assert after.rc == 0, 'a deploy after the two runs failed: %r' % after
    assert [entry['version'] for entry in nothing_lost(case)] == ['v6'] * len(case.fleet.names)

    # Last, so that the checks above are reported whatever the refusal says.
    for index, run in enumerate(runs):
        holder = plays[1 - index].pid
        assert index in succeeded or str(holder) in run.output, (
            'the refused %s does not name its holder, the %s run (ansible-playbook pid %d): %r'
            % ((first, second)[index], (first, second)[1 - index], holder, run))
