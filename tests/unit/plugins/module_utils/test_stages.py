"""_stages: the host's side of each stage of the deploy and rollback flows, called directly on real trees."""

from __future__ import annotations

import contextlib
import os
import pwd
import shutil
import subprocess
import tarfile
import tempfile

import pytest

from ansible_collections.capstan.release.plugins.module_utils import _journal
from ansible_collections.capstan.release.plugins.module_utils import _lock
from ansible_collections.capstan.release.plugins.module_utils import _releases
from ansible_collections.capstan.release.plugins.module_utils import _stages
from ansible_collections.capstan.release.plugins.module_utils import _steps
from ansible_collections.capstan.release.plugins.module_utils._content import manifests
from ansible_collections.capstan.release.plugins.module_utils._content import plans
from ansible_collections.capstan.release.plugins.module_utils._errors import CapstanError
from ansible_collections.capstan.release.tests.unit.helpers import deploy, fill, listing, read, release_path, tmpfs, write

R1, R2, R3, R4 = '20261121221401', '20261121221402', '20261121221403', '20261121221404'
RUN = {'owner': 'ctl01-4242-1-uuid', 'user': 'tester', 'host': 'ctl01', 'pid': 4242,
       'command': 'ansible-playbook deploy.yml', 'mode': 'deploy'}
OTHER = dict(RUN, owner='laptop-7-99-1-other', user='mallory', host='laptop-7', pid=99)
ROLLBACK = dict(RUN, owner='ctl01-4243-1-back', mode='rollback', pid=4243)
MIB = 1024 * 1024


def app(root, version='v1'):
    write(os.path.join(str(root), 'public', 'VERSION'), version + '\n')
    write(os.path.join(str(root), 'README'), 'readme\n')
    return str(root)


def tree(deploy_to):
    return _releases.Tree(deploy_to)


def holder(deploy_to):
    return _lock.read_holder(tree(deploy_to).lock)


def events(deploy_to, *kinds):
    return [(event['event'], event['release']) for event in _journal.read_events(tree(deploy_to).journal)
            if not kinds or event['event'] in kinds]


def states(deploy_to):
    return _releases.Snapshot(tree(deploy_to)).states


def current(deploy_to):
    return _releases.Snapshot(tree(deploy_to)).current


def start_copy(deploy_to, src, run=None, **args):
    run = RUN if run is None else run
    manifest = manifests.scan_source(src)
    return manifest, _stages.start_deploy(deploy_to, run, 'copy', revision=manifests.digest(manifest), manifest=manifest,
                                          **args)


def build_copy(deploy_to, bundles, src, name, run=None, **args):
    """start then build, as the flow runs them for copy: the bundle holds what the start found missing."""
    run = RUN if run is None else run
    manifest, started = start_copy(deploy_to, src, run)
    bundle = os.path.join(str(bundles), 'bundle-%s.tar.gz' % name)
    plans.write_bundle(src, manifest, started['missing'], bundle)
    args.setdefault('margin_mb', 0)
    built = _stages.build_release(deploy_to, run, name, 'copy', started['revision'], manifest=manifest, bundle=bundle,
                                  sent_bytes=started['sent_bytes'], **args)
    return started, built


def deploy_copy(deploy_to, bundles, src, name, run=None, keep=5, keep_archives=5):
    """A whole deploy of ``src`` as release ``name``: start, build, switch, finish."""
    run = RUN if run is None else run
    build_copy(deploy_to, bundles, src, name, run)
    _steps.swap_current(deploy_to, name, run=run['owner'])
    return _stages.finish_deploy(deploy_to, run, name, 'main', 'tester', keep, keep_archives)


# live_status


def test_live_status_live_unrecorded_other(deploy_to):
    deploy(deploy_to, R1, revision='rev1')
    deploy(deploy_to, R2, revision='rev2', succeed=False)
    snapshot = _releases.Snapshot(tree(deploy_to))
    assert _stages.live_status(snapshot, 'rev2') == 'unrecorded'
    assert _stages.live_status(snapshot, 'rev1') == 'other'
    assert _stages.live_status(snapshot, None) == 'other'
    _steps.succeed_release(deploy_to, R2, 'main', 'tester')
    assert _stages.live_status(_releases.Snapshot(tree(deploy_to)), 'rev2') == 'live'


# start_deploy


def test_start_on_a_missing_tree_takes_no_lock_and_names_every_content_missing(tmp_path, deploy_to):
    manifest, started = start_copy(deploy_to, app(tmp_path / 'app'))
    assert (started['status'], started['exists'], started['locked'], started['changed']) == ('other', False, False, False)
    assert (started['current'], started['newest'], started['views']) == (None, None, [])
    assert started['revision'] == manifests.digest(manifest)
    assert len(started['missing']) == 2 and started['sent'] == 2
    assert not os.path.exists(deploy_to)


