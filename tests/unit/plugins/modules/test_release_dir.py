"""release_dir: the real main() on real trees in tmp_path."""

from __future__ import annotations

import getpass
import os
import stat
import tarfile
import time

import pytest

from ansible_collections.capstan.release.plugins.module_utils import _journal
from ansible_collections.capstan.release.plugins.module_utils import _releases
from ansible_collections.capstan.release.plugins.module_utils import _steps
from ansible_collections.capstan.release.plugins.modules import release_dir
from ansible_collections.capstan.release.tests.unit.helpers import deploy, listing, read, run_module, write

A, B, C = '20261121221359', '20261121221404', '20261121221410'


def run(capfd, **args):
    return run_module(release_dir, capfd, **args)


def states(deploy_to):
    return _releases.Snapshot(_releases.Tree(deploy_to)).states


# present


def test_present_creates_tree_and_an_empty_unfinished_release(capfd, deploy_to):
    result = run(capfd, deploy_to=deploy_to, release=B)
    assert result['changed'] is True
    assert result['state'] == 'unfinished'
    assert result['release'] == B
    assert result['release_path'] == os.path.join(deploy_to, 'releases', B)
    assert result['shared_path'] == os.path.join(deploy_to, 'shared')
    assert result['previous_release'] is None
    for sub in ('releases', 'shared'):
        assert os.path.isdir(os.path.join(deploy_to, sub))
    assert os.listdir(result['release_path']) == []
    assert states(deploy_to) == {B: 'unfinished'}


def test_present_again_changes_nothing(capfd, deploy_to):
    run(capfd, deploy_to=deploy_to, release=B)
    before = listing(deploy_to)
    result = run(capfd, deploy_to=deploy_to, release=B)
    assert result['changed'] is False
    assert result['state'] == 'unfinished'
    assert listing(deploy_to) == before


def test_present_reports_the_current_release_as_previous(capfd, deploy_to):
    deploy(deploy_to, A)
    result = run(capfd, deploy_to=deploy_to, release=B)
    assert result['previous_release'] == A


def test_release_stays_unfinished_until_finished(capfd, deploy_to):
    run(capfd, deploy_to=deploy_to, release=B)
    write(os.path.join(deploy_to, 'releases', B, 'app.py'), 'print(1)\n')
    assert states(deploy_to)[B] == 'unfinished'
    assert not os.path.exists(os.path.join(deploy_to, 'releases', B, 'REVISION'))
    result = run(capfd, deploy_to=deploy_to, release=B, state='finished', revision='abc123')
    assert result['changed'] is True
    assert result['state'] == 'finished'
    assert states(deploy_to)[B] == 'finished'


# finished: links


def test_finished_links_dirs_and_files_with_absolute_targets_into_shared(capfd, deploy_to):
    shared = os.path.join(deploy_to, 'shared')
    write(os.path.join(shared, 'config', 'database.yml'), 'db: prod\n')
    result = run(capfd, deploy_to=deploy_to, release=B, state='finished', revision='abc123',
                 linked_dirs=['log', 'tmp/pids'], linked_files=['config/database.yml'])
    assert result['changed'] is True
    release = os.path.join(deploy_to, 'releases', B)
    expected = {
        'log': os.path.join(shared, 'log'),
        'tmp/pids': os.path.join(shared, 'tmp', 'pids'),
        'config/database.yml': os.path.join(shared, 'config', 'database.yml'),
    }
    for entry, target in expected.items():
        link = os.path.join(release, entry)
        assert os.path.islink(link), entry
        assert os.readlink(link) == target
        assert os.path.isabs(os.readlink(link))
    assert result['links'] == [os.path.join(release, entry) for entry in ('log', 'tmp/pids', 'config/database.yml')]
    # parents made as real directories in the release, missing linked dirs made in shared/
    assert os.path.isdir(os.path.join(release, 'tmp')) and not os.path.islink(os.path.join(release, 'tmp'))
    assert os.path.isdir(os.path.join(release, 'config')) and not os.path.islink(os.path.join(release, 'config'))
    assert os.path.isdir(os.path.join(shared, 'log'))
    assert os.path.isdir(os.path.join(shared, 'tmp', 'pids'))
    assert read(os.path.join(release, 'config', 'database.yml')) == 'db: prod\n'


