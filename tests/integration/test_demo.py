"""`make demo`'s playbook: three deploys and a rollback in ONE ansible-playbook run on localhost.

Several deploy and rollback plays in one run is also what catches state one play leaves to
the next (facts persist across plays): a later play must not reuse an earlier release name,
barrier or lock flag.
"""

from __future__ import annotations

import os
import subprocess
import sys

from ansible_collections.capstan.release.tests.integration.helpers import REPO, ansible_env


def test_demo_deploys_three_times_and_rolls_back_once(tmp_path):
    deploy_to = str(tmp_path / 'app')
    proc = subprocess.run([os.path.join(os.path.dirname(sys.executable), 'ansible-playbook'), 'playbooks/demo.yml',
                           '-e', 'demo_deploy_to=' + deploy_to],
                          cwd=REPO, env=dict(ansible_env(), ANSIBLE_STDOUT_CALLBACK='default'),
                          capture_output=True, text=True, timeout=600, check=False)
    assert proc.returncode == 0, proc.stdout[-4000:] + proc.stderr[-2000:]
    releases = sorted(os.listdir(os.path.join(deploy_to, 'releases')))
    assert len(releases) == 2
    assert os.readlink(os.path.join(deploy_to, 'current')) == os.path.join(deploy_to, 'releases', releases[1])
    with open(os.path.join(deploy_to, 'current', 'public', 'VERSION')) as handle:
        assert handle.read() == 'demo version 2\n'
    archives = [name for name in os.listdir(deploy_to) if name.endswith('.tar.gz')]
    assert len(archives) == 1 and archives[0].startswith('rolled-back-release-') and archives[0][20:34] > releases[1]
    with open(os.path.join(deploy_to, 'revisions.log')) as handle:
        lines = handle.read().splitlines()
    assert [line.split(' deployed as release ')[-1].split(' ')[0] for line in lines[:3]] == releases + [archives[0][20:34]]
    assert lines[3].endswith(' rolled back to release %s' % releases[1])
    assert not os.path.exists(os.path.join(deploy_to, '.capstan', 'lock'))
