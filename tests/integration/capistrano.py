"""Capistrano 3 (Debian's `capistrano` package) pointed at the test bed's hosts.

A project is a Capfile plus config/deploy.rb and config/deploy/bed.rb in a directory of its
own; it deploys a git repository made from a directory with the git strategy, as a
Capistrano user would. Hosts share the controller's /var, so a file:// repo there is
reachable from every host. ``cap(..., deploy_to=OTHER)`` points the same project at another
tree (a twin copied on the hosts, to compare what cap does with what capstan does).
"""

from __future__ import annotations

import os
import shutil
import subprocess

CAPFILE = """require "capistrano/setup"
require "capistrano/deploy"
require "capistrano/scm/git"
install_plugin Capistrano::SCM::Git
"""

DEPLOY_RB = """set :application, "app"
set :repo_url, "file://{repo}"
set :branch, "main"
set :deploy_to, ENV.fetch("CAPSTAN_DEPLOY_TO", "{deploy_to}")
set :keep_releases, ENV.fetch("CAPSTAN_KEEP_RELEASES", "{keep}").to_i
set :linked_files, {linked_files}
set :linked_dirs, {linked_dirs}
set :log_level, :warn
"""

STAGE_RB = """{servers}
set :ssh_options, {{ keys: ["{key}"], verify_host_key: :never, auth_methods: ["publickey"] }}
"""


def _git(cwd, *args):
    env = dict(os.environ, GIT_AUTHOR_NAME='capstan', GIT_AUTHOR_EMAIL='capstan@localhost',
               GIT_COMMITTER_NAME='capstan', GIT_COMMITTER_EMAIL='capstan@localhost')
    return subprocess.run(['git'] + list(args), cwd=cwd, env=env, check=True, capture_output=True, text=True).stdout


class Project(object):
    """A Capistrano project deploying ``src`` (committed to a bare repo) to the bed's hosts."""

    def __init__(self, workdir, addresses, key, deploy_to, src, keep=5, linked_files=(), linked_dirs=()):
        self.workdir = workdir
        self.deploy_to = deploy_to
        self.checkout = os.path.join(workdir, 'src')
        self.repo = os.path.join(workdir, 'app.git')
        shutil.copytree(src, self.checkout)
        _git(self.checkout, 'init', '-q', '-b', 'main')
        self.commit('first')
        _git(workdir, 'clone', '-q', '--bare', self.checkout, self.repo)
        _git(self.checkout, 'remote', 'add', 'origin', self.repo)
        project = os.path.join(workdir, 'cap')
        os.makedirs(os.path.join(project, 'config', 'deploy'))
        self.project = project
        with open(os.path.join(project, 'Capfile'), 'w') as handle:
            handle.write(CAPFILE)
        with open(os.path.join(project, 'config', 'deploy.rb'), 'w') as handle:
            handle.write(DEPLOY_RB.format(repo=self.repo, deploy_to=deploy_to, keep=keep,
                                          linked_files='%w[' + ' '.join(linked_files) + ']',
                                          linked_dirs='%w[' + ' '.join(linked_dirs) + ']'))
        servers = '\n'.join('server "%s", user: "root", roles: %%w[app]' % address for address in addresses)
        with open(os.path.join(project, 'config', 'deploy', 'bed.rb'), 'w') as handle:
            handle.write(STAGE_RB.format(servers=servers, key=key))

    def commit(self, message, change=None):
        """Commit the checkout (writing ``change`` {path: text} first) and push it; returns the sha."""
        for path, text in (change or {}).items():
            with open(os.path.join(self.checkout, path), 'w') as handle:
                handle.write(text)
        _git(self.checkout, 'add', '-A')
        _git(self.checkout, 'commit', '-q', '--allow-empty', '-m', message)
        if os.path.isdir(self.repo):
            _git(self.checkout, 'push', '-q', 'origin', 'main')
        return _git(self.checkout, 'rev-parse', 'HEAD').strip()

    def cap(self, *tasks, **env):
        """Run `cap bed <tasks>`; returns the CompletedProcess (check returncode yourself).

        Capistrano logs as $USER (capuser unless ``USER=`` says otherwise); ``deploy_to=`` and
        ``keep_releases=`` override the project's for this run; ``ROLLBACK_RELEASE=`` is cap's own.
        """
        run_env = dict(os.environ, USER='capuser')
        for key, variable in (('deploy_to', 'CAPSTAN_DEPLOY_TO'), ('keep_releases', 'CAPSTAN_KEEP_RELEASES')):
            run_env.pop(variable, None)
            if env.get(key) is not None:
                run_env[variable] = str(env[key])
            env.pop(key, None)
        run_env.update(env)
        return subprocess.run(['cap', 'bed'] + list(tasks), cwd=self.project, env=run_env,
                              capture_output=True, text=True, timeout=300, check=False)
