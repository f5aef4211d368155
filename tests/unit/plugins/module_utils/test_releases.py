"""_releases: names, linked paths, deploy_to and the tree, the snapshot of a tree, and the prune rules, called directly."""

from __future__ import annotations

import contextlib
import datetime
import json
import os
import shutil
import tempfile
import time

import pytest

from hypothesis import given, settings, strategies as st

from ansible_collections.capstan.release.plugins.module_utils import _journal
from ansible_collections.capstan.release.plugins.module_utils import _releases
from ansible_collections.capstan.release.plugins.module_utils import _steps
from ansible_collections.capstan.release.plugins.module_utils._errors import CapstanError
from ansible_collections.capstan.release.tests.unit.helpers import deploy, refusal, write

UTC = datetime.timezone.utc
R1, R2, R3, R4, R5 = '20261121221401', '20261121221402', '20261121221403', '20261121221404', '20261121221405'

# Short paths over few names, so that overlaps (same, inside) come up often.
paths = st.lists(st.sampled_from(['a', 'b', 'ab', 'a.b']), min_size=1, max_size=3).map('/'.join)


def snapshot(deploy_to):
    return _releases.Snapshot(_releases.Tree(deploy_to))


# names


@pytest.mark.parametrize('name', ['20261121221404', '00010101000000', '99991231235959', '20240229120000'])
def test_is_release_name_accepts_14_digits_of_a_utc_time(name):
    assert _releases.is_release_name(name)


@pytest.mark.parametrize('name', ['20261301000000', '20261232000000', '20261121250000', '20230229120000',
                                  '00000000000000', '99999999999999'])
def test_is_release_name_refuses_14_digits_that_are_no_time(name):
    assert not _releases.is_release_name(name)


@pytest.mark.parametrize('name', [
    '2026112122140', '202611212214040', '2026112122140a', ' 20261121221404', '20261121221404 ',
    '20261121221404\n', '\u0662\u0660\u0662\u0666\u0661\u0661\u0662\u0661\u0662\u0662\u0661\u0664\u0660\u0664',
    '2026-11-21T2214', '', '..', '../20261121221404', '20261121221404/', 20261121221404, None,
])
def test_is_release_name_refuses_anything_else(name):
    assert not _releases.is_release_name(name)


def test_check_release_name_names_the_input():
    with pytest.raises(CapstanError) as error:
        _releases.check_release_name('../x', 'rollback_release')
    assert str(error.value) == "rollback_release must be a release name: 14 digits of a valid UTC time YYYYmmddHHMMSS, got '../x'"


def test_sort_names_orders_by_name_and_drops_the_rest():
    assert _releases.sort_names([R3, 'foo', R1, '2026112122140', R2]) == [R1, R2, R3]


def test_next_release_name_is_the_utc_time():
    now = datetime.datetime(2026, 11, 21, 22, 14, 4, tzinfo=UTC)
    assert _releases.next_release_name([], now=now) == '20261121221404'


def test_next_release_name_defaults_to_utc_whatever_the_local_zone(monkeypatch):
    monkeypatch.setenv('TZ', 'Pacific/Kiritimati')  # UTC+14: a local-time name would be a day off
    time.tzset()
    try:
        before = datetime.datetime.now(UTC).strftime('%Y%m%d%H%M%S')
        name = _releases.next_release_name([])
        after = datetime.datetime.now(UTC).strftime('%Y%m%d%H%M%S')
    finally:
        monkeypatch.undo()
        time.tzset()
    assert before <= name <= after


def test_next_release_name_with_a_clock_behind_is_still_greater_than_every_name():
    now = datetime.datetime(2026, 11, 21, 22, 0, 0, tzinfo=UTC)
    assert _releases.next_release_name([R1, R4, 'foo'], now=now) == R5


def test_two_deploys_in_one_second_get_different_names():
    now = datetime.datetime(2026, 11, 21, 22, 14, 4, tzinfo=UTC)
    first = _releases.next_release_name([], now=now)
    second = _releases.next_release_name([first], now=now)
    third = _releases.next_release_name([first, second], now=now)
    assert (first, second, third) == ('20261121221404', '20261121221405', '20261121221406')


