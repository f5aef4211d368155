"""Fixtures for tests over real SSH: the test bed's hosts and an ad-hoc `ansible` runner."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile

import pytest

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
sys.path.insert(0, os.path.join(REPO, 'tests', 'bed'))

# With pytest-xdist (make integration runs files on two workers), each worker has a bed of its
# own: worker N uses bed CAPSTAN_BED_ID+N (the default bed, then 1, 2, ... when it is not set).
# The fault suite picks its workers' beds itself (CAPSTAN_BED_PINNED): they are not moved again.
_WORKER = os.environ.get('PYTEST_XDIST_WORKER', '')
if _WORKER.startswith('gw') and not os.environ.get('CAPSTAN_BED_PINNED'):
    _BASE = int(os.environ.get('CAPSTAN_BED_ID') or 0)
    _ID = _BASE + int(_WORKER[2:])
    if _ID > 9:
        raise RuntimeError('no test bed left for xdist worker %s (CAPSTAN_BED_ID %d + %s > 9)' % (_WORKER, _BASE, _WORKER[2:]))
    os.environ['CAPSTAN_BED_ID'] = str(_ID) if _ID else ''

import bed  # noqa: E402  pylint: disable=wrong-import-position

ANSIBLE = os.path.join(os.path.dirname(sys.executable), 'ansible')
HOSTS = 3
# SSH masters of our own: one left by an earlier bed would point at a host that is gone.
CONTROL_DIR = tempfile.mkdtemp(prefix='capstan-cp-')


def ansible_env():
    env = dict(os.environ)
    env.update({
        'ANSIBLE_CONFIG': os.path.join(REPO, 'ansible.cfg'),
        'ANSIBLE_LOAD_CALLBACK_PLUGINS': '1',
        'ANSIBLE_CALLBACK_PLUGINS': os.path.join(REPO, 'tests', 'integration', 'callbacks'),
        'ANSIBLE_STDOUT_CALLBACK': 'jsonlines',
        'ANSIBLE_NOCOLOR': '1',
        'ANSIBLE_SSH_CONTROL_PATH_DIR': CONTROL_DIR,
    })
    return env


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


@pytest.fixture(scope='session')
def fleet():
    """Three test-bed hosts over real SSH, started for the session and removed after it."""
    inventory = bed.up(HOSTS)
    try:
        yield Fleet(inventory, HOSTS)
    finally:
        bed.down()


@pytest.fixture
def deploy_to(request):
    """A deploy_to of this test's own under /srv (private to each host)."""
    return '/srv/%s' % request.node.name.replace('[', '-').replace(']', '')