def test_finished_replaces_a_directory_of_the_release_by_the_link(capfd, deploy_to):
    run(capfd, deploy_to=deploy_to, release=B)
    release = os.path.join(deploy_to, 'releases', B)
    write(os.path.join(release, 'log', 'from-git.log'), 'checked in\n')
    write(os.path.join(deploy_to, 'shared', 'log', 'production.log'), 'kept\n')
    result = run(capfd, deploy_to=deploy_to, release=B, state='finished', revision='abc123', linked_dirs=['log'])
    assert result['changed'] is True
    assert os.path.islink(os.path.join(release, 'log'))
    assert os.listdir(os.path.join(release, 'log')) == ['production.log']
    assert read(os.path.join(deploy_to, 'shared', 'log', 'production.log')) == 'kept\n'


@pytest.mark.parametrize('state', ['present', 'finished'])
def test_missing_linked_file_fails_before_anything_is_created(capfd, deploy_to, state):
    result = run(capfd, deploy_to=deploy_to, release=B, state=state, revision='abc123',
                 linked_dirs=['log'], linked_files=['config/master.key'])
    assert result['failed'] is True
    assert 'linked_files' in result['msg'] and 'config/master.key' in result['msg']
    assert not os.path.lexists(deploy_to)


def test_missing_linked_file_fails_before_the_release_is_created(capfd, deploy_to):
    deploy(deploy_to, A)
    before = listing(deploy_to)
    result = run(capfd, deploy_to=deploy_to, release=B, state='finished', revision='abc123',
                 linked_files=['config/master.key'])
    assert result['failed'] is True
    assert listing(deploy_to) == before


@pytest.mark.parametrize('state', ['present', 'finished'])
@pytest.mark.parametrize('option, entry', [
    ('linked_dirs', '/var/log'),
    ('linked_dirs', '../outside'),
    ('linked_dirs', 'log/../../outside'),
    ('linked_files', '/etc/passwd'),
    ('linked_files', 'config/../../../etc/passwd'),
    ('linked_files', ''),
])
def test_linked_paths_absolute_or_climbing_are_refused_naming_the_option(capfd, deploy_to, state, option, entry):
    result = run(capfd, deploy_to=deploy_to, release=B, state=state, revision='abc123', **{option: [entry]})
    assert result['failed'] is True
    assert option in result['msg']
    assert not os.path.lexists(deploy_to)


@pytest.mark.parametrize('state', ['present', 'finished', 'succeeded', 'absent'])
@pytest.mark.parametrize('name', [
    '2026112122140', '202611212214040', '2026112122140a', '', '..', '../20261121221404',
    '20261121221404/..', 'releases/20261121221404', '/srv/app/releases/20261121221404', '20261121221404\n',
])
def test_release_names_other_than_14_digits_are_refused(capfd, deploy_to, state, name):
    result = run(capfd, deploy_to=deploy_to, release=name, state=state, revision='abc123')
    assert result['failed'] is True
    assert result['msg'].startswith('release must be a release name: 14 digits')
    assert not os.path.lexists(deploy_to)


@pytest.mark.parametrize('state', ['present', 'finished'])
def test_a_name_older_than_the_newest_release_is_refused(capfd, deploy_to, state):
    deploy(deploy_to, B)
    before = listing(deploy_to)
    result = run(capfd, deploy_to=deploy_to, release=A, state=state, revision='abc123')
    assert result['failed'] is True
    assert A in result['msg'] and B in result['msg']
    assert listing(deploy_to) == before


def test_relative_deploy_to_is_refused(capfd):
    result = run(capfd, deploy_to='srv/app', release=B)
    assert result['failed'] is True
    assert result['msg'] == "deploy_to must be an absolute path, got 'srv/app'"