def test_start_with_work_to_do_locks_the_tree_naming_the_run(tmp_path, deploy_to):
    deploy_copy(deploy_to, tmp_path, app(tmp_path / 'v1'), R1)
    _manifest, started = start_copy(deploy_to, app(tmp_path / 'v2', 'v2'))
    assert (started['status'], started['locked'], started['changed']) == ('other', True, True)
    assert (started['current'], started['newest']) == (R1, R1)
    assert started['views'] == [{'name': R1, 'state': 'successful', 'revision': started['views'][0]['revision']}] * 2
    assert started['linked'] == 1 and started['sent'] == 1  # README is in R1 already
    found = holder(deploy_to)
    assert (found['owner'], found['user'], found['host'], found['pid'], found['mode']) == (
        RUN['owner'], 'tester', 'ctl01', 4242, 'deploy')


def test_start_of_what_is_live_changes_nothing(tmp_path, deploy_to):
    src = app(tmp_path / 'v1')
    deploy_copy(deploy_to, tmp_path, src, R1)
    before = listing(deploy_to)
    _manifest, started = start_copy(deploy_to, src, dict(RUN, owner='next-run'))
    assert (started['status'], started['locked'], started['changed']) == ('live', False, False)
    assert 'missing' not in started
    assert listing(deploy_to) == before


def test_breaking_a_stale_lock_on_a_live_tree_clears_it_and_takes_none(tmp_path, deploy_to):
    src = app(tmp_path / 'v1')
    deploy_copy(deploy_to, tmp_path, src, R1)
    start_copy(deploy_to, app(tmp_path / 'v2', 'v2'), OTHER)  # a run that took the lock and is gone
    _manifest, started = start_copy(deploy_to, src, dict(RUN, owner='next-run', **{'break': True}))
    assert (started['status'], started['locked'], started['broken']['owner']) == ('live', False, OTHER['owner'])
    assert holder(deploy_to) == {}


def test_start_is_refused_while_another_run_holds_the_tree(tmp_path, deploy_to):
    src = app(tmp_path / 'v1')
    deploy_copy(deploy_to, tmp_path, src, R1)
    start_copy(deploy_to, app(tmp_path / 'v2', 'v2'), OTHER)
    before = listing(deploy_to)
    with pytest.raises(CapstanError) as error:
        start_copy(deploy_to, src)  # even what is live: a held tree is not read
    message = str(error.value)
    assert message.startswith('%s is locked by mallory on laptop-7 (pid 99) since ' % deploy_to)
    assert "running 'ansible-playbook deploy.yml'" in message and message.endswith(_lock.BREAK_HINT)
    assert error.value.details['holder']['owner'] == OTHER['owner']
    assert listing(deploy_to) == before


def test_start_breaking_a_stale_lock_takes_it_and_journals_the_holder(tmp_path, deploy_to):
    deploy_copy(deploy_to, tmp_path, app(tmp_path / 'v1'), R1)
    start_copy(deploy_to, app(tmp_path / 'v2', 'v2'), OTHER)
    _manifest, started = start_copy(deploy_to, app(tmp_path / 'v2', 'v2'), dict(RUN, **{'break': True}))
    assert started['locked'] and started['broken']['owner'] == OTHER['owner']
    assert holder(deploy_to)['owner'] == RUN['owner']
    assert events(deploy_to)[-1] == ('lock_broken', '')


def test_start_refuses_a_current_that_is_a_directory_unless_migrating(tmp_path, deploy_to):
    write(os.path.join(deploy_to, 'current', 'index.html'), 'old\n')
    src = app(tmp_path / 'v1')
    with pytest.raises(CapstanError) as error:
        start_copy(deploy_to, src)
    assert 'set deploy_migrate_current=true' in str(error.value)
    assert not os.path.exists(tree(deploy_to).lock)
    _manifest, started = start_copy(deploy_to, src, migrate_current=True)
    assert started['current_kind'] == 'directory' and started['locked']


def test_start_refuses_a_current_that_is_a_regular_file(tmp_path, deploy_to):
    write(os.path.join(deploy_to, 'current'), 'x')
    with pytest.raises(CapstanError) as error:
        start_copy(deploy_to, app(tmp_path / 'v1'), migrate_current=True)
    assert 'is a regular file, not a symlink' in str(error.value)


def test_start_refuses_a_tree_whose_newest_release_has_no_successor(tmp_path, deploy_to):
    deploy(deploy_to, '99991231235959')
    with pytest.raises(CapstanError) as error:
        start_copy(deploy_to, app(tmp_path / 'v1'))
    assert 'no release name after 99991231235959 fits in 14 digits' in str(error.value)
    assert not os.path.exists(tree(deploy_to).lock)


def test_start_in_check_mode_takes_no_lock(tmp_path, deploy_to):
    deploy_copy(deploy_to, tmp_path, app(tmp_path / 'v1'), R1)
    before = listing(deploy_to)
    _manifest, started = start_copy(deploy_to, app(tmp_path / 'v2', 'v2'), check=True)
    assert started['status'] == 'other'
    assert listing(deploy_to) == before


def test_start_of_an_archive_resolves_its_sha256(tmp_path, deploy_to):
    tarball = str(tmp_path / 'app.tgz')
    with tarfile.open(tarball, 'w:gz') as tar:
        tar.add(app(tmp_path / 'v1'), arcname='.')
    started = _stages.start_deploy(deploy_to, RUN, 'archive', src=tarball)
    assert started['revision'] == manifests.hash_file(tarball)[0]
    assert started['status'] == 'other' and 'missing' not in started


