"""The fault-injection harness: playbook runs that can be stopped at any stage, and the "nothing lost" check.

Black-box: the cases drive playbooks/deploy.yml, rollback.yml and releases.yml with -e variables
and read the hosts' files (probe.py). They know the flows' stage names (DESIGN.md) and, in one
place only, the names of the roles' step tasks: STAGE_BANNERS.

Two ways to stop a run where a fault goes in:
- at a hook point: deploy_hooks puts, at that point, a task that marks "<host>.<point>" under
  /var/tmp (which the hosts share with the controller) and waits for "go.<point>"; the case
  injects its fault once every host marked, then says go (Hooks);
- while a step's module runs: Play reads ansible-playbook's output as it comes and the case acts
  shortly after the step's TASK banner (Play.wait_step), the hosts slowed so the module is in flight.
"""

from __future__ import annotations

import json
import os
import pathlib
import re
import shlex
import shutil
import signal
import subprocess
import tempfile
import threading
import time
import warnings

# The integration tests' helpers, imported (not copied), as the integration tests import them.
from ansible_collections.capstan.release.tests.integration.faults import descendants, processes
from ansible_collections.capstan.release.tests.integration.helpers import (LINKS, PLAYBOOK, REPO, TASK, Run, app, bed, env,
                                                                           ok, play, prepare_shared)

HERE = os.path.dirname(os.path.abspath(__file__))
HOSTS = 3

# --- the flows ----------------------------------------------------------------------------------

STAGES = {
    'deploy': ('starting', 'started', 'updating', 'updated', 'publishing', 'published', 'finishing', 'finished'),
    'rollback': ('starting', 'started', 'reverting', 'reverted', 'publishing', 'published', 'finishing_rollback',
                 'finished'),
}
# Hook points in the order a run passes them: before_starting, after_starting, before_started, ...
POINTS = dict((flow, tuple('%s_%s' % (when, stage) for stage in stages for when in ('before', 'after')))
              for flow, stages in STAGES.items())
# The stage after which a run's work is recorded and there is no going back (the deploy is in
# revisions.log, as Capistrano logs it, at finished; the release a rollback left is archived and gone).
RECORDED = {'deploy': 'finished', 'rollback': 'finishing_rollback'}

# The one place that knows the roles' task names: the TASK banner(s) with which each step's module
# starts. The rewritten roles name them "Deploy:<step> ..."; today's roles use the names after it.
STAGE_BANNERS = {
    'deploy': {
        'starting': ('Take the deploy lock and read the tree',),
        'updating': ('Create release ', 'Put the content of the new release in place'),
        'publishing': ('Switch current to release ',),
        'finishing': ('Record the deploy in revisions.log', 'Prune old releases'),
        'finished': ('Release the deploy lock',),
    },
    'rollback': {
        'starting': ('Take the deploy lock', 'Find the release to roll back to'),
        'publishing': ('Switch current back to the target release',),
        'finishing_rollback': ('Archive and remove the release the rollback left',),
        'finished': ('Release the deploy lock',),
    },
}
STEPS = dict((flow, tuple(banners)) for flow, banners in STAGE_BANNERS.items())


def step_of(flow, task):
    """The step of ``flow`` whose module a TASK banner's name starts, or None."""
    match = re.match(r'Deploy:(\w+)', task)
    if match:
        return match.group(1) if match.group(1) in STAGE_BANNERS[flow] else None
    for step, banners in STAGE_BANNERS[flow].items():
        if task.startswith(banners):
            return step
    return None


def phase(flow, point):
    """Where a hook point lies: 'before' the switch, 'live' (switched, not yet recorded), 'recorded'."""
    index = POINTS[flow].index(point)
    if index <= POINTS[flow].index('before_publishing'):
        return 'before'
    if index <= POINTS[flow].index('before_' + RECORDED[flow]):
        return 'live'
    return 'recorded'


# --- processes ----------------------------------------------------------------------------------

