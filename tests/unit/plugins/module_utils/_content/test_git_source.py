"""_content.git_source: the mirror, versions resolved (check mode too), commits exported into releases."""

from __future__ import annotations

import os
import stat
import subprocess

import pytest

from ansible_collections.capstan.release.plugins.module_utils import _steps
from ansible_collections.capstan.release.plugins.module_utils._content import git_source
from ansible_collections.capstan.release.plugins.module_utils._errors import CapstanError
from ansible_collections.capstan.release.tests.unit.helpers import ino, make_app, read, release_path, write


def runner(argv, cwd=None):
    proc = subprocess.run(argv, cwd=cwd, capture_output=True, text=True, check=False,
                          env=dict(os.environ, GIT_TERMINAL_PROMPT='0', LC_ALL='C'))
    return proc.returncode, proc.stdout, proc.stderr


GIT_ENV = {'GIT_AUTHOR_NAME': 'T', 'GIT_AUTHOR_EMAIL': 't@example.com', 'GIT_COMMITTER_NAME': 'T',
           'GIT_COMMITTER_EMAIL': 't@example.com'}


def git(repo, *args, **env):
    proc = subprocess.run(['git'] + list(args), cwd=str(repo), capture_output=True, text=True, check=True,
                          env=dict(os.environ, **dict(GIT_ENV, **env)))
    return proc.stdout.strip()


@pytest.fixture
def origin(tmp_path):
    """A repository with two commits on main (tag v1 on the first) and a branch next."""
    repo = tmp_path / 'origin'
    repo.mkdir()
    git(repo, 'init', '-q', '-b', 'main')
    make_app(repo)
    git(repo, 'add', '-A')
    git(repo, 'commit', '-q', '-m', 'one', GIT_COMMITTER_DATE='1700000000 +0000', GIT_AUTHOR_DATE='1700000000 +0000')
    git(repo, 'tag', '-a', 'v1', '-m', 'v1')
    write(repo / 'public' / 'app.js', 'console.log(2)\n')
    git(repo, 'commit', '-q', '-am', 'two', GIT_COMMITTER_DATE='1700000100 +0000', GIT_AUTHOR_DATE='1700000100 +0000')
    git(repo, 'branch', 'next', 'v1')
    return 'file://%s' % repo


def shas(origin):
    repo = origin[len('file://'):]
    return {'main': git(repo, 'rev-parse', 'main'), 'v1': git(repo, 'rev-parse', 'v1^{commit}')}


def test_git_resolves_branches_tags_shas_and_the_default_branch(deploy_to, origin):
    known = shas(origin)
    head = git_source.resolve_git(runner, deploy_to, origin, '')
    assert (head['revision'], head['branch'], head['revision_time'], head['changed']) == (known['main'], 'main', '1700000100', True)
    assert os.path.isdir(os.path.join(deploy_to, 'repo', 'objects'))
    assert git_source.resolve_git(runner, deploy_to, origin, 'v1')['revision'] == known['v1']
    assert git_source.resolve_git(runner, deploy_to, origin, 'next')['branch'] == 'next'
    again = git_source.resolve_git(runner, deploy_to, origin, known['v1'][:10])
    assert (again['revision'], again['changed']) == (known['v1'], False)


def test_git_fetches_new_commits_into_the_mirror(deploy_to, origin):
    git_source.resolve_git(runner, deploy_to, origin, 'main')
    repo = origin[len('file://'):]
    write(os.path.join(repo, 'new.txt'), 'new\n')
    git(repo, 'add', 'new.txt')
    git(repo, 'commit', '-q', '-m', 'three')
    assert git_source.resolve_git(runner, deploy_to, origin, 'main')['revision'] == git(repo, 'rev-parse', 'main')


def test_git_refuses_an_unknown_version_and_option_like_input(deploy_to, origin):
    with pytest.raises(CapstanError, match="deploy_version 'nope' is not a branch, tag or commit of file://"):
        git_source.resolve_git(runner, deploy_to, origin, 'nope')
    with pytest.raises(CapstanError, match='deploy_version must be a branch, tag or commit sha'):
        git_source.resolve_git(runner, deploy_to, origin, '--upload-pack=touch /tmp/x')
    with pytest.raises(CapstanError, match='deploy_repo_url must be the URL of a git repository'):
        git_source.resolve_git(runner, deploy_to, '--upload-pack=x', 'main')
    with pytest.raises(CapstanError, match='deploy_repo_url: git clone failed'):
        git_source.resolve_git(runner, deploy_to + '2', 'file:///nonexistent/repo', 'main')


def test_git_check_mode_asks_the_remote_and_leaves_no_mirror(deploy_to, origin):
    known = shas(origin)
    result = git_source.resolve_git(runner, deploy_to, origin, 'v1', check=True)
    assert result['revision'] == known['v1']
    assert git_source.resolve_git(runner, deploy_to, origin, '', check=True)['branch'] == 'main'
    assert not os.path.exists(deploy_to)


def test_git_exports_the_commit_without_dot_git_and_links_unchanged_files(deploy_to, origin):
    known = shas(origin)
    git_source.resolve_git(runner, deploy_to, origin, 'v1')
    _steps.prepare_release(deploy_to, '20260101000000')
    first = git_source.build_from_git(runner, deploy_to, '20260101000000', known['v1'])
    _steps.finish_release(deploy_to, '20260101000000', known['v1'])
    _steps.swap_current(deploy_to, '20260101000000')
    root = release_path(deploy_to, '20260101000000')
    assert not os.path.exists(os.path.join(root, '.git'))
    assert read(os.path.join(root, 'public', 'app.js')) == 'console.log(1)\n'
    assert stat.S_IMODE(os.stat(os.path.join(root, 'bin', 'run')).st_mode) == 0o755
    assert stat.S_IMODE(os.stat(os.path.join(root, 'public', 'app.js')).st_mode) == 0o644
    assert os.readlink(os.path.join(root, 'index')) == 'public/index.html'
    assert first['written'] == 3
    _steps.prepare_release(deploy_to, '20260101000001')
    second = git_source.build_from_git(runner, deploy_to, '20260101000001', known['main'])
    assert (second['written'], second['linked']) == (1, 2)
    new = release_path(deploy_to, '20260101000001')
    assert ino(os.path.join(root, 'bin', 'run')) == ino(os.path.join(new, 'bin', 'run'))
    assert read(os.path.join(new, 'public', 'app.js')) == 'console.log(2)\n'
    assert os.listdir(os.path.join(deploy_to, '.capstan', 'downloads')) == []