@pytest.mark.parametrize('newest, expected', [
    ('20261231235959', '20270101000000'),
    ('20261130235959', '20261201000000'),
    ('20280228235959', '20280229000000'),
    ('20270228235959', '20270301000000'),
])
def test_next_release_name_rolls_over_minutes_days_months_and_years(newest, expected):
    now = datetime.datetime(2026, 1, 1, 0, 0, 0, tzinfo=UTC)
    assert _releases.next_release_name([newest], now=now) == expected


def test_next_release_name_ignores_names_that_are_no_date():
    now = datetime.datetime(2026, 1, 1, tzinfo=UTC)
    assert _releases.next_release_name(['99991399999999', '20261301000000'], now=now) == '20260101000000'


def test_next_release_name_after_the_last_second_of_9999_is_one_sentence():
    now = datetime.datetime(2026, 1, 1, tzinfo=UTC)
    with pytest.raises(CapstanError) as error:
        _releases.next_release_name(['99991231235959'], now=now)
    assert 'no release name after 99991231235959 fits' in str(error.value)
    assert 'move release 99991231235959 out of releases/' in str(error.value)


def test_next_free_name_before_skips_taken_names():
    assert _releases.next_free_name_before([R3, R2], R4) == R1


@given(st.datetimes(min_value=datetime.datetime(1000, 1, 1), max_value=datetime.datetime(9999, 12, 31, 23, 59, 59)))
def test_every_utc_second_is_a_release_name(moment):
    assert _releases.is_release_name(moment.strftime('%Y%m%d%H%M%S'))


@given(st.text(alphabet='0123456789', min_size=14, max_size=14))
def test_a_14_digit_name_is_a_release_exactly_when_it_is_a_valid_time(name):
    try:
        datetime.datetime.strptime(name, '%Y%m%d%H%M%S')
        valid = True
    except ValueError:
        valid = False
    assert _releases.is_release_name(name) is valid


@given(st.lists(st.datetimes(min_value=datetime.datetime(2000, 1, 1), max_value=datetime.datetime(9999, 12, 31, 23, 59, 58)),
                max_size=5),
       st.datetimes(min_value=datetime.datetime(2000, 1, 1), max_value=datetime.datetime(2100, 1, 1)))
def test_next_release_name_is_a_release_name_newer_than_every_existing_one(existing, now):
    names = [moment.strftime('%Y%m%d%H%M%S') for moment in existing]
    name = _releases.next_release_name(names, now=now.replace(tzinfo=datetime.timezone.utc))
    assert _releases.is_release_name(name)
    assert all(name > other for other in names)


def test_next_release_name_after_99991231235959_is_one_sentence_naming_it():
    message = refusal(_releases.next_release_name, ['20261121221401', '99991231235959'])
    assert message == ('no release name after 99991231235959 fits in 14 digits, and a new release must be newer than every '
                       'existing one: move release 99991231235959 out of releases/ (it is dated in the year 9999)')


@pytest.mark.parametrize('path, expected', [('log', 'log'), ('tmp/pids', 'tmp/pids'), ('.env', '.env')])
def test_check_relative_accepts_relative_paths(path, expected):
    assert _releases.check_relative(path, 'linked_dirs') == expected


@pytest.mark.parametrize('path', ['', '/', '/etc', '../x', 'a/../../b', 'a/..', './a', None, 'public//system', 'log/', '.'])
def test_check_relative_refuses_naming_the_variable(path):
    with pytest.raises(CapstanError) as error:
        _releases.check_relative(path, 'linked_files')
    assert str(error.value).startswith('linked_files entries must')


# check_linked


def test_check_linked_returns_both_lists():
    assert _releases.check_linked(['log', 'tmp/pids', 'public/uploads'], ['config/database.yml', '.env']) == (
        ['log', 'tmp/pids', 'public/uploads'], ['config/database.yml', '.env'])


def test_check_linked_none_is_empty():
    assert _releases.check_linked(None, None) == ([], [])


