"""_content.holdings: the manifests a tree stores of its builds, dropped with their releases."""

from __future__ import annotations

import os

from ansible_collections.capstan.release.plugins.module_utils import _steps
from ansible_collections.capstan.release.tests.unit.helpers import deploy_copy, make_app


def test_manifests_of_releases_that_are_gone_are_removed(tmp_path, deploy_to):
    src = make_app(tmp_path / 'app')
    deploy_copy(deploy_to, '20260101000000', src)
    deploy_copy(deploy_to, '20260101000001', src)
    _steps.prune(deploy_to, 1, 5)
    _planned, built = deploy_copy(deploy_to, '20260101000002', src)
    assert built['manifests_removed'] == ['20260101000000']
    assert sorted(os.listdir(os.path.join(deploy_to, '.capstan', 'manifests'))) == [
        '20260101000001.json', '20260101000002.json']