# ansible.cfg's SSH options, with keepalives that notice a cut host in about 3 s instead of 10.
SSH_ARGS = '-o ControlMaster=auto -o ControlPersist=60s -o ServerAliveInterval=1 -o ServerAliveCountMax=3'
PLAY_TIMEOUT = 600   # a bound on every run: one that hangs fails the case, it never blocks the suite
MARK_TIMEOUT = 120   # a bound on waiting for every host to reach a hook point
BREAK_LOCK = ('-e', 'deploy_break_lock=true')


def run_processes(pid, control_dir):
    """ansible-playbook ``pid``, every process under it, and the SSH masters of its control dir
    (ControlPersist masters leave the tree: their command line names the run's own control dir)."""
    table = processes()
    masters = set(p for p, (_ppid, cmd) in table.items() if cmd.startswith('ssh') and control_dir in cmd)
    return ({pid} if pid in table else set()) | descendants({pid}, table) | masters


def _signal(pids, signum):
    for pid in pids:
        try:
            os.kill(pid, signum)
        except ProcessLookupError:
            pass


def kill_tree(pid, control_dir):
    """A controller crash: SIGKILL for the whole run at once. The tree is stopped first (SIGSTOP,
    until no new process appears, at most 20 looks), so nothing forks or reparents while we look."""
    stopped = set()
    for _look in range(20):
        new = run_processes(pid, control_dir) - stopped
        if not new:
            break
        _signal(new, signal.SIGSTOP)
        stopped |= new
    _signal(stopped, signal.SIGKILL)


class Play(object):
    """One ansible-playbook run in the background; its output is read line by line as it comes."""

    def __init__(self, argv, cwd=REPO):
        self.argv = list(argv)
        # Its own SSH control dir (short: socket paths must fit in 108 bytes), so its masters are known.
        self.control_dir = tempfile.mkdtemp(prefix='cf', dir='/tmp')
        environ = env()
        environ.update(PYTHONUNBUFFERED='1', ANSIBLE_SSH_CONTROL_PATH_DIR=self.control_dir, ANSIBLE_SSH_ARGS=SSH_ARGS)
        self.proc = subprocess.Popen(self.argv, cwd=cwd, env=environ, stdout=subprocess.PIPE,
                                     stderr=subprocess.PIPE, text=True, bufsize=1)
        self.pid = self.proc.pid
        self.out, self.err, self.tasks = [], [], []
        self._news = threading.Condition()
        self._readers = [threading.Thread(target=self._read, args=(stream, lines), daemon=True)
                         for stream, lines in ((self.proc.stdout, self.out), (self.proc.stderr, self.err))]
        for reader in self._readers:
            reader.start()

    def _read(self, stream, lines):
        for line in stream:
            with self._news:
                lines.append(line)
                match = TASK.match(line.rstrip('\n')) if lines is self.out else None
                if match:
                    self.tasks.append(match.group(1))
                self._news.notify_all()
        with self._news:
            self._news.notify_all()

    def running(self):
        return self.proc.poll() is None

    def wait_step(self, flow, step, timeout=PLAY_TIMEOUT):
        """Block until the TASK banner of ``step``'s module shows; returns the task name."""
        deadline = time.monotonic() + timeout
        seen = 0
        with self._news:
            while True:
                for name in self.tasks[seen:]:
                    if step_of(flow, name) == step:
                        return name
                seen = len(self.tasks)
                assert self.running(), 'the run ended before step %s of %s: %r' % (step, flow, self.result())
                assert time.monotonic() < deadline, 'no step %s of %s within %d s (hung?)' % (step, flow, timeout)
                self._news.wait(0.5)

    def kill(self):
        """Crash the controller: the whole process tree, SIGKILL."""
        kill_tree(self.pid, self.control_dir)
        self.proc.wait()
        return self.result()

    def wait(self, timeout=PLAY_TIMEOUT):
        """The finished run (a helpers.Run, with .argv and .output); a run that hangs is killed and fails."""
        try:
            self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.kill()
            raise AssertionError('%s hung for %d s, killed: %r' % (' '.join(self.argv[:2]), timeout, self.result()))
        return self.result()

    def result(self):
        if not self.running():
            # End the SSH masters this run left (by pid: only ours, named by our control dir).
            _signal(run_processes(-1, self.control_dir), signal.SIGTERM)
            for reader in self._readers:
                reader.join(10)
            shutil.rmtree(self.control_dir, ignore_errors=True)
        run = Run(subprocess.CompletedProcess(self.argv, self.proc.returncode, ''.join(self.out), ''.join(self.err)))
        run.argv = self.argv
        run.output = run.stdout + run.stderr
        return run


