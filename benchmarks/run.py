"""`make bench`: capstan's playbooks against Capistrano 3 and `ansible -m ping` on the test bed.

    sudo .venv/bin/python benchmarks/run.py [--hosts 1,5,20,50] [--rounds 3] [--sections ...]

Sections (all by default, --sections picks some):

- scale:   for each --hosts count, a --files-file git app (examples/app plus generated files,
           committed to a repository under /var/tmp that the hosts reach as file://). Each round
           commits a change, then times `ansible -m ping` (the floor), capstan deploy
           (playbooks/deploy.yml, deploy_strategy=git) and `cap deploy`, capstan's redeploy of
           what is live (nothing changed), another ping, capstan rollback (playbooks/rollback.yml)
           and `cap deploy:rollback`. capstan and Capistrano swap places every other round, so
           noise hits both alike.
- latency: the same on --latency-hosts hosts with --latency-ms added on every host (bed slow).
- prune:   one deploy on hosts whose trees already hold --prune-releases successful releases,
           for both tools (the deploy prunes them down to 5).
- copy:    a one-file change in a --copy-files-file app deployed with deploy_strategy=copy:
           what the second deploy sends and stores on a host, as a share of the app.
- mitogen: the capstan flows with and without mitogen's mitogen_linear strategy (installed by
           `make bench` outside .venv; never a requirement of the collection).

Every ansible command gets a fresh ControlPath directory (cold SSH connections, as Capistrano
has on every run); ansible.cfg's pipelining stays on. benchmarks/callback_plugins/capstan_bench.py
counts per host, in the timed runs themselves, the task results of the play recap and the module
runs. Writes benchmarks/results/latest.json, then benchmarks/report.py renders the dated section
of docs/benchmarks.md and its chart (unless --no-docs). No test asserts a time: this is the record.
"""

from __future__ import annotations

import argparse
import datetime
import glob
import json
import os
import platform
import re
import resource
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import traceback

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
HERE = os.path.join(REPO, 'benchmarks')
sys.path.insert(0, os.path.join(REPO, 'tests', 'bed'))
sys.path.insert(0, os.path.join(REPO, 'tests', 'integration'))
sys.path.insert(0, HERE)

import bed  # noqa: E402  pylint: disable=wrong-import-position
from capistrano import Project  # noqa: E402  pylint: disable=wrong-import-position
import report  # noqa: E402  pylint: disable=wrong-import-position

BIN = os.path.dirname(sys.executable)
ANSIBLE = os.path.join(BIN, 'ansible')
PLAYBOOK = os.path.join(BIN, 'ansible-playbook')
RESULTS = os.path.join(HERE, 'results', 'latest.json')
LOGS = os.path.join(HERE, 'output', 'logs')
CAPSTAN_TO, CAP_TO = '/srv/bench-capstan', '/srv/bench-cap'
LINKED = {'deploy_linked_dirs': ['log'], 'deploy_linked_files': ['config/app.yml']}


class RunFailed(RuntimeError):
    """A timed command failed: the figure it was for is not measured."""


class RunTimedOut(RunFailed):
    """A timed command hung and was killed."""


def text_of(output):
    if output is None:
        return ''
    return output.decode('utf-8', 'replace') if isinstance(output, bytes) else output


def log(message):
    sys.stderr.write('[bench %s] %s\n' % (time.strftime('%H:%M:%S'), message))
    sys.stderr.flush()


def machine_jiffies():
    """(busy, total) CPU jiffies of the whole machine, from /proc/stat: hosts' sshds count too."""
    with open('/proc/stat') as handle:
        fields = [int(value) for value in handle.readline().split()[1:]]
    idle = fields[3] + (fields[4] if len(fields) > 4 else 0)
    return sum(fields) - idle, sum(fields)


def settle(limit, most):
    """Wait (at most ``most`` seconds) until the machine, sampled over 1 s, is busy less than ``limit``.

    Returns (seconds waited, busy share of the last sample). Our own commands are not running
    then, so what is left is other work on the machine: waiting for it to pass keeps bursts of
    it out of the figures (the rest is reported, never hidden).
    """
    start = time.monotonic()
    while True:
        busy0, total0 = machine_jiffies()
        time.sleep(1)
        busy1, total1 = machine_jiffies()
        share = (busy1 - busy0) / float(max(1, total1 - total0))
        waited = time.monotonic() - start
        if share < limit or waited >= most:
            return round(waited, 1), round(share, 3)


def children_cpu():
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


