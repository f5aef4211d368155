"""_content.git_source: the mirror, versions resolved (check mode too), commits exported into releases."""

from __future__ import annotations

import os
import stat
import subprocess

import pytest

from ansible_collections.capstan.release.plugins.module_utils import _steps
from ansible_collections.capstan.release.plugins.module_utils._content import git_source
from ansible_collections.capstan.release.plugins.module_utils._errors import CapstanError
from ansible_collections.capstan.release.tests.unit.helpers import git, ino, make_app, read, release_path, write


def runner(argv, cwd=None, environ=None):
    proc = subprocess.run(argv, cwd=cwd, capture_output=True, text=True, check=False,
                          env=dict(os.environ, GIT_TERMINAL_PROMPT='0', LC_ALL='C', **(environ or {})))
    return proc.returncode, proc.stdout, proc.stderr


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


# --- a credential in the URL ----------------------------------------------------------------------


def holding(root, text):
    """Every file under ``root`` whose bytes hold ``text``."""
    found = []
    for dirpath, dirnames, filenames in os.walk(str(root)):
        for name in filenames:
            path = os.path.join(dirpath, name)
            if not os.path.islink(path):
                with open(path, 'rb') as handle:
                    if text.encode() in handle.read():
                        found.append(os.path.relpath(path, str(root)))
    return found


def push(origin, text):
    """A new commit on main in the work clone, pushed to the served repository; its sha."""
    write(os.path.join(origin.work, 'public', 'app.js'), text)
    git(origin.work, 'commit', '-q', '-am', text.strip())
    git(origin.work, 'push', '-q', origin.bare, 'main')
    git(origin.bare, 'update-server-info')
    return git(origin.work, 'rev-parse', 'main')


def test_the_mirror_keeps_the_url_without_its_credential_and_every_fetch_gets_it(deploy_to, http_origin):
    with pytest.raises(CapstanError, match='deploy_repo_url: git ls-remote failed'):
        git_source.resolve_git(runner, deploy_to, http_origin.public, 'main', check=True)   # the server wants it
    first = git_source.resolve_git(runner, deploy_to, http_origin.url, 'main')
    assert first['revision'] == git(http_origin.work, 'rev-parse', 'main')
    repo = os.path.join(deploy_to, 'repo')
    assert git(repo, 'config', '--get', 'remote.origin.url') == http_origin.public
    assert stat.S_IMODE(os.stat(repo).st_mode) == 0o700
    newer = push(http_origin, 'console.log(3)\n')
    assert git_source.resolve_git(runner, deploy_to, http_origin.url, 'main', check=True)['revision'] == newer   # ls-remote
    assert git_source.resolve_git(runner, deploy_to, http_origin.url, 'main')['revision'] == newer   # remote update
    assert holding(deploy_to, http_origin.secret) == []


def test_a_mirror_that_kept_the_credential_loses_it_on_the_next_fetch(deploy_to, http_origin):
    os.makedirs(deploy_to)
    git(deploy_to, 'clone', '-q', '--mirror', http_origin.url, 'repo')   # as the collection's earlier versions made it
    assert holding(deploy_to, http_origin.secret) == ['repo/config']
    newer = push(http_origin, 'console.log(4)\n')
    assert git_source.resolve_git(runner, deploy_to, http_origin.url, 'main')['revision'] == newer
    assert git(os.path.join(deploy_to, 'repo'), 'config', '--get', 'remote.origin.url') == http_origin.public
    assert holding(deploy_to, http_origin.secret) == []
    assert stat.S_IMODE(os.stat(os.path.join(deploy_to, 'repo')).st_mode) == 0o700


