"""release_lock: one deploy or rollback per deploy_to, a refusal that changes nothing."""

from __future__ import annotations

import json
import multiprocessing
import os

from ansible_collections.capstan.release.plugins.module_utils import _steps
from ansible_collections.capstan.release.plugins.module_utils._errors import CapstanError
from ansible_collections.capstan.release.plugins.modules import release_lock
from ansible_collections.capstan.release.tests.unit.helpers import deploy, listing, run_module

ALICE = dict(owner='run-alice', user='alice', host='ctl01', pid=4242, command='ansible-playbook deploy.yml -i prod')
BOB = dict(owner='run-bob', user='bob', host='ctl02', pid=77, command='ansible-playbook rollback.yml -i prod')


def lock(capfd, deploy_to, **args):
    return run_module(release_lock, capfd, deploy_to=deploy_to, **args)


def lock_path(deploy_to):
    return os.path.join(deploy_to, '.capstan', 'lock')


def lock_bytes(deploy_to):
    with open(lock_path(deploy_to), 'rb') as handle:
        return handle.read()


def test_acquire_creates_the_lock_file_naming_its_holder(capfd, deploy_to):
    result = lock(capfd, deploy_to, **ALICE)

    assert result['changed'] is True
    assert result['locked'] is True
    assert result['broken'] == {}
    assert result['lock_path'] == lock_path(deploy_to)
    holder = json.loads(lock_bytes(deploy_to))
    assert {key: holder[key] for key in ALICE} == ALICE
    assert holder['time'].endswith('Z')
    assert result['holder'] == holder


def test_a_second_owner_is_refused_with_the_holder_and_nothing_changes(capfd, deploy_to):
    lock(capfd, deploy_to, **ALICE)
    before = listing(deploy_to)
    holder = json.loads(lock_bytes(deploy_to))

    result = lock(capfd, deploy_to, **BOB)

    assert result['failed'] is True
    msg = result['msg']
    for part in ('alice', 'ctl01', '4242', holder['time'], ALICE['command'], '-e deploy_break_lock=true'):
        assert part in msg, part
    assert '\n' not in msg
    assert result['holder'] == holder
    assert listing(deploy_to) == before


def test_the_same_owner_taking_it_again_changes_nothing(capfd, deploy_to):
    lock(capfd, deploy_to, **ALICE)
    before = lock_bytes(deploy_to)

    result = lock(capfd, deploy_to, **ALICE)

    assert result['changed'] is False and result['locked'] is True
    assert lock_bytes(deploy_to) == before


def test_the_owner_releases_it(capfd, deploy_to):
    lock(capfd, deploy_to, **ALICE)

    result = lock(capfd, deploy_to, state='absent', owner=ALICE['owner'])

    assert result['changed'] is True and result['locked'] is False
    assert result['holder'] == {} and result['broken'] == {}
    assert not os.path.lexists(lock_path(deploy_to))
    assert lock(capfd, deploy_to, state='absent', owner=ALICE['owner'])['changed'] is False


def test_another_owner_cannot_release_it(capfd, deploy_to):
    lock(capfd, deploy_to, **ALICE)
    before = lock_bytes(deploy_to)

    result = lock(capfd, deploy_to, state='absent', owner=BOB['owner'])

    assert result['failed'] is True
    assert 'alice' in result['msg'] and 'deploy_break_lock=true' in result['msg']
    assert lock_bytes(deploy_to) == before


def test_force_breaks_a_stale_lock_and_returns_who_held_it(capfd, deploy_to):
    lock(capfd, deploy_to, **ALICE)
    stale = json.loads(lock_bytes(deploy_to))

    result = lock(capfd, deploy_to, force=True, **BOB)

    assert result['changed'] is True
    assert result['broken'] == stale
    assert json.loads(lock_bytes(deploy_to))['owner'] == BOB['owner']
    assert result['holder']['owner'] == BOB['owner']