class Bench(object):
    """Runs and times the commands; every sample is a dict kept in self.results."""

    def __init__(self, args):
        self.args = args
        self.workdir = tempfile.mkdtemp(prefix='capstan-bench-', dir='/var/tmp')
        self.logdir = os.path.join(LOGS, time.strftime('%Y%m%dT%H%M%S'))
        os.makedirs(self.logdir)
        self.serial = 0
        self.inventory = None
        self.addresses = {}
        self.results = {
            'started': datetime.datetime.now(datetime.timezone.utc).strftime('%Y-%m-%dT%H:%M:%SZ'),
            # The commit measured, and whether tracked files differed from it when the run started.
            'source': report.source_state(REPO),
            'args': vars(args),
            'machine': machine_facts(args),
            'sections': {},
            'errors': [],
        }

    # --- the bed ------------------------------------------------------------------------------

    def hosts_up(self, count, latency_ms=0):
        self.inventory = str(bed.up(count))
        self.addresses = {}
        with open(self.inventory) as handle:
            for line in handle:
                if line.startswith('host') and 'ansible_host=' in line:
                    name = line.split()[0]
                    self.addresses[line.split('ansible_host=')[1].split()[0]] = name
        for index in range(1, count + 1):
            bed.run_on(index, 'rm -rf /srv/bench-*', check=True)
            if latency_ms:
                bed.slow(index, latency_ms)
        return sorted(self.addresses, key=lambda address: int(address.rsplit('.', 1)[1]))

    def seed_shared(self, count, deploy_to):
        for index in range(1, count + 1):
            bed.run_on(index, 'mkdir -p {d}/shared/config {d}/shared/log && echo "greeting: bench" > {d}/shared/config/app.yml'
                       .format(d=deploy_to), check=True)

    # --- running commands ---------------------------------------------------------------------

    def ansible_env(self, control_dir, counts, mitogen=False):
        env = dict(os.environ)
        for key in list(env):
            if key.startswith('ANSIBLE_'):
                del env[key]
        env.update({
            'ANSIBLE_CONFIG': os.path.join(REPO, 'ansible.cfg'),
            'ANSIBLE_NOCOLOR': '1',
            'ANSIBLE_SSH_CONTROL_PATH_DIR': control_dir,
            'ANSIBLE_LOAD_CALLBACK_PLUGINS': '1',
            'ANSIBLE_CALLBACK_PLUGINS': os.path.join(HERE, 'callback_plugins'),
            'ANSIBLE_CALLBACKS_ENABLED': 'capstan_bench',
            'CAPSTAN_BENCH_COUNTS': counts,
            # mitogen checks host keys itself; bed hosts get new keys on every `bed up`.
            'ANSIBLE_HOST_KEY_CHECKING': 'False',
            'ANSIBLE_DEPRECATION_WARNINGS': 'False',
            # SSH connect timeout, the same for every run: at 10 s (ansible's default) a loaded machine
            # made mitogen report a host unreachable.
            'ANSIBLE_TIMEOUT': str(self.args.connect_timeout),
        })
        if self.args.forks:
            env['ANSIBLE_FORKS'] = str(self.args.forks)
        if mitogen:
            env['ANSIBLE_STRATEGY_PLUGINS'] = os.path.join(self.args.mitogen_path, 'ansible_mitogen', 'plugins', 'strategy')
            env['ANSIBLE_STRATEGY'] = 'mitogen_linear'
        return env

    def timed(self, label, cmd, cwd=REPO, env=None, timeout=None):
        """Run cmd; return its seconds, controller CPU seconds and machine busy share. Raises RunFailed."""
        self.serial += 1
        logfile = os.path.join(self.logdir, '%04d-%s.log' % (self.serial, re.sub(r'[^A-Za-z0-9_.-]+', '_', label)))
        busy0, total0 = machine_jiffies()
        cpu0 = children_cpu()
        start = time.monotonic()
        try:
            proc = run_group(cmd, cwd, env, timeout or self.args.timeout)
        except subprocess.TimeoutExpired as expired:
            with open(logfile, 'w') as handle:
                output = (text_of(expired.stdout), text_of(expired.stderr))
                handle.write('$ %s\n# killed after %.0f s\n%s\n--- stderr\n%s' % ((' '.join(cmd), expired.timeout) + output))
            raise RunTimedOut('%s did not finish in %.0f s, killed (log %s)' % (label, expired.timeout, os.path.relpath(logfile, REPO)))
        seconds = time.monotonic() - start
        cpu = children_cpu() - cpu0
        busy1, total1 = machine_jiffies()
        with open(logfile, 'w') as handle:
            handle.write('$ %s\n# rc %d, %.2f s\n%s\n--- stderr\n%s' % (' '.join(cmd), proc.returncode, seconds, proc.stdout, proc.stderr))
        if proc.returncode != 0:
            where = os.path.relpath(logfile, REPO)
            raise RunFailed('%s failed (rc %d, log %s): %s' % (label, proc.returncode, where, last_error(proc.stdout + '\n' + proc.stderr)))
        return {'seconds': round(seconds, 3), 'controller_cpu': round(cpu, 3),
                'machine_busy': round((busy1 - busy0) / float(max(1, total1 - total0)), 3),
                'log': os.path.relpath(logfile, REPO)}

    def ansible(self, label, cmd, mitogen=False):
        """An ansible/ansible-playbook run with cold connections; the sample includes per-host counts."""
        control_dir = tempfile.mkdtemp(prefix='cb', dir='/tmp')
        counts = os.path.join(self.workdir, 'counts-%d.jsonl' % (self.serial + 1))
        try:
            sample = self.timed(label, cmd, env=self.ansible_env(control_dir, counts, mitogen))
        finally:
            close_masters(control_dir)
        sample.update(read_counts(counts, self.addresses))
        bad = dict((host, recap) for host, recap in sample['recap'].items() if recap['failed'] or recap['unreachable'])
        if bad:
            raise RunFailed('%s: hosts failed or unreachable: %s' % (label, bad))
        return sample

    def ping(self, label='ping', mitogen=False):
        return self.ansible(label, [ANSIBLE, 'bed', '-i', self.inventory, '-m', 'ansible.builtin.ping'], mitogen=mitogen)

    def floor(self, label, tasks):
        """A playbook of ``tasks`` ping tasks: what any playbook with that many module runs per host costs here."""
        path = os.path.join(self.workdir, 'floor-%d.yml' % tasks)
        if not os.path.exists(path):
            with open(path, 'w') as handle:
                handle.write(floor_playbook(tasks))
        return self.ansible(label, [PLAYBOOK, path, '-i', self.inventory])

    def capstan_deploy(self, label, deploy_to, extra, mitogen=False):
        cmd = [PLAYBOOK, 'playbooks/deploy.yml', '-i', self.inventory, '-e', 'deploy_to=' + deploy_to, '-e', json.dumps(LINKED)]
        for key, value in extra.items():
            cmd += ['-e', '%s=%s' % (key, value)]
        return self.ansible(label, cmd, mitogen=mitogen)

    def capstan_rollback(self, label, deploy_to, mitogen=False):
        return self.ansible(label, [PLAYBOOK, 'playbooks/rollback.yml', '-i', self.inventory, '-e', 'deploy_to=' + deploy_to],
                            mitogen=mitogen)

    def cap(self, label, project, task):
        env = dict(os.environ, USER='bench')
        env.pop('CAPSTAN_DEPLOY_TO', None)
        env.pop('CAPSTAN_KEEP_RELEASES', None)
        try:
            return self.timed(label, ['cap', 'bed', task], cwd=project.project, env=env, timeout=self.args.cap_timeout)
        except RunTimedOut as error:
            # Seen at 20 hosts: `cap deploy:rollback` waiting forever on one host's channel, its sshd
            # session idle. Say so, and run the same command once more (a second hang fails the section).
            self.results.setdefault('cap_hangs', []).append({'label': label, 'error': str(error)})
            log('%s; running it again' % error)
            return self.timed(label + '-again', ['cap', 'bed', task], cwd=project.project, env=env, timeout=self.args.cap_timeout)

    def settle(self, section):
        if self.args.settle <= 0:
            return
        waited, share = settle(self.args.settle_busy, self.args.settle)
        section.setdefault('settle', []).append({'waited': waited, 'busy': share})
        if waited >= 1.5:
            log('waited %.0f s for a quieter machine (busy %.0f%% then)' % (waited, 100 * share))

    # --- sections -----------------------------------------------------------------------------

    def project(self, name, addresses, files):
        app = make_app(os.path.join(self.workdir, name), files)
        return Project(os.path.join(self.workdir, name, 'capistrano'), addresses, str(bed.state_dir() / 'id_ed25519'), CAP_TO, app,
                       linked_files=LINKED['deploy_linked_files'], linked_dirs=LINKED['deploy_linked_dirs'])

    def flows(self, name, hosts, latency_ms=0):
        """One scale point: ping, deploy, redeploy, rollback for capstan and Capistrano, --rounds times."""
        section = {'hosts': hosts, 'latency_ms': latency_ms, 'files': self.args.files, 'loadavg_before': os.getloadavg(),
                   'samples': dict((key, []) for key in report.FLOW_KEYS)}
        self.results['sections'][name] = section
        addresses = self.hosts_up(hosts, latency_ms)
        self.seed_shared(hosts, CAPSTAN_TO)
        self.seed_shared(hosts, CAP_TO)
        project = self.project(name, addresses, self.args.files)
        git = {'deploy_strategy': 'git', 'deploy_repo_url': 'file://' + project.repo, 'deploy_version': 'main'}
        samples = section['samples']
        # A first release for each tool (a full clone: recorded, not part of the figures), so every
        # timed deploy is an update and every rollback has somewhere to go.
        section['first'] = {'capstan_deploy': self.capstan_deploy(name + '-capstan-first', CAPSTAN_TO, git),
                            'cap_deploy': self.cap(name + '-cap-first', project, 'deploy')}
        live = head(project)
        expect(hosts, 'first deploys', {CAPSTAN_TO: live, CAP_TO: live})
        for round_ in range(self.args.rounds):
            self.settle(section)
            log('%s: round %d/%d' % (name, round_ + 1, self.args.rounds))
            sha = project.commit('round %d' % round_, {'public/VERSION': 'round %d\n' % round_})
            samples['ping'].append(self.ping(name + '-ping'))
            samples['floor_deploy'].append(self.floor(name + '-floor-%d' % report.FLOOR_TASKS['deploy'], report.FLOOR_TASKS['deploy']))
            pairs = [('capstan_deploy', lambda: self.capstan_deploy(name + '-capstan-deploy', CAPSTAN_TO, git)),
                     ('cap_deploy', lambda: self.cap(name + '-cap-deploy', project, 'deploy'))]
            for key, run in pairs if round_ % 2 == 0 else reversed(pairs):
                samples[key].append(run())
            expect(hosts, 'deploys of round %d' % (round_ + 1), {CAPSTAN_TO: sha, CAP_TO: sha})
            redeploy = self.capstan_deploy(name + '-capstan-redeploy', CAPSTAN_TO, git)
            samples['capstan_redeploy'].append(redeploy)
            changed = dict((host, counts['changed']) for host, counts in redeploy['recap'].items() if counts['changed'])
            if changed:
                raise RunFailed('the redeploy of what is live changed something: %s' % changed)
            samples['ping'].append(self.ping(name + '-ping'))
            samples['floor_rollback'].append(self.floor(name + '-floor-%d' % report.FLOOR_TASKS['rollback'],
                                                        report.FLOOR_TASKS['rollback']))
            pairs = [('capstan_rollback', lambda: self.capstan_rollback(name + '-capstan-rollback', CAPSTAN_TO)),
                     ('cap_rollback', lambda: self.cap(name + '-cap-rollback', project, 'deploy:rollback'))]
            for key, run in pairs if round_ % 2 == 0 else reversed(pairs):
                samples[key].append(run())
            expect(hosts, 'rollbacks of round %d' % (round_ + 1), {CAPSTAN_TO: live, CAP_TO: live})
        section['loadavg_after'] = os.getloadavg()

    def prune(self):
        hosts, count = self.args.prune_hosts, self.args.prune_releases
        section = {'hosts': hosts, 'releases': count, 'files': self.args.files, 'loadavg_before': os.getloadavg(),
                   'samples': {'capstan_deploy': [], 'cap_deploy': []}, 'after': {}}
        self.results['sections']['prune'] = section
        addresses = self.hosts_up(hosts)
        self.seed_shared(hosts, CAPSTAN_TO)
        self.seed_shared(hosts, CAP_TO)
        project = self.project('prune', addresses, self.args.files)
        git = {'deploy_strategy': 'git', 'deploy_repo_url': 'file://' + project.repo, 'deploy_version': 'main'}
        self.capstan_deploy('prune-capstan-first', CAPSTAN_TO, git)
        self.cap('prune-cap-first', project, 'deploy')
        for round_ in range(self.args.rounds):
            self.settle(section)
            log('prune: round %d/%d (%d releases on each of %d hosts)' % (round_ + 1, self.args.rounds, count, hosts))
            for deploy_to in (CAPSTAN_TO, CAP_TO):
                for index in range(1, hosts + 1):
                    fill_releases(index, deploy_to, count)
            project.commit('prune round %d' % round_, {'public/VERSION': 'prune %d\n' % round_})
            pairs = [('capstan_deploy', lambda: self.capstan_deploy('prune-capstan-deploy', CAPSTAN_TO, git)),
                     ('cap_deploy', lambda: self.cap('prune-cap-deploy', project, 'deploy'))]
            for key, run in pairs if round_ % 2 == 0 else reversed(pairs):
                section['samples'][key].append(run())
            sha = head(project)
            expect(hosts, 'prune deploys of round %d' % (round_ + 1), {CAPSTAN_TO: sha, CAP_TO: sha})
        for key, deploy_to in (('capstan', CAPSTAN_TO), ('cap', CAP_TO)):
            section['after'][key] = int(bed.run_on(1, 'ls %s/releases | wc -l' % deploy_to, check=True).stdout.strip())
        section['loadavg_after'] = os.getloadavg()

    def copy(self):
        hosts, files = self.args.copy_hosts, self.args.copy_files
        section = {'hosts': hosts, 'files': files, 'loadavg_before': os.getloadavg(), 'samples': {'capstan_deploy': []}, 'rounds': []}
        self.results['sections']['copy'] = section
        self.hosts_up(hosts)
        self.seed_shared(hosts, CAPSTAN_TO)
        app = make_app(os.path.join(self.workdir, 'copy'), files)
        section['app_bytes'] = tree_bytes(app)
        section['app_files'] = count_files(app)
        copy = {'deploy_strategy': 'copy', 'deploy_src': app}
        section['first'] = self.capstan_deploy('copy-capstan-first', CAPSTAN_TO, copy)
        for round_ in range(self.args.rounds):
            self.settle(section)
            log('copy: round %d/%d (%d files)' % (round_ + 1, self.args.rounds, files))
            before = current_release(1, CAPSTAN_TO)
            with open(os.path.join(app, 'public', 'VERSION'), 'w') as handle:
                handle.write('copy round %d\n' % round_)
            sample = self.capstan_deploy('copy-capstan-deploy', CAPSTAN_TO, copy)
            section['samples']['capstan_deploy'].append(sample)
            after = current_release(1, CAPSTAN_TO)
            section['rounds'].append(dict(du_pair(1, CAPSTAN_TO, before, after), previous=before, release=after,
                                          reported=sample.get('content', {}).get('host1')))
        section['loadavg_after'] = os.getloadavg()

    def mitogen(self):
        hosts = self.args.mitogen_hosts
        section = {'hosts': hosts, 'files': self.args.files, 'path': self.args.mitogen_path,
                   'version': mitogen_version(self.args.mitogen_path), 'loadavg_before': os.getloadavg(),
                   'samples': {}, 'failures': []}
        self.results['sections']['mitogen'] = section
        if not section['version']:
            section['failures'].append('mitogen is not installed at %s (make bench installs it)' % self.args.mitogen_path)
            return
        addresses = self.hosts_up(hosts)
        project = self.project('mitogen', addresses, self.args.files)
        git = {'deploy_strategy': 'git', 'deploy_repo_url': 'file://' + project.repo, 'deploy_version': 'main'}
        trees = {'linear': '/srv/bench-linear', 'mitogen': '/srv/bench-mitogen'}
        broken = set()
        for mode, deploy_to in trees.items():
            self.seed_shared(hosts, deploy_to)
            for key in ('ping', 'capstan_deploy', 'capstan_redeploy', 'capstan_rollback'):
                section['samples'][mode + '_' + key] = []
            try:
                self.capstan_deploy('mitogen-%s-first' % mode, deploy_to, git, mitogen=mode == 'mitogen')
            except RunFailed as error:
                section['failures'].append('%s first deploy: %s' % (mode, error))
                broken.add(mode)
        for round_ in range(self.args.rounds):
            self.settle(section)
            log('mitogen: round %d/%d' % (round_ + 1, self.args.rounds))
            modes = list(trees) if round_ % 2 == 0 else list(reversed(list(trees)))
            for mode in modes:
                if mode in broken:
                    continue
                on = mode == 'mitogen'
                project.commit('%s round %d' % (mode, round_), {'public/VERSION': '%s %d\n' % (mode, round_)})
                steps = [('ping', lambda: self.ping('mitogen-%s-ping' % mode, mitogen=on)),
                         ('capstan_deploy', lambda: self.capstan_deploy('mitogen-%s-deploy' % mode, trees[mode], git, mitogen=on)),
                         ('capstan_redeploy', lambda: self.capstan_deploy('mitogen-%s-redeploy' % mode, trees[mode], git, mitogen=on)),
                         ('capstan_rollback', lambda: self.capstan_rollback('mitogen-%s-rollback' % mode, trees[mode], mitogen=on))]
                for key, run in steps:
                    try:
                        section['samples'][mode + '_' + key].append(run())
                    except RunFailed as error:
                        section['failures'].append('%s %s: %s' % (mode, key, error))
                        broken.add(mode)
                        break
        section['loadavg_after'] = os.getloadavg()

    def run(self):
        sections = self.args.sections
        plan = []
        if 'scale' in sections:
            plan += [('hosts-%d' % count, lambda count=count: self.flows('hosts-%d' % count, count)) for count in self.args.hosts]
        if 'latency' in sections:
            name = 'latency-%dms' % self.args.latency_ms
            plan.append((name, lambda: self.flows(name, self.args.latency_hosts, self.args.latency_ms)))
        for name in ('prune', 'copy', 'mitogen'):
            if name in sections:
                plan.append((name, getattr(self, name)))
        started = time.monotonic()
        try:
            for name, step in plan:
                log('section %s' % name)
                begin = time.monotonic()
                try:
                    step()
                except (RunFailed, subprocess.CalledProcessError, OSError) as error:
                    detail = getattr(error, 'stderr', '') or ''
                    self.results['errors'].append({'section': name, 'error': '%s %s' % (error, detail.strip()[-500:])})
                    log('section %s failed: %s' % (name, error))
                    traceback.print_exc()
                if name in self.results['sections']:
                    self.results['sections'][name]['wall_seconds'] = round(time.monotonic() - begin, 1)
                self.save(started)
        finally:
            bed.down()
            shutil.rmtree(self.workdir, ignore_errors=True)
        self.save(started)
        return self.results

    def save(self, started):
        self.results['wall_seconds'] = round(time.monotonic() - started, 1)
        self.results['loadavg_end'] = os.getloadavg()
        os.makedirs(os.path.dirname(self.args.out), exist_ok=True)
        with open(self.args.out + '.tmp', 'w') as handle:
            json.dump(self.results, handle, indent=1, sort_keys=True)
        os.replace(self.args.out + '.tmp', self.args.out)