# build_release


def test_build_makes_a_finished_release_with_its_links_under_the_lock(tmp_path, deploy_to):
    write(os.path.join(deploy_to, 'shared', 'config', 'database.yml'), 'db\n')
    started, built = build_copy(deploy_to, tmp_path, app(tmp_path / 'v1'), R1, linked_dirs=['log'],
                                linked_files=['config/database.yml'])
    assert (built['created'], built['resumed'], built['release'], built['links']) == (True, False, R1, 2)
    assert built['revision'] == started['revision'] and built['need_bytes'] == started['sent_bytes']
    assert states(deploy_to)[R1] == 'finished'
    assert read(release_path(deploy_to, R1, 'public', 'VERSION')) == 'v1\n'
    assert read(release_path(deploy_to, R1, 'REVISION')) == started['revision'] + '\n'
    assert os.readlink(release_path(deploy_to, R1, 'config', 'database.yml')) == os.path.join(
        deploy_to, 'shared', 'config', 'database.yml')
    assert holder(deploy_to)['owner'] == RUN['owner']


def test_build_of_a_release_already_finished_with_the_revision_keeps_it(tmp_path, deploy_to):
    src = app(tmp_path / 'v1')
    started, _built = build_copy(deploy_to, tmp_path, src, R1)
    before = listing(release_path(deploy_to, R1))
    again = _stages.build_release(deploy_to, RUN, R1, 'copy', started['revision'], manifest=manifests.scan_source(src),
                                  margin_mb=0)
    assert (again['created'], again['resumed'], again['changed']) == (False, True, False)
    assert listing(release_path(deploy_to, R1)) == before


def test_build_refuses_too_little_free_space_before_making_anything(tmp_path, deploy_to):
    deploy_copy(deploy_to, tmp_path, app(tmp_path / 'v1'), R1)
    before = listing(deploy_to)
    with pytest.raises(CapstanError) as error:
        build_copy(deploy_to, tmp_path, app(tmp_path / 'v2', 'v2'), R2, margin_mb=2 ** 40)
    assert str(error.value).startswith('not enough free space in %s on this host' % deploy_to)
    assert 'deploy_free_space_margin_mb keeps %d MiB free' % 2 ** 40 in str(error.value)
    assert error.value.details['need_bytes'] == 3 and error.value.details['free_bytes'] > 0
    assert not os.path.exists(release_path(deploy_to, R2))
    assert sorted(set(listing(deploy_to)) - set(before)) == ['.capstan/lock']  # only the start's lock


def test_build_refuses_an_archive_bigger_than_the_disk(tmp_path, deploy_to):
    big = tmp_path / 'big'
    write(str(big / 'zeros'), '\0' * (3 * MIB))
    tarball = str(tmp_path / 'big.tgz')
    with tarfile.open(tarball, 'w:gz') as tar:
        tar.add(str(big), arcname='.')
    with tmpfs(os.path.dirname(deploy_to), '2m'):
        started = _stages.start_deploy(deploy_to, RUN, 'archive', src=tarball)
        with pytest.raises(CapstanError) as error:
            _stages.build_release(deploy_to, RUN, R1, 'archive', started['revision'], src=tarball, margin_mb=0)
        assert error.value.details['need_bytes'] == 3 * MIB
        assert not os.path.exists(tree(deploy_to).releases)


def test_build_refuses_a_revision_that_is_not_the_manifests_before_making_anything(tmp_path, deploy_to):
    src = app(tmp_path / 'v1')
    manifest = manifests.scan_source(src)
    with pytest.raises(CapstanError) as error:
        _stages.build_release(deploy_to, RUN, R1, 'copy', 'f' * 64, manifest=manifest, margin_mb=0)
    assert 'not the revision %s' % ('f' * 64) in str(error.value)
    assert not os.path.exists(deploy_to)


def test_check_free_space_counts_the_margin(deploy_to):
    free = _stages.check_free_space(tree(deploy_to), 0, 0)
    assert free > 0
    with pytest.raises(CapstanError):
        _stages.check_free_space(tree(deploy_to), free + MIB, 0)


def test_build_refuses_a_linked_file_shared_does_not_hold_before_making_anything(tmp_path, deploy_to):
    with pytest.raises(CapstanError) as error:
        build_copy(deploy_to, tmp_path, app(tmp_path / 'v1'), R1, linked_files=['config/master.key'])
    assert str(error.value).startswith('linked_files config/master.key missing from %s/shared' % deploy_to)
    assert not os.path.exists(deploy_to)


def test_build_refuses_overlapping_linked_paths(tmp_path, deploy_to):
    with pytest.raises(CapstanError) as error:
        build_copy(deploy_to, tmp_path, app(tmp_path / 'v1'), R1, linked_dirs=['public', 'public/uploads'])
    assert "linked_dirs overlap: 'public' and 'public/uploads'" in str(error.value)
    assert not os.path.exists(deploy_to)


