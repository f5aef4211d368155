"""Helpers the unit tests share: a runner for a module's real main(), real trees and contents in tmp_path.

Every test imports them the same way, from this module:

    from ansible_collections.capstan.release.tests.unit.helpers import deploy, run_module

Fixtures (``deploy_to``) live in conftest.py, where pytest finds them without an import. make_app,
GIT_ENV and git serve the integration tests too: tests/integration/helpers.py imports them from here.
"""

from __future__ import annotations

import contextlib
import io
import json
import os
import stat
import subprocess
import tarfile

import pytest

from ansible.module_utils.testing import patch_module_args

from ansible_collections.capstan.release.plugins.module_utils import _steps
from ansible_collections.capstan.release.plugins.module_utils._errors import CapstanError
from ansible_collections.capstan.release.plugins.module_utils._content import builds
from ansible_collections.capstan.release.plugins.module_utils._content import manifests
from ansible_collections.capstan.release.plugins.module_utils._content import plans


# The author and committer of the commits the tests make (the integration tests' too).
GIT_ENV = {'GIT_AUTHOR_NAME': 'T', 'GIT_AUTHOR_EMAIL': 't@example.com', 'GIT_COMMITTER_NAME': 'T',
           'GIT_COMMITTER_EMAIL': 't@example.com'}


def run_module(module, capfd, **args):
    """Run ``module.main()`` with ``args`` and return the JSON it printed (failed or not)."""
    with pytest.raises(SystemExit), patch_module_args(args):
        module.main()
    return json.loads(capfd.readouterr().out)


def refusal(function, *args, **kwargs):
    """The message of the CapstanError ``function(*args, **kwargs)`` raises, asserted to be one line."""
    with pytest.raises(CapstanError) as error:
        function(*args, **kwargs)
    assert '\n' not in str(error.value)
    return str(error.value)


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
    """Write ``text`` (str, or bytes as they are) to ``path``, making its parent directories first."""
    path = str(path)
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, 'wb' if isinstance(text, bytes) else 'w') as handle:
        handle.write(text)


def read(path):
    """The text of the file at ``path``."""
    with open(str(path)) as handle:
        return handle.read()


@contextlib.contextmanager
def tmpfs(path, size):
    """A tmpfs of ``size`` (e.g. '2m') mounted at ``path`` for the block; the test is skipped unless root."""
    if os.geteuid() != 0:
        pytest.skip('mounting a tmpfs needs root')
    os.makedirs(path, exist_ok=True)
    subprocess.check_call(['mount', '-t', 'tmpfs', '-o', 'size=%s' % size, 'tmpfs', path])
    try:
        yield path
    finally:
        subprocess.call(['umount', '-l', path])


def fill(folder):
    """Write a file in ``folder`` until its filesystem is full."""
    fd = os.open(os.path.join(folder, 'filler'), os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        while os.write(fd, b'\0' * 4096):
            pass
    except OSError:
        pass
    finally:
        os.close(fd)


def deploy(deploy_to, name, revision=None, live=True, succeed=True, **finish_args):
    """Make release ``name`` the way a deploy does: finished, then (optionally) live and recorded."""
    _steps.finish_release(deploy_to, name, revision or 'rev-' + name, **finish_args)
    if live:
        _steps.swap_current(deploy_to, name)
        if succeed:
            _steps.succeed_release(deploy_to, name, 'main', 'tester')
    return os.path.join(deploy_to, 'releases', name)


# --- release content (the _content tests and the release_content module's) ----------------------


def make_app(root, files=0):
    """A small app: files of two modes, an empty file, an empty dir, a relative symlink (index).

    ``files`` numbered text files more under lib/part0..3/ and a second link, start -> bin/run, make
    the bigger app the integration tests deploy. Made again in the same ``root``, it writes its files again.
    """
    root = str(root)
    write(os.path.join(root, 'public', 'index.html'), '<h1>v1</h1>\n')
    write(os.path.join(root, 'public', 'app.js'), 'console.log(1)\n')
    write(os.path.join(root, 'bin', 'run'), '#!/bin/sh\necho run\n')
    os.chmod(os.path.join(root, 'bin', 'run'), 0o755)
    write(os.path.join(root, 'log', '.keep'), '')
    os.makedirs(os.path.join(root, 'tmp', 'cache'), exist_ok=True)
    links = {'index': 'public/index.html'}
    for index in range(files):
        write(os.path.join(root, 'lib', 'part%d' % (index % 4), 'file%03d.txt' % index), 'content of file %d\n' % index)
    if files:
        links['start'] = 'bin/run'
    for name, target in sorted(links.items()):
        if not os.path.lexists(os.path.join(root, name)):
            os.symlink(target, os.path.join(root, name))
    return root


def git(repo, *args, **env):
    """Run git in ``repo`` as GIT_ENV's author (``env`` added, e.g. GIT_COMMITTER_DATE); its output, stripped."""
    proc = subprocess.run(['git'] + list(args), cwd=str(repo), capture_output=True, text=True, check=True,
                          env=dict(os.environ, **dict(GIT_ENV, **env)))
    return proc.stdout.strip()


def ino(path):
    return os.lstat(str(path)).st_ino


def deploy_copy(deploy_to, name, src, live=True):
    """What the copy strategy does for one host: plan, bundle of the missing, build, finish, switch."""
    manifest = manifests.scan_source(str(src))
    _steps.prepare_release(deploy_to, name)
    planned = plans.plan(deploy_to, manifest, name)
    bundle = os.path.join(os.path.dirname(deploy_to), 'bundle-%s.tar.gz' % name)
    plans.write_bundle(str(src), manifest, planned['missing'], bundle)
    built = builds.build(deploy_to, name, manifest, bundle=bundle, revision=planned['revision'])
    _steps.finish_release(deploy_to, name, built['revision'])
    if live:
        _steps.swap_current(deploy_to, name)
        _steps.succeed_release(deploy_to, name, 'main', 'tester')
    return planned, built


def release_path(deploy_to, name, *parts):
    """The path of release ``name`` in ``deploy_to``, or of ``parts`` inside it."""
    return os.path.join(deploy_to, 'releases', name, *parts)


def tar_with(path, *members):
    """A tarball holding ``members``: (name, type, extra) with type file, dir, symlink, link, fifo or chr."""
    with tarfile.open(path, 'w') as tar:
        for name, kind, extra in members:
            info = tarfile.TarInfo(name)
            data = None
            if kind == 'file':
                data = extra.encode()
                info.size = len(data)
            elif kind == 'dir':
                info.type = tarfile.DIRTYPE
            elif kind == 'symlink':
                info.type, info.linkname = tarfile.SYMTYPE, extra
            elif kind == 'link':
                info.type, info.linkname = tarfile.LNKTYPE, extra
            elif kind == 'fifo':
                info.type = tarfile.FIFOTYPE
            else:
                info.type = tarfile.CHRTYPE
            tar.addfile(info, io.BytesIO(data) if data is not None else None)
    return str(path)