def test_finished_requires_revision(capfd, deploy_to):
    result = run(capfd, deploy_to=deploy_to, release=B, state='finished')
    assert result['failed'] is True
    assert 'revision' in result['msg']
    assert not os.path.lexists(deploy_to)


def test_os_errors_are_one_sentence(capfd, tmp_path):
    blocker = tmp_path / 'app'
    blocker.write_text('not a directory\n')
    result = run(capfd, deploy_to=str(blocker), release=B)
    assert result['failed'] is True
    assert result['msg'].startswith('preparing release %s in %s failed: ' % (B, blocker))
    assert '\n' not in result['msg'] and 'Traceback' not in result['msg']


# finished: REVISION, immutability


def test_revision_files_end_with_a_newline_like_capistranos_echo(capfd, deploy_to):
    run(capfd, deploy_to=deploy_to, release=B, state='finished', revision='3f2a9c1d', revision_time='1763763244')
    release = os.path.join(deploy_to, 'releases', B)
    assert read(os.path.join(release, 'REVISION')) == '3f2a9c1d\n'
    assert read(os.path.join(release, 'REVISION_TIME')) == '1763763244\n'


def test_revision_time_defaults_to_now_in_epoch_seconds(capfd, deploy_to):
    start = int(time.time())
    run(capfd, deploy_to=deploy_to, release=B, state='finished', revision='3f2a9c1d')
    stamp = read(os.path.join(deploy_to, 'releases', B, 'REVISION_TIME'))
    assert stamp.endswith('\n')
    assert start <= int(stamp) <= int(time.time())


def test_finished_again_with_the_same_revision_changes_nothing(capfd, deploy_to):
    write(os.path.join(deploy_to, 'shared', 'config', 'database.yml'))
    args = dict(deploy_to=deploy_to, release=B, state='finished', revision='abc123',
                linked_dirs=['log'], linked_files=['config/database.yml'])
    assert run(capfd, **args)['changed'] is True
    before = listing(deploy_to)
    result = run(capfd, **args)
    assert result['changed'] is False
    assert result['state'] == 'finished'
    assert listing(deploy_to) == before


def test_finished_with_another_revision_is_refused(capfd, deploy_to):
    run(capfd, deploy_to=deploy_to, release=B, state='finished', revision='abc123')
    before = listing(deploy_to)
    result = run(capfd, deploy_to=deploy_to, release=B, state='finished', revision='def456')
    assert result['failed'] is True
    assert 'abc123' in result['msg'] and 'def456' in result['msg']
    assert listing(deploy_to) == before


def test_finishing_a_capistrano_release_with_another_revision_creates_nothing(capfd, deploy_to):
    release = os.path.join(deploy_to, 'releases', A)
    write(os.path.join(release, 'REVISION'), 'abc123\n')
    os.symlink(release, os.path.join(deploy_to, 'current'))
    before = listing(deploy_to)
    result = run(capfd, deploy_to=deploy_to, release=A, state='finished', revision='def456')
    assert result['failed'] is True
    assert listing(deploy_to) == before


def test_a_failed_release_cannot_be_finished(capfd, deploy_to):
    run(capfd, deploy_to=deploy_to, release=B)
    _journal.append_event(_releases.Tree(deploy_to).journal, 'failed', B)
    result = run(capfd, deploy_to=deploy_to, release=B, state='finished', revision='abc123')
    assert result['failed'] is True
    assert 'failed' in result['msg']
    assert not os.path.exists(os.path.join(deploy_to, 'releases', B, 'REVISION'))


# check mode and diff


def _check_case(deploy_to, case):
    """Build the tree a case starts from; return the module args of the case."""
    if case == 'present-new-tree':
        return dict(release=B)
    write(os.path.join(deploy_to, 'shared', 'config', 'database.yml'))
    links = dict(linked_dirs=['log'], linked_files=['config/database.yml'])
    if case == 'present-next':
        deploy(deploy_to, A)
        return dict(release=B)
    if case == 'finished-new':
        deploy(deploy_to, A)
        return dict(release=B, state='finished', revision='abc123', **links)
    if case == 'finished-prepared':
        deploy(deploy_to, A)
        _steps.prepare_release(deploy_to, B)
        return dict(release=B, state='finished', revision='abc123', **links)
    if case == 'succeeded':
        deploy(deploy_to, A)
        deploy(deploy_to, B, succeed=False)
        return dict(release=B, state='succeeded', log_user='alice')
    if case == 'absent':
        deploy(deploy_to, A)
        deploy(deploy_to, B, live=False)
        return dict(release=B, state='absent')
    raise AssertionError(case)


