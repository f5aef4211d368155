"""_lock: the lock file, its holder in words, and locks that cannot be read."""

from __future__ import annotations

import json
import os

import pytest

from ansible_collections.capstan.release.plugins.module_utils import _lock
from ansible_collections.capstan.release.plugins.module_utils._errors import CapstanError
from ansible_collections.capstan.release.tests.unit.helpers import write

HOLDER = {'owner': 'run-1', 'user': 'alice', 'host': 'ctl01', 'pid': 4242,
          'command': 'ansible-playbook deploy.yml', 'time': '2026-11-21T22:14:04Z'}


@pytest.fixture
def lock_path(tmp_path):
    (tmp_path / 'app' / '.capstan').mkdir(parents=True)
    return str(tmp_path / 'app' / '.capstan' / 'lock')


def test_describe_names_user_host_pid_and_time():
    assert _lock.describe(HOLDER) == 'alice on ctl01 (pid 4242) since 2026-11-21T22:14:04Z'


def test_describe_nobody_and_missing_fields():
    assert _lock.describe({}) == 'nobody'
    assert _lock.describe({'owner': 'x'}) == '? on ? (pid ?) since ?'


def test_describe_an_unreadable_lock():
    assert _lock.describe({'owner': None, 'unreadable': 'garbage'}) == 'an unreadable lock file'


def test_read_holder_of_no_lock_is_empty(lock_path):
    assert _lock.read_holder(lock_path) == {}
    assert _lock.read_holder(os.path.join(os.path.dirname(lock_path), 'missing', 'lock')) == {}


def test_read_holder_round_trips(lock_path):
    write(lock_path, json.dumps(HOLDER).encode())

    assert _lock.read_holder(lock_path) == HOLDER


@pytest.mark.parametrize('data', [b'garbage', b'', b'[1, 2]', b'null', b'{}', b'\xff\xfe{'])
def test_a_lock_file_without_a_holder_is_reported_as_unreadable_and_still_a_lock(lock_path, data):
    write(lock_path, data)

    holder = _lock.read_holder(lock_path)

    assert holder['owner'] is None and 'unreadable' in holder
    assert _lock.describe(holder) == 'an unreadable lock file'
    with pytest.raises(CapstanError) as refused:
        _lock.plan_acquire(lock_path, 'run-2')
    assert 'unreadable lock file' in str(refused.value) and 'deploy_break_lock=true' in str(refused.value)
    assert refused.value.details['holder'] == holder
    # acquire() must refuse too, not loop forever retrying a lock it thinks is free.
    with pytest.raises(CapstanError):
        _lock.acquire(lock_path, _lock.make_holder('run-2'))


def test_a_lock_path_that_cannot_be_read_is_reported_not_raised(lock_path):
    os.mkdir(lock_path)

    holder = _lock.read_holder(lock_path)

    assert holder['owner'] is None and 'unreadable' in holder and holder['error']
    assert _lock.plan_acquire(lock_path, 'run-2', force=True) == ('break', holder)


def test_force_replaces_an_unreadable_lock(lock_path):
    write(lock_path, b'garbage')

    changed, previous = _lock.acquire(lock_path, _lock.make_holder('run-2', user='bob'), force=True)

    assert changed is True and previous['unreadable'] == 'garbage'
    assert _lock.read_holder(lock_path)['owner'] == 'run-2'


def test_acquire_writes_the_holder_once(lock_path):
    holder = _lock.make_holder('run-1', 'alice', 'ctl01', 4242, 'ansible-playbook deploy.yml')

    assert _lock.acquire(lock_path, holder) == (True, {})
    assert _lock.acquire(lock_path, holder) == (False, holder)
    assert _lock.read_holder(lock_path) == holder
    assert sorted(os.listdir(os.path.dirname(lock_path))) == ['lock']


def test_refusal_names_the_holder_and_its_command(lock_path):
    write(lock_path, json.dumps(HOLDER).encode())

    with pytest.raises(CapstanError) as refused:
        _lock.plan_acquire(lock_path, 'run-2')

    msg = str(refused.value)
    assert msg.startswith(os.path.dirname(os.path.dirname(lock_path)) + ' is locked by alice on ctl01 (pid 4242)')
    assert "'ansible-playbook deploy.yml'" in msg
    assert msg.endswith('re-run the same playbook with -e deploy_break_lock=true')


def test_only_the_owner_releases_without_force(lock_path):
    write(lock_path, json.dumps(HOLDER).encode())

    with pytest.raises(CapstanError):
        _lock.release(lock_path, 'run-2')
    assert os.path.exists(lock_path)
    assert _lock.release(lock_path, 'run-1') == (True, HOLDER)
    assert not os.path.exists(lock_path)
    assert _lock.release(lock_path, 'run-1') == (False, {})


def test_make_holder_refuses_an_empty_owner():
    with pytest.raises(CapstanError):
        _lock.make_holder('')
