"""release_step: the real main() of each stage on real trees in tmp_path, read back from its JSON."""

from __future__ import annotations

import base64
import json
import os
import subprocess

import pytest

from ansible.module_utils.testing import patch_module_args

from ansible_collections.capstan.release.plugins.module_utils import _lock
from ansible_collections.capstan.release.plugins.module_utils import _releases
from ansible_collections.capstan.release.plugins.module_utils import _steps
from ansible_collections.capstan.release.plugins.module_utils._content import manifests
from ansible_collections.capstan.release.plugins.module_utils._content import plans
from ansible_collections.capstan.release.plugins.modules import release_step
from ansible_collections.capstan.release.tests.unit.helpers import listing, read, release_path, run_module, write

R1, R2, R3 = '20261121221401', '20261121221402', '20261121221403'
RUN = {'owner': 'ctl01-4242-1-uuid', 'user': 'tester', 'host': 'ctl01', 'pid': 4242,
       'command': 'ansible-playbook deploy.yml', 'mode': 'deploy'}
OTHER = dict(RUN, owner='laptop-7-99-1-other', user='mallory', host='laptop-7', pid=99)
ROLLBACK = dict(RUN, owner='ctl01-4243-1-back', mode='rollback')


def step(capfd, deploy_to, stage, run=None, **args):
    run = RUN if run is None else run
    return run_module(release_step, capfd, deploy_to=deploy_to, stage=stage, run=run, **args)


def app(root, version='v1'):
    write(os.path.join(str(root), 'public', 'VERSION'), version + '\n')
    write(os.path.join(str(root), 'README'), 'readme\n')
    return str(root)


def holder(deploy_to):
    return _lock.read_holder(_releases.Tree(deploy_to).lock)


def current(deploy_to):
    return _releases.Snapshot(_releases.Tree(deploy_to)).current


def start_and_build(capfd, tmp_path, deploy_to, src, name, run=None, inline=False, **args):
    """start then build for copy, as the action plugin runs them: the bundle holds only what start found missing."""
    run = RUN if run is None else run
    manifest = manifests.scan_source(src)
    dumped, revision = manifests.dump_manifest(manifest), manifests.digest(manifest)
    started = step(capfd, deploy_to, 'start', run, manifest=dumped, revision=revision)
    assert not started.get('failed'), started
    bundle = str(tmp_path / ('bundle-%s.tar.gz' % name))
    plans.write_bundle(src, manifest, started['missing'], bundle)
    if inline:
        with open(bundle, 'rb') as handle:
            args['bundle_data'] = base64.b64encode(handle.read()).decode('ascii')
    else:
        args['bundle'] = bundle
    built = step(capfd, deploy_to, 'build', run, release=name, revision=revision, manifest=dumped,
                 sent_bytes=started['sent_bytes'], margin_mb=0, **args)
    return started, built


def deploy_copy(capfd, tmp_path, deploy_to, src, name, run=None, **finish):
    run = RUN if run is None else run
    started, built = start_and_build(capfd, tmp_path, deploy_to, src, name, run)
    assert not built.get('failed'), built
    switched = step(capfd, deploy_to, 'switch', run, release=name)
    assert (switched['changed'], switched['release']) == (True, name), switched
    finished = step(capfd, deploy_to, 'finish', run, release=name, log_user='tester', **finish)
    assert not finished.get('failed'), finished
    return started, built, finished


# deploy stages


def test_a_copy_deploy_stage_by_stage(capfd, tmp_path, deploy_to):
    started, built, finished = deploy_copy(capfd, tmp_path, deploy_to, app(tmp_path / 'v1'), R1)
    assert (started['status'], started['exists'], started['locked'], len(started['missing'])) == ('other', False, False, 2)
    assert (built['changed'], built['created'], built['release']) == (True, True, R1)
    assert built['release_path'] == release_path(deploy_to, R1)
    assert (finished['recorded'], finished['unlocked']) == (True, True)
    assert read(release_path(deploy_to, R1, 'public', 'VERSION')) == 'v1\n'
    assert holder(deploy_to) == {}


def test_the_bundle_can_travel_inline(capfd, tmp_path, deploy_to):
    _started, built = start_and_build(capfd, tmp_path, deploy_to, app(tmp_path / 'v1'), R1, inline=True)
    assert built['changed'] and built['content']['files'] == 2
    assert read(release_path(deploy_to, R1, 'README')) == 'readme\n'


def test_start_of_what_is_live_is_no_change(capfd, tmp_path, deploy_to):
    src = app(tmp_path / 'v1')
    deploy_copy(capfd, tmp_path, deploy_to, src, R1)
    manifest = manifests.scan_source(src)
    result = step(capfd, deploy_to, 'start', dict(RUN, owner='next'), manifest=manifests.dump_manifest(manifest),
                  revision=manifests.digest(manifest))
    assert (result['changed'], result['status'], result['current'], result['newest']) == (False, 'live', R1, R1)
    assert holder(deploy_to) == {}


