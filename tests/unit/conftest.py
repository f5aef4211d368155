"""Shared fixtures: real deploy trees in tmp_path, and a runner for a module's real main()."""

from __future__ import annotations

import json
import os

import pytest

from ansible.module_utils.testing import patch_module_args

from ansible_collections.capstan.release.plugins.module_utils import _steps


def run_module(module, capfd, **args):
    """Run ``module.main()`` with ``args`` and return the JSON it printed (failed or not)."""
    with pytest.raises(SystemExit), patch_module_args(args):
        module.main()
    return json.loads(capfd.readouterr().out)


def deploy(deploy_to, name, revision=None, live=True, succeed=True, **finish_args):
    """Make release ``name`` the way a deploy does: finished, then (optionally) live and recorded."""
    _steps.finish_release(deploy_to, name, revision or 'rev-' + name, **finish_args)
    if live:
        _steps.swap_current(deploy_to, name)
        if succeed:
            _steps.succeed_release(deploy_to, name, 'main', 'tester')
    return os.path.join(deploy_to, 'releases', name)


@pytest.fixture
def deploy_to(tmp_path):
    """An absolute deploy_to that does not exist yet."""
    return str(tmp_path / 'srv' / 'app')
