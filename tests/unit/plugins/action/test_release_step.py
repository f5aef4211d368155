"""The release_step action's start of the failure path: the run's owner and the facts hooks and handlers see there."""

from __future__ import annotations

import pytest

from ansible_collections.capstan.release.plugins.action import release_step
from ansible_collections.capstan.release.plugins.action.release_step import ActionModule

OWNER = 'ctl-1-2-this-run'


class Templar(object):
    """Values in task_vars are taken as they are (set_fact left them concrete)."""

    @staticmethod
    def template(value):
        return value


def action(**task_vars):
    module = ActionModule.__new__(ActionModule)
    module._vars = task_vars
    module._templar = Templar()
    module._identity = lambda mode: {'owner': OWNER, 'mode': mode}
    return module


THIS_RUN = {'deploy__plan': {'run': {'owner': OWNER}, 'release': '20261201000002'}, 'deploy_release_name': '20261201000002',
            'deploy_release_path': '/srv/app/releases/20261201000002', 'deploy_previous_release': '20261201000001',
            'deploy_shared_path': '/srv/app/shared', 'deploy_revision': 'abc123'}


def test_a_run_that_made_its_plan_keeps_its_own_facts_in_the_failure_path():
    rescued = action(**THIS_RUN)._rescued('deploy')
    assert rescued['owner'] == OWNER and not rescued['changed']
    assert rescued['facts'] == dict(deploy_mode='deploy', **dict((name, THIS_RUN[name]) for name in release_step.PUBLIC_FACTS))


@pytest.mark.parametrize('mode', ['deploy', 'rollback', 'drill'])
def test_a_run_that_failed_before_its_plan_never_shows_an_earlier_runs_facts(mode):
    earlier = dict(THIS_RUN)
    earlier['%s__plan' % mode] = {'run': {'owner': 'ctl-1-1-earlier-run'}, 'release': '20261201000002'}
    rescued = action(**earlier)._rescued(mode)
    assert rescued['owner'] == OWNER
    assert rescued['facts'] == dict(dict.fromkeys(release_step.PUBLIC_FACTS), deploy_mode=mode)


def test_the_first_run_of_a_playbook_failing_early_has_no_facts_yet():
    assert action()._rescued('rollback')['facts'] == dict(dict.fromkeys(release_step.PUBLIC_FACTS), deploy_mode='rollback')


def test_each_flow_has_the_stage():
    module = action()
    assert [getattr(module, '_%s_rescued' % flow)({})['facts']['deploy_mode'] for flow in ('deploy', 'rollback', 'drill')] == \
        ['deploy', 'rollback', 'drill']