# --- hook points --------------------------------------------------------------------------------

HOOK = '''\
- name: Stop at {point} until the fault is in
  ansible.builtin.shell: |
    touch {top}/{{{{ inventory_hostname }}}}.{point}
    for i in $(seq {ticks}); do test -e {top}/go.{point} && exit 0; sleep 0.1; done
    echo "no go at {point} within {seconds} s" >&2; exit 1
  changed_when: false
'''


class Hooks(object):
    """deploy_hooks task files that stop every host at a point until the case says go."""

    def __init__(self, top, seconds=180):
        self.top = top
        self.seconds = seconds
        os.makedirs(top)

    def files(self, points):
        """deploy_hooks for ``points``: {point: task file}."""
        hooks = {}
        for point in points:
            path = os.path.join(self.top, '%s.yml' % point)
            with open(path, 'w') as handle:
                handle.write(HOOK.format(point=point, top=self.top, ticks=self.seconds * 10, seconds=self.seconds))
            hooks[point] = path
        return hooks

    def marked(self, point):
        return sorted(name.rsplit('.', 1)[0] for name in os.listdir(self.top) if name.endswith('.' + point)
                      and not name.startswith('go.'))

    def wait_marked(self, point, plays, hosts):
        """Block until every host in ``hosts`` is stopped at ``point`` (by any of ``plays``)."""
        deadline = time.monotonic() + MARK_TIMEOUT
        while sorted(hosts) != self.marked(point):
            assert all(play.running() for play in plays), 'a run ended before %s: %r' % (
                point, [play.result() for play in plays if not play.running()])
            assert time.monotonic() < deadline, 'hosts %s did not all reach %s within %d s (hung?): %s' % (
                hosts, point, MARK_TIMEOUT, self.marked(point))
            time.sleep(0.1)

    def go(self, *points):
        for point in points:
            open(os.path.join(self.top, 'go.' + point), 'w').close()


# --- the fleet and its tree ---------------------------------------------------------------------

DEPLOY_TO = '/srv/app'
SAVED = '/srv/.app-baseline'        # a copy of the baseline tree, restored before every case
SENTINEL = '/srv/app-sentinel'      # beside deploy_to, with a name deploy_to is a prefix of
PROBE = os.path.join(HERE, 'probe.py')


def look(fleet, deploy_to=DEPLOY_TO, sentinel=SENTINEL):
    """What every host's tree holds (probe.py), host1 first."""
    looks = []
    for index in range(1, len(fleet.names) + 1):
        # The probe goes in on stdin: the checkout may sit where the hosts cannot see it (their /tmp is their own).
        with open(PROBE) as handle:
            proc = bed.run_on(index, ['/usr/bin/python3', '-', deploy_to, sentinel], input=handle.read())
        assert proc.returncode == 0, (proc.stdout, proc.stderr)
        looks.append(json.loads(proc.stdout))
    return looks