@pytest.mark.parametrize('case', ['present-new-tree', 'present-next', 'finished-new', 'finished-prepared', 'succeeded', 'absent'])
def test_check_mode_reports_changed_and_changes_nothing(capfd, tmp_path, deploy_to, case):
    args = _check_case(deploy_to, case)
    before = listing(tmp_path)
    result = run(capfd, deploy_to=deploy_to, _ansible_check_mode=True, **args)
    assert result['changed'] is True
    assert 'failed' not in result
    assert listing(tmp_path) == before


def test_check_mode_of_absent_names_the_archive_it_would_write(capfd, deploy_to):
    deploy(deploy_to, A)
    deploy(deploy_to, B, live=False)
    result = run(capfd, deploy_to=deploy_to, release=B, state='absent', _ansible_check_mode=True)
    assert result['archive'] == os.path.join(deploy_to, 'failed-release-%s.tar.gz' % B)
    assert not os.path.exists(result['archive'])


def test_diff_only_when_asked(capfd, deploy_to):
    result = run(capfd, deploy_to=deploy_to, release=B)
    assert 'diff' not in result
    result = run(capfd, deploy_to=deploy_to, release=C, _ansible_diff=True)
    assert result['diff'] == {'before': {'releases': [B]}, 'after': {'releases': [B, C]}}


def test_diff_of_finished_shows_state_and_revision(capfd, deploy_to):
    run(capfd, deploy_to=deploy_to, release=B)
    result = run(capfd, deploy_to=deploy_to, release=B, state='finished', revision='abc123', _ansible_diff=True)
    assert result['diff']['before'] == {'release': B, 'state': 'unfinished', 'revision': None}
    assert result['diff']['after'] == {'release': B, 'state': 'finished', 'revision': 'abc123'}


# succeeded


def test_succeeded_appends_capistranos_line_once(capfd, deploy_to):
    deploy(deploy_to, B, revision='3f2a9c1d', succeed=False)
    result = run(capfd, deploy_to=deploy_to, release=B, state='succeeded', log_user='alice')
    line = 'Branch main (at 3f2a9c1d) deployed as release %s by alice' % B
    assert result['changed'] is True
    assert result['log_line'] == line
    assert result['state'] == 'successful'
    assert read(os.path.join(deploy_to, 'revisions.log')) == line + '\n'
    assert states(deploy_to)[B] == 'successful'
    again = run(capfd, deploy_to=deploy_to, release=B, state='succeeded', log_user='alice')
    assert again['changed'] is False
    assert read(os.path.join(deploy_to, 'revisions.log')) == line + '\n'


def test_succeeded_names_the_branch_given(capfd, deploy_to):
    deploy(deploy_to, B, revision='3f2a9c1d', succeed=False)
    run(capfd, deploy_to=deploy_to, release=B, state='succeeded', branch='release/2.4', log_user='bob')
    assert read(os.path.join(deploy_to, 'revisions.log')) == (
        'Branch release/2.4 (at 3f2a9c1d) deployed as release %s by bob\n' % B)


def test_succeeded_log_user_defaults_to_the_user_the_module_runs_as(capfd, deploy_to):
    deploy(deploy_to, B, revision='3f2a9c1d', succeed=False)
    result = run(capfd, deploy_to=deploy_to, release=B, state='succeeded')
    assert result['log_line'].endswith(' by %s' % getpass.getuser())


