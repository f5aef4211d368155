"""Credentials in deploy_repo_url and in an archive URL, over real SSH: never in output, messages or on the hosts' disks.

A web server on the bed's bridge serves a bare git repository by git's dumb HTTP protocol and
a release tarball; it refuses both without the credential (Basic auth for git, ?token= for the
tarball), so a deploy that succeeds proves the credential reached the hosts. Every run is made
at -vvv; its whole stdout and stderr, every host's deploy tree (the mirror, the journal,
revisions.log, REVISION files, the archives and what they hold) and the releases report, as
text and as JSON, must be without the secret.
"""

from __future__ import annotations

import base64
import json
import os
import re
import secrets
import subprocess
import tarfile
import urllib.error
import urllib.request

import pytest

from ansible_collections.capstan.release.tests.integration.helpers import (PLAYBOOK, REPO, QuietHandler, Run, ansible_env,
                                                                           current, env, git, make_app, web_server)


USER = 'deployer'
# The web server stops after this many seconds whatever happens (the fixture stops it sooner).
SERVER_LIFETIME = 1800
RUN_TIMEOUT = 600


@pytest.fixture(scope='module')
def secret():
    return 'tok3n-' + secrets.token_hex(12)


class Handler(QuietHandler):
    """Files of the server's directory; /app.git/ needs Basic auth, *.tar.gz needs ?token=<secret>.

    Quiet: the test reads the hits instead.
    """

    def do_GET(self):
        path, _sep, query = self.path.partition('?')
        if path.startswith('/app.git/'):
            expected = 'Basic ' + base64.b64encode(('%s:%s' % (USER, self.server.secret)).encode()).decode()
            if self.headers.get('Authorization') != expected:
                self.server.hits.append((path, False))
                self.send_response(401)
                self.send_header('WWW-Authenticate', 'Basic realm="capstan"')
                self.send_header('Content-Length', '0')
                self.end_headers()
                return
        elif path.endswith('.tar.gz') and 'token=%s' % self.server.secret not in query.split('&'):
            self.server.hits.append((path, False))
            self.send_error(403)
            return
        self.server.hits.append((path, True))
        super(Handler, self).do_GET()

    def do_HEAD(self):
        self.do_GET()


@pytest.fixture(scope='module')
def server(secret, tmp_path_factory):
    """The web server on the bed's bridge (the hosts reach it, nothing else does), for this file's tests."""
    with web_server(str(tmp_path_factory.mktemp('served')), Handler, SERVER_LIFETIME) as httpd:
        httpd.secret, httpd.hits = secret, []
        yield httpd


@pytest.fixture(scope='module')
def bare(server):
    """A bare repository served at <base>/app.git (tag v1, then main one commit later) and its work tree."""
    work = os.path.join(server.root, 'work')
    os.makedirs(work)
    git(work, 'init', '-q', '-b', 'main')
    make_app(work, files=8)
    git(work, 'add', '-A')
    git(work, 'commit', '-q', '-m', 'one')
    git(work, 'tag', 'v1')
    with open(os.path.join(work, 'lib', 'part0', 'file000.txt'), 'w') as handle:
        handle.write('second commit\n')
    git(work, 'commit', '-q', '-am', 'two')
    repo = os.path.join(server.root, 'app.git')
    git(server.root, 'clone', '-q', '--bare', work, repo)
    git(repo, 'update-server-info')
    return work, repo


def push_commit(work, repo, text):
    """A new commit on main, pushed to the bare repository and announced to dumb HTTP clients."""
    with open(os.path.join(work, 'lib', 'part1', 'file001.txt'), 'w') as handle:
        handle.write(text)
    git(work, 'commit', '-q', '-am', text.strip())
    git(work, 'push', '-q', repo, 'main')
    git(repo, 'update-server-info')
    return git(work, 'rev-parse', 'main')