class Baseline(object):
    """The tree every case starts from on every host: v1, v2 and v3 deployed, current -> v3.

    Built once per bed with the deploy playbook, saved beside deploy_to and copied back before each
    case (the same path, so absolute links stay right), with the digests of shared/ and the sentinel.
    """

    def __init__(self, fleet, workdir):
        self.fleet = fleet
        self.workdir = workdir
        self.names = None
        self.looks = None

    def build(self):
        fleet = self.fleet
        fleet.each('rm -rf %s %s %s' % (DEPLOY_TO, SAVED, SENTINEL))
        prepare_shared(fleet, DEPLOY_TO)
        fleet.each('mkdir -p {d}/shared/log {d}/shared/uploads {s}/dir && echo old > {d}/shared/log/old.log'
                   ' && head -c 4096 /dev/urandom > {d}/shared/uploads/photo.bin && echo keep > {s}/dir/file'
                   ' && ln -s {d}/current {s}/link-to-current'.format(d=DEPLOY_TO, s=SENTINEL))
        self.names = []
        for version in ('v1', 'v2', 'v3'):
            ok(play(fleet, 'deploy.yml', DEPLOY_TO, deploy_src=str(self.source(version)), **LINKS))
            names = set(entry['current'] for entry in look(fleet))
            assert len(names) == 1, names
            self.names.extend(names)
        fleet.each('cp -a %s %s' % (DEPLOY_TO, SAVED))
        self.looks = look(fleet)

    def source(self, version):
        return app(self.workdir, version)

    def restore(self):
        """Put the baseline tree back on every host (built again if a host lost it)."""
        if self.names is None or any('missing' in out for out in self.fleet.each('test -d %s || echo missing' % SAVED)):
            self.build()
        self.fleet.each('rm -rf %s && cp -a %s %s' % (DEPLOY_TO, SAVED, DEPLOY_TO))
        assert look(self.fleet) == self.looks


def quiesce(fleet, timeout=30):
    """Wait until nothing a killed run left runs on the hosts (under their sshd, other than sshd
    itself); what is still there after ``timeout`` s is ended by pid."""
    pids = []
    for index in range(1, len(fleet.names) + 1):
        with open(os.path.join(str(bed.state_dir()), 'h%d' % index, 'sshd.pid')) as handle:
            pids.append(int(handle.read().strip()))
    deadline = time.monotonic() + timeout
    while True:
        table = processes()
        left = set(p for p in descendants(pids, table) if not table[p][1].startswith('sshd'))
        if not left:
            return
        if time.monotonic() > deadline:
            # Not a failure (a killed run's module may run on), but time the suite spends: said in its summary.
            warnings.warn('quiesce: %d process(es) still ran on the hosts after %d s, killed: %s'
                          % (len(left), timeout, sorted(table[p][1][:60] for p in left)))
            _signal(left, signal.SIGKILL)
            return
        time.sleep(0.2)


class Case(object):
    """One fault case on the bed: commands of the flows against the baseline tree, and their runs."""

    def __init__(self, fleet, baseline, workdir):
        self.fleet = fleet
        self.baseline = baseline
        self.workdir = pathlib.Path(workdir)
        self.deploy_to = DEPLOY_TO
        self.hooks = Hooks(os.path.join(workdir, 'hooks'))
        self.last = None   # the last run that ended (its command and output)
        self.cleanups = []  # called after the case, last first (unmounts and the like)
        # What each flow must end in: deploy -> v4 live; rollback from v3 -> v2, never further back.
        self.previous = baseline.names[2]
        self.target = baseline.names[1]

    def command(self, flow, points=(), version='v4', hooks=None, **variables):
        """The ansible-playbook command line of ``flow`` (deploy: of ``version``), stopping at ``points``."""
        base = dict(deploy_to=self.deploy_to)
        if flow == 'deploy':
            base.update(LINKS, deploy_src=str(self.source(version)))
        if points:
            base['deploy_hooks'] = (hooks or self.hooks).files(points)
        base.update(variables)
        return [PLAYBOOK, os.path.join(REPO, 'playbooks', '%s.yml' % flow),
                '-i', str(self.fleet.inventory), '-e', json.dumps(base, sort_keys=True)]

    def source(self, version):
        """A copy of examples/app whose public/VERSION says ``version``."""
        return app(self.workdir, version)

    def start(self, argv):
        return Play(argv)

    def run(self, argv):
        self.last = Play(argv).wait()
        return self.last

    def ended(self, run):
        """Note a run that ended (killed or not) as the last one."""
        self.last = run
        return run

    def look(self):
        return look(self.fleet, self.deploy_to)

    def currents(self):
        return [entry['current'] for entry in self.look()]

    def run_printed(self, command):
        """Run an ansible-playbook command the collection printed (only that program, ours)."""
        argv = shlex.split(command)
        assert argv and os.path.basename(argv[0]) == 'ansible-playbook', 'not an ansible-playbook command: %r' % command
        return self.run([PLAYBOOK] + argv[1:])

    def recover(self, argv, crashed):
        """What an operator does after ``crashed``: the same command; if it is refused, the refusal
        names the command that clears the lock, and that is run. Returns the last run."""
        self.ended(crashed)
        run = self.run(argv)
        if run.rc != 0:
            assert 'deploy_break_lock=true' in run.output, (
                'the re-run failed without naming -e deploy_break_lock=true: %r' % run)
            run = self.run(argv + list(BREAK_LOCK))
        return run