@pytest.mark.parametrize('dirs, files, message', [
    (['log', 'log'], [], "linked_dirs overlap: 'log' and 'log'"),
    (['public', 'public/uploads'], [], "linked_dirs overlap: 'public' and 'public/uploads'"),
    (['public/uploads', 'public'], [], "linked_dirs overlap: 'public/uploads' and 'public'"),
    ([], ['.env', '.env'], "linked_files overlap: '.env' and '.env'"),
    (['config'], ['config/database.yml'], "linked_dirs and linked_files overlap: 'config' and 'config/database.yml'"),
    (['config/app.yml'], ['config/app.yml'], "linked_dirs and linked_files overlap: 'config/app.yml' and 'config/app.yml'"),
])
def test_check_linked_refuses_paths_that_overlap(dirs, files, message):
    assert refusal(_releases.check_linked, dirs, files).startswith(message + '; ')


@pytest.mark.parametrize('dirs', [['public', 'public_html'], ['log', 'logs/old'], ['a/b', 'a/bc'], ['config/a', 'config/b']])
def test_check_linked_a_common_prefix_is_no_overlap(dirs):
    assert _releases.check_linked(dirs, []) == (dirs, [])


def test_check_linked_names_the_role_variables_when_asked():
    message = refusal(_releases.check_linked, ['config'], ['config/x'], names=('deploy_linked_dirs', 'deploy_linked_files'))
    assert message.startswith('deploy_linked_dirs and deploy_linked_files overlap')


@pytest.mark.parametrize('dirs, files, start', [
    ('log', [], 'linked_dirs must be a list of paths relative to the release'),
    ([], {'a': 1}, 'linked_files must be a list of paths relative to the release'),
    (['../shared'], [], 'linked_dirs entries must be plain relative paths'),
    ([], ['/etc/passwd'], 'linked_files entries must be relative to the release'),
])
def test_check_linked_refuses_what_is_no_list_of_relative_paths(dirs, files, start):
    assert refusal(_releases.check_linked, dirs, files).startswith(start)


def overlapping(entries):
    parts = [tuple(entry.split('/')) for entry in entries]
    return any(a[:len(b)] == b or b[:len(a)] == a for index, a in enumerate(parts) for b in parts[index + 1:])


@given(st.lists(paths, max_size=4), st.lists(paths, max_size=4))
def test_check_linked_refuses_exactly_the_overlapping_pairs(dirs, files):
    if overlapping(dirs + files):
        with pytest.raises(CapstanError):
            _releases.check_linked(dirs, files)
    else:
        assert _releases.check_linked(dirs, files) == (dirs, files)


# deploy_to and Tree


@pytest.mark.parametrize('deploy_to', ['srv/app', '', None, './app'])
def test_tree_refuses_a_relative_deploy_to(deploy_to):
    with pytest.raises(CapstanError) as error:
        _releases.Tree(deploy_to)
    assert str(error.value).startswith('deploy_to must be an absolute path')


def test_tree_paths():
    tree = _releases.Tree('/srv/app/')
    assert tree.release_path(R1) == '/srv/app/releases/' + R1
    assert tree.archive_path(R1, 'failed') == '/srv/app/failed-release-%s.tar.gz' % R1
    assert tree.archive_path(R1, 'rolled_back') == '/srv/app/rolled-back-release-%s.tar.gz' % R1
    with pytest.raises(CapstanError):
        tree.release_path('../../etc')


@pytest.mark.parametrize('deploy_to, normal', [
    ('/srv/app', '/srv/app'), ('/srv/app/', '/srv/app'), ('//srv//app', '/srv/app'), ('/srv/./app/.', '/srv/app'),
    ('/srv/x/../app', '/srv/app'), ('/../srv/app', '/srv/app'),
])
def test_normalise_deploy_to(deploy_to, normal):
    assert _releases.normalise_deploy_to(deploy_to) == normal