def playbook(fleet, name, deploy_to, callback='default', extra_env=None, options=(), **variables):
    """playbooks/<name> at -vvv with the default (JSON results) or the jsonlines callback; the run and its whole output."""
    environ = env() if callback == 'default' else ansible_env()
    environ.update(extra_env or {})
    cmd = [PLAYBOOK, '-vvv'] + list(options) + [os.path.join(REPO, 'playbooks', name), '-i', str(fleet.inventory),
                                                '-e', json.dumps(dict(variables, deploy_to=deploy_to))]
    proc = subprocess.run(cmd, cwd=REPO, env=environ, capture_output=True, text=True, timeout=RUN_TIMEOUT, check=False)
    return Run(proc), proc.stdout + proc.stderr


def clean(output, secret, what):
    """Assert that ``output`` (a run's stdout and stderr, a file) does not hold the secret, showing where it does."""
    if secret in output:
        lines = [line[:400] for line in output.splitlines() if secret in line][:5]
        raise AssertionError('%s holds the secret in %d place(s), e.g.:\n%s' % (what, output.count(secret), '\n'.join(lines)))


FATAL = re.compile(r'^fatal: \[([^\]]+)\]: FAILED! => (\{.*)$')


def messages(output):
    """{host: message} of each host's last failure: the default callback's fatal results (indented at -vvv) or jsonlines' records."""
    found = {}
    lines = iter(output.splitlines())
    for line in lines:
        match = FATAL.match(line)
        if match:
            text = [match.group(2)]
            while text[-1] != '}' and not text[0].endswith('}'):
                text.append(next(lines, '}'))
            found[match.group(1)] = json.loads('\n'.join(text)).get('msg')
        elif line.startswith('{"host": '):
            record = json.loads(line)
            if record['status'] == 'failed':
                found[record['host']] = record['result'].get('msg')
    return found


def grep_hosts(fleet, deploy_to, secret):
    """Every place on every host (the deploy tree, the archives' members and names, /tmp, /root) holding the secret."""
    command = ('cd {d} && {{ grep -rlsF -- {s} . /tmp /root; for a in *.tar.gz; do test -e "$a" || continue; '
               'tar -xzOf "$a" | grep -qF -- {s} && echo "$a: a member holds it"; '
               'tar -tzf "$a" | grep -qF -- {s} && echo "$a: a member name holds it"; done; }} || true').format(d=deploy_to, s=secret)
    return dict((host, out.split()) for host, out in zip(fleet.names, fleet.each(command)) if out.strip())


def report_is_clean(fleet, deploy_to, secret, tmp_path):
    """The releases report, as the default callback's text, as releases_json's file and as the JSON stdout callback."""
    written = str(tmp_path / 'releases.json')
    run, output = playbook(fleet, 'releases.yml', deploy_to, releases_json=written)
    assert run.rc == 0, run
    clean(output, secret, 'the releases report')
    with open(written) as handle:
        text = handle.read()
    clean(text, secret, 'the releases report as JSON (releases_json)')
    run, output = playbook(fleet, 'releases.yml', deploy_to, extra_env={'ANSIBLE_STDOUT_CALLBACK': 'capstan.release.releases_json'})
    assert run.rc == 0, output[-2000:]
    clean(output, secret, 'the releases report on the releases_json callback')
    return json.loads(text)


# --- git ----------------------------------------------------------------------------------------