# --- helpers ------------------------------------------------------------------------------------


def run_group(cmd, cwd, env, timeout):
    """subprocess.run in a session of its own: on timeout the whole group it started is killed."""
    with subprocess.Popen(cmd, cwd=cwd, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                          start_new_session=True) as proc:
        try:
            stdout, stderr = proc.communicate(timeout=timeout)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            stdout, stderr = proc.communicate()
            raise subprocess.TimeoutExpired(cmd, timeout, output=stdout, stderr=stderr)
    return subprocess.CompletedProcess(cmd, proc.returncode, stdout, stderr)


def last_error(text):
    """The lines of a failed run worth quoting: the first ERROR/fatal line and what follows."""
    lines = [line for line in text.splitlines() if line.strip()]
    for index, line in enumerate(lines):
        if re.search(r'ERROR|fatal:|FAILED!|Traceback|Error', line):
            return ' | '.join(lines[index:index + 4])[:600]
    return ' | '.join(lines[-4:])[:600]


def close_masters(control_dir):
    """Stop the SSH masters a run left (ControlPersist would keep them 60 s), then drop the dir."""
    for socket in glob.glob(os.path.join(control_dir, '*')):
        subprocess.run(['ssh', '-o', 'ControlPath=' + socket, '-O', 'exit', 'bench'], capture_output=True, check=False, timeout=30)
    shutil.rmtree(control_dir, ignore_errors=True)