@pytest.mark.parametrize('deploy_to', ['/', '//', '///', '/.', '/srv/..', '/srv/x/../..', '/srv/app/../../..'])
def test_normalise_deploy_to_refuses_what_is_root_once_normalised(deploy_to):
    assert refusal(_releases.normalise_deploy_to, deploy_to, 'deploy_to') == (
        'deploy_to must be a directory below /, got %r, which is / once normalised' % deploy_to)


@pytest.mark.parametrize('deploy_to', ['srv/app', '', None, 3, '/srv/a\0pp'])
def test_normalise_deploy_to_refuses_what_is_not_absolute(deploy_to):
    assert refusal(_releases.normalise_deploy_to, deploy_to).startswith('deploy_to must be an absolute path, got ')


def test_tree_uses_the_normalised_deploy_to():
    tree = _releases.Tree('/srv//app/./current/..')
    assert (tree.deploy_to, tree.releases, tree.shared) == ('/srv/app', '/srv/app/releases', '/srv/app/shared')


def test_tree_refuses_a_deploy_to_that_resolves_to_root_through_a_symlink(tmp_path):
    os.symlink('/', str(tmp_path / 'root'))
    for deploy_to in (str(tmp_path / 'root'), str(tmp_path / 'root') + '/', str(tmp_path / 'root' / 'x' / '..')):
        assert refusal(_releases.Tree, deploy_to).endswith('which resolves to /')


def test_tree_on_the_controller_names_paths_without_looking_but_still_refuses_root(tmp_path):
    os.symlink('/', str(tmp_path / 'root'))
    assert _releases.Tree(str(tmp_path / 'root'), resolve=False).releases == str(tmp_path / 'root' / 'releases')
    assert refusal(_releases.Tree, '/srv/..', resolve=False).endswith('which is / once normalised')


def test_tree_accepts_a_symlinked_deploy_to_below_root(tmp_path):
    os.makedirs(str(tmp_path / 'real'))
    os.symlink(str(tmp_path / 'real'), str(tmp_path / 'app'))
    assert _releases.Tree(str(tmp_path / 'app')).deploy_to == str(tmp_path / 'app')


# snapshot: current


def _releases_dir(deploy_to, *names):
    for name in names:
        os.makedirs(os.path.join(deploy_to, 'releases', name))


def test_current_missing(deploy_to):
    _releases_dir(deploy_to, R1)
    snap = snapshot(deploy_to)
    assert (snap.current_kind, snap.current, snap.current_link) == ('missing', None, None)


def test_current_to_a_release(deploy_to):
    _releases_dir(deploy_to, R1, R2)
    os.symlink(os.path.join(deploy_to, 'releases', R1), os.path.join(deploy_to, 'current'))
    snap = snapshot(deploy_to)
    assert (snap.current_kind, snap.current) == ('release', R1)


def test_current_dangling(deploy_to):
    _releases_dir(deploy_to, R1)
    os.symlink(os.path.join(deploy_to, 'releases', R2), os.path.join(deploy_to, 'current'))
    snap = snapshot(deploy_to)
    assert (snap.current_kind, snap.current) == ('dangling', None)
    assert snap.current_link == os.path.join(deploy_to, 'releases', R2)


def test_current_a_real_directory(deploy_to):
    _releases_dir(deploy_to, R1)
    os.makedirs(os.path.join(deploy_to, 'current'))
    snap = snapshot(deploy_to)
    assert (snap.current_kind, snap.current) == ('directory', None)


def test_current_a_regular_file(deploy_to):
    write(os.path.join(deploy_to, 'current'), 'x')
    assert snapshot(deploy_to).current_kind == 'file'


def test_current_pointing_outside_releases(tmp_path, deploy_to):
    _releases_dir(deploy_to, R1)
    other = tmp_path / 'other' / 'releases' / R1
    other.mkdir(parents=True)
    os.symlink(str(other), os.path.join(deploy_to, 'current'))
    snap = snapshot(deploy_to)
    assert (snap.current_kind, snap.current) == ('outside', None)


def test_current_pointing_to_a_non_release_in_releases(deploy_to):
    _releases_dir(deploy_to, R1, 'foo')
    os.symlink(os.path.join(deploy_to, 'releases', 'foo'), os.path.join(deploy_to, 'current'))
    assert snapshot(deploy_to).current_kind == 'outside'