def test_git_over_http_with_credentials_in_the_url_keeps_them_secret(fleet, deploy_to, secret, server, bare, tmp_path):
    work, repo = bare
    url, masked = 'http://%s:%s@%s/app.git' % (USER, secret, server.address), 'http://***@%s/app.git' % server.address
    with pytest.raises(urllib.error.HTTPError, match='401'):
        urllib.request.urlopen(server.base + '/app.git/info/refs', timeout=10)
    source = dict(deploy_strategy='git', deploy_repo_url=url)

    run, output = playbook(fleet, 'deploy.yml', deploy_to, deploy_version='main', **source)
    assert run.rc == 0, run
    clean(output, secret, 'the first deploy (default callback, -vvv)')
    assert [out.strip() for out in fleet.each('cat %s/current/REVISION' % deploy_to)] == [git(work, 'rev-parse', 'main')] * 3
    assert any(allowed for path, allowed in server.hits if path.startswith('/app.git/'))

    newer = push_commit(work, repo, 'third commit\n')
    run, output = playbook(fleet, 'deploy.yml', deploy_to, options=('--check', '--diff'), deploy_version='main', **source)
    assert run.rc == 0, run
    clean(output, secret, 'the deploy in check mode with --diff (default callback, -vvv)')
    assert 'current would switch from release' in output
    run, output = playbook(fleet, 'deploy.yml', deploy_to, callback='jsonlines', deploy_version='main', **source)
    assert run.rc == 0, output[-3000:]
    clean(output, secret, 'the second deploy (jsonlines callback, -vvv)')
    assert [out.strip() for out in fleet.each('cat %s/current/REVISION' % deploy_to)] == [newer] * 3
    live = current(fleet, deploy_to)

    for callback in ('default', 'jsonlines'):
        run, output = playbook(fleet, 'deploy.yml', deploy_to, callback=callback, deploy_version='no-such-branch', **source)
        assert run.rc != 0, run
        clean(output, secret, 'the deploy of an unknown version (%s callback, -vvv)' % callback)
        found = messages(output)
        assert set(found) == set(fleet.names), output[-3000:]
        expected = "deploy_version 'no-such-branch' is not a branch, tag or commit of %s" % masked
        assert all(expected in str(message) for message in found.values()), found

    # A wrong credential (the secret with one more letter: a leak of it shows the secret too) is refused by the server.
    run, output = playbook(fleet, 'deploy.yml', deploy_to, deploy_version='main', deploy_strategy='git',
                           deploy_repo_url=url.replace(secret, secret + 'x'))
    assert run.rc != 0, run
    clean(output, secret, 'the deploy with a wrong credential (default callback, -vvv)')
    found = messages(output)
    assert set(found) == set(fleet.names), output[-3000:]
    assert all("deploy_repo_url: git ls-remote failed: fatal: Authentication failed for '%s/app.git/'" % server.base
               in str(message) for message in found.values()), found

    # A release that fails its health check after going live: switched back, archived as failed-release-*.tar.gz.
    run, output = playbook(fleet, 'deploy.yml', deploy_to, deploy_version='v1', deploy_health_command='false', **source)
    assert run.rc != 0, run
    clean(output, secret, 'the deploy that fails its health check (default callback, -vvv)')
    assert current(fleet, deploy_to) == live
    assert [len(out.split()) for out in fleet.each('cd %s && ls failed-release-*.tar.gz' % deploy_to)] == [1] * 3

    assert grep_hosts(fleet, deploy_to, secret) == {}
    # The mirror keeps the URL without the credential (each fetch gets it in git's environment), in a directory of its owner's.
    assert fleet.each('git -C {d}/repo config --get remote.origin.url; stat -c %a {d}/repo'.format(d=deploy_to)) == [
        server.base + '/app.git\n700\n'] * 3
    report = report_is_clean(fleet, deploy_to, secret, tmp_path)
    assert report['hosts']['host1']['current'] == live[0]


# --- archive ------------------------------------------------------------------------------------


