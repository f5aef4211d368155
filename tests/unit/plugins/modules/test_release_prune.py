"""release_prune: the real main() on real trees in tmp_path."""

from __future__ import annotations

import os
import stat
import tarfile

import pytest

from ansible_collections.capstan.release.plugins.module_utils import _journal
from ansible_collections.capstan.release.plugins.module_utils import _releases
from ansible_collections.capstan.release.plugins.module_utils import _steps
from ansible_collections.capstan.release.plugins.modules import release_prune
from ansible_collections.capstan.release.tests.unit.helpers import deploy, listing, read, run_module, write

NAMES = ['20261121221401', '20261121221402', '20261121221403', '20261121221404', '20261121221405',
         '20261121221406', '20261121221407']
R1, R2, R3, R4, R5, R6, R7 = NAMES


def run(capfd, **args):
    return run_module(release_prune, capfd, **args)


def releases(deploy_to):
    return sorted(os.listdir(os.path.join(deploy_to, 'releases')))


def deploy_all(deploy_to, names, **finish_args):
    for name in names:
        deploy(deploy_to, name, **finish_args)


def mark(deploy_to, name, event):
    _journal.append_event(_releases.Tree(deploy_to).journal, event, name)


def current(deploy_to):
    return os.path.basename(os.readlink(os.path.join(deploy_to, 'current')))


# keep_releases, by name


def test_keeps_the_newest_by_name_even_when_mtimes_say_otherwise(capfd, deploy_to):
    deploy_all(deploy_to, NAMES[:5])
    for age, name in enumerate(NAMES[:5]):
        # the oldest name gets the newest mtime
        os.utime(os.path.join(deploy_to, 'releases', name), (2000000000 - age * 1000, 2000000000 - age * 1000))
    result = run(capfd, deploy_to=deploy_to, keep_releases=2)
    assert result['changed'] is True
    assert result['removed'] == [{'name': name, 'reason': 'old', 'archive': None} for name in (R1, R2, R3)]
    assert result['kept'] == [R4, R5]
    assert result['current'] == R5
    assert releases(deploy_to) == [R4, R5]


def test_keep_releases_defaults_to_five(capfd, deploy_to):
    deploy_all(deploy_to, NAMES)
    result = run(capfd, deploy_to=deploy_to)
    assert result['kept'] == NAMES[2:]


def test_nothing_to_prune_changes_nothing(capfd, deploy_to):
    deploy_all(deploy_to, NAMES[:3])
    result = run(capfd, deploy_to=deploy_to, keep_releases=3)
    assert result['changed'] is False
    assert result['removed'] == [] and result['archives_removed'] == []
    assert releases(deploy_to) == NAMES[:3]


def test_current_is_never_deleted_even_when_it_is_the_oldest_and_keep_is_one(capfd, deploy_to):
    deploy_all(deploy_to, [R1, R2, R3])
    _steps.swap_current(deploy_to, R1, rollback=True)
    result = run(capfd, deploy_to=deploy_to, keep_releases=1)
    assert [entry['name'] for entry in result['removed']] == [R2, R3]
    assert result['kept'] == [R1]
    assert releases(deploy_to) == [R1]
    assert current(deploy_to) == R1


def test_current_takes_the_place_of_the_oldest_kept(capfd, deploy_to):
    deploy_all(deploy_to, NAMES[:5])
    _steps.swap_current(deploy_to, R1)  # not a rollback: R5 still counts as a release that went live
    result = run(capfd, deploy_to=deploy_to, keep_releases=3)
    assert result['kept'] == [R1, R4, R5]


# what is never touched


def test_shared_content_reached_through_a_pruned_release_survives(capfd, deploy_to):
    write(os.path.join(deploy_to, 'shared', 'config', 'database.yml'), 'db: prod\n')
    write(os.path.join(deploy_to, 'shared', 'log', 'production.log'), 'line\n')
    deploy_all(deploy_to, [R1, R2, R3], linked_dirs=['log'], linked_files=['config/database.yml'])
    result = run(capfd, deploy_to=deploy_to, keep_releases=1)
    assert [entry['name'] for entry in result['removed']] == [R1, R2]
    assert read(os.path.join(deploy_to, 'shared', 'config', 'database.yml')) == 'db: prod\n'
    assert read(os.path.join(deploy_to, 'shared', 'log', 'production.log')) == 'line\n'