IN_LINE = re.compile(r'in line\b[^`]*`([^`]+)`', re.S)


def in_line_command(run, host):
    """The command that brings ``host`` in line, printed (in backticks, after "in line") with its name."""
    commands = IN_LINE.findall(run.output)
    named = [command for command in commands if host in shlex.split(command)]
    assert named, '%s is not named with a command that brings it in line: %r' % (host, run)
    return named[-1]


def nothing_lost(case):
    """After every case: current a complete release on every host, the same on all, shared/ and the
    sentinel beside deploy_to byte-identical, and the lock free, or its clearing command printed and,
    when run, working."""
    looks = case.look()
    _consistent(case, looks)
    if any(entry['lock'] for entry in looks):
        last = case.last
        assert last is not None and 'deploy_break_lock=true' in last.output, (
            'a lock is held and the last run did not name -e deploy_break_lock=true: %r, %r'
            % ([entry['lock'] for entry in looks], last))
        cleared = case.run(last.argv + list(BREAK_LOCK))
        assert cleared.rc == 0, 'the printed clearing command failed: %r' % cleared
        looks = case.look()
        assert not any(entry['lock'] for entry in looks), [entry['lock'] for entry in looks]
        _consistent(case, looks)
    return looks


def _consistent(case, looks):
    base = case.baseline.looks
    for host, entry in zip(case.fleet.names, looks):
        assert entry['complete'], '%s: current is not a complete release: %r' % (host, entry)
    assert len(set(entry['current'] for entry in looks)) == 1, (
        'hosts on different releases: %s' % dict(zip(case.fleet.names, (entry['current'] for entry in looks))))
    for host, entry, before in zip(case.fleet.names, looks, base):
        assert entry['shared'] == before['shared'], '%s: shared/ changed' % host
        assert entry['sentinel'] == before['sentinel'], '%s: %s (outside deploy_to) changed' % (host, SENTINEL)


def assert_intended(case, flow):
    """The flow's work is done on every host: the deploy's v4 live and recorded in revisions.log, or
    the rollback on its target (v2, the release before v3; never v1) and recorded."""
    looks = case.look()
    names = dict(zip(case.fleet.names, (entry['current'] for entry in looks)))
    if flow == 'deploy':
        assert [entry['version'] for entry in looks] == ['v4'] * len(looks), (
            'v4 is not live on every host: %s' % dict(zip(case.fleet.names, (e['version'] for e in looks))))
        for host, entry in zip(case.fleet.names, looks):
            assert ' deployed as release %s by ' % entry['current'] in (entry['last_log'] or ''), (
                '%s: the live release %s is not recorded in revisions.log (last line %r)'
                % (host, entry['current'], entry['last_log']))
    else:
        assert set(names.values()) == {case.target}, (
            'the rollback should be on %s (v2) everywhere, never further back (v1 is %s): %s'
            % (case.target, case.baseline.names[0], names))
        for host, entry in zip(case.fleet.names, looks):
            assert (entry['last_log'] or '').endswith('rolled back to release %s' % case.target), (
                '%s: the rollback is not recorded in revisions.log (last line %r)' % (host, entry['last_log']))
    return looks


def assert_failed_cleanly(run):
    """A refused or failed run: a non-zero exit, and no Python traceback as the user-facing message."""
    assert run.rc != 0, 'the run should have failed: %r' % run
    assert 'Traceback (most recent call last)' not in run.output, 'a traceback in the output: %r' % run
    return run


def warned_about(run, host):
    """Whether the run printed a warning that names ``host``."""
    return any(host in line for line in run.output.splitlines() if re.search(r'(?i)\bwarn', line))