def test_force_releases_someone_elses_lock(capfd, deploy_to):
    lock(capfd, deploy_to, **ALICE)
    stale = json.loads(lock_bytes(deploy_to))

    result = lock(capfd, deploy_to, state='absent', owner=BOB['owner'], force=True)

    assert result['changed'] is True and result['broken'] == stale
    assert not os.path.lexists(lock_path(deploy_to))


def test_check_mode_changes_nothing(capfd, deploy_to):
    result = lock(capfd, deploy_to, _ansible_check_mode=True, _ansible_diff=True, **ALICE)

    assert result['changed'] is True
    assert result['holder']['owner'] == ALICE['owner']
    assert result['diff']['before'] == {'holder': 'nobody'}
    assert 'alice on ctl01 (pid 4242)' in result['diff']['after']['holder']
    assert not os.path.lexists(deploy_to)

    lock(capfd, deploy_to, **ALICE)
    before = listing(deploy_to)
    assert lock(capfd, deploy_to, force=True, _ansible_check_mode=True, **BOB)['changed'] is True
    assert lock(capfd, deploy_to, state='absent', owner=ALICE['owner'], _ansible_check_mode=True)['changed'] is True
    assert listing(deploy_to) == before


def test_check_mode_still_refuses_a_lock_held_by_another_run(capfd, deploy_to):
    lock(capfd, deploy_to, **ALICE)

    result = lock(capfd, deploy_to, _ansible_check_mode=True, **BOB)

    assert result['failed'] is True and 'deploy_break_lock=true' in result['msg']


def test_an_empty_owner_is_refused(capfd, deploy_to):
    result = lock(capfd, deploy_to, owner='', _ansible_check_mode=True)

    assert result['failed'] is True and 'owner' in result['msg']


def _race(deploy_to, index, barrier, results):
    owner = 'run-%d' % index
    barrier.wait()
    try:
        _steps.lock(deploy_to, 'present', owner, user='user-%d' % index, host='ctl', pid=index)
        results.put((index, 'won', None))
    except CapstanError as error:
        results.put((index, 'refused', str(error)))
    except Exception as error:  # pylint: disable=broad-except
        results.put((index, 'error', repr(error)))


def test_of_twenty_racing_runs_exactly_one_wins(deploy_to):
    context = multiprocessing.get_context('fork')
    barrier = context.Barrier(20)
    results = context.Queue()
    workers = [context.Process(target=_race, args=(deploy_to, index, barrier, results)) for index in range(20)]
    for worker in workers:
        worker.start()
    outcomes = [results.get(timeout=60) for _worker in workers]
    for worker in workers:
        worker.join(timeout=60)

    winners = [index for index, outcome, _detail in outcomes if outcome == 'won']
    assert [detail for _index, outcome, detail in outcomes if outcome == 'error'] == []
    assert len(winners) == 1
    holder = json.loads(lock_bytes(deploy_to))
    assert holder['owner'] == 'run-%d' % winners[0]
    refusals = [detail for _index, outcome, detail in outcomes if outcome == 'refused']
    assert len(refusals) == 19
    assert all('user-%d' % winners[0] in detail for detail in refusals)
    # No temporary files left beside the lock.
    assert os.listdir(os.path.dirname(lock_path(deploy_to))) == ['lock']


def test_read_returns_the_tree_as_release_info_sees_it_once_locked(capfd, deploy_to):
    deploy(deploy_to, '20261120101010')
    deploy(deploy_to, '20261121221404')
    result = lock(capfd, deploy_to, read=True, **ALICE)

    assert result['locked'] is True
    tree = result['tree']
    assert tree['current'] == '20261121221404'
    assert tree['release_names'] == ['20261120101010', '20261121221404']
    assert tree['lock']['owner'] == ALICE['owner']  # read after the lock was taken
    assert tree == dict(_steps.info(deploy_to), changed=False)


def test_without_read_there_is_no_tree(capfd, deploy_to):
    assert 'tree' not in lock(capfd, deploy_to, **ALICE)
    assert 'tree' not in lock(capfd, deploy_to, state='absent', owner=ALICE['owner'], read=True)
