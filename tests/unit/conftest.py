"""Shared fixtures: real deploy trees in tmp_path, and a runner for a module's real main()."""

from __future__ import annotations

import json
import os
import stat

import pytest

from ansible.module_utils.testing import patch_module_args

from ansible_collections.capstan.release.plugins.module_utils import _steps


def run_module(module, capfd, **args):
    """Run ``module.main()`` with ``args`` and return the JSON it printed (failed or not)."""
    with pytest.raises(SystemExit), patch_module_args(args):
        module.main()
    return json.loads(capfd.readouterr().out)


def listing(root):
    """Every entry under ``root`` by path relative to it: type, mode and content or link target (no times)."""
    root = str(root)
    found = {}
    for dirpath, dirnames, filenames in os.walk(root):
        for name in dirnames + filenames:
            path = os.path.join(dirpath, name)
            rel = os.path.relpath(path, root)
            info = os.lstat(path)
            if stat.S_ISLNK(info.st_mode):
                found[rel] = ('link', os.readlink(path))
            elif stat.S_ISDIR(info.st_mode):
                found[rel] = ('dir', stat.S_IMODE(info.st_mode))
            else:
                with open(path, 'rb') as handle:
                    found[rel] = ('file', stat.S_IMODE(info.st_mode), handle.read())
    return found


def write(path, text=''):
    """Write ``text`` to ``path``, making its parent directories first."""
    path = str(path)
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, 'w') as handle:
        handle.write(text)


def read(path):
    """The text of the file at ``path``."""
    with open(str(path)) as handle:
        return handle.read()


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
