"""symlink_swap: current only ever points to a finished release, switched by one rename."""

from __future__ import annotations

import glob
import os
import threading

from ansible_collections.capstan.release.plugins.module_utils import _fsops
from ansible_collections.capstan.release.plugins.module_utils import _journal
from ansible_collections.capstan.release.plugins.module_utils import _releases
from ansible_collections.capstan.release.plugins.module_utils import _steps
from ansible_collections.capstan.release.plugins.modules import symlink_swap
from ansible_collections.capstan.release.tests.unit.helpers import deploy, listing, release_path, run_module

A = '20261121221359'
B = '20261121221404'
C = '20261121221500'


def swap(capfd, deploy_to, release, **args):
    return run_module(symlink_swap, capfd, deploy_to=deploy_to, release=release, **args)


def current_of(deploy_to):
    return os.readlink(os.path.join(deploy_to, 'current'))


def test_first_swap_makes_current_with_an_absolute_target(capfd, deploy_to):
    deploy(deploy_to, A, live=False)

    result = swap(capfd, deploy_to, A)

    assert result['changed'] is True
    assert result['previous_release'] is None
    assert result['previous_path'] is None
    target = current_of(deploy_to)
    assert os.path.isabs(target)
    assert target == release_path(deploy_to, A) == result['release_path']
    assert os.path.isdir(os.path.join(deploy_to, 'current'))
    # The temporary link was renamed, not left behind.
    assert glob.glob(os.path.join(deploy_to, '.current*')) == []


def test_swap_reports_the_previous_release(capfd, deploy_to):
    deploy(deploy_to, A)
    deploy(deploy_to, B, live=False)

    result = swap(capfd, deploy_to, B)

    assert result['changed'] is True
    assert result['release'] == B
    assert result['previous_release'] == A
    assert result['previous_path'] == release_path(deploy_to, A)
    assert result['previous_link'] == release_path(deploy_to, A)
    assert current_of(deploy_to) == release_path(deploy_to, B)


def test_refuses_a_missing_release_and_lists_the_existing_ones(capfd, deploy_to):
    deploy(deploy_to, A)
    deploy(deploy_to, B)
    before = listing(deploy_to)

    result = swap(capfd, deploy_to, C)

    assert result['failed'] is True
    assert C in result['msg'] and A in result['msg'] and B in result['msg']
    assert listing(deploy_to) == before


def test_refuses_an_unfinished_release(capfd, deploy_to):
    deploy(deploy_to, A)
    _steps.prepare_release(deploy_to, B)
    before = listing(deploy_to)

    result = swap(capfd, deploy_to, B)

    assert result['failed'] is True
    assert 'unfinished' in result['msg']
    assert listing(deploy_to) == before
    assert current_of(deploy_to) == release_path(deploy_to, A)


def test_refuses_a_failed_release(capfd, deploy_to):
    deploy(deploy_to, A)
    deploy(deploy_to, B, live=False)
    _journal.append_event(_releases.Tree(deploy_to).journal, 'failed', B)
    before = listing(deploy_to)

    result = swap(capfd, deploy_to, B)

    assert result['failed'] is True
    assert 'failed' in result['msg'] and B in result['msg']
    assert listing(deploy_to) == before


def test_refuses_a_real_current_directory_unless_told_to_migrate(capfd, deploy_to):
    os.makedirs(os.path.join(deploy_to, 'current'))
    with open(os.path.join(deploy_to, 'current', 'index.html'), 'w') as handle:
        handle.write('old site\n')
    deploy(deploy_to, A, live=False)
    before = listing(deploy_to)

    result = swap(capfd, deploy_to, A)

    assert result['failed'] is True
    assert 'real directory' in result['msg'] and 'migrate=true' in result['msg']
    assert listing(deploy_to) == before


def test_migrate_moves_a_real_current_into_releases_as_a_successful_older_release(capfd, deploy_to):
    os.makedirs(os.path.join(deploy_to, 'current'))
    with open(os.path.join(deploy_to, 'current', 'index.html'), 'w') as handle:
        handle.write('old site\n')
    deploy(deploy_to, A, live=False)

    result = swap(capfd, deploy_to, A, migrate=True)

    migrated = result['migrated']
    assert result['changed'] is True
    assert _releases.is_release_name(migrated) and migrated < A
    assert result['previous_release'] == migrated
    assert current_of(deploy_to) == release_path(deploy_to, A)
    with open(os.path.join(release_path(deploy_to, migrated), 'index.html')) as handle:
        assert handle.read() == 'old site\n'
    snapshot = _releases.Snapshot(_releases.Tree(deploy_to))
    assert snapshot.states[migrated] == 'successful'
    # A later rollback can go back to it.
    assert _steps.rollback_target(deploy_to)['release'] == migrated
    swap(capfd, deploy_to, migrated, rollback=True)
    assert current_of(deploy_to) == release_path(deploy_to, migrated)