def read_counts(path, addresses):
    """Per-host recap, task results, module runs, remote commands and content figures of one run."""
    recap, modules, commands, transfers, content, delegated = {}, {}, {}, {}, {}, {}
    try:
        with open(path) as handle:
            records = [json.loads(line) for line in handle if line.strip()]
    except (IOError, OSError):
        records = []
    for record in records:
        kind = record.get('kind')
        host = addresses.get(record.get('host'), record.get('host'))
        if kind == 'recap':
            recap = record['hosts']
        elif kind == 'result':
            content[host] = record['figures']
        elif record.get('delegate_to') not in (None, host):
            delegated[record['delegate_to']] = delegated.get(record['delegate_to'], 0) + 1
        elif kind == 'module':
            modules.setdefault(host, []).append(record.get('module'))
        elif kind == 'command':
            commands[host] = commands.get(host, 0) + 1
        elif kind == 'transfer':
            transfers[host] = transfers.get(host, 0) + 1
    per_host = {}
    for host, counts in recap.items():
        per_host[host] = {
            # Everything the recap counts once per task and host: ok (changed and ignored are part
            # of it) + failed + skipped + unreachable + rescued.
            'task_results': counts['ok'] + counts['failed'] + counts['skipped'] + counts['unreachable'] + counts['rescued'],
            'changed': counts['changed'],
            'skipped': counts['skipped'],
            'module_runs': len(modules.get(host, [])),
            'modules': modules.get(host, []),
            'remote_commands': commands.get(host, 0),
            'transfers': transfers.get(host, 0),
        }
    if os.path.exists(path):
        os.unlink(path)
    return {'recap': recap, 'per_host': per_host, 'content': content, 'delegated': delegated}


