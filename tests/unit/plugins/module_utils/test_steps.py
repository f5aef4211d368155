"""_steps: the steps the modules run, called directly on real trees: linking shared paths into a release,
retire, the rollback mark, prune of releases and of crash leftovers, a full disk."""

from __future__ import annotations

import errno
import os
import tarfile

import pytest

from ansible_collections.capstan.release.plugins.module_utils import _fsops
from ansible_collections.capstan.release.plugins.module_utils import _journal
from ansible_collections.capstan.release.plugins.module_utils import _releases
from ansible_collections.capstan.release.plugins.module_utils import _steps
from ansible_collections.capstan.release.tests.unit.helpers import deploy, fill, listing, read, refusal, release_path, tmpfs, write

NAMES = ['20261121221401', '20261121221402', '20261121221403', '20261121221404', '20261121221405']
R1, R2, R3, R4, R5 = NAMES
MIB = 1024 * 1024


def tree(deploy_to):
    return _releases.Tree(deploy_to)


def snapshot(deploy_to):
    return _releases.Snapshot(tree(deploy_to))


def events(deploy_to, release=None):
    return [event['event'] for event in _journal.read_events(tree(deploy_to).journal)
            if release is None or event['release'] == release]


def archives(deploy_to):
    return sorted(entry for entry in os.listdir(deploy_to) if entry.endswith('.tar.gz'))


def unfinished(deploy_to, name, state='failed'):
    """A release a run left behind: created, and (unless 'unfinished') marked ``state``."""
    _steps.prepare_release(deploy_to, name)
    write(release_path(deploy_to, name, 'app.txt'), name)
    if state != 'unfinished':
        _journal.append_event(tree(deploy_to).journal, state, name)


# linking shared paths into a release (_make_link, through finish_release)


def shared_file(deploy_to, rel, text):
    write(os.path.join(deploy_to, 'shared', rel), text)


def test_linking_through_a_symlink_into_shared_is_refused_and_shared_is_kept(deploy_to):
    shared_file(deploy_to, 'config/database.yml', 'db: prod\n')
    _steps.prepare_release(deploy_to, R1)
    # The content itself links config/ into shared/ (as Capistrano apps sometimes commit).
    os.symlink(os.path.join(deploy_to, 'shared', 'config'), release_path(deploy_to, R1, 'config'))
    before = listing(os.path.join(deploy_to, 'shared'))
    message = refusal(_steps.finish_release, deploy_to, R1, 'rev', linked_files=['config/database.yml'])
    assert message.startswith('cannot link config/database.yml: config leads through a symlink (to %s/shared/config)'
                              % os.path.realpath(deploy_to))
    assert listing(os.path.join(deploy_to, 'shared')) == before
    assert read(os.path.join(deploy_to, 'shared', 'config', 'database.yml')) == 'db: prod\n'


def test_linking_a_dir_through_a_symlink_into_shared_never_removes_shared_content(deploy_to):
    write(os.path.join(deploy_to, 'shared', 'public', 'uploads', 'photo.jpg'), 'jpg')
    _steps.prepare_release(deploy_to, R1)
    os.symlink(os.path.join(deploy_to, 'shared', 'public'), release_path(deploy_to, R1, 'public'))
    refusal(_steps.finish_release, deploy_to, R1, 'rev', linked_dirs=['public/uploads'])
    assert read(os.path.join(deploy_to, 'shared', 'public', 'uploads', 'photo.jpg')) == 'jpg'
    assert not os.path.islink(os.path.join(deploy_to, 'shared', 'public', 'uploads'))


def test_linking_replaces_a_symlink_the_content_has_without_touching_its_target(deploy_to):
    write(os.path.join(deploy_to, 'shared', 'log', 'production.log'), 'line\n')
    _steps.prepare_release(deploy_to, R1)
    os.symlink(os.path.join(deploy_to, 'shared', 'log'), release_path(deploy_to, R1, 'log'))
    _steps.finish_release(deploy_to, R1, 'rev', linked_dirs=['log'])
    assert os.readlink(release_path(deploy_to, R1, 'log')) == os.path.join(deploy_to, 'shared', 'log')
    assert read(os.path.join(deploy_to, 'shared', 'log', 'production.log')) == 'line\n'


def test_linking_replaces_a_real_dir_of_the_content(deploy_to):
    write(os.path.join(deploy_to, 'shared', 'log', 'production.log'), 'line\n')
    _steps.prepare_release(deploy_to, R1)
    write(release_path(deploy_to, R1, 'log', 'dev.log'), 'from the repo\n')
    _steps.finish_release(deploy_to, R1, 'rev', linked_dirs=['log'])
    assert os.path.islink(release_path(deploy_to, R1, 'log'))
    assert sorted(os.listdir(os.path.join(deploy_to, 'shared', 'log'))) == ['production.log']