def test_build_refuses_a_tree_another_run_holds(tmp_path, deploy_to):
    deploy_copy(deploy_to, tmp_path, app(tmp_path / 'v1'), R1)
    start_copy(deploy_to, app(tmp_path / 'v2', 'v2'), OTHER)
    with pytest.raises(CapstanError) as error:
        build_copy(deploy_to, tmp_path, app(tmp_path / 'v2', 'v2'), R2, run=dict(RUN, owner='third'))
    assert 'is locked by mallory' in str(error.value)


def test_build_in_check_mode_changes_nothing(tmp_path, deploy_to):
    deploy_copy(deploy_to, tmp_path, app(tmp_path / 'v1'), R1)
    src = app(tmp_path / 'v2', 'v2')
    manifest = manifests.scan_source(src)
    before = listing(deploy_to)
    built = _stages.build_release(deploy_to, RUN, R2, 'copy', manifests.digest(manifest), manifest=manifest, margin_mb=0,
                                  check=True)
    assert built['changed'] is True and built['release'] == R2
    assert listing(deploy_to) == before


# finish_deploy


def test_finish_records_the_release_prunes_and_unlocks(tmp_path, deploy_to):
    for index, name in enumerate((R1, R2, R3)):
        deploy_copy(deploy_to, tmp_path, app(tmp_path / name, 'v%d' % index), name, keep=2)
    build_copy(deploy_to, tmp_path, app(tmp_path / 'v4', 'v4'), R4)
    _steps.swap_current(deploy_to, R4, run=RUN['owner'])
    finished = _stages.finish_deploy(deploy_to, RUN, R4, 'main', 'tester', 2, 5)
    assert (finished['recorded'], finished['unlocked'], finished['changed']) == (True, True, True)
    assert finished['log_line'].startswith('Branch main (at ') and finished['log_line'].endswith(
        'deployed as release %s by tester' % R4)
    assert [entry['name'] for entry in finished['removed']] == [R2]
    assert states(deploy_to)[R4] == 'successful'
    assert read(tree(deploy_to).revisions_log).splitlines()[-1] == finished['log_line']
    assert holder(deploy_to) == {}
    assert 'warnings' not in finished


def test_finish_can_keep_the_lock_for_the_later_serial_batches(tmp_path, deploy_to):
    build_copy(deploy_to, tmp_path, app(tmp_path / 'v1'), R1)
    _steps.swap_current(deploy_to, R1, run=RUN['owner'])
    finished = _stages.finish_deploy(deploy_to, RUN, R1, 'main', 'tester', 5, 5, unlock=False)
    assert (finished['recorded'], finished['unlocked']) == (True, False)
    assert holder(deploy_to)['owner'] == RUN['owner']


def test_finish_twice_changes_nothing_the_second_time(tmp_path, deploy_to):
    deploy_copy(deploy_to, tmp_path, app(tmp_path / 'v1'), R1)
    before = listing(deploy_to)
    again = _stages.finish_deploy(deploy_to, RUN, R1, 'main', 'tester', 5, 5)
    assert again['changed'] is False and again['unlocked'] is False
    assert listing(deploy_to) == before


def test_finish_with_a_release_that_cannot_be_removed_is_a_warning_and_stays_live(tmp_path, deploy_to):
    deploy_copy(deploy_to, tmp_path, app(tmp_path / 'v1'), R1)
    build_copy(deploy_to, tmp_path, app(tmp_path / 'v2', 'v2'), R2)
    _steps.swap_current(deploy_to, R2, run=RUN['owner'])
    with tmpfs(release_path(deploy_to, R1, 'tmp', 'busy'), '1m'):
        finished = _stages.finish_deploy(deploy_to, RUN, R2, 'main', 'tester', 1, 5)
        assert finished['recorded'] and finished['unlocked'] and finished['removed'] == []
        assert len(finished['warnings']) == 1
        assert finished['warnings'][0].startswith('%s: release %s could not be removed from ' % (deploy_to, R1))
        assert (current(deploy_to), states(deploy_to)[R2], states(deploy_to)[R1]) == (R2, 'successful', 'removing')
        assert R1 not in _releases.Snapshot(tree(deploy_to)).successful()


# abort_deploy


def test_abort_before_publishing_archives_the_failed_release_and_leaves_current(tmp_path, deploy_to):
    deploy_copy(deploy_to, tmp_path, app(tmp_path / 'v1'), R1)
    build_copy(deploy_to, tmp_path, app(tmp_path / 'v2', 'v2'), R2)
    outcome = _stages.abort_deploy(deploy_to, RUN, R2, log_user='tester')
    assert (outcome['switched_back'], outcome['removed'], outcome['unlocked'], outcome['current']) == (None, True, True, R1)
    assert outcome['archive'] == os.path.join(deploy_to, 'failed-release-%s.tar.gz' % R2)
    assert os.path.isfile(outcome['archive']) and not os.path.exists(release_path(deploy_to, R2))
    assert current(deploy_to) == R1 and holder(deploy_to) == {}
    assert events(deploy_to, 'failed', 'removing', 'removed')[-3:] == [('failed', R2), ('removing', R2), ('removed', R2)]