def test_succeeded_is_refused_when_current_points_elsewhere(capfd, deploy_to):
    deploy(deploy_to, A)
    deploy(deploy_to, B, live=False)
    log_before = read(os.path.join(deploy_to, 'revisions.log'))
    result = run(capfd, deploy_to=deploy_to, release=B, state='succeeded', log_user='alice')
    assert result['failed'] is True
    assert 'current points to %s' % A in result['msg']
    assert read(os.path.join(deploy_to, 'revisions.log')) == log_before
    assert states(deploy_to)[B] == 'finished'


def test_succeeded_is_refused_for_a_missing_release(capfd, deploy_to):
    deploy(deploy_to, A)
    result = run(capfd, deploy_to=deploy_to, release=B, state='succeeded')
    assert result['failed'] is True
    assert 'does not exist' in result['msg']


# absent


def _failed_release(deploy_to, outside):
    """Release B, finished but never live, holding a file and links to shared/ and outside."""
    write(os.path.join(deploy_to, 'shared', 'config', 'database.yml'), 'shared secret\n')
    deploy(deploy_to, A)
    release = deploy(deploy_to, B, live=False, linked_files=['config/database.yml'])
    write(os.path.join(release, 'app', 'main.py'), 'print(1)\n')
    os.makedirs(str(outside))
    write(os.path.join(str(outside), 'sentinel'), 'outside\n')
    os.symlink(str(outside), os.path.join(release, 'outside-dir'))
    return release


def test_absent_archives_then_removes_a_failed_release(capfd, tmp_path, deploy_to):
    old_umask = os.umask(0)
    try:
        release = _failed_release(deploy_to, tmp_path / 'outside')
        result = run(capfd, deploy_to=deploy_to, release=B, state='absent')
    finally:
        os.umask(old_umask)
    archive = os.path.join(deploy_to, 'failed-release-%s.tar.gz' % B)
    assert result['changed'] is True
    assert result['state'] == 'absent'
    assert result['archive'] == archive
    assert not os.path.lexists(release)
    assert stat.S_IMODE(os.stat(archive).st_mode) == 0o600
    with tarfile.open(archive) as tar:
        members = {member.name: member for member in tar.getmembers()}
        assert tar.extractfile(members[B + '/app/main.py']).read() == b'print(1)\n'
    assert members[B + '/config/database.yml'].issym()
    assert members[B + '/config/database.yml'].linkname == os.path.join(deploy_to, 'shared', 'config', 'database.yml')
    assert members[B + '/outside-dir'].issym()
    assert not any(name.startswith(B + '/outside-dir/') for name in members)
    assert B + '/REVISION' in members
    # what the links pointed to is untouched
    assert read(os.path.join(deploy_to, 'shared', 'config', 'database.yml')) == 'shared secret\n'
    assert read(str(tmp_path / 'outside' / 'sentinel')) == 'outside\n'
    assert states(deploy_to) == {A: 'successful'}


def test_absent_refuses_the_current_release(capfd, deploy_to):
    deploy(deploy_to, A)
    deploy(deploy_to, B, succeed=False)
    before = listing(deploy_to)
    result = run(capfd, deploy_to=deploy_to, release=B, state='absent')
    assert result['failed'] is True
    assert 'current' in result['msg']
    assert listing(deploy_to) == before


def test_absent_refuses_a_successful_release(capfd, deploy_to):
    deploy(deploy_to, A)
    deploy(deploy_to, B)
    before = listing(deploy_to)
    result = run(capfd, deploy_to=deploy_to, release=A, state='absent')
    assert result['failed'] is True
    assert 'successfully' in result['msg']
    assert listing(deploy_to) == before


def test_absent_of_a_missing_release_is_a_no_op(capfd, tmp_path, deploy_to):
    deploy(deploy_to, A)
    before = listing(tmp_path)
    result = run(capfd, deploy_to=deploy_to, release=B, state='absent')
    assert result['changed'] is False
    assert result['archive'] is None
    assert listing(tmp_path) == before
    result = run(capfd, deploy_to=str(tmp_path / 'nowhere'), release=B, state='absent')
    assert result['changed'] is False
    assert not os.path.lexists(str(tmp_path / 'nowhere'))