def test_current_relative_link_is_read_from_deploy_to(deploy_to):
    _releases_dir(deploy_to, R1, R2)
    os.symlink('releases/' + R2, os.path.join(deploy_to, 'current'))
    snap = snapshot(deploy_to)
    assert (snap.current_kind, snap.current, snap.current_link) == ('release', R2, 'releases/' + R2)


def test_current_relative_link_climbing_out_is_outside(tmp_path, deploy_to):
    _releases_dir(deploy_to, R1)
    (tmp_path / 'elsewhere' / R1).mkdir(parents=True)
    os.symlink('../../elsewhere/' + R1, os.path.join(deploy_to, 'current'))
    assert snapshot(deploy_to).current_kind == 'outside'


def test_current_through_a_symlinked_deploy_to(tmp_path):
    real = tmp_path / 'data' / 'app'
    _releases_dir(str(real), R1)
    os.symlink(str(tmp_path / 'data'), str(tmp_path / 'srv'))
    os.symlink(str(real / 'releases' / R1), str(real / 'current'))
    snap = snapshot(str(tmp_path / 'srv' / 'app'))
    assert (snap.current_kind, snap.current) == ('release', R1)


# snapshot: listing and states


def test_releases_and_foreign_entries(tmp_path, deploy_to):
    _releases_dir(deploy_to, R2, R1, 'foo', '2026112122140')
    write(os.path.join(deploy_to, 'releases', R3), 'file')
    os.symlink(str(tmp_path), os.path.join(deploy_to, 'releases', R4))
    snap = snapshot(deploy_to)
    assert snap.releases == [R1, R2]
    assert snap.foreign == sorted(['foo', '2026112122140', R3, R4])
    assert set(snap.states) == {R1, R2}


def test_a_missing_tree_is_empty(tmp_path):
    snap = snapshot(str(tmp_path / 'nowhere'))
    assert (snap.exists, snap.releases, snap.foreign, snap.current, snap.archives) == (False, [], [], None, [])


def test_states_of_a_tree_made_by_capistrano(deploy_to):
    # no journal: revisions.log and current say what went live
    for name in (R1, R2, R3, R4, R5):
        os.makedirs(os.path.join(deploy_to, 'releases', name))
    write(os.path.join(deploy_to, 'releases', R2, 'REVISION'), 'sha2\n')
    write(os.path.join(deploy_to, 'releases', R3, 'REVISION'), 'sha3\n')
    write(os.path.join(deploy_to, 'releases', R5, 'REVISION'), 'sha5\n')
    write(os.path.join(deploy_to, 'revisions.log'),
          'Branch master (at sha1) deployed as release %s by deployer\n'
          'deployer rolled back to release %s\n' % (R1, R4))
    os.symlink(os.path.join(deploy_to, 'releases', R4), os.path.join(deploy_to, 'current'))
    os.makedirs(os.path.join(deploy_to, 'releases', '20261121221400'))
    states = snapshot(deploy_to).states
    assert states == {
        '20261121221400': 'unknown',  # older than current, but no REVISION and not in the log
        R1: 'successful',             # in revisions.log
        R2: 'successful',             # older than current, with REVISION
        R3: 'successful',
        R4: 'successful',             # current
        R5: 'unknown',                # newer than current, not in the log: a crashed deploy
    }


def test_a_release_newer_than_current_named_in_the_log_is_successful(deploy_to):
    _releases_dir(deploy_to, R1, R2)
    write(os.path.join(deploy_to, 'revisions.log'), 'Branch main (at x) deployed as release %s by a\n' % R2)
    os.symlink(os.path.join(deploy_to, 'releases', R1), os.path.join(deploy_to, 'current'))
    assert snapshot(deploy_to).states[R2] == 'successful'


