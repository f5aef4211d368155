# Copyright (c) 2026, capstan.release contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""The git source: a mirror in <deploy_to>/repo, releases exported with git archive.

A credential in the repository URL (``https://deploy:token@git.example.com/app.git``) is not
kept in the mirror: its remote is the URL without it, and each command that talks to the
remote gets the credential in its environment (git's ``url.<full>.insteadOf=<public>``, read
from ``GIT_CONFIG_*``, which git takes since 2.31), never on its command line. Older git gets
the URL as given, stored in the mirror's config as Capistrano does; either way a mirror made
from a URL with a credential is readable by its owner only (0700).
"""

from __future__ import annotations

import os
import re

from ansible_collections.capstan.release.plugins.module_utils import _fsops
from ansible_collections.capstan.release.plugins.module_utils import _releases
from ansible_collections.capstan.release.plugins.module_utils import _secrets
from ansible_collections.capstan.release.plugins.module_utils._content import builds
from ansible_collections.capstan.release.plugins.module_utils._content import holdings
from ansible_collections.capstan.release.plugins.module_utils._content import manifests
from ansible_collections.capstan.release.plugins.module_utils._errors import CapstanError

_SHA1_RE = re.compile(r'^[0-9a-f]{40}\Z')
_VERSION_RE = re.compile(r'^git version (\d+)\.(\d+)')
# The first git that reads configuration from GIT_CONFIG_COUNT / GIT_CONFIG_KEY_<n> / GIT_CONFIG_VALUE_<n>.
CONFIG_ENV_VERSION = (2, 31)


def _git(runner, args, cwd=None, what='deploy_repo_url', environ=None):
    rc, out, err = runner(['git'] + args, cwd, environ) if environ else runner(['git'] + args, cwd)
    if rc != 0:
        detail = (err or out or '').strip()
        detail = detail.splitlines()[-1] if detail else 'exit code %d' % rc
        command = [arg for arg in args if not arg.startswith('-') and '=' not in arg][:1] or args[:1]
        raise CapstanError('%s: git %s failed: %s' % (what, command[0], detail))
    return out


def check_version(version, what='deploy_version'):
    """Refuse a version git would read as an option, a range, or cannot name (spaces, control characters).

    The one rule for it: the roles' input check (_checks) calls it on the controller too.
    """
    if version and (version.startswith('-') or any(ch.isspace() or ord(ch) < 32 for ch in version) or '..' in version):
        raise CapstanError("%s must be a branch, tag or commit sha (empty: the remote's default branch), got %r" % (what, version))
    return version or ''


def check_repo_url(url, what='deploy_repo_url'):
    """Refuse a repository URL git would read as an option, or that is not one line (the controller checks it too)."""
    if not isinstance(url, str) or not url.strip() or url.startswith('-') or '\n' in url:
        raise CapstanError('%s must be the URL of a git repository (what git clone takes), got %r' % (what, url))
    return url


def git_version(runner):
    """(major, minor) of the hosts' git, or (0, 0) when it does not say."""
    rc, out, _err = runner(['git', 'version'], None)
    match = _VERSION_RE.match(out.strip()) if rc == 0 else None
    return (int(match.group(1)), int(match.group(2))) if match else (0, 0)


def remote(runner, repo_url):
    """(the URL the mirror keeps and git is given, the environment that adds the credential back), for ``repo_url``.

    Without a credential in the URL, or with a git too old to read configuration from the
    environment, the URL is used as it is and the environment is empty.
    """
    public = _secrets.without_credentials(repo_url)
    if public == repo_url or git_version(runner) < CONFIG_ENV_VERSION:
        return repo_url, {}
    # After any configuration the task's environment already gives git this way.
    count = os.environ.get('GIT_CONFIG_COUNT', '')
    index = int(count) if count.isdigit() else 0
    return public, {'GIT_CONFIG_COUNT': str(index + 1), 'GIT_CONFIG_KEY_%d' % index: 'url.%s.insteadOf' % repo_url,
                    'GIT_CONFIG_VALUE_%d' % index: public}


def _remote_url(runner, repo):
    rc, out, _err = runner(['git', 'config', '--get', 'remote.origin.url'], repo)
    return out.strip() if rc == 0 else None


def update_mirror(runner, deploy_to, repo_url):
    """Clone ``repo_url`` as a mirror in <deploy_to>/repo the first time, fetch it later (pruned)."""
    tree = _releases.Tree(deploy_to)
    check_repo_url(repo_url)
    url, environ = remote(runner, repo_url)
    if os.path.isdir(os.path.join(tree.repo, 'objects')):
        if _secrets.has_credential(repo_url):
            os.chmod(tree.repo, 0o700)
        if _remote_url(runner, tree.repo) != url:
            # A new URL, or one a mirror made before kept with its credential: the mirror keeps ``url`` from now on.
            _git(runner, ['remote', 'set-url', 'origin', url], tree.repo)
        _git(runner, ['remote', 'update', '--prune'], tree.repo, environ=environ)
        return False
    empty = os.path.isdir(tree.repo) and not os.path.islink(tree.repo) and not os.listdir(tree.repo)
    if os.path.lexists(tree.repo) and not empty:
        raise CapstanError('%s exists and is not a git mirror; move it away to deploy with deploy_strategy=git' % tree.repo)
    if not os.path.isdir(tree.deploy_to):
        os.makedirs(tree.deploy_to)
    made = False
    if _secrets.has_credential(repo_url):
        # 0700 before git writes into it: its config may hold the credential (an old git), its objects are private.
        if not empty:
            os.mkdir(tree.repo, 0o700)
            made = True
        os.chmod(tree.repo, 0o700)
    try:
        _git(runner, ['clone', '--mirror', '--quiet', '--', url, tree.repo], environ=environ)
    except CapstanError:
        if made:  # a failed clone empties the directory it was given: the next deploy makes it again
            try:
                os.rmdir(tree.repo)
            except OSError:
                pass
        raise
    return True


def commit_time(runner, deploy_to, sha):
    """The commit time of ``sha`` in the mirror (seconds since the epoch, as text), as Capistrano's REVISION_TIME."""
    tree = _releases.Tree(deploy_to)
    return _git(runner, ['show', '-s', '--format=%ct', sha], tree.repo, what='deploy_version').strip() or None


def content_bytes(runner, deploy_to, sha):
    """Bytes of the files of commit ``sha`` in the mirror (about the size of the tarball git archive writes)."""
    tree = _releases.Tree(deploy_to)
    rc, out, _err = runner(['git', 'ls-tree', '-r', '-l', '--full-tree', sha], tree.repo)
    if rc != 0:
        return 0
    total = 0
    for line in out.splitlines():
        fields = line.split(None, 4)
        if len(fields) >= 4 and fields[3].isdigit():
            total += int(fields[3])
    return total


def _rev_parse(runner, repo, version):
    rc, out, _err = runner(['git', 'rev-parse', '--verify', '--quiet', '%s^{commit}' % version], repo)
    return out.strip() if rc == 0 and _SHA1_RE.match(out.strip()) else None


def _default_branch(runner, repo):
    rc, out, _err = runner(['git', 'symbolic-ref', '--quiet', '--short', 'HEAD'], repo)
    return out.strip() if rc == 0 and out.strip() else None


def resolve_git(runner, deploy_to, repo_url, version=None, check=False):
    """The commit ``version`` (branch, tag or sha; empty: the remote's HEAD) names, after updating the mirror.

    In check mode the mirror is left alone: the remote is asked with ls-remote (a full sha is
    taken as it is), or the mirror as it stands answers for an abbreviated sha.
    """
    tree = _releases.Tree(deploy_to)
    check_repo_url(repo_url)
    version = check_version(version)
    if check:
        return _resolve_git_check(runner, tree, repo_url, version)
    created = update_mirror(runner, deploy_to, repo_url)
    sha = _rev_parse(runner, tree.repo, version or 'HEAD')
    if sha is None:
        raise CapstanError('deploy_version %r is not a branch, tag or commit of %s' % (version or 'HEAD', repo_url))
    when = _git(runner, ['show', '-s', '--format=%ct', sha], tree.repo).strip()
    branch = version or _default_branch(runner, tree.repo) or 'HEAD'
    return {'changed': created, 'revision': sha, 'revision_time': when, 'branch': branch, 'repo_path': tree.repo,
            'diff': {'before': {'repo': tree.repo if not created else None}, 'after': {'repo': tree.repo, 'revision': sha}}}


def _resolve_git_check(runner, tree, repo_url, version):
    branch = version
    if version and _SHA1_RE.match(version):
        sha = version
    else:
        url, environ = remote(runner, repo_url)
        args = ['ls-remote', '--symref', '--', url] + ([version, version + '^{}'] if version else ['HEAD'])
        refs = {}
        for line in _git(runner, args, environ=environ).splitlines():
            left, _tab, ref = line.partition('\t')
            if left.startswith('ref: '):
                branch = branch or left[len('ref: '):].replace('refs/heads/', '', 1)
            elif ref:
                refs[ref] = left
        sha = None
        for ref in ('HEAD',) if not version else ('refs/heads/' + version, 'refs/tags/' + version + '^{}', 'refs/tags/' + version):
            if ref in refs:
                sha = refs[ref]
                break
        if sha is None and version and os.path.isdir(os.path.join(tree.repo, 'objects')):
            sha = _rev_parse(runner, tree.repo, version)
        if sha is None:
            raise CapstanError('deploy_version %r is not a branch, tag or commit of %s' % (version or 'HEAD', repo_url))
    return {'changed': not os.path.isdir(os.path.join(tree.repo, 'objects')), 'revision': sha, 'revision_time': None,
            'branch': branch or 'HEAD', 'repo_path': tree.repo,
            'diff': {'before': {'repo': None}, 'after': {'repo': tree.repo, 'revision': sha}}}


def build_from_git(runner, deploy_to, name, sha, check=False):
    """Export commit ``sha`` of the mirror (no .git) into release ``name``, linking what earlier releases hold."""
    tree = _releases.Tree(deploy_to)
    _releases.check_release_name(name)
    if not isinstance(sha, str) or not _SHA1_RE.match(sha):
        raise CapstanError('revision must be the full sha (40 hex digits) of the commit to deploy, got %r' % (sha,))
    if check:
        path = builds.check_target(tree, name, check)
        counts = dict(manifests.summary([]), linked=0, sent=0, sent_bytes=0)
        return builds.build_result(name, path, sha, [], counts, linked=0, copied=0, written=0)
    if not os.path.isdir(os.path.join(tree.repo, 'objects')):
        raise CapstanError('%s is not a git mirror; the deploy resolves deploy_version (and makes the mirror) first' % tree.repo)
    folder = os.path.join(tree.state_dir, holdings.DOWNLOADS)
    if not os.path.isdir(folder):
        tree.ensure_state_dir()
        os.makedirs(folder)
    tarball = os.path.join(folder, 'git-%s.tar' % name)
    _fsops.remove_file(tarball)
    try:
        _git(runner, ['-c', 'tar.umask=0022', 'archive', '--format=tar', '-o', tarball, sha], tree.repo, what='deploy_version')
        return builds.build_from_tar(deploy_to, name, tarball, revision=sha, what='commit %s of deploy_repo_url' % sha[:12])
    finally:
        _fsops.remove_file(tarball)
