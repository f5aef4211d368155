"""Side-by-side timings on the test bed: capstan's playbooks, Capistrano 3, and `ansible -m ping`.

    sudo .venv/bin/python benchmarks/run.py [--hosts 3] [--rounds 5] [--files 2000]

Every tool runs against the same N bed hosts in the same run, each measurement repeated
--rounds times; the report gives medians and ratios to Capistrano (the anchor) and to
`ansible -m ping` (the floor: one module round trip per host). Each ansible command gets a
fresh ControlPath directory, so no run reuses another's SSH connections (Capistrano keeps
none across runs either). The app is examples/app plus --files small generated files, so
deploy time can be compared with app size. Writes benchmarks/results/latest.json and prints
a Markdown table for docs/benchmarks.md.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(REPO, 'tests', 'bed'))
sys.path.insert(0, os.path.join(REPO, 'tests', 'integration'))

import bed  # noqa: E402  pylint: disable=wrong-import-position
from capistrano import Project  # noqa: E402  pylint: disable=wrong-import-position

BIN = os.path.dirname(sys.executable)


def ansible_env():
    env = dict(os.environ, ANSIBLE_CONFIG=os.path.join(REPO, 'ansible.cfg'), ANSIBLE_NOCOLOR='1',
               ANSIBLE_SSH_CONTROL_PATH_DIR=tempfile.mkdtemp(prefix='capstan-bench-cp-'))
    return env


def timed(cmd, cwd=REPO, env=None):
    """Seconds one command took; raises with its output when it fails."""
    start = time.monotonic()
    proc = subprocess.run(cmd, cwd=cwd, env=env, capture_output=True, text=True, check=False, timeout=1800)
    seconds = time.monotonic() - start
    if proc.returncode != 0:
        raise RuntimeError('%s failed (rc %d): %s %s' % (' '.join(cmd), proc.returncode, proc.stdout[-2000:], proc.stderr[-2000:]))
    return seconds


def make_app(workdir, files):
    """examples/app plus ``files`` generated text files under public/assets/."""
    app = os.path.join(workdir, 'app')
    shutil.copytree(os.path.join(REPO, 'examples', 'app'), app)
    assets = os.path.join(app, 'public', 'assets')
    os.makedirs(assets)
    for index in range(files):
        with open(os.path.join(assets, 'asset-%05d.txt' % index), 'w') as handle:
            handle.write(('asset %d\n' % index) * 64)
    return app


def bump(app, version):
    with open(os.path.join(app, 'public', 'VERSION'), 'w') as handle:
        handle.write('%s\n' % version)


def seed_shared(hosts, deploy_to):
    for index in range(1, hosts + 1):
        bed.run_on(index, 'mkdir -p %s/shared/config && echo "greeting: bench" > %s/shared/config/app.yml'
                   % (deploy_to, deploy_to), check=True)


def main():
    parser = argparse.ArgumentParser(description=__doc__.split('\n', maxsplit=1)[0])
    parser.add_argument('--hosts', type=int, default=3)
    parser.add_argument('--rounds', type=int, default=5)
    parser.add_argument('--files', type=int, default=2000)
    args = parser.parse_args()

    inventory = str(bed.up(args.hosts))
    workdir = tempfile.mkdtemp(prefix='capstan-bench-', dir='/var/tmp')
    app = make_app(workdir, args.files)
    links = ['-e', json.dumps({'deploy_linked_dirs': ['log'], 'deploy_linked_files': ['config/app.yml']})]
    ours, theirs = '/srv/bench-capstan', '/srv/bench-cap'
    seed_shared(args.hosts, ours)
    seed_shared(args.hosts, theirs)
    with open(inventory) as handle:
        addresses = [line.split('ansible_host=')[1].split()[0] for line in handle if line.startswith('host')]
    project = Project(os.path.join(workdir, 'cap'), addresses, str(bed.state_dir() / 'id_ed25519'), theirs, app,
                      linked_files=['config/app.yml'], linked_dirs=['log'])

    playbook = os.path.join(BIN, 'ansible-playbook')
    samples = dict((key, []) for key in ('ping', 'capstan_deploy', 'capstan_rollback', 'cap_deploy', 'cap_rollback'))

    def capstan_deploy(version):
        bump(app, version)
        return timed([playbook, 'playbooks/deploy.yml', '-i', inventory, '-e', 'deploy_to=' + ours,
                      '-e', 'deploy_src=' + app] + links, env=ansible_env())

    def cap(*tasks):
        return timed(['cap', 'bed'] + list(tasks), cwd=project.project, env=dict(os.environ, USER='bench'))

    # A first release for each tool, so every timed deploy is an update and every rollback has somewhere to go.
    capstan_deploy('first')
    cap('deploy')
    for round_ in range(args.rounds):
        samples['ping'].append(timed([os.path.join(BIN, 'ansible'), 'bed', '-i', inventory, '-m', 'ansible.builtin.ping'],
                                     env=ansible_env()))
        samples['capstan_deploy'].append(capstan_deploy('capstan-%d' % round_))
        samples['capstan_rollback'].append(timed([playbook, 'playbooks/rollback.yml', '-i', inventory, '-e', 'deploy_to=' + ours],
                                                 env=ansible_env()))
        project.commit('round %d' % round_, {'public/VERSION': 'cap-%d\n' % round_})
        samples['cap_deploy'].append(cap('deploy'))
        samples['cap_rollback'].append(cap('deploy:rollback'))

    medians = dict((key, statistics.median(values)) for key, values in samples.items())
    report = {'hosts': args.hosts, 'rounds': args.rounds, 'app_files': args.files + 3, 'samples': samples, 'medians': medians}
    os.makedirs(os.path.join(REPO, 'benchmarks', 'results'), exist_ok=True)
    with open(os.path.join(REPO, 'benchmarks', 'results', 'latest.json'), 'w') as handle:
        json.dump(report, handle, indent=2, sort_keys=True)
    rows = [('ansible -m ping (floor)', 'ping', None),
            ('capstan deploy (playbooks/deploy.yml, copy)', 'capstan_deploy', 'cap_deploy'),
            ('cap deploy (git)', 'cap_deploy', 'cap_deploy'),
            ('capstan rollback (playbooks/rollback.yml)', 'capstan_rollback', 'cap_rollback'),
            ('cap deploy:rollback', 'cap_rollback', 'cap_rollback')]
    print('| %d hosts, %d files, median of %d | seconds | x ping (floor) | x Capistrano |' % (args.hosts, args.files + 3, args.rounds))
    print('|---|---:|---:|---:|')
    for label, key, anchor in rows:
        ratio = '%.2f' % (medians[key] / medians[anchor]) if anchor else ''
        print('| %s | %.2f | %.1f | %s |' % (label, medians[key], medians[key] / medians['ping'], ratio))
    shutil.rmtree(workdir)
    bed.down()


if __name__ == '__main__':
    main()