def test_the_journal_decides_over_the_log(deploy_to):
    deploy(deploy_to, R1)
    deploy(deploy_to, R2, live=False)
    tree = _releases.Tree(deploy_to)
    _journal.append_event(tree.journal, 'failed', R2)
    with open(tree.revisions_log, 'a') as handle:
        handle.write('Branch main (at x) deployed as release %s by a\n' % R2)
    assert snapshot(deploy_to).states == {R1: 'successful', R2: 'failed'}


def test_states_follow_the_journal_through_a_deploy(deploy_to):
    _steps.prepare_release(deploy_to, R1)
    assert snapshot(deploy_to).states == {R1: 'unfinished'}
    _steps.finish_release(deploy_to, R1, 'sha')
    assert snapshot(deploy_to).states == {R1: 'finished'}
    _steps.swap_current(deploy_to, R1)
    assert snapshot(deploy_to).states == {R1: 'finished'}
    _steps.succeed_release(deploy_to, R1, 'main', 'tester')
    snap = snapshot(deploy_to)
    assert snap.states == {R1: 'successful'}
    assert snap.successful() == [R1]
    assert snap.describe(R1)['revision'] == 'sha'


def test_archives_are_listed_by_release_name(deploy_to):
    for entry in ('rolled-back-release-%s.tar.gz' % R3, 'failed-release-%s.tar.gz' % R1, 'failed-release-x.tar.gz',
                  'failed-release-%s.tar.gz.partial' % R2, 'notes.txt'):
        write(os.path.join(deploy_to, entry))
    assert snapshot(deploy_to).archives == ['failed-release-%s.tar.gz' % R1, 'rolled-back-release-%s.tar.gz' % R3]


# prune_plan and archives_plan


def _tree(deploy_to, successful=(), current=None, **others):
    """Releases in the given states, recorded in the journal; ``current`` links to one of them."""
    tree = _releases.Tree(deploy_to)
    os.makedirs(tree.state_dir, exist_ok=True)
    events = {'successful': 'succeeded', 'unfinished': 'created', 'finished': 'finished', 'failed': 'failed'}
    named = [(name, 'successful') for name in successful]
    for state, names in others.items():
        named.extend((name, state) for name in names)
    for name, state in named:
        os.makedirs(tree.release_path(name))
        _journal.append_event(tree.journal, events[state], name)
    if current:
        os.symlink(tree.release_path(current), tree.current)
    return snapshot(deploy_to)


def test_prune_plan_keeps_the_newest_successful(deploy_to):
    snap = _tree(deploy_to, successful=[R1, R2, R3, R4], current=R4)
    assert _releases.prune_plan(snap, 2) == [(R1, 'old'), (R2, 'old')]


def test_prune_plan_current_takes_the_place_of_the_oldest_kept(deploy_to):
    snap = _tree(deploy_to, successful=[R1, R2, R3, R4, R5], current=R1)
    assert _releases.prune_plan(snap, 3) == [(R2, 'old'), (R3, 'old')]
    assert _releases.prune_plan(snap, 1) == [(R2, 'old'), (R3, 'old'), (R4, 'old'), (R5, 'old')]


def test_prune_plan_leftovers_never_count(deploy_to):
    snap = _tree(deploy_to, successful=[R1, R2], current=R2, failed=[R3], unfinished=[R4], finished=[R5])
    assert _releases.prune_plan(snap, 2) == [(R3, 'failed'), (R4, 'unfinished'), (R5, 'finished')]


def test_prune_plan_never_current_nor_excluded(deploy_to):
    snap = _tree(deploy_to, successful=[R1, R2, R3], current=R3, unfinished=[R4])
    assert _releases.prune_plan(snap, 1, exclude=[R4, R1]) == [(R2, 'old')]


def test_prune_plan_leaving_names_take_no_place_among_the_kept(deploy_to):
    snap = _tree(deploy_to, successful=[R1, R2, R3], current=R2)
    assert _releases.prune_plan(snap, 2, leaving=[R3]) == []
    assert _releases.prune_plan(snap, 1, leaving=[R3]) == [(R1, 'old')]