def test_refuses_a_regular_file_current(capfd, deploy_to):
    deploy(deploy_to, A, live=False)
    with open(os.path.join(deploy_to, 'current'), 'w') as handle:
        handle.write('not a link\n')
    before = listing(deploy_to)

    result = swap(capfd, deploy_to, A, migrate=True)

    assert result['failed'] is True
    assert 'regular file' in result['msg']
    assert listing(deploy_to) == before


def test_swap_to_what_is_already_current_changes_nothing(capfd, deploy_to):
    deploy(deploy_to, A)
    deploy(deploy_to, B)
    before = listing(deploy_to)

    result = swap(capfd, deploy_to, B)

    assert result['changed'] is False
    assert result['previous_release'] == B
    assert listing(deploy_to) == before


def test_check_mode_changes_nothing_and_diff_shows_the_targets(capfd, deploy_to):
    deploy(deploy_to, A)
    deploy(deploy_to, B, live=False)
    before = listing(deploy_to)

    result = swap(capfd, deploy_to, B, rollback=True, _ansible_check_mode=True, _ansible_diff=True)

    assert result['changed'] is True
    assert result['diff'] == {'before': {'current': release_path(deploy_to, A)},
                              'after': {'current': release_path(deploy_to, B)}}
    assert listing(deploy_to) == before


def test_check_mode_migrate_changes_nothing(capfd, deploy_to):
    os.makedirs(os.path.join(deploy_to, 'current'))
    deploy(deploy_to, A, live=False)
    before = listing(deploy_to)

    result = swap(capfd, deploy_to, A, migrate=True, _ansible_check_mode=True)

    assert result['changed'] is True and result['migrated'] < A
    assert listing(deploy_to) == before


def test_no_diff_without_diff_mode(capfd, deploy_to):
    deploy(deploy_to, A, live=False)

    assert 'diff' not in swap(capfd, deploy_to, A)


def test_a_reader_never_sees_a_moment_without_current(deploy_to):
    """Fails if the switch is unlink+symlink: a reader then finds no current between the two."""
    deploy(deploy_to, A)
    deploy(deploy_to, B)
    current = os.path.join(deploy_to, 'current')
    stop = threading.Event()
    missing = []
    reads = [0]

    def reader():
        while not stop.is_set():
            try:
                os.stat(current)
            except FileNotFoundError as error:
                missing.append(error)
            reads[0] += 1

    thread = threading.Thread(target=reader)
    thread.start()
    try:
        for turn in range(300):
            assert _steps.swap_current(deploy_to, (A, B)[turn % 2])['changed'] is True
    finally:
        stop.set()
        thread.join()

    assert reads[0] > 300
    assert missing == []


def test_rollback_appends_capistranos_line_to_revisions_log(capfd, deploy_to):
    deploy(deploy_to, A)
    deploy(deploy_to, B)
    log = os.path.join(deploy_to, 'revisions.log')
    with open(log, 'rb') as handle:
        before = handle.read()

    result = swap(capfd, deploy_to, A, rollback=True, log_user='alice')

    assert result['changed'] is True
    with open(log, 'rb') as handle:
        assert handle.read() == before + ('alice rolled back to release %s\n' % A).encode()


def test_a_plain_swap_writes_no_revisions_line(capfd, deploy_to):
    deploy(deploy_to, A)
    deploy(deploy_to, B, live=False)
    log = os.path.join(deploy_to, 'revisions.log')
    with open(log, 'rb') as handle:
        before = handle.read()

    swap(capfd, deploy_to, B)

    with open(log, 'rb') as handle:
        assert handle.read() == before


def test_the_directory_is_fsynced_after_the_switch(capfd, deploy_to, monkeypatch):
    deploy(deploy_to, A)
    deploy(deploy_to, B, live=False)
    original = _fsops.fsync_dir
    synced = []

    def recording_fsync_dir(path):
        # What current points to when the directory is flushed: the new target, if after the rename.
        link = os.path.join(path, 'current')
        synced.append((path, os.readlink(link) if os.path.islink(link) else None))
        original(path)

    monkeypatch.setattr(_fsops, 'fsync_dir', recording_fsync_dir)

    swap(capfd, deploy_to, B)

    assert (deploy_to, release_path(deploy_to, B)) in synced


def test_relative_deploy_to_is_refused_in_one_sentence(capfd, deploy_to):
    result = swap(capfd, 'srv/app', A)

    assert result['failed'] is True
    assert 'deploy_to' in result['msg'] and '\n' not in result['msg']