def floor_playbook(tasks):
    """The YAML of a play over the bed running ``tasks`` ansible.builtin.ping tasks, no facts."""
    lines = ['---', '- name: Floor of %d module runs per host' % tasks, '  hosts: bed', '  gather_facts: false', '  tasks:']
    for index in range(1, tasks + 1):
        lines += ['    - name: Module run %d' % index, '      ansible.builtin.ping:']
    return '\n'.join(lines) + '\n'


def make_app(workdir, files):
    """examples/app plus generated text files under public/assets/, ``files`` files in all."""
    app = os.path.join(workdir, 'app')
    shutil.copytree(os.path.join(REPO, 'examples', 'app'), app)
    have = count_files(app)
    assets = os.path.join(app, 'public', 'assets')
    os.makedirs(assets)
    for index in range(max(0, files - have - 1)):
        with open(os.path.join(assets, 'asset-%05d.txt' % index), 'w') as handle:
            handle.write(('asset %d\n' % index) * 64)
    with open(os.path.join(app, 'public', 'VERSION'), 'w') as handle:
        handle.write('first\n')
    return app


def tree_bytes(path):
    return sum(os.lstat(os.path.join(walked[0], name)).st_size for walked in os.walk(path) for name in walked[2])


def count_files(path):
    return sum(len(walked[2]) for walked in os.walk(path))