def test_abort_after_publishing_switches_back_and_archives_the_failed_release(tmp_path, deploy_to):
    deploy_copy(deploy_to, tmp_path, app(tmp_path / 'v1'), R1)
    build_copy(deploy_to, tmp_path, app(tmp_path / 'v2', 'v2'), R2)
    _steps.swap_current(deploy_to, R2, run=RUN['owner'])  # then the health check fails
    outcome = _stages.abort_deploy(deploy_to, RUN, R2, log_user='tester')
    assert (outcome['switched_back'], outcome['current'], outcome['removed']) == (R1, R1, True)
    assert current(deploy_to) == R1
    assert read(tree(deploy_to).revisions_log).splitlines()[-1] == 'tester rolled back to release %s' % R1
    # docs/flows.md, Failure: "archives the new release to failed-release-<name>.tar.gz"
    assert outcome['archive'] == os.path.join(deploy_to, 'failed-release-%s.tar.gz' % R2)


def test_abort_after_publishing_without_auto_rollback_keeps_current(tmp_path, deploy_to):
    deploy_copy(deploy_to, tmp_path, app(tmp_path / 'v1'), R1)
    build_copy(deploy_to, tmp_path, app(tmp_path / 'v2', 'v2'), R2)
    _steps.swap_current(deploy_to, R2, run=RUN['owner'])
    outcome = _stages.abort_deploy(deploy_to, RUN, R2, auto_rollback=False)
    assert (outcome['switched_back'], outcome['removed'], outcome['current']) == (None, False, R2)
    assert outcome['notes'] == ['current still points to release %s (deploy_auto_rollback is false)' % R2]
    assert current(deploy_to) == R2 and os.path.isdir(release_path(deploy_to, R2))
    assert holder(deploy_to) == {}


def test_abort_of_the_first_release_after_publishing_has_nowhere_to_go_back(tmp_path, deploy_to):
    build_copy(deploy_to, tmp_path, app(tmp_path / 'v1'), R1)
    _steps.swap_current(deploy_to, R1, run=RUN['owner'])
    outcome = _stages.abort_deploy(deploy_to, RUN, R1)
    assert outcome['notes'] == ['current still points to release %s: there is no previous release to go back to' % R1]
    assert current(deploy_to) == R1


def test_abort_never_touches_a_release_another_run_made(tmp_path, deploy_to):
    deploy_copy(deploy_to, tmp_path, app(tmp_path / 'v1'), R1)
    build_copy(deploy_to, tmp_path, app(tmp_path / 'v2', 'v2'), R2, run=OTHER)
    _lock.release(tree(deploy_to).lock, OTHER['owner'])
    outcome = _stages.abort_deploy(deploy_to, RUN, R2)
    assert (outcome['changed'], outcome['removed']) == (False, False)
    assert states(deploy_to)[R2] == 'finished'


def test_abort_on_a_missing_tree_changes_nothing(deploy_to):
    assert _stages.abort_deploy(deploy_to, RUN, R1)['changed'] is False
    assert not os.path.exists(deploy_to)


def test_abort_in_check_mode_changes_nothing(tmp_path, deploy_to):
    deploy_copy(deploy_to, tmp_path, app(tmp_path / 'v1'), R1)
    build_copy(deploy_to, tmp_path, app(tmp_path / 'v2', 'v2'), R2)
    _steps.swap_current(deploy_to, R2, run=RUN['owner'])
    before = listing(deploy_to)
    outcome = _stages.abort_deploy(deploy_to, RUN, R2, check=True)
    assert outcome['switched_back'] == R1 and outcome['removed'] is True
    assert listing(deploy_to) == before


def test_abort_on_a_full_disk_removes_the_release_without_an_archive(tmp_path, deploy_to):
    with tmpfs(os.path.dirname(deploy_to), '4m'):
        deploy_copy(deploy_to, tmp_path, app(tmp_path / 'v1'), R1)
        big = app(tmp_path / 'v2', 'v2')
        with open(os.path.join(big, 'random.bin'), 'wb') as handle:
            handle.write(os.urandom(MIB))
        build_copy(deploy_to, tmp_path, big, R2)
        fill(os.path.dirname(deploy_to))
        outcome = _stages.abort_deploy(deploy_to, RUN, R2)
        assert (outcome['archive'], outcome['removed'], outcome['unlocked']) == (None, True, True)
        assert len(outcome['notes']) == 1 and outcome['notes'][0].startswith(
            'release %s removed without an archive: no space left for one' % R2)
        assert not os.path.exists(release_path(deploy_to, R2))
        assert [entry for entry in os.listdir(deploy_to) if 'release-' in entry] == []
        assert events(deploy_to)[-1] == ('removed', R2)


# start_rollback, finish_rollback, abort_rollback


def three_releases(tmp_path, deploy_to):
    for index, name in enumerate((R1, R2, R3)):
        deploy_copy(deploy_to, tmp_path, app(tmp_path / name, 'v%d' % index), name)


def test_start_rollback_locks_the_tree_naming_target_and_leaving(tmp_path, deploy_to):
    three_releases(tmp_path, deploy_to)
    started = _stages.start_rollback(deploy_to, ROLLBACK)
    assert (started['release'], started['leaving'], started['current'], started['noop']) == (R2, R3, R3, False)
    assert started['available'] == [R1, R2, R3] and started['completing'] is False
    found = holder(deploy_to)
    assert (found['owner'], found['mode'], found['target'], found['leaving']) == (ROLLBACK['owner'], 'rollback', R2, R3)


