"""rollback_target: where a rollback goes, by name, never changing anything."""

from __future__ import annotations

import os
import time

import pytest

from ansible_collections.capstan.release.plugins.module_utils import _journal
from ansible_collections.capstan.release.plugins.module_utils import _releases
from ansible_collections.capstan.release.plugins.module_utils import _steps
from ansible_collections.capstan.release.plugins.modules import rollback_target
from ansible_collections.capstan.release.tests.unit.helpers import deploy, listing, run_module

A = '20261121221359'
B = '20261121221404'
C = '20261121221500'
D = '20261121221612'


def target(capfd, deploy_to, **args):
    return run_module(rollback_target, capfd, deploy_to=deploy_to, **args)


def roll_back(deploy_to):
    """What the rollback role does on a host: resolve, switch, then retire the release left."""
    plan = _steps.rollback_target(deploy_to)
    _steps.swap_current(deploy_to, plan['release'], rollback=True, log_user='tester')
    _steps.prune(deploy_to, keep=5, keep_archives=5, rolled_back=plan['leaving'])
    return plan


def test_goes_to_the_previous_successful_release_by_name_not_mtime(capfd, deploy_to):
    for name in (A, B, C):
        deploy(deploy_to, name)
    # Modification times say the opposite of the names: A newest, B oldest.
    now = time.time()
    os.utime(os.path.join(deploy_to, 'releases', A), (now + 3600, now + 3600))
    os.utime(os.path.join(deploy_to, 'releases', B), (now - 86400, now - 86400))
    before = listing(deploy_to)

    result = target(capfd, deploy_to)

    assert result['changed'] is False
    assert result['release'] == B
    assert result['release_path'] == os.path.join(deploy_to, 'releases', B)
    assert result['current'] == C
    assert result['leaving'] == C
    assert result['noop'] is False
    assert result['available'] == [A, B, C]
    assert listing(deploy_to) == before


def test_skips_failed_and_unfinished_releases_in_between(capfd, deploy_to):
    deploy(deploy_to, A)
    deploy(deploy_to, B, live=False)
    _journal.append_event(_releases.Tree(deploy_to).journal, 'failed', B)
    _steps.prepare_release(deploy_to, C)
    deploy(deploy_to, D)

    result = target(capfd, deploy_to)

    assert result['release'] == A
    assert result['leaving'] == D
    assert result['available'] == [A, D]


def test_repeated_rollbacks_step_back_one_release_further_each_time(capfd, deploy_to):
    for name in (A, B, C):
        deploy(deploy_to, name)

    first = roll_back(deploy_to)
    assert (first['release'], first['leaving']) == (B, C)
    assert not os.path.exists(os.path.join(deploy_to, 'releases', C))

    result = target(capfd, deploy_to)
    assert (result['release'], result['current'], result['leaving']) == (A, B, B)

    roll_back(deploy_to)
    result = target(capfd, deploy_to)
    assert result['failed'] is True
    assert 'no earlier release' in result['msg']


def test_a_named_release(capfd, deploy_to):
    for name in (A, B, C):
        deploy(deploy_to, name)

    result = target(capfd, deploy_to, release=A)

    assert result['release'] == A
    assert result['release_path'] == os.path.join(deploy_to, 'releases', A)
    assert result['leaving'] == C
    assert result['noop'] is False


def test_naming_the_current_release_is_a_noop(capfd, deploy_to):
    deploy(deploy_to, A)
    deploy(deploy_to, B)

    result = target(capfd, deploy_to, release=B)

    assert result['release'] == B
    assert result['noop'] is True
    assert result['leaving'] is None


def test_naming_a_newer_release_rolls_forward_and_leaves_nothing(capfd, deploy_to):
    for name in (A, B, C):
        deploy(deploy_to, name)
    _steps.swap_current(deploy_to, A)  # a plain switch: C is still a release that went live

    result = target(capfd, deploy_to, release=C)

    assert result['release'] == C
    assert result['current'] == A
    assert result['leaving'] is None
    assert result['noop'] is False


@pytest.mark.parametrize('release', ['../x', '2026/11', 'abc', '2026112122135', '202611212213590', '../releases/' + A,
                                     A + '\n', ''])
def test_refuses_a_name_that_is_not_14_digits(capfd, deploy_to, release):
    deploy(deploy_to, A)
    deploy(deploy_to, B)

    result = target(capfd, deploy_to, release=release)

    assert result['failed'] is True
    assert 'rollback_release' in result['msg'] and '14 digits' in result['msg']
    assert A in result['msg'] and B in result['msg']
    assert '\n' not in result['msg']


def test_refuses_a_release_that_does_not_exist_and_lists_the_available(capfd, deploy_to):
    deploy(deploy_to, A)
    deploy(deploy_to, B)

    result = target(capfd, deploy_to, release=C)

    assert result['failed'] is True
    assert 'rollback_release' in result['msg'] and 'does not exist' in result['msg']
    assert '%s, %s' % (A, B) in result['msg']


def test_refuses_a_named_release_that_never_completed(capfd, deploy_to):
    deploy(deploy_to, A)
    deploy(deploy_to, B, live=False)
    deploy(deploy_to, C)
    _journal.append_event(_releases.Tree(deploy_to).journal, 'failed', B)

    result = target(capfd, deploy_to, release=B)

    assert result['failed'] is True
    assert 'failed' in result['msg'] and '%s, %s' % (A, C) in result['msg']


def test_no_earlier_release(capfd, deploy_to):
    deploy(deploy_to, A)

    result = target(capfd, deploy_to)

    assert result['failed'] is True
    assert 'no earlier release' in result['msg'] and A in result['msg']


def test_refuses_when_current_is_missing(capfd, deploy_to):
    deploy(deploy_to, A, live=False)
    deploy(deploy_to, B, live=False)

    result = target(capfd, deploy_to)

    assert result['failed'] is True
    assert 'current is missing' in result['msg']


@pytest.mark.parametrize('link', [
    'releases/' + C,    # a release that is gone
    'srv/app/releases/' + B,    # a target relative to the wrong directory
])
def test_refuses_when_current_is_dangling(capfd, deploy_to, link):
    deploy(deploy_to, A)
    deploy(deploy_to, B)
    current = os.path.join(deploy_to, 'current')
    os.unlink(current)
    os.symlink(link if not link.startswith('releases/') else os.path.join(deploy_to, link), current)

    result = target(capfd, deploy_to)

    assert result['failed'] is True
    assert 'cannot roll back' in result['msg'] and 'not a release' in result['msg']
    assert not os.path.exists(current)


def test_same_answer_in_check_mode(capfd, deploy_to):
    deploy(deploy_to, A)
    deploy(deploy_to, B)

    result = target(capfd, deploy_to, _ansible_check_mode=True)

    assert result['changed'] is False
    assert (result['release'], result['leaving']) == (A, B)


def test_relative_deploy_to_is_refused(capfd):
    result = target(capfd, 'srv/app')

    assert result['failed'] is True
    assert 'deploy_to must be an absolute path' in result['msg']
