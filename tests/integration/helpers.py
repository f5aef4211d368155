"""Helpers the integration tests share: the repo's paths, an ansible and ansible-playbook runner, what a run said,
and what every host holds, read back.

Every integration test and the fault suite (tests/faults) import them the same way, from this module:

    from ansible_collections.capstan.release.tests.integration.helpers import REPO, app, deploy, ok

Fixtures (``fleet``, ``deploy_to``) and the choice of each xdist worker's bed live in conftest.py.
"""

from __future__ import annotations

import contextlib
import functools
import http.server
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import threading

# The app, the git identity and the git runner of the unit tests: one definition for both suites.
from ansible_collections.capstan.release.tests.unit.helpers import GIT_ENV, git, make_app  # pylint: disable=unused-import

# The checkout itself: this file is imported through .collections/ansible_collections/capstan/release (a link to it).
REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.realpath(__file__))))
sys.path.insert(0, os.path.join(REPO, 'tests', 'bed'))

import bed  # noqa: E402  pylint: disable=wrong-import-position

ANSIBLE = os.path.join(os.path.dirname(sys.executable), 'ansible')
PLAYBOOK = os.path.join(os.path.dirname(sys.executable), 'ansible-playbook')
APP = os.path.join(REPO, 'examples', 'app')
LINKS = {'deploy_linked_dirs': ['log'], 'deploy_linked_files': ['config/app.yml']}
HOSTS = 3
# SSH masters of our own: one left by an earlier bed would point at a host that is gone.
CONTROL_DIR = tempfile.mkdtemp(prefix='capstan-cp-')

FATAL = re.compile(r'^fatal: \[([^\]]+)\]: (?:FAILED|UNREACHABLE)! => (\{.*\})$')
TASK = re.compile(r'^TASK \[(?:[^\]:]+ : )?(.*)\] \**$')
RECAP = re.compile(r'^(\S+)\s+: ok=(\d+)\s+changed=(\d+)\s+unreachable=(\d+)\s+failed=(\d+)')


def ansible_env():
    environ = dict(os.environ)
    environ.update({
        'ANSIBLE_CONFIG': os.path.join(REPO, 'ansible.cfg'),
        'ANSIBLE_LOAD_CALLBACK_PLUGINS': '1',
        'ANSIBLE_CALLBACK_PLUGINS': os.path.join(REPO, 'tests', 'integration', 'callbacks'),
        'ANSIBLE_STDOUT_CALLBACK': 'jsonlines',
        'ANSIBLE_NOCOLOR': '1',
        'ANSIBLE_SSH_CONTROL_PATH_DIR': CONTROL_DIR,
    })
    return environ


def env():
    """ansible_env(), with the default stdout callback: ansible-core ships no json callback."""
    environ = ansible_env()
    environ.pop('ANSIBLE_STDOUT_CALLBACK', None)
    environ.update({'ANSIBLE_CALLBACK_RESULT_FORMAT': 'json', 'ANSIBLE_FORCE_COLOR': '0'})
    return environ


class Fleet(object):
    """The bed's hosts, and ways to act on them through Ansible or look at them directly."""

    def __init__(self, inventory, size):
        self.inventory = inventory
        self.names = ['host%d' % i for i in range(1, size + 1)]

    def module(self, name, args, pattern='bed', check=False, diff=False):
        """Run module capstan.release.<name> ad hoc on ``pattern``; returns {host: result}."""
        cmd = [ANSIBLE, pattern, '-i', self.inventory, '-m', 'capstan.release.' + name, '-a', json.dumps(args)]
        if check:
            cmd.append('--check')
        if diff:
            cmd.append('--diff')
        proc = subprocess.run(cmd, cwd=REPO, env=ansible_env(), capture_output=True, text=True, timeout=300, check=False)
        results = {}
        for line in proc.stdout.splitlines():
            if line.startswith('{"host": '):
                record = json.loads(line)
                result = record['result']
                result['failed'] = record['status'] == 'failed'
                result['unreachable'] = record['status'] == 'unreachable'
                results[record['host']] = result
        if not results:
            raise AssertionError('ansible reported no host (rc %d): %s %s' % (proc.returncode, proc.stdout[-2000:], proc.stderr[-2000:]))
        return results

    def ok(self, name, args, pattern='bed', **kwargs):
        """Like module(), asserting that no host failed."""
        results = self.module(name, args, pattern, **kwargs)
        failed = dict((host, r.get('msg')) for host, r in results.items() if r.get('failed') or r.get('unreachable'))
        assert not failed, failed
        return results

    def sh(self, index, command):
        """Run a shell command on host ``index`` (1-based) as the host sees its files; returns stdout."""
        proc = bed.run_on(index, command)
        assert proc.returncode == 0, (command, proc.stdout, proc.stderr)
        return proc.stdout

    def each(self, command):
        return [self.sh(i, command) for i in range(1, len(self.names) + 1)]