@pytest.mark.parametrize('keep', [0, -1, True, 1.5, '2', None])
def test_prune_plan_refuses_a_bad_keep_naming_keep_releases(deploy_to, keep):
    snap = _tree(deploy_to, successful=[R1])
    with pytest.raises(CapstanError) as error:
        _releases.prune_plan(snap, keep)
    assert str(error.value).startswith('keep_releases must be a whole number of at least 1')


def test_archives_plan_keeps_the_newest_by_release_name(deploy_to):
    names = ['rolled-back-release-%s.tar.gz' % R4, 'failed-release-%s.tar.gz' % R1, 'failed-release-%s.tar.gz' % R3]
    for age, entry in enumerate(names):
        write(os.path.join(deploy_to, entry))
        os.utime(os.path.join(deploy_to, entry), (1000 + age, 1000 + age))
    snap = snapshot(deploy_to)
    assert _releases.archives_plan(snap, 2) == ['failed-release-%s.tar.gz' % R1]
    assert _releases.archives_plan(snap, 2, adding=['failed-release-%s.tar.gz' % R5]) == [
        'failed-release-%s.tar.gz' % R1, 'failed-release-%s.tar.gz' % R3]
    assert _releases.archives_plan(snap, 0) == sorted(names, key=lambda e: e[-21:])
    assert _releases.archives_plan(snap, 5) == []
    with pytest.raises(CapstanError) as error:
        _releases.archives_plan(snap, -1)
    assert str(error.value).startswith('keep_archives must be')


def test_archive_kind():
    assert _releases.archive_kind('successful') is None
    assert _releases.archive_kind('rolled_back') == 'rolled_back'
    for state in ('unfinished', 'finished', 'failed', 'unknown', 'removed'):
        assert _releases.archive_kind(state) == 'failed'


# prune_plan and archives_plan: properties on real trees built per example (hypothesis)

EPOCH = datetime.datetime(2026, 1, 1)
STATES = ('successful', 'unfinished', 'finished', 'failed', 'unknown')
EVENTS = {'successful': 'succeeded', 'unfinished': 'created', 'finished': 'finished', 'failed': 'failed'}

names = st.integers(min_value=0, max_value=400 * 86400).map(
    lambda seconds: (EPOCH + datetime.timedelta(seconds=seconds)).strftime('%Y%m%d%H%M%S'))


@st.composite
def trees(draw):
    """A tree: release name -> (state, mtime), which one is current, keep, exclude."""
    release_names = sorted(draw(st.sets(names, min_size=1, max_size=10)))
    releases = {name: (draw(st.sampled_from(STATES)), draw(st.integers(min_value=10 ** 9, max_value=2 * 10 ** 9)))
                for name in release_names}
    current = draw(st.one_of(st.none(), st.sampled_from(release_names)))
    keep = draw(st.integers(min_value=1, max_value=12))
    exclude = draw(st.lists(st.sampled_from(release_names), max_size=2, unique=True))
    return releases, current, keep, exclude


@contextlib.contextmanager
def built(releases, current):
    """The tree on disk, releases recorded in the journal the way the steps record them."""
    root = tempfile.mkdtemp(prefix='capstan-prop-')
    try:
        tree = _releases.Tree(os.path.join(root, 'app'))
        os.makedirs(tree.state_dir)
        events = []
        for name, (state, _mtime) in releases.items():
            os.makedirs(tree.release_path(name))
            if state != 'unknown':
                events.append(json.dumps({'time': _journal.utc_stamp(), 'event': EVENTS[state], 'release': name}))
        with open(tree.journal, 'w') as journal:  # what append_event writes, without an fsync a line
            journal.write(''.join(line + '\n' for line in events))
        if current:
            os.symlink(tree.release_path(current), tree.current)
        for name, (_state, mtime) in releases.items():
            os.utime(tree.release_path(name), (mtime, mtime))
        yield tree
    finally:
        shutil.rmtree(root)


def effective_states(releases, current):
    """The states the model must see: a release without a journal entry that is current went live."""
    states = {name: state for name, (state, _mtime) in releases.items()}
    if current is not None and states[current] == 'unknown':
        states[current] = 'successful'
    return states