def test_archive_over_http_with_a_token_in_the_url_keeps_it_secret(fleet, deploy_to, secret, server, tmp_path):
    src = make_app(tmp_path / 'app', files=8)
    with tarfile.open(os.path.join(server.root, 'app.tar.gz'), 'w:gz') as tar:
        tar.add(src, arcname='.')
    with pytest.raises(urllib.error.HTTPError, match='403'):
        urllib.request.urlopen(server.base + '/app.tar.gz', timeout=10)
    url = '%s/app.tar.gz?token=%s' % (server.base, secret)

    run, output = playbook(fleet, 'deploy.yml', deploy_to, deploy_strategy='archive', deploy_src=url)
    assert run.rc == 0, run
    clean(output, secret, 'the archive deploy (default callback, -vvv)')
    assert fleet.each('cat %s/current/lib/part2/file002.txt' % deploy_to) == ['content of file 2\n'] * 3

    missing = '%s/no-such-app.tar.gz?token=%s' % (server.base, secret)
    masked = '%s/no-such-app.tar.gz?token=***' % server.base
    for callback in ('default', 'jsonlines'):
        run, output = playbook(fleet, 'deploy.yml', deploy_to, callback=callback, deploy_strategy='archive', deploy_src=missing)
        assert run.rc != 0, run
        clean(output, secret, 'the deploy of a missing archive (%s callback, -vvv)' % callback)
        found = messages(output)
        assert set(found) == set(fleet.names), output[-3000:]
        assert all('deploy_src %s could not be downloaded' % masked in str(message) and '404' in str(message)
                   for message in found.values()), found

    assert grep_hosts(fleet, deploy_to, secret) == {}
    report_is_clean(fleet, deploy_to, secret, tmp_path)


# --- the module on its own ----------------------------------------------------------------------


def adhoc(fleet, module, args):
    """``ansible -vvv -m capstan.release.<module>`` on every host (jsonlines callback): {host: result} and the whole output."""
    cmd = [os.path.join(os.path.dirname(PLAYBOOK), 'ansible'), 'bed', '-vvv', '-i', str(fleet.inventory),
           '-m', 'capstan.release.' + module, '-a', json.dumps(args)]
    proc = subprocess.run(cmd, cwd=REPO, env=ansible_env(), capture_output=True, text=True, timeout=RUN_TIMEOUT, check=False)
    results = {}
    for line in proc.stdout.splitlines():
        if line.startswith('{"host": '):
            record = json.loads(line)
            results[record['host']] = dict(record['result'], failed=record['status'] == 'failed')
    assert set(results) == set(fleet.names), proc.stdout[-3000:] + proc.stderr[-3000:]
    return results, proc.stdout + proc.stderr


def test_release_content_on_its_own_keeps_them_secret(fleet, deploy_to, secret, server, bare, tmp_path):
    def resolve(**args):
        return adhoc(fleet, 'release_content', dict(args, deploy_to=deploy_to, step='resolve'))

    url = 'http://%s:%s@%s/app.git' % (USER, secret, server.address)
    results, output = resolve(strategy='git', repo_url=url, version='main')
    clean(output, secret, 'release_content resolving a git version (-vvv)')
    assert [result['revision'] for result in results.values()] == [git(bare[0], 'rev-parse', 'main')] * 3, results
    results, output = resolve(strategy='git', repo_url=url, version='no-such-branch')
    clean(output, secret, 'release_content resolving an unknown git version (-vvv)')
    expected = "deploy_version 'no-such-branch' is not a branch, tag or commit of http://***@%s/app.git" % server.address
    assert all(result['failed'] and expected in result['msg'] for result in results.values()), results

    src = make_app(tmp_path / 'app', files=4)
    with tarfile.open(os.path.join(server.root, 'solo.tar.gz'), 'w:gz') as tar:
        tar.add(src, arcname='.')
    results, output = resolve(strategy='archive', src='%s/solo.tar.gz?token=%s' % (server.base, secret))
    clean(output, secret, 'release_content resolving an archive URL (-vvv)')
    assert not any(result['failed'] for result in results.values()), results
    results, output = resolve(strategy='archive', src='%s/no-such-app.tar.gz?token=%s' % (server.base, secret))
    clean(output, secret, 'release_content resolving a missing archive URL (-vvv)')
    expected = 'deploy_src %s/no-such-app.tar.gz?token=*** could not be downloaded' % server.base
    assert all(result['failed'] and expected in result['msg'] for result in results.values()), results
    assert grep_hosts(fleet, deploy_to, secret) == {}