FILL = r'''
import datetime, os, sys
deploy_to, count = sys.argv[1], int(sys.argv[2])
releases = os.path.join(deploy_to, 'releases')
real = sorted(n for n in os.listdir(releases) if len(n) == 14 and n.isdigit())
current = os.path.basename(os.readlink(os.path.join(deploy_to, 'current')))
sha = open(os.path.join(releases, current, 'REVISION')).read().strip()
start = datetime.datetime(2020, 1, 1)
names = [(start + datetime.timedelta(minutes=i)).strftime('%Y%m%d%H%M%S') for i in range(count - len(real))]
lines = []
for name in names:
    path = os.path.join(releases, name)
    os.mkdir(path)
    with open(os.path.join(path, 'REVISION'), 'w') as handle:
        handle.write(sha + '\n')
    with open(os.path.join(path, 'REVISION_TIME'), 'w') as handle:
        handle.write('1577836800\n')
    with open(os.path.join(path, 'index.html'), 'w') as handle:
        handle.write('<p>%s</p>\n' % name)
    lines.append('Branch main (at %s) deployed as release %s by bench\n' % (sha, name))
log = os.path.join(deploy_to, 'revisions.log')
old = open(log).read() if os.path.exists(log) else ''
with open(log, 'w') as handle:
    handle.write(''.join(lines) + old)
print(len(os.listdir(releases)))
'''


