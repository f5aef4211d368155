"""The release_content module's real main(): plan, build, git and archive steps, and its refusals."""

from __future__ import annotations

import base64
import json
import os
import subprocess
import tarfile

import pytest

from ansible.module_utils.testing import patch_module_args

from ansible_collections.capstan.release.plugins.module_utils import _steps
from ansible_collections.capstan.release.plugins.module_utils._content import manifests
from ansible_collections.capstan.release.plugins.module_utils._content import plans
from ansible_collections.capstan.release.plugins.modules import release_content
from ansible_collections.capstan.release.tests.unit.helpers import read, run_module, write


def app(root):
    write(os.path.join(str(root), 'public', 'index.html'), 'v1\n')
    write(os.path.join(str(root), 'README'), 'readme\n')
    return str(root)


def run(capfd, **args):
    return run_module(release_content, capfd, **args)


def test_plan_then_build_with_a_bundle(capfd, tmp_path, deploy_to):
    src = app(tmp_path / 'app')
    manifest = manifests.scan_source(src)
    _steps.prepare_release(deploy_to, '20260101000000')
    planned = run(capfd, deploy_to=deploy_to, step='plan', release='20260101000000', manifest=manifest)
    assert (planned['changed'], planned['sent'], planned['linked']) == (False, 2, 0)
    bundle = str(tmp_path / 'bundle.tar.gz')
    plans.write_bundle(src, manifest, planned['missing'], bundle)
    built = run(capfd, deploy_to=deploy_to, release='20260101000000', manifest=manifests.dump_manifest(manifest), bundle=bundle,
                revision=planned['revision'], _ansible_diff=True)
    assert built['changed'] and built['written'] == 2
    assert built['invocation']['module_args']['manifest'].endswith('bytes of JSON)')
    assert built['diff']['after']['files'] == 2
    assert read(os.path.join(deploy_to, 'releases', '20260101000000', 'public', 'index.html')) == 'v1\n'


def test_check_mode_build_changes_nothing(capfd, tmp_path, deploy_to):
    manifest = manifests.scan_source(app(tmp_path / 'app'))
    result = run(capfd, deploy_to=deploy_to, release='20260101000000', manifest=manifest, _ansible_check_mode=True)
    assert result['changed'] and result['sent'] == 2
    assert not os.path.exists(deploy_to)


def test_refusals_are_one_sentence(capfd, tmp_path, deploy_to):
    manifest = manifests.scan_source(app(tmp_path / 'app'))
    result = run(capfd, deploy_to=deploy_to, step='resolve', manifest=manifest)
    assert result['failed'] and 'resolves on the controller' in result['msg']
    result = run(capfd, deploy_to=deploy_to, release='20260101000000', manifest=manifest)
    assert result['failed'] and result['msg'].startswith('release 20260101000000 does not exist in ')
    result = run(capfd, deploy_to=deploy_to, strategy='git', step='plan', repo_url='file:///x')
    assert result['failed'] and result['msg'] == 'step=plan is only for strategy=copy'
    result = run(capfd, deploy_to=deploy_to, strategy='archive', step='resolve', src='relative.tgz')
    assert result['failed'] and result['msg'].startswith('deploy_src must be an http(s):// or file:// URL')


def test_git_through_the_module(capfd, tmp_path, deploy_to):
    repo = tmp_path / 'origin'
    app(repo)
    env = dict(os.environ, GIT_AUTHOR_NAME='T', GIT_AUTHOR_EMAIL='t@e', GIT_COMMITTER_NAME='T', GIT_COMMITTER_EMAIL='t@e')
    for args in (['init', '-q', '-b', 'trunk'], ['add', '-A'], ['commit', '-q', '-m', 'one']):
        subprocess.run(['git'] + args, cwd=str(repo), env=env, check=True, capture_output=True)
    url = 'file://%s' % repo
    resolved = run(capfd, deploy_to=deploy_to, step='resolve', strategy='git', repo_url=url)
    assert resolved['branch'] == 'trunk' and len(resolved['revision']) == 40
    _steps.prepare_release(deploy_to, '20260101000000')
    built = run(capfd, deploy_to=deploy_to, strategy='git', repo_url=url, release='20260101000000', revision=resolved['revision'])
    assert built['written'] == 2, built
    assert sorted(os.listdir(os.path.join(deploy_to, 'releases', '20260101000000'))) == ['README', 'public']
    bad = run(capfd, deploy_to=deploy_to, step='resolve', strategy='git', repo_url=url, version='nope')
    # repo_url is no_log: the module's own output has Ansible's mark, which the action plugin turns into the masked URL.
    assert bad['failed'] and bad['msg'] == "deploy_version 'nope' is not a branch, tag or commit of ********"