def test_the_diff_is_returned_only_in_diff_mode(capfd, tmp_path, deploy_to):
    deploy_copy(capfd, tmp_path, deploy_to, app(tmp_path / 'v1'), R1)
    manifest = manifests.scan_source(app(tmp_path / 'v2', 'v2'))
    args = dict(manifest=manifests.dump_manifest(manifest), revision=manifests.digest(manifest))
    assert 'diff' not in step(capfd, deploy_to, 'start', **args)
    step(capfd, deploy_to, 'unlock')
    assert step(capfd, deploy_to, 'start', _ansible_diff=True, **args)['diff'] == {
        'before': {'lock': 'free'}, 'after': {'lock': 'this run'}}


def test_check_mode_build_changes_nothing(capfd, tmp_path, deploy_to):
    deploy_copy(capfd, tmp_path, deploy_to, app(tmp_path / 'v1'), R1)
    manifest = manifests.scan_source(app(tmp_path / 'v2', 'v2'))
    before = listing(deploy_to)
    result = step(capfd, deploy_to, 'build', release=R2, revision=manifests.digest(manifest),
                  manifest=manifests.dump_manifest(manifest), margin_mb=0, _ansible_check_mode=True)
    assert (result['changed'], result['release']) == (True, R2)
    assert listing(deploy_to) == before


def test_abort_undoes_the_build(capfd, tmp_path, deploy_to):
    deploy_copy(capfd, tmp_path, deploy_to, app(tmp_path / 'v1'), R1)
    start_and_build(capfd, tmp_path, deploy_to, app(tmp_path / 'v2', 'v2'), R2)
    result = step(capfd, deploy_to, 'abort', release=R2, log_user='tester')
    assert (result['changed'], result['removed'], result['unlocked'], result['switched_back']) == (True, True, True, None)
    assert result['archive'] == os.path.join(deploy_to, 'failed-release-%s.tar.gz' % R2)
    assert sorted(os.listdir(os.path.join(deploy_to, 'releases'))) == [R1] and current(deploy_to) == R1


def test_finish_keeps_releases_by_keep_releases(capfd, tmp_path, deploy_to):
    for index, name in enumerate((R1, R2, R3)):
        _started, _built, finished = deploy_copy(capfd, tmp_path, deploy_to, app(tmp_path / name, 'v%d' % index), name,
                                                 keep_releases=2)
    assert [entry['name'] for entry in finished['removed']] == [R1]
    assert sorted(os.listdir(os.path.join(deploy_to, 'releases'))) == [R2, R3]


# refusals


def test_switch_to_a_release_that_does_not_exist_is_refused_and_keeps_current(capfd, tmp_path, deploy_to):
    deploy_copy(capfd, tmp_path, deploy_to, app(tmp_path / 'v1'), R1)
    result = step(capfd, deploy_to, 'switch', release='20261121221409')
    assert result['failed'] and result['msg'].startswith('release 20261121221409 does not exist'), result
    assert current(deploy_to) == R1


def test_check_mode_switch_changes_nothing(capfd, tmp_path, deploy_to):
    deploy_copy(capfd, tmp_path, deploy_to, app(tmp_path / 'v1'), R1)
    start_and_build(capfd, tmp_path, deploy_to, app(tmp_path / 'v2', 'v2'), R2)
    result = step(capfd, deploy_to, 'switch', release=R2, _ansible_check_mode=True)
    assert (result['changed'], result['previous_release']) == (True, R1)
    assert current(deploy_to) == R1


def test_a_run_without_an_owner_is_refused(capfd, deploy_to):
    result = step(capfd, deploy_to, 'unlock', run={'user': 'tester'})
    assert result['failed'] and result['msg'] == 'run must name the run: a dict with at least an owner token'


def test_a_tree_held_by_another_run_is_refused_with_its_holder(capfd, tmp_path, deploy_to):
    deploy_copy(capfd, tmp_path, deploy_to, app(tmp_path / 'v1'), R1)
    manifest = manifests.scan_source(app(tmp_path / 'v2', 'v2'))
    args = dict(manifest=manifests.dump_manifest(manifest), revision=manifests.digest(manifest))
    assert step(capfd, deploy_to, 'start', OTHER, **args)['locked']
    result = step(capfd, deploy_to, 'start', **args)
    assert result['failed'] and result['msg'].startswith('%s is locked by mallory on laptop-7 (pid 99)' % deploy_to)
    assert result['msg'].endswith('re-run the same playbook with -e deploy_break_lock=true')
    assert result['holder']['owner'] == OTHER['owner']


def test_too_little_free_space_is_refused_with_the_figures(capfd, tmp_path, deploy_to):
    manifest = manifests.scan_source(app(tmp_path / 'v1'))
    result = step(capfd, deploy_to, 'build', release=R1, revision=manifests.digest(manifest),
                  manifest=manifests.dump_manifest(manifest), sent_bytes=10, margin_mb=2 ** 40)
    assert result['failed'] and result['msg'].startswith('not enough free space in %s' % deploy_to)
    assert result['need_bytes'] == 10 and result['free_bytes'] > 0
    assert not os.path.exists(release_path(deploy_to, R1))