def test_overlapping_linked_paths_are_refused_before_the_release_exists(deploy_to):
    shared_file(deploy_to, 'config/database.yml', 'db\n')
    message = refusal(_steps.finish_release, deploy_to, R1, 'rev', linked_dirs=['config'], linked_files=['config/database.yml'])
    assert message.startswith("linked_dirs and linked_files overlap: 'config' and 'config/database.yml'")
    assert not os.path.exists(release_path(deploy_to, R1))
    assert read(os.path.join(deploy_to, 'shared', 'config', 'database.yml')) == 'db\n'


# retire


def test_retire_journals_removing_before_the_delete_and_removed_after(deploy_to):
    deploy(deploy_to, R1)
    unfinished(deploy_to, R2)
    archive, note = _steps.retire(tree(deploy_to), R2, 'failed', False, run='r')
    assert (archive, note) == (os.path.join(deploy_to, 'failed-release-%s.tar.gz' % R2), None)
    assert events(deploy_to, R2)[-2:] == ['removing', 'removed']
    assert not os.path.exists(release_path(deploy_to, R2))
    with tarfile.open(archive) as tar:
        assert '%s/app.txt' % R2 in tar.getnames()


def test_retire_marks_a_release_failed_before_archiving_it(deploy_to):
    deploy(deploy_to, R1)
    unfinished(deploy_to, R2, 'unfinished')
    _steps.retire(tree(deploy_to), R2, 'unfinished', False, kind='failed')
    assert events(deploy_to, R2) == ['created', 'failed', 'removing', 'removed']


def test_retire_in_check_mode_only_names_the_archive(deploy_to):
    deploy(deploy_to, R1)
    unfinished(deploy_to, R2)
    before = events(deploy_to)
    assert _steps.retire(tree(deploy_to), R2, 'failed', True) == (
        os.path.join(deploy_to, 'failed-release-%s.tar.gz' % R2), None)
    assert events(deploy_to) == before and os.path.isdir(release_path(deploy_to, R2))


def test_a_release_whose_delete_fails_stays_removing_and_is_never_counted_nor_chosen(deploy_to):
    deploy(deploy_to, R1)
    deploy(deploy_to, R2)
    deploy(deploy_to, R3)
    with tmpfs(release_path(deploy_to, R2, 'tmp', 'cache'), '1m'):
        with pytest.raises(OSError) as error:
            _steps.retire(tree(deploy_to), R2, 'successful', False)
        assert error.value.errno == errno.EBUSY
        found = snapshot(deploy_to)
        assert found.states[R2] == 'removing'
        assert found.successful() == [R1, R3]
        assert _releases.rollback_plan(found) == (R1, R3)


def test_retire_on_a_full_disk_removes_the_release_without_an_archive(deploy_to):
    with tmpfs(os.path.dirname(deploy_to), '2m'):
        deploy(deploy_to, R1)
        unfinished(deploy_to, R2)
        with open(release_path(deploy_to, R2, 'random.bin'), 'wb') as handle:
            handle.write(os.urandom(MIB))
        fill(os.path.dirname(deploy_to))
        archive, note = _steps.retire(tree(deploy_to), R2, 'failed', False)
        assert archive is None
        assert note.startswith('removed without an archive: no space left for one (')
        assert not os.path.exists(release_path(deploy_to, R2))
        assert archives(deploy_to) == [] and _fsops.temp_leftovers(deploy_to) == []
        assert events(deploy_to, R2)[-2:] == ['removing', 'removed']


def test_retire_of_a_half_removed_release_writes_no_archive_again(deploy_to):
    deploy(deploy_to, R1)
    unfinished(deploy_to, R2, 'removing')
    archive, _note = _steps.retire(tree(deploy_to), R2, 'removing', False)
    assert archive is None and archives(deploy_to) == []
    assert not os.path.exists(release_path(deploy_to, R2))


def test_retire_never_archives_a_half_removed_rolled_back_release_over_its_full_archive(deploy_to):
    deploy(deploy_to, R1)
    deploy(deploy_to, R2)
    _steps.swap_current(deploy_to, R1, rollback=True)
    full = os.path.join(deploy_to, 'rolled-back-release-%s.tar.gz' % R2)
    _fsops.archive_dir(release_path(deploy_to, R2), full, R2)
    _journal.append_event(tree(deploy_to).journal, 'removing', R2)
    os.unlink(release_path(deploy_to, R2, 'REVISION'))  # the delete had begun
    _steps.prune(deploy_to, 5, 5, rolled_back=R2)
    with tarfile.open(full) as tar:
        assert '%s/REVISION' % R2 in tar.getnames()


# swap_current(rollback=True)


def test_a_rollback_marks_the_release_it_leaves_rolled_back(deploy_to):
    deploy(deploy_to, R1)
    deploy(deploy_to, R2)
    _steps.swap_current(deploy_to, R1, rollback=True, run='r')
    found = snapshot(deploy_to)
    assert (found.current, found.states[R2]) == (R1, 'rolled_back')
    assert found.successful() == [R1]
    assert events(deploy_to)[-3:] == ['published', 'rollback', 'rolled_back']


def test_a_rollback_forward_marks_nothing(deploy_to):
    deploy(deploy_to, R1)
    deploy(deploy_to, R2)
    _steps.swap_current(deploy_to, R1)
    _steps.swap_current(deploy_to, R2, rollback=True)
    assert snapshot(deploy_to).states == {R1: 'successful', R2: 'successful'}