def test_start_rollback_to_a_named_release(tmp_path, deploy_to):
    three_releases(tmp_path, deploy_to)
    started = _stages.start_rollback(deploy_to, ROLLBACK, R1)
    assert (started['release'], started['leaving']) == (R1, R3)


def test_start_rollback_of_a_tree_without_releases_is_refused_before_anything_is_made(deploy_to):
    with pytest.raises(CapstanError) as error:
        _stages.start_rollback(deploy_to, ROLLBACK)
    assert str(error.value) == ('cannot roll back %s on this host: it holds no releases (%s/releases does not exist)'
                                % (deploy_to, deploy_to))
    assert not os.path.exists(deploy_to)


def test_start_rollback_with_nothing_earlier_is_refused_and_takes_no_lock(tmp_path, deploy_to):
    deploy_copy(deploy_to, tmp_path, app(tmp_path / 'v1'), R1)
    with pytest.raises(CapstanError) as error:
        _stages.start_rollback(deploy_to, ROLLBACK)
    assert str(error.value).startswith('no earlier release to roll back to in %s' % deploy_to)
    assert holder(deploy_to) == {}


def test_breaking_the_lock_of_a_rollback_that_stopped_after_the_switch_completes_it(tmp_path, deploy_to):
    three_releases(tmp_path, deploy_to)
    _stages.start_rollback(deploy_to, ROLLBACK)
    _steps.swap_current(deploy_to, R2, rollback=True, run=ROLLBACK['owner'])  # then the controller died
    again = dict(ROLLBACK, owner='ctl01-5000-1-again', **{'break': True})
    started = _stages.start_rollback(deploy_to, again)
    assert (started['completing'], started['release'], started['leaving'], started['noop']) == (True, R2, R3, False)
    assert started['broken']['owner'] == ROLLBACK['owner']
    assert current(deploy_to) == R2  # never one step further back


def test_naming_the_release_an_interrupted_rollback_left_undoes_that_rollback(tmp_path, deploy_to):
    # What a failed rollback tells a host it could not reach: go back to the release the fleet is on.
    three_releases(tmp_path, deploy_to)
    _stages.start_rollback(deploy_to, ROLLBACK)
    _steps.swap_current(deploy_to, R2, rollback=True, run=ROLLBACK['owner'])  # R3 is now marked rolled back
    assert _releases.Snapshot(tree(deploy_to)).states[R3] == 'rolled_back'
    again = dict(ROLLBACK, owner='ctl01-5000-1-again', **{'break': True})
    started = _stages.start_rollback(deploy_to, again, R3)
    assert (started['completing'], started['release'], started['leaving'], started['noop']) == (False, R3, None, False)
    assert _releases.Snapshot(tree(deploy_to)).states[R3] == 'successful'


def test_a_rolled_back_release_stays_refused_without_an_interrupted_rollback_that_left_it(tmp_path, deploy_to):
    three_releases(tmp_path, deploy_to)
    _stages.start_rollback(deploy_to, ROLLBACK)
    _steps.swap_current(deploy_to, R2, rollback=True, run=ROLLBACK['owner'])
    _stages.unlock(deploy_to, ROLLBACK)  # the rollback ended (its release left not yet archived): no lock to break
    with pytest.raises(CapstanError) as error:
        _stages.start_rollback(deploy_to, dict(ROLLBACK, owner='again', **{'break': True}), R3)
    assert 'is rolled_back, not a release that completed' in str(error.value)
    assert current(deploy_to) == R2


def test_breaking_the_lock_of_a_rollback_that_stopped_before_the_switch_completes_it(tmp_path, deploy_to):
    three_releases(tmp_path, deploy_to)
    _stages.start_rollback(deploy_to, ROLLBACK, R1)
    started = _stages.start_rollback(deploy_to, dict(ROLLBACK, owner='again', **{'break': True}))
    assert (started['completing'], started['release'], started['leaving']) == (True, R1, R3)


def test_finish_rollback_archives_the_release_left_and_unlocks(tmp_path, deploy_to):
    three_releases(tmp_path, deploy_to)
    _stages.start_rollback(deploy_to, ROLLBACK)
    _steps.swap_current(deploy_to, R2, rollback=True, run=ROLLBACK['owner'])
    finished = _stages.finish_rollback(deploy_to, ROLLBACK, R3, 5, 5)
    assert finished['removed'] == [{'name': R3, 'reason': 'rolled_back',
                                    'archive': os.path.join(deploy_to, 'rolled-back-release-%s.tar.gz' % R3)}]
    assert finished['unlocked'] is True and holder(deploy_to) == {}
    assert os.path.isfile(os.path.join(deploy_to, 'rolled-back-release-%s.tar.gz' % R3))
    assert sorted(os.listdir(tree(deploy_to).releases)) == [R1, R2]


def test_finish_rollback_can_keep_the_lock_for_late_hooks(tmp_path, deploy_to):
    three_releases(tmp_path, deploy_to)
    _stages.start_rollback(deploy_to, ROLLBACK)
    _steps.swap_current(deploy_to, R2, rollback=True, run=ROLLBACK['owner'])
    assert _stages.finish_rollback(deploy_to, ROLLBACK, R3, 5, 5, unlock=False)['unlocked'] is False
    assert holder(deploy_to)['owner'] == ROLLBACK['owner']
    assert _stages.unlock(deploy_to, ROLLBACK) == {'changed': False, 'unlocked': True}
    assert holder(deploy_to) == {}