def test_nothing_outside_deploy_to_is_touched(capfd, tmp_path, deploy_to):
    outside = tmp_path / 'outside'
    write(str(outside / 'keep' / 'sentinel'), 'outside\n')
    deploy_all(deploy_to, [R1, R2])
    os.symlink(str(outside / 'keep'), os.path.join(deploy_to, 'releases', R1, 'ext-dir'))
    os.symlink(str(outside / 'keep' / 'sentinel'), os.path.join(deploy_to, 'releases', R1, 'ext-file'))
    before = listing(outside)
    result = run(capfd, deploy_to=deploy_to, keep_releases=1)
    assert [entry['name'] for entry in result['removed']] == [R1]
    assert listing(outside) == before


def test_foreign_entries_are_reported_left_alone_and_never_counted(capfd, tmp_path, deploy_to):
    deploy_all(deploy_to, [R1, R2, R3])
    rels = os.path.join(deploy_to, 'releases')
    outside = tmp_path / 'outside'
    write(str(outside / 'sentinel'), 'outside\n')
    write(os.path.join(rels, 'foo', 'file'), 'foreign\n')
    write(os.path.join(rels, '2026112122140', 'file'), 'thirteen digits\n')
    os.symlink(str(outside), os.path.join(rels, R5))
    write(os.path.join(rels, R6), 'a regular file\n')
    before = listing(tmp_path)
    result = run(capfd, deploy_to=deploy_to, keep_releases=3)
    assert result['changed'] is False
    assert result['foreign'] == sorted(['foo', '2026112122140', R5, R6])
    assert listing(tmp_path) == before
    result = run(capfd, deploy_to=deploy_to, keep_releases=2)
    assert [entry['name'] for entry in result['removed']] == [R1]
    assert result['kept'] == [R2, R3]
    after = listing(tmp_path)
    for path in (os.path.join(rels, 'foo', 'file'), os.path.join(rels, '2026112122140', 'file'),
                 os.path.join(rels, R5), os.path.join(rels, R6), str(outside / 'sentinel')):
        key = os.path.relpath(path, str(tmp_path))
        assert after[key] == before[key]


# leftovers of runs that did not complete


def test_leftovers_are_archived_removed_and_never_push_a_good_release_out(capfd, deploy_to):
    deploy_all(deploy_to, [R1, R2, R3])
    deploy(deploy_to, R4, live=False)
    mark(deploy_to, R4, 'failed')
    deploy(deploy_to, R5, live=False)
    mark(deploy_to, R5, 'failed')
    _steps.prepare_release(deploy_to, R6)
    deploy(deploy_to, R7, live=False)
    result = run(capfd, deploy_to=deploy_to, keep_releases=3)
    assert result['kept'] == [R1, R2, R3]
    assert result['removed'] == [
        {'name': R4, 'reason': 'failed', 'archive': os.path.join(deploy_to, 'failed-release-%s.tar.gz' % R4)},
        {'name': R5, 'reason': 'failed', 'archive': os.path.join(deploy_to, 'failed-release-%s.tar.gz' % R5)},
        {'name': R6, 'reason': 'unfinished', 'archive': os.path.join(deploy_to, 'failed-release-%s.tar.gz' % R6)},
        {'name': R7, 'reason': 'finished', 'archive': os.path.join(deploy_to, 'failed-release-%s.tar.gz' % R7)},
    ]
    for entry in result['removed']:
        assert os.path.isfile(entry['archive'])
        assert stat.S_IMODE(os.stat(entry['archive']).st_mode) == 0o600
    assert releases(deploy_to) == [R1, R2, R3]


def test_exclude_protects_the_release_being_built(capfd, deploy_to):
    deploy_all(deploy_to, [R1, R2])
    _steps.prepare_release(deploy_to, R3)
    result = run(capfd, deploy_to=deploy_to, keep_releases=1, exclude=[R3])
    assert [entry['name'] for entry in result['removed']] == [R1]
    assert releases(deploy_to) == [R2, R3]