def test_a_rolled_back_release_is_never_a_rollback_target_again(deploy_to):
    for name in (R1, R2, R3):
        deploy(deploy_to, name)
    _steps.swap_current(deploy_to, R2, rollback=True)
    assert _releases.rollback_plan(snapshot(deploy_to)) == (R1, R2)
    with pytest.raises(Exception) as error:
        _releases.rollback_plan(snapshot(deploy_to), R3)
    assert 'is rolled_back, not a release that completed' in str(error.value)


# prune


def test_prune_writes_no_archive_that_archive_retention_would_delete(deploy_to):
    unfinished(deploy_to, R1)
    deploy(deploy_to, R4)
    unfinished(deploy_to, R5)
    result = _steps.prune(deploy_to, 5, 0)
    assert sorted((entry['name'], entry['archive']) for entry in result['removed']) == [(R1, None), (R5, None)]
    assert archives(deploy_to) == [] and result['archives_removed'] == []


def test_prune_archives_only_the_newest_that_retention_keeps(deploy_to):
    deploy(deploy_to, R1)
    for name in (R2, R3, R4):
        unfinished(deploy_to, name)
    result = _steps.prune(deploy_to, 5, 1)
    assert [(entry['name'], entry['archive']) for entry in result['removed']] == [
        (R2, None), (R3, None), (R4, os.path.join(deploy_to, 'failed-release-%s.tar.gz' % R4))]
    assert archives(deploy_to) == ['failed-release-%s.tar.gz' % R4]


def test_prune_writes_no_archive_older_than_the_archives_it_keeps(deploy_to):
    deploy(deploy_to, R1)
    unfinished(deploy_to, R2)
    write(os.path.join(deploy_to, 'failed-release-%s.tar.gz' % R4), 'x')
    write(os.path.join(deploy_to, 'failed-release-%s.tar.gz' % R5), 'x')
    result = _steps.prune(deploy_to, 5, 2)
    assert result['removed'] == [{'name': R2, 'reason': 'failed', 'archive': None}]
    assert archives(deploy_to) == ['failed-release-%s.tar.gz' % R4, 'failed-release-%s.tar.gz' % R5]


def test_prune_goes_on_past_a_release_that_cannot_be_removed_and_warns(deploy_to):
    for name in NAMES:
        deploy(deploy_to, name)
    with tmpfs(release_path(deploy_to, R2, 'tmp', 'cache'), '1m'):
        result = _steps.prune(deploy_to, 2, 5)
        assert [entry['name'] for entry in result['removed']] == [R1, R3]
        assert len(result['warnings']) == 1 and result['warnings'][0].startswith(
            'release %s could not be removed from %s/releases (' % (R2, deploy_to))
        assert result['warnings'][0].endswith('it is no longer counted, and the next prune tries again')
        assert snapshot(deploy_to).successful() == [R4, R5]
    again = _steps.prune(deploy_to, 2, 5)
    assert [entry['name'] for entry in again['removed']] == [R2] and 'warnings' not in again
    assert sorted(os.listdir(tree(deploy_to).releases)) == [R4, R5]


def test_prune_removes_the_temp_leftovers_of_crashed_runs_only(deploy_to):
    deploy(deploy_to, R1)
    state = tree(deploy_to).state_dir
    crashed = [os.path.join(deploy_to, '.current.swap-4242'),
               os.path.join(deploy_to, '.failed-release-%s.tar.gz.partial-17' % R2),
               os.path.join(deploy_to, '.rolled-back-release-%s.tar.gz.partial-18' % R2),
               os.path.join(state, '.lock.new-99'), os.path.join(state, '.lock.tmp-98'),
               os.path.join(state, '.journal.tmp-7')]
    others = [os.path.join(deploy_to, '.env.tmp-1'), os.path.join(deploy_to, '.current.swap-x'),
              os.path.join(deploy_to, 'current.swap-1'), os.path.join(state, '.notes.new-3')]
    for path in crashed + others:
        write(path, 'x')
    os.makedirs(os.path.join(deploy_to, '.current.tmp-5'))
    os.symlink(release_path(deploy_to, R1), os.path.join(deploy_to, '.current.new-6'))
    result = _steps.prune(deploy_to, 5, 5)
    assert sorted(result['leftovers_removed']) == sorted(crashed + [os.path.join(deploy_to, '.current.new-6')])
    assert result['changed'] is True
    assert not any(os.path.lexists(path) for path in result['leftovers_removed'])
    assert all(os.path.exists(path) for path in others) and os.path.isdir(os.path.join(deploy_to, '.current.tmp-5'))


def test_prune_in_check_mode_removes_no_leftover(deploy_to):
    deploy(deploy_to, R1)
    write(os.path.join(deploy_to, '.current.swap-4242'), 'x')
    assert _steps.prune(deploy_to, 5, 5, check=True)['leftovers_removed'] == [os.path.join(deploy_to, '.current.swap-4242')]
    assert os.path.exists(os.path.join(deploy_to, '.current.swap-4242'))