def fill_releases(index, deploy_to, count):
    """Make host ``index``'s tree hold ``count`` releases: older ones that went live, as Capistrano records them.

    Each made release is a directory with REVISION, REVISION_TIME and one file, named by a valid
    UTC time in 2020 (older than every real one), with its deploy line in revisions.log: both
    tools count such a release as successful (capstan: named in revisions.log, no journal event).
    """
    done = bed.run_on(index, ['python3', '-c', FILL, deploy_to, str(count)], check=True)
    return int(done.stdout.strip())


def expect(hosts, what, revisions):
    """Every host's current/REVISION of each tree is the commit expected: a run that did nothing fails the run."""
    script = '; '.join('cat %s/current/REVISION 2>/dev/null || echo missing' % deploy_to for deploy_to in revisions)
    for index in range(1, hosts + 1):
        found = bed.run_on(index, script).stdout.split()
        for (deploy_to, sha), got in zip(revisions.items(), found + ['missing'] * len(revisions)):
            if got != sha:
                raise RunFailed('after the %s host%d has %s live in %s, not %s' % (what, index, got, deploy_to, sha))


def head(project):
    return subprocess.run(['git', 'rev-parse', 'HEAD'], cwd=project.checkout, capture_output=True, text=True, check=True).stdout.strip()


def current_release(index, deploy_to):
    return bed.run_on(index, 'basename "$(readlink %s/current)"' % deploy_to, check=True).stdout.strip()


def du_pair(index, deploy_to, before, after):
    """Bytes the new release adds on disk beside the previous one (du counts a hard-linked inode once)."""
    figures = {}
    for key, flag in (('disk', ''), ('apparent', '--apparent-size ')):
        out = bed.run_on(index, 'cd %s/releases && du -s -B1 %s%s %s' % (deploy_to, flag, before, after), check=True).stdout.split()
        figures['previous_' + key] = int(out[0])
        figures['added_' + key] = int(out[2])
        alone = bed.run_on(index, 'cd %s/releases && du -s -B1 %s%s' % (deploy_to, flag, after), check=True).stdout.split()
        figures['release_' + key] = int(alone[0])
    return figures