def test_exclude_must_hold_release_names(capfd, deploy_to):
    deploy_all(deploy_to, [R1, R2])
    result = run(capfd, deploy_to=deploy_to, keep_releases=1, exclude=['../shared'])
    assert result['failed'] is True
    assert result['msg'].startswith('exclude must be a release name')
    assert releases(deploy_to) == [R1, R2]


# rolled_back


def test_rolled_back_is_archived_as_rolled_back_and_removed(capfd, deploy_to):
    deploy_all(deploy_to, [R1, R2, R3])
    write(os.path.join(deploy_to, 'releases', R3, 'app.py'), 'print(3)\n')
    _steps.swap_current(deploy_to, R2, rollback=True)
    result = run(capfd, deploy_to=deploy_to, rolled_back=R3)
    archive = os.path.join(deploy_to, 'rolled-back-release-%s.tar.gz' % R3)
    assert result['removed'] == [{'name': R3, 'reason': 'rolled_back', 'archive': archive}]
    assert releases(deploy_to) == [R1, R2]
    assert stat.S_IMODE(os.stat(archive).st_mode) == 0o600
    with tarfile.open(archive) as tar:
        assert tar.extractfile(R3 + '/app.py').read() == b'print(3)\n'


def test_the_rolled_back_release_takes_no_place_among_the_kept(capfd, deploy_to):
    deploy_all(deploy_to, [R1, R2, R3])
    _steps.swap_current(deploy_to, R2, rollback=True)
    result = run(capfd, deploy_to=deploy_to, keep_releases=2, rolled_back=R3)
    assert [entry['name'] for entry in result['removed']] == [R3]
    assert result['kept'] == [R1, R2]


def test_rolled_back_equal_to_current_is_refused(capfd, deploy_to):
    deploy_all(deploy_to, [R1, R2])
    before = listing(deploy_to)
    result = run(capfd, deploy_to=deploy_to, keep_releases=1, rolled_back=R2)
    assert result['failed'] is True
    assert 'rolled_back' in result['msg'] and R2 in result['msg']
    assert listing(deploy_to) == before


def test_rolled_back_already_gone_is_fine(capfd, deploy_to):
    deploy_all(deploy_to, [R1, R2])
    result = run(capfd, deploy_to=deploy_to, rolled_back=R3)
    assert result['changed'] is False


# input


@pytest.mark.parametrize('option, value', [('keep_releases', 0), ('keep_releases', -1), ('keep_archives', -1)])
def test_bad_counts_are_refused_naming_the_option(capfd, deploy_to, option, value):
    deploy_all(deploy_to, [R1, R2, R3])
    deploy(deploy_to, R4, live=False)
    before = listing(deploy_to)
    result = run(capfd, deploy_to=deploy_to, **{option: value})
    assert result['failed'] is True
    assert result['msg'].startswith(option + ' must be a whole number')
    assert listing(deploy_to) == before


def test_relative_deploy_to_is_refused(capfd):
    result = run(capfd, deploy_to='srv/app')
    assert result['failed'] is True
    assert 'deploy_to must be an absolute path' in result['msg']


def test_a_missing_tree_is_nothing_to_prune(capfd, tmp_path):
    result = run(capfd, deploy_to=str(tmp_path / 'nowhere'))
    assert result['changed'] is False
    assert result['kept'] == [] and result['current'] is None
    assert not os.path.lexists(str(tmp_path / 'nowhere'))


# archives


def test_archives_keep_their_own_retention_newest_by_release_name(capfd, deploy_to):
    deploy_all(deploy_to, [R5, R6])
    archives = ['failed-release-%s.tar.gz' % R1, 'rolled-back-release-%s.tar.gz' % R2,
                'failed-release-%s.tar.gz' % R3, 'rolled-back-release-%s.tar.gz' % R4]
    for age, name in enumerate(archives):
        path = os.path.join(deploy_to, name)
        write(path, 'x')
        os.utime(path, (2000000000 - age * 1000, 2000000000 - age * 1000))
    write(os.path.join(deploy_to, 'backup.tar.gz'), 'not ours')
    write(os.path.join(deploy_to, 'failed-release-2026.tar.gz'), 'not ours')
    result = run(capfd, deploy_to=deploy_to, keep_releases=5, keep_archives=2)
    assert result['archives_removed'] == archives[:2]
    assert result['kept'] == [R5, R6]
    left = sorted(entry for entry in os.listdir(deploy_to) if entry.endswith('.tar.gz'))
    assert left == sorted(archives[2:] + ['backup.tar.gz', 'failed-release-2026.tar.gz'])