def test_archive_through_the_module(capfd, tmp_path, deploy_to):
    src = app(tmp_path / 'app')
    tarball = str(tmp_path / 'app.tar')
    with tarfile.open(tarball, 'w') as tar:
        tar.add(src, arcname='.')
    resolved = run(capfd, deploy_to=deploy_to, step='resolve', strategy='archive', src=tarball)
    bad = run(capfd, deploy_to=deploy_to, step='resolve', strategy='archive', src=tarball, checksum='sha256:' + 'a' * 64)
    assert bad['failed'] and bad['msg'].startswith('deploy_src_checksum sha256:aaaa')
    _steps.prepare_release(deploy_to, '20260101000000')
    built = run(capfd, deploy_to=deploy_to, strategy='archive', src=tarball, release='20260101000000', revision=resolved['revision'])
    assert built['written'] == 2 and built['revision'] == resolved['revision']


def test_a_small_bundle_comes_inline_as_base64(capfd, tmp_path, deploy_to):
    src = app(tmp_path / 'app')
    manifest = manifests.scan_source(src)
    _steps.prepare_release(deploy_to, '20260101000000')
    planned = run(capfd, deploy_to=deploy_to, step='plan', release='20260101000000', manifest=manifests.dump_manifest(manifest))
    bundle = str(tmp_path / 'bundle.tar.gz')
    plans.write_bundle(src, manifest, planned['missing'], bundle)
    with open(bundle, 'rb') as handle:
        data = base64.b64encode(handle.read()).decode('ascii')
    built = run(capfd, deploy_to=deploy_to, release='20260101000000', manifest=manifests.dump_manifest(manifest), bundle_data=data)
    assert built['written'] == 2 and built['invocation']['module_args']['bundle_data'].endswith('bytes of base64)')
    assert read(os.path.join(deploy_to, 'releases', '20260101000000', 'README')) == 'readme\n'
    other = deploy_to + '-other'   # a tree with no earlier release: the bundle must be read
    _steps.prepare_release(other, '20260101000001')
    bad = run(capfd, deploy_to=other, release='20260101000001', manifest=manifests.dump_manifest(manifest), bundle_data='bm90IGEgdGFy')
    assert bad['failed'] and bad['msg'].startswith('the bundle (inline) is not a readable tarball')


def test_a_repository_url_with_a_credential_is_masked_in_the_result_and_the_message(capfd, deploy_to, http_origin):
    with pytest.raises(SystemExit), patch_module_args({'deploy_to': deploy_to, 'step': 'resolve', 'strategy': 'git',
                                                       'repo_url': http_origin.url, 'version': 'main'}):
        release_content.main()
    out = capfd.readouterr()
    resolved = json.loads(out.out)
    assert not resolved.get('failed') and len(resolved['revision']) == 40, resolved
    assert resolved['invocation']['module_args']['repo_url'] == http_origin.public.replace('http://', 'http://***@')
    assert http_origin.secret not in out.out + out.err
    bad = run(capfd, deploy_to=deploy_to, step='resolve', strategy='git', repo_url=http_origin.url, version='nope')
    assert bad['failed'] and bad['msg'] == "deploy_version 'nope' is not a branch, tag or commit of %s" % (
        http_origin.public.replace('http://', 'http://***@'))
    assert http_origin.secret not in json.dumps(bad)