def test_the_credential_never_reaches_the_command_line(deploy_to, http_origin):
    calls = []

    def recording(argv, cwd=None, environ=None):
        calls.append(argv)
        return runner(argv, cwd, environ)

    git_source.resolve_git(recording, deploy_to, http_origin.url, 'main', check=True)
    git_source.resolve_git(recording, deploy_to, http_origin.url, 'main')
    git_source.resolve_git(recording, deploy_to, http_origin.url, 'main')
    assert [argv[1] for argv in calls if 'ls-remote' in argv or 'clone' in argv or 'update' in argv] == ['ls-remote', 'clone', 'remote']
    assert not any(http_origin.secret in arg for argv in calls for arg in argv)


def test_a_git_older_than_2_31_gets_the_url_as_given_in_a_mirror_only_its_owner_reads(deploy_to, http_origin):
    def old_git(argv, cwd=None, environ=None):
        assert not environ   # it would not read GIT_CONFIG_* anyway
        if argv == ['git', 'version']:
            return 0, 'git version 2.30.2\n', ''
        return runner(argv, cwd)

    assert git_source.resolve_git(old_git, deploy_to, http_origin.url, 'main')['changed']
    repo = os.path.join(deploy_to, 'repo')
    assert git(repo, 'config', '--get', 'remote.origin.url') == http_origin.url
    assert stat.S_IMODE(os.stat(repo).st_mode) == 0o700


def test_a_failed_first_clone_leaves_no_mirror_directory_and_an_empty_one_is_no_mirror(deploy_to, http_origin):
    wrong = http_origin.url.replace(http_origin.secret, 'wrong')
    with pytest.raises(CapstanError, match='deploy_repo_url: git clone failed: fatal: Authentication failed'):
        git_source.update_mirror(runner, deploy_to, wrong)
    assert os.listdir(deploy_to) == []
    os.mkdir(os.path.join(deploy_to, 'repo'))   # as a clone killed before it wrote anything leaves it
    assert git_source.update_mirror(runner, deploy_to, http_origin.url) is True
    assert git(os.path.join(deploy_to, 'repo'), 'rev-parse', 'main') == git(http_origin.work, 'rev-parse', 'main')


@pytest.mark.parametrize('url', ['file:///srv/origin', 'https://git.example.com/app.git', 'ssh://git@git.example.com/app.git',
                                 'git@github.com:org/app.git'])
def test_a_url_without_a_credential_is_used_as_it_is_without_asking_the_git_version(url):
    def no_git(argv, cwd=None, environ=None):
        raise AssertionError('git was run: %r' % (argv,))

    assert git_source.remote(no_git, url) == (url, {})


def test_the_credential_goes_in_the_environment_as_an_insteadof_rule():
    def new_git(argv, cwd=None, environ=None):
        return 0, 'git version 2.39.5\n', ''

    url = 'https://deploy:s3cret@git.example.com/app.git'
    assert git_source.remote(new_git, url) == ('https://git.example.com/app.git', {
        'GIT_CONFIG_COUNT': '1', 'GIT_CONFIG_KEY_0': 'url.%s.insteadOf' % url, 'GIT_CONFIG_VALUE_0': 'https://git.example.com/app.git'})


def test_the_insteadof_rule_comes_after_the_configuration_the_environment_already_gives(monkeypatch):
    monkeypatch.setenv('GIT_CONFIG_COUNT', '1')
    url = 'https://deploy:s3cret@git.example.com/app.git'
    public, environ = git_source.remote(lambda argv, cwd=None, environ=None: (0, 'git version 2.31.0\n', ''), url)
    assert environ == {'GIT_CONFIG_COUNT': '2', 'GIT_CONFIG_KEY_1': 'url.%s.insteadOf' % url, 'GIT_CONFIG_VALUE_1': public}


def test_a_url_without_a_credential_leaves_the_mirror_as_git_makes_it(deploy_to, origin):
    git_source.update_mirror(runner, deploy_to, origin)
    mode = stat.S_IMODE(os.stat(os.path.join(deploy_to, 'repo')).st_mode)
    assert mode == stat.S_IMODE(os.stat(deploy_to).st_mode)   # the umask's, like any directory the deploy makes
    assert git(os.path.join(deploy_to, 'repo'), 'config', '--get', 'remote.origin.url') == origin