def test_archives_written_by_this_prune_count_toward_keep_archives(capfd, deploy_to):
    write(os.path.join(deploy_to, 'failed-release-%s.tar.gz' % R1), 'x')
    deploy_all(deploy_to, [R2, R3])
    deploy(deploy_to, R4, live=False)
    result = run(capfd, deploy_to=deploy_to, keep_archives=1)
    assert result['removed'][0]['name'] == R4
    assert result['archives_removed'] == ['failed-release-%s.tar.gz' % R1]
    assert os.path.isfile(os.path.join(deploy_to, 'failed-release-%s.tar.gz' % R4))


# check mode, diff, trees made by Capistrano


def _busy_tree(deploy_to):
    write(os.path.join(deploy_to, 'failed-release-20261101000000.tar.gz'), 'x')
    write(os.path.join(deploy_to, 'shared', 'log', 'production.log'), 'line\n')
    deploy_all(deploy_to, [R1, R2, R3, R4], linked_dirs=['log'])
    _steps.swap_current(deploy_to, R3, rollback=True)
    _steps.prepare_release(deploy_to, R5)
    write(os.path.join(deploy_to, 'releases', 'foo', 'file'))


def test_check_mode_reports_and_changes_nothing(capfd, tmp_path, deploy_to):
    _busy_tree(deploy_to)
    before = listing(tmp_path)
    result = run(capfd, deploy_to=deploy_to, keep_releases=1, keep_archives=1, rolled_back=R4,
                 _ansible_check_mode=True)
    assert result['changed'] is True
    assert [entry['name'] for entry in result['removed']] == [R4, R1, R2, R5]
    # Archive retention keeps the newest one (R5's): R4's archive is never written, only the old one is deleted.
    assert [entry['archive'] for entry in result['removed']][0] is None
    assert result['archives_removed'] == ['failed-release-20261101000000.tar.gz']
    assert listing(tmp_path) == before
    real = run(capfd, deploy_to=deploy_to, keep_releases=1, keep_archives=1, rolled_back=R4)
    assert real['removed'] == result['removed']
    assert real['archives_removed'] == result['archives_removed']


def test_diff_only_when_asked(capfd, deploy_to):
    deploy_all(deploy_to, [R1, R2])
    result = run(capfd, deploy_to=deploy_to, keep_releases=1, _ansible_check_mode=True)
    assert 'diff' not in result
    result = run(capfd, deploy_to=deploy_to, keep_releases=1, _ansible_diff=True)
    assert result['diff'] == {'before': {'releases': [R1, R2], 'archives': []},
                              'after': {'releases': [R2], 'archives': []}}


def test_prunes_a_tree_made_by_capistrano(capfd, deploy_to):
    # Capistrano's layout: no journal directory, REVISION files, an absolute current link.
    for name in (R1, R2, R3, R4):
        write(os.path.join(deploy_to, 'releases', name, 'REVISION'), 'sha-%s\n' % name)
    write(os.path.join(deploy_to, 'revisions.log'),
          ''.join('Branch master (at sha-%s) deployed as release %s by deployer\n' % (n, n) for n in (R1, R2, R3)))
    os.symlink(os.path.join(deploy_to, 'releases', R3), os.path.join(deploy_to, 'current'))
    result = run(capfd, deploy_to=deploy_to, keep_releases=2)
    assert 'failed' not in result, result.get('msg')
    # R4 is newer than current and not in the log: a crashed deploy's leftover
    assert result['removed'] == [
        {'name': R1, 'reason': 'old', 'archive': None},
        {'name': R4, 'reason': 'unknown', 'archive': os.path.join(deploy_to, 'failed-release-%s.tar.gz' % R4)},
    ]
    assert releases(deploy_to) == [R2, R3]