def test_completing_a_rollback_whose_removal_stopped_half_way_keeps_the_full_archive(tmp_path, deploy_to):
    three_releases(tmp_path, deploy_to)
    _stages.start_rollback(deploy_to, ROLLBACK)
    _steps.swap_current(deploy_to, R2, rollback=True, run=ROLLBACK['owner'])
    archive = os.path.join(deploy_to, 'rolled-back-release-%s.tar.gz' % R3)
    # The first finish archived R3, journaled 'removing', and died half-way through the delete.
    from ansible_collections.capstan.release.plugins.module_utils import _fsops
    _fsops.archive_dir(release_path(deploy_to, R3), archive, R3)
    _journal.append_event(tree(deploy_to).journal, 'removing', R3, run=ROLLBACK['owner'])
    os.unlink(release_path(deploy_to, R3, 'public', 'VERSION'))
    again = dict(ROLLBACK, owner='again', **{'break': True})
    started = _stages.start_rollback(deploy_to, again)
    assert (started['release'], started['leaving']) == (R2, R3)
    _stages.finish_rollback(deploy_to, again, started['leaving'], 5, 5)
    assert not os.path.exists(release_path(deploy_to, R3))
    with tarfile.open(archive) as tar:
        assert '%s/public/VERSION' % R3 in tar.getnames()


def test_abort_rollback_puts_current_back_and_the_release_left_counts_again(tmp_path, deploy_to):
    three_releases(tmp_path, deploy_to)
    _stages.start_rollback(deploy_to, ROLLBACK)
    _steps.swap_current(deploy_to, R2, rollback=True, run=ROLLBACK['owner'])
    assert states(deploy_to)[R3] == 'rolled_back'
    outcome = _stages.abort_rollback(deploy_to, ROLLBACK, log_user='tester')
    assert (outcome['switched_back'], outcome['current'], outcome['unlocked']) == (R3, R3, True)
    assert current(deploy_to) == R3 and states(deploy_to)[R3] == 'successful'
    assert states(deploy_to)[R2] == 'successful'
    assert holder(deploy_to) == {}


def test_abort_rollback_before_the_switch_only_unlocks(tmp_path, deploy_to):
    three_releases(tmp_path, deploy_to)
    _stages.start_rollback(deploy_to, ROLLBACK)
    before = read(tree(deploy_to).revisions_log)
    outcome = _stages.abort_rollback(deploy_to, ROLLBACK)
    assert (outcome['switched_back'], outcome['changed'], outcome['unlocked'], outcome['current']) == (None, False, True, R3)
    assert read(tree(deploy_to).revisions_log) == before


# unlock


def test_unlock_releases_only_this_runs_lock(tmp_path, deploy_to):
    deploy_copy(deploy_to, tmp_path, app(tmp_path / 'v1'), R1)
    assert _stages.unlock(deploy_to, RUN) == {'changed': False, 'unlocked': False}
    start_copy(deploy_to, app(tmp_path / 'v2', 'v2'), OTHER)
    assert _stages.unlock(deploy_to, RUN) == {'changed': False, 'unlocked': False}
    assert holder(deploy_to)['owner'] == OTHER['owner']
    assert _stages.unlock(deploy_to, OTHER) == {'changed': False, 'unlocked': True}
    assert holder(deploy_to) == {}


def test_unlock_in_check_mode_keeps_the_lock(tmp_path, deploy_to):
    deploy_copy(deploy_to, tmp_path, app(tmp_path / 'v1'), R1)
    start_copy(deploy_to, app(tmp_path / 'v2', 'v2'))
    assert _stages.unlock(deploy_to, RUN, check=True)['unlocked'] is True
    assert holder(deploy_to)['owner'] == RUN['owner']


def test_abort_leaves_the_lock_of_another_run_that_broke_ours(tmp_path, deploy_to):
    deploy_copy(deploy_to, tmp_path, app(tmp_path / 'v1'), R1)
    build_copy(deploy_to, tmp_path, app(tmp_path / 'v2', 'v2'), R2)
    start_copy(deploy_to, app(tmp_path / 'v3', 'v3'), dict(OTHER, **{'break': True}))
    outcome = _stages.abort_deploy(deploy_to, RUN, R2)
    assert outcome['unlocked'] is False and holder(deploy_to)['owner'] == OTHER['owner']


def test_abort_changes_nothing_once_another_run_broke_the_lock(tmp_path, deploy_to):
    # One deploy per deploy_to at a time: the run that broke the lock owns the tree now.
    deploy_copy(deploy_to, tmp_path, app(tmp_path / 'v1'), R1)
    build_copy(deploy_to, tmp_path, app(tmp_path / 'v2', 'v2'), R2)
    _steps.swap_current(deploy_to, R2, run=RUN['owner'])
    start_copy(deploy_to, app(tmp_path / 'v3', 'v3'), dict(OTHER, **{'break': True}))
    before = listing(deploy_to)
    outcome = _stages.abort_deploy(deploy_to, RUN, R2)
    assert outcome['changed'] is False
    assert listing(deploy_to) == before