def test_a_bad_release_name_is_refused(capfd, deploy_to):
    result = step(capfd, deploy_to, 'build', release='../../etc', revision='x', manifest='[]')
    assert result['failed'] and result['msg'].startswith('release must be a release name')
    assert not os.path.exists(deploy_to)


def test_bundle_data_that_is_no_base64_is_one_sentence_not_a_traceback(capfd, tmp_path, deploy_to):
    manifest = manifests.scan_source(app(tmp_path / 'v1'))
    result = step(capfd, deploy_to, 'build', release=R1, revision=manifests.digest(manifest),
                  manifest=manifests.dump_manifest(manifest), bundle_data='not base64!', margin_mb=0)
    assert result['failed'] and 'bundle_data' in result['msg']
    assert not os.path.exists(release_path(deploy_to, R1))


def test_bundle_and_bundle_data_are_exclusive(capfd, deploy_to):
    result = step(capfd, deploy_to, 'build', release=R1, bundle='/tmp/x.tgz', bundle_data='eA==')
    assert result['failed'] and 'mutually exclusive' in result['msg']


@pytest.mark.skipif(subprocess.call(['git', '--version'], stdout=subprocess.DEVNULL) != 0, reason='needs git')
def test_a_repository_url_with_credentials_never_appears_in_the_output(capfd, deploy_to):
    url = 'https://deploy:s3cr3t-t0ken@127.0.0.1:9/app.git'
    with pytest.raises(SystemExit), patch_module_args({'deploy_to': deploy_to, 'stage': 'start', 'run': RUN,
                                                       'strategy': 'git', 'repo_url': url}):
        release_step.main()
    out = capfd.readouterr()
    result = json.loads(out.out)
    assert result['failed']
    assert 's3cr3t-t0ken' not in out.out + out.err


# rollback stages


def three(capfd, tmp_path, deploy_to):
    for index, name in enumerate((R1, R2, R3)):
        deploy_copy(capfd, tmp_path, deploy_to, app(tmp_path / name, 'v%d' % index), name)


def test_a_rollback_stage_by_stage(capfd, tmp_path, deploy_to):
    three(capfd, tmp_path, deploy_to)
    started = step(capfd, deploy_to, 'rollback_start', ROLLBACK)
    assert (started['release'], started['leaving'], started['noop'], started['current']) == (R2, R3, False, R3)
    switched = step(capfd, deploy_to, 'switch', ROLLBACK, release=R2, rollback=True, log_user='tester')
    assert (switched['changed'], switched['previous_release']) == (True, R3)
    assert read(os.path.join(deploy_to, 'revisions.log')).splitlines()[-1] == 'tester rolled back to release %s' % R2
    finished = step(capfd, deploy_to, 'rollback_finish', ROLLBACK, leaving=R3)
    assert finished['unlocked'] and [entry['name'] for entry in finished['removed']] == [R3]
    assert os.path.isfile(os.path.join(deploy_to, 'rolled-back-release-%s.tar.gz' % R3))
    assert current(deploy_to) == R2 and holder(deploy_to) == {}


def test_rollback_start_to_a_named_release(capfd, tmp_path, deploy_to):
    three(capfd, tmp_path, deploy_to)
    assert step(capfd, deploy_to, 'rollback_start', ROLLBACK, release=R1)['release'] == R1


def test_rollback_start_to_a_missing_release_lists_what_is_available(capfd, tmp_path, deploy_to):
    three(capfd, tmp_path, deploy_to)
    result = step(capfd, deploy_to, 'rollback_start', ROLLBACK, release='20200101000000')
    assert result['failed'] and result['msg'].endswith('releases that completed: %s, %s, %s' % (R1, R2, R3))
    assert holder(deploy_to) == {}


def test_rollback_abort_puts_current_back(capfd, tmp_path, deploy_to):
    three(capfd, tmp_path, deploy_to)
    step(capfd, deploy_to, 'rollback_start', ROLLBACK)
    _steps.swap_current(deploy_to, R2, rollback=True, run=ROLLBACK['owner'])
    result = step(capfd, deploy_to, 'rollback_abort', ROLLBACK, log_user='tester')
    assert (result['switched_back'], result['unlocked']) == (R3, True)
    assert current(deploy_to) == R3


def test_rollback_finish_can_leave_the_lock_to_unlock(capfd, tmp_path, deploy_to):
    three(capfd, tmp_path, deploy_to)
    step(capfd, deploy_to, 'rollback_start', ROLLBACK)
    _steps.swap_current(deploy_to, R2, rollback=True, run=ROLLBACK['owner'])
    assert step(capfd, deploy_to, 'rollback_finish', ROLLBACK, leaving=R3, unlock=False)['unlocked'] is False
    assert holder(deploy_to)['owner'] == ROLLBACK['owner']
    result = step(capfd, deploy_to, 'unlock', ROLLBACK)
    assert (result['changed'], result['unlocked']) == (False, True)
    assert holder(deploy_to) == {}