class Run(object):
    """One ansible-playbook run, read from the default callback's output."""

    def __init__(self, proc):
        self.rc = proc.returncode
        self.stdout = proc.stdout
        self.stderr = proc.stderr
        self.fatal = []   # (task name, host, result)
        self.stats = {}
        self.debug = []   # (task name, text) of every line under a task
        task = None
        for line in proc.stdout.splitlines():
            match = TASK.match(line)
            if match:
                task = match.group(1)
                continue
            match = FATAL.match(line)
            if match:
                try:
                    result = json.loads(match.group(2))
                except ValueError:
                    result = {'msg': match.group(2)}
                self.fatal.append((task, match.group(1), result))
                continue
            match = RECAP.match(line)
            if match:
                self.stats[match.group(1)] = {'changed': int(match.group(3)), 'unreachable': int(match.group(4)),
                                              'failed': int(match.group(5))}
                continue
            self.debug.append((task, line))

    def failures(self):
        """{host: message} of the final failure of each failed host."""
        return dict((host, result.get('msg')) for name, host, result in self.fatal
                    if name in ('Fail the deploy', 'Fail the rollback'))

    def changed(self):
        return dict((host, stats['changed']) for host, stats in self.stats.items())

    def output_of(self, task_name):
        return '\n'.join(line for name, line in self.debug if name == task_name)

    def __repr__(self):
        return 'Run(rc=%d, fatal=%r, stats=%r, tail=%r)' % (
            self.rc, ['%s %s: %s' % (h, t, r.get('msg')) for t, h, r in self.fatal][:8], self.stats,
            self.stdout[-1500:] + self.stderr[-1500:])


def play(fleet, playbook, deploy_to, **extra):
    """Run playbooks/<playbook> on the fleet with deploy_to and extra vars (as JSON)."""
    variables = dict(deploy_to=deploy_to, **extra)
    cmd = [PLAYBOOK, os.path.join(REPO, 'playbooks', str(playbook)), '-i', str(fleet.inventory),
           '-e', json.dumps(variables)]
    proc = subprocess.run(cmd, cwd=REPO, env=env(), capture_output=True, text=True,
                          timeout=900, check=False)
    return Run(proc)


def deploy(fleet, deploy_to, src, playbook='deploy.yml', **extra):
    variables = dict(LINKS, deploy_src=str(src))
    variables.update(extra)
    return play(fleet, playbook, deploy_to, **variables)


def ok(run):
    assert run.rc == 0, run
    return run


def app(tmp_path, version):
    """A copy of examples/app whose public/VERSION says ``version``."""
    path = tmp_path / ('app-%s' % version)
    if not path.exists():
        shutil.copytree(APP, str(path))
    (path / 'public' / 'VERSION').write_text('%s\n' % version)
    return path


def prepare_shared(fleet, deploy_to):
    """What an operator does before the first deploy: the linked file, in shared/ on every host."""
    for index in range(1, len(fleet.names) + 1):
        fleet.sh(index, 'mkdir -p %s/shared/config && echo "greeting: hello from host%d" > %s/shared/config/app.yml'
                 % (deploy_to, index, deploy_to))


def current(fleet, deploy_to):
    """The release name current points to on each host ('' when there is no current)."""
    return [os.path.basename(line.strip()) for line in fleet.each('readlink %s/current || true' % deploy_to)]


def releases(fleet, deploy_to):
    return [out.split() for out in fleet.each('ls %s/releases 2>/dev/null || true' % deploy_to)]


def failing_hook(tmp_path, host, message, task):
    """A hook file whose one task, named ``task``, fails with ``message`` on ``host`` (on every host when None)."""
    lines = ['- name: %s' % task, '  ansible.builtin.fail:', '    msg: %s' % json.dumps(message)]
    if host:
        lines.append('  when: inventory_hostname == "%s"' % host)
    path = tmp_path / ('fail_%s.yml' % re.sub(r'[^a-z0-9]+', '_', task.lower()))
    path.write_text('\n'.join(lines) + '\n')
    return path


def lock_files(fleet, deploy_to):
    return [out.strip() for out in fleet.each('cat %s/.capstan/lock 2>/dev/null || true' % deploy_to)]


def bridge():
    """The controller's address on the bed's bridge, 10.231.(77+CAPSTAN_BED_ID).1: the hosts reach it, nothing else does."""
    return '10.231.%d.1' % (77 + int(os.environ.get('CAPSTAN_BED_ID') or 0))


class QuietHandler(http.server.SimpleHTTPRequestHandler):
    """The files of the server's directory, without a log line a request."""

    def log_message(self, *args):
        del args


@contextlib.contextmanager
def web_server(root, handler=QuietHandler, lifetime=1800):
    """A threaded web server on the bed's bridge serving ``root`` with ``handler`` while the block runs.

    It stops after ``lifetime`` seconds whatever happens (the end of the block stops it sooner). The server
    it yields has ``root``, ``address`` (host:port) and ``base`` (http://host:port) besides its own attributes.
    """
    httpd = http.server.ThreadingHTTPServer((bridge(), 0), functools.partial(handler, directory=root))
    httpd.root = root
    httpd.address = '%s:%d' % httpd.server_address[:2]
    httpd.base = 'http://' + httpd.address
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    watchdog = threading.Timer(lifetime, httpd.shutdown)
    watchdog.daemon = True
    watchdog.start()
    try:
        yield httpd
    finally:
        watchdog.cancel()
        httpd.shutdown()
        httpd.server_close()
        thread.join(10)