def expected_kept(successful, current, keep):
    """The successful releases the rule keeps, from names alone: newest ``keep``, current among them."""
    newest = successful[-keep:]
    if current in successful and current not in newest:
        newest = ([current] + successful[-(keep - 1):]) if keep > 1 else [current]
    return set(newest)


@settings(max_examples=100, deadline=None)
@given(trees())
def test_prune_plan_properties(example):
    releases, current, keep, exclude = example
    with built(releases, current) as tree:
        snapshot = _releases.Snapshot(tree)
        states = effective_states(releases, current)
        assert snapshot.states == states
        assert snapshot.current == current

        plan = _releases.prune_plan(snapshot, keep, exclude)
        removed = [name for name, _reason in plan]
        successful = sorted(name for name, state in states.items() if state == 'successful')

        assert current not in removed
        assert not set(removed) & set(exclude)
        assert removed == sorted(removed), 'oldest first'
        assert len(set(removed)) == len(removed)
        for name, reason in plan:
            assert reason == ('old' if states[name] == 'successful' else states[name])

        # every leftover goes, unless protected
        leftovers = set(name for name, state in states.items() if state != 'successful')
        assert leftovers - set(removed) == leftovers & (set(exclude) | {current})

        # the kept successful ones: the newest by name (current among them), plus excluded ones
        survivors = set(successful) - set(removed)
        kept = expected_kept(successful, current, keep)
        assert survivors == kept | (set(exclude) & set(successful))
        if not exclude:
            assert len(survivors) == min(keep, len(successful))
        if current in successful:
            assert current in survivors


@settings(max_examples=50, deadline=None)
@given(trees(), st.randoms(use_true_random=False))
def test_prune_plan_ignores_mtimes(example, rng):
    releases, current, keep, exclude = example
    with built(releases, current) as tree:
        first = _releases.prune_plan(_releases.Snapshot(tree), keep, exclude)
        for name in releases:
            stamp = rng.randint(10 ** 9, 2 * 10 ** 9)
            os.utime(tree.release_path(name), (stamp, stamp))
        assert _releases.prune_plan(_releases.Snapshot(tree), keep, exclude) == first


@settings(max_examples=50, deadline=None)
@given(trees(), st.data())
def test_a_leaving_release_is_never_planned_and_never_kept(example, data):
    releases, current, keep, _exclude = example
    candidates = sorted(name for name in releases if name != current)
    if not candidates:
        return
    leaving = data.draw(st.sampled_from(candidates))
    with built(releases, current) as tree:
        snapshot = _releases.Snapshot(tree)
        states = effective_states(releases, current)
        plan = _releases.prune_plan(snapshot, keep, leaving=[leaving])
        removed = set(name for name, _reason in plan)
        assert leaving not in removed
        successful = sorted(name for name, state in states.items() if state == 'successful' and name != leaving)
        assert set(successful) - removed == expected_kept(successful, current, keep)


@settings(max_examples=50, deadline=None)
@given(st.lists(st.tuples(st.sampled_from(['failed', 'rolled_back']), names), max_size=8, unique_by=lambda e: e[1]),
       st.integers(min_value=0, max_value=10),
       st.lists(st.integers(min_value=10 ** 9, max_value=2 * 10 ** 9), min_size=8, max_size=8))
def test_archives_plan_keeps_the_newest_by_release_name_whatever_their_mtimes(archives, keep_archives, mtimes):
    root = tempfile.mkdtemp(prefix='capstan-prop-')
    try:
        tree = _releases.Tree(os.path.join(root, 'app'))
        os.makedirs(tree.deploy_to)
        files = []
        for (kind, name), mtime in zip(archives, mtimes):
            path = tree.archive_path(name, kind)
            open(path, 'w').close()
            os.utime(path, (mtime, mtime))
            files.append((name, os.path.basename(path)))
        gone = _releases.archives_plan(_releases.Snapshot(tree), keep_archives)
        by_name = [entry for _name, entry in sorted(files)]
        assert gone == by_name[:max(len(by_name) - keep_archives, 0)]
    finally:
        shutil.rmtree(root)