def mitogen_version(path):
    if not path:
        return None
    infos = glob.glob(os.path.join(path, 'mitogen-*.dist-info'))
    if not infos or not os.path.isdir(os.path.join(path, 'ansible_mitogen')):
        return None
    return os.path.basename(infos[0])[len('mitogen-'):-len('.dist-info')]


def command_version(cmd):
    try:
        return subprocess.run(cmd, capture_output=True, text=True, check=False, timeout=60).stdout.strip().splitlines()[0]
    except (OSError, IndexError, subprocess.TimeoutExpired):
        return None


def ansible_forks(args):
    if args.forks:
        return args.forks
    out = subprocess.run([os.path.join(BIN, 'ansible-config'), 'dump', '--only-changed'], cwd=REPO, capture_output=True, text=True,
                         env=dict(os.environ, ANSIBLE_CONFIG=os.path.join(REPO, 'ansible.cfg')), check=False).stdout
    match = re.search(r'^DEFAULT_FORKS\(.*\) = (\d+)', out, re.M)
    return int(match.group(1)) if match else 5


def machine_facts(args):
    with open('/proc/meminfo') as handle:
        mem = int(handle.readline().split()[1]) // 1024
    return {
        'cpus': os.cpu_count(),
        'mem_mib': mem,
        'kernel': platform.release(),
        'python': platform.python_version(),
        'ansible': command_version([os.path.join(BIN, 'ansible'), '--version']),
        'capistrano': command_version(['cap', '--version']),
        'forks': ansible_forks(args),
        'loadavg_start': os.getloadavg(),
    }


def int_list(text):
    return [int(part) for part in text.split(',') if part.strip()]


def word_list(text):
    return [part.strip() for part in text.split(',') if part.strip()]


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split('\n', maxsplit=1)[0])
    parser.add_argument('--hosts', type=int_list, default=[1, 5, 20, 50], help='host counts of the scale section (default 1,5,20,50)')
    parser.add_argument('--rounds', type=int, default=3, help='samples per figure (default 3)')
    parser.add_argument('--files', type=int, default=1000, help='files in the git app (default 1000)')
    parser.add_argument('--sections', default='scale,latency,prune,copy,mitogen',
                        type=word_list, help='which sections, comma-separated (default all)')
    parser.add_argument('--latency-ms', type=int, default=50)
    parser.add_argument('--latency-hosts', type=int, default=5)
    parser.add_argument('--prune-releases', type=int, default=1000)
    parser.add_argument('--prune-hosts', type=int, default=5)
    parser.add_argument('--copy-files', type=int, default=10000)
    parser.add_argument('--copy-hosts', type=int, default=1)
    parser.add_argument('--mitogen-hosts', type=int, default=5)
    parser.add_argument('--mitogen-path', default=os.environ.get('CAPSTAN_BENCH_MITOGEN', ''),
                        help='a pip --target dir holding mitogen (make bench passes it)')
    parser.add_argument('--settle', type=float, default=30,
                        help='before each round wait up to this many seconds for other work on the machine to pass (0: never)')
    parser.add_argument('--settle-busy', type=float, default=0.3,
                        help='...until the machine is busy less than this share of its CPUs over 1 s (default 0.3)')
    parser.add_argument('--connect-timeout', type=int, default=30, help='ANSIBLE_TIMEOUT for every ansible run (default 30)')
    parser.add_argument('--timeout', type=float, default=1800, help='seconds before an ansible command is killed (default 1800)')
    parser.add_argument('--cap-timeout', type=float, default=300,
                        help='seconds before a cap command is killed and run once more (default 300)')
    parser.add_argument('--forks', type=int, default=0, help="ansible forks (default: ansible.cfg's)")
    parser.add_argument('--out', default=RESULTS)
    parser.add_argument('--docs', default=os.path.join(REPO, 'docs', 'benchmarks.md'))
    parser.add_argument('--no-docs', action='store_true', help='write latest.json only')
    args = parser.parse_args(argv)
    unknown = set(args.sections) - {'scale', 'latency', 'prune', 'copy', 'mitogen'}
    if unknown:
        parser.error('unknown sections: %s' % ', '.join(sorted(unknown)))
    if args.mitogen_path:
        args.mitogen_path = os.path.abspath(args.mitogen_path)
    return args


def main():
    args = parse_args()
    if os.geteuid() != 0:
        raise SystemExit('benchmarks/run.py needs root (the test bed makes network namespaces)')
    results = Bench(args).run()
    log('results in %s' % os.path.relpath(args.out, REPO))
    if not args.no_docs:
        written = report.write(results, args.docs)
        log('wrote %s' % ', '.join(os.path.relpath(path, REPO) for path in written))
    print(report.summary_text(results))
    return 1 if results['errors'] else 0


if __name__ == '__main__':
    sys.exit(main())