# a user that cannot write the tree (least privilege: the deploy user owns deploy_to, no become)


@contextlib.contextmanager
def as_nobody():
    """Run the block with the effective user nobody, as a deploy user that owns none of root's directories."""
    if os.geteuid() != 0:
        pytest.skip('acting as another user needs root')
    os.seteuid(pwd.getpwnam('nobody').pw_uid)
    try:
        yield
    finally:
        os.seteuid(0)


@pytest.fixture
def srv():
    """A root-owned 0755 directory nobody can reach (tmp_path's parents are root's only)."""
    path = tempfile.mkdtemp(prefix='capstan-unit-srv-', dir='/var/tmp')
    os.chmod(path, 0o755)
    yield path
    shutil.rmtree(path)


def start_as_nobody(deploy_to, src):
    """start_deploy of ``src`` (scanned as root: nobody cannot read tmp_path) as nobody."""
    manifest = manifests.scan_source(src)
    with as_nobody():
        return _stages.start_deploy(deploy_to, RUN, 'copy', revision=manifests.digest(manifest), manifest=manifest)


def test_start_refuses_a_deploy_to_its_user_cannot_write_before_anything_is_made(tmp_path, srv):
    deploy_to = os.path.join(srv, 'app')
    os.mkdir(deploy_to, 0o755)
    with pytest.raises(CapstanError) as error:
        start_as_nobody(deploy_to, app(tmp_path / 'v1'))
    assert str(error.value) == ('deploy_to %s is owned by root (mode 0755) and nobody cannot write it: the user that '
                                'deploys must own deploy_to and everything under it (as root: chown -R nobody %s)'
                                % (deploy_to, deploy_to))
    assert os.listdir(deploy_to) == []


def test_start_refuses_a_missing_deploy_to_its_user_cannot_make(tmp_path, srv):
    deploy_to = os.path.join(srv, 'apps', 'app')
    with pytest.raises(CapstanError) as error:
        start_as_nobody(deploy_to, app(tmp_path / 'v1'))
    assert str(error.value) == ('deploy_to %s does not exist and nobody cannot make it: %s is owned by root (mode 0755); '
                                'make deploy_to for the user that deploys (as root: install -d -o nobody %s)'
                                % (deploy_to, srv, deploy_to))
    assert os.listdir(srv) == []


def test_start_refuses_a_deploy_to_its_user_cannot_reach(tmp_path, srv):
    private = os.path.join(srv, 'private')
    os.mkdir(private, 0o700)
    deploy_to = os.path.join(private, 'app')
    os.mkdir(deploy_to)
    with pytest.raises(CapstanError) as error:
        start_as_nobody(deploy_to, app(tmp_path / 'v1'))
    assert str(error.value) == ('nobody cannot reach deploy_to %s: %s is owned by root (mode 0700); the user that deploys '
                                'must be able to reach deploy_to and own it' % (deploy_to, private))
    assert os.listdir(deploy_to) == []


def test_start_refuses_a_tree_given_to_its_user_without_what_is_inside(tmp_path, srv):
    # A tree root deployed to, given to the deploy user without what is inside it.
    deploy_to = os.path.join(srv, 'app')
    deploy_copy(deploy_to, tmp_path, app(tmp_path / 'v1'), R1)
    os.chown(deploy_to, pwd.getpwnam('nobody').pw_uid, -1)
    before = listing(deploy_to)
    with pytest.raises(CapstanError) as error:
        start_as_nobody(deploy_to, app(tmp_path / 'v2', 'v2'))
    assert str(error.value).startswith('%s/releases is owned by root (mode 0755) and nobody cannot write it: ' % deploy_to)
    assert listing(deploy_to) == before


def test_the_user_that_owns_the_tree_starts_and_locks_it(tmp_path, srv):
    deploy_to = os.path.join(srv, 'app')
    deploy_copy(deploy_to, tmp_path, app(tmp_path / 'v1'), R1)
    nobody = pwd.getpwnam('nobody')
    subprocess.check_call(['chown', '-R', '%d:%d' % (nobody.pw_uid, nobody.pw_gid), deploy_to])
    started = start_as_nobody(deploy_to, app(tmp_path / 'v2', 'v2'))
    assert started['locked'] is True and os.stat(tree(deploy_to).lock).st_uid == nobody.pw_uid


@pytest.mark.parametrize('start', [_stages.start_rollback, _stages.start_drill], ids=['rollback', 'drill'])
def test_start_of_a_rollback_or_drill_refuses_a_tree_its_user_cannot_write_and_takes_no_lock(tmp_path, srv, start):
    deploy_to = os.path.join(srv, 'app')
    three_releases(tmp_path, deploy_to)
    before = listing(deploy_to)
    with as_nobody():
        with pytest.raises(CapstanError) as error:
            start(deploy_to, ROLLBACK)
    assert str(error.value).startswith('deploy_to %s is owned by root (mode 0755) and nobody cannot write it: ' % deploy_to)
    assert listing(deploy_to) == before
