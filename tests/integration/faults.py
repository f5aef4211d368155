"""Helpers of the fault-injection tests (test_defects*.py): what a tree holds, what a run said,
runs in the background, killing a controller's whole process tree, and the "nothing lost" checks.

Black box only: the playbooks are driven with -e variables and the hosts' files are read back.
Nothing here knows a role's task names.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import signal
import subprocess
import time
import uuid

from ansible_collections.capstan.release.tests.integration.helpers import PLAYBOOK, REPO, Run, current, env

# Lines that echo what Ansible runs rather than what it says: task and play headers carry variable
# names (a task named "Check deploy_to"), include lines carry hook file names, and an error's
# origin quotes the role's source (numbered lines, the origin path, the column caret).
NOISE = re.compile(r'^(TASK \[|PLAY \[|PLAY RECAP|RUNNING HANDLER \[|included: |skipping: |origin: |[0-9]+( |$)|\s+\^ column)')
# What a templating error or a Python exception looks like in ansible-core's output: never a user-facing message.
TEMPLATING = ('template error', 'traceback', 'ansibleundefined', 'jinja', 'error rendering template',
              'error while resolving value', 'finalization of task args', 'the filter plugin', '<<< caused by >>>')
# Where one record of the default callback's output starts; continuation lines (wrapped warnings)
# belong to the record above them.
RECORD = re.compile(r'^(\[WARNING\]|\[DEPRECATION|\[ERROR\]|ERROR!|ok: |changed: |fatal: |failed: |skipping: |'
                    r'included: |TASK \[|PLAY \[|PLAY RECAP|RUNNING HANDLER \[|\S+\s+: ok=)')
NAME = re.compile(r'^[0-9]{14}$')


def own_tree(request):
    """A deploy_to of this test's own under /srv, named by a hash (conftest's deploy_to spells the
    test's name, which would put words such as deploy_migrate_current into every message naming it)."""
    return '/srv/t%s' % hashlib.sha1(request.node.nodeid.encode()).hexdigest()[:10]


def playbook_cmd(fleet, playbook, variables, *options):
    """The ansible-playbook command line for playbooks/<playbook> with ``variables`` as one JSON -e."""
    path = playbook if os.path.isabs(str(playbook)) else os.path.join(REPO, 'playbooks', str(playbook))
    return [PLAYBOOK, str(path), '-i', str(fleet.inventory), '-e', json.dumps(variables)] + list(options)


def run(fleet, playbook, variables, *options, **environ):
    """Run a playbook to its end (``options`` e.g. '--check', ``environ`` added to its environment); a helpers.Run."""
    proc = subprocess.run(playbook_cmd(fleet, playbook, variables, *options), cwd=REPO, env=dict(env(), **environ),
                          capture_output=True, text=True, timeout=900, check=False)
    return Run(proc)


def said(result):
    """What a run said, lower case, without the lines that only echo task, play and file names."""
    lines = (result.stdout + '\n' + result.stderr).splitlines()
    return '\n'.join(line for line in lines if not NOISE.match(line)).lower()


def records(result):
    """The output as records (a result line, a warning with its wrapped lines), lower case, whitespace collapsed."""
    out, block = [], []
    for line in (result.stdout + '\n' + result.stderr).splitlines():
        if RECORD.match(line) and block:
            out.append(' '.join(' '.join(block).split()).lower())
            block = []
        if line.strip():
            block.append(line)
    if block:
        out.append(' '.join(' '.join(block).split()).lower())
    return out


def fingerprint(fleet, deploy_to):
    """Everything under deploy_to on each host: every entry (type, mode, path, link target) and every file's sha256."""
    return fleet.each(
        'cd %s 2>/dev/null || { echo absent; exit 0; }; '
        "find . -printf '%%y %%m %%p -> %%l\\n' | LC_ALL=C sort; "
        'find . -type f -print0 | LC_ALL=C sort -z | xargs -0r sha256sum' % deploy_to)


def shared_hash(fleet, deploy_to):
    """shared/ on each host, byte for byte: entries, modes, link targets, file contents."""
    return fingerprint(fleet, deploy_to + '/shared')


def lock_exists(fleet, deploy_to):
    return [out.strip() == 'yes' for out in fleet.each('test -e %s/.capstan/lock && echo yes || echo no' % deploy_to)]


def read_lock(fleet, index, deploy_to):
    return json.loads(fleet.sh(index, 'cat %s/.capstan/lock' % deploy_to))


def lost(fleet, deploy_to, shared_before, locked=False):
    """The "nothing lost" checks as a list of problems (empty when all hold).

    current on every host a symlink to releases/<14 digits> holding REVISION, every host on the
    same release, shared/ as it was, and the lock free (unless ``locked``).
    """
    problems = []
    pattern = re.compile(r'^(%s/)?releases/[0-9]{14}$' % re.escape(deploy_to))
    for index, out in enumerate(fleet.each(
            'c=%s/current; test -L $c && echo link || echo not-a-link; readlink $c || echo; '
            'test -s $c/REVISION && echo revision || echo no-revision' % deploy_to), 1):
        kind, target, revision = (out.splitlines() + ['', '', ''])[:3]
        if kind != 'link' or not pattern.match(target) or revision != 'revision':
            problems.append('host%d: current is %s -> %r (%s), not a link to a complete release' % (index, kind, target, revision))
    names = current(fleet, deploy_to)
    if len(set(names)) != 1:
        problems.append('the hosts are on different releases: %s' % names)
    if shared_hash(fleet, deploy_to) != shared_before:
        problems.append('shared/ changed')
    if not locked and any(lock_exists(fleet, deploy_to)):
        problems.append('the lock is still held on %s' % [h for h, held in zip(fleet.names, lock_exists(fleet, deploy_to)) if held])
    return problems


class Problems(object):
    """Checks collected in order, so a test reports every way it failed, not only the first."""

    def __init__(self):
        self.found = []

    def check(self, condition, message):
        if not condition:
            self.found.append(message)
        return bool(condition)

    def extend(self, problems):
        self.found.extend(problems)

    def verify(self):
        assert not self.found, '\n'.join(self.found)


def marker_prefix():
    """A name under /var/tmp (shared by the controller and the hosts) of this test's own."""
    return '/var/tmp/capstan-defects-%s' % uuid.uuid4().hex[:12]


def blocking_hook(path, marker):
    """A hook task file: each host touches <marker>-<host>, then waits (at most 300 s) while it exists."""
    path.write_text(
        '- name: Mark this host and wait while the mark is there\n'
        '  ansible.builtin.shell: |\n'
        '    touch %(m)s-{{ inventory_hostname }}\n'
        '    i=0\n'
        '    while [ -e %(m)s-{{ inventory_hostname }} ] && [ $i -lt 600 ]; do sleep 0.5; i=$((i+1)); done\n'
        '  changed_when: false\n' % {'m': marker})
    return path


def remove_markers(fleet, marker):
    for name in fleet.names:
        try:
            os.unlink('%s-%s' % (marker, name))
        except FileNotFoundError:
            pass


class Background(object):
    """An ansible-playbook run left running; its output goes to a file."""

    def __init__(self, fleet, playbook, variables, out_path):
        self.cmd = playbook_cmd(fleet, playbook, variables)
        self.out_path = out_path
        self.out = open(str(out_path), 'w')
        self.proc = subprocess.Popen(self.cmd, cwd=REPO, env=env(), stdout=self.out, stderr=subprocess.STDOUT,
                                     stdin=subprocess.DEVNULL, text=True)
        self.pid = self.proc.pid

    def output(self):
        if not self.out.closed:
            self.out.flush()
        with open(str(self.out_path)) as handle:
            return handle.read()

    def wait_for_markers(self, fleet, marker, limit=300):
        """Poll (at most ``limit`` seconds) until every host touched its marker; fail if the run ended first."""
        deadline = time.monotonic() + limit
        while time.monotonic() < deadline:
            if all(os.path.exists('%s-%s' % (marker, name)) for name in fleet.names):
                return
            if self.proc.poll() is not None:
                raise AssertionError('the run ended (rc %s) before every host reached the hook:\n%s'
                                     % (self.proc.returncode, self.output()[-4000:]))
            time.sleep(0.2)
        raise AssertionError('not every host reached the hook within %d s:\n%s' % (limit, self.output()[-4000:]))

    def kill_tree(self):
        """SIGKILL ansible-playbook and every process under it (workers call setsid: no killpg)."""
        kill_tree(self.pid)
        self.proc.wait(timeout=60)
        self.out.close()

    def finish(self, limit=600):
        """Wait for the run to end on its own; a helpers.Run of what it printed."""
        self.proc.wait(timeout=limit)
        self.out.close()
        return Run(subprocess.CompletedProcess(self.cmd, self.proc.returncode, self.output(), ''))


def processes():
    """{pid: (ppid, cmdline)} of every process, read from /proc (the fault suite's harness reads it too)."""
    table = {}
    for entry in os.listdir('/proc'):
        if not entry.isdigit():
            continue
        try:
            with open('/proc/%s/stat' % entry) as handle:
                ppid = int(handle.read().rsplit(')', 1)[1].split()[1])
            with open('/proc/%s/cmdline' % entry, 'rb') as handle:
                cmdline = handle.read().replace(b'\0', b' ').decode('utf-8', 'replace')
        except (OSError, IndexError, ValueError):
            continue
        table[int(entry)] = (ppid, cmdline)
    return table


def descendants(pids, table=None):
    """Every process below ``pids`` (children, theirs, ...), however they set their session or group."""
    table = table if table is not None else processes()
    found, frontier = set(), set(pids)
    while frontier:
        frontier = set(pid for pid, (ppid, _cmd) in table.items() if ppid in frontier) - found
        found |= frontier
    return found


def kill_tree(root):
    """Stop the whole tree first (nothing forks or reaps meanwhile), then SIGKILL every process in it."""
    stopped = set()
    for _round in range(20):
        fresh = ({root} | descendants({root})) - stopped
        if not fresh:
            break
        for pid in fresh:
            try:
                os.kill(pid, signal.SIGSTOP)
            except ProcessLookupError:
                pass
            stopped.add(pid)
    for pid in stopped:
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass


def release_names(fleet, deploy_to):
    """The 14-digit entries of releases/ on each host."""
    return [[name for name in out.split() if NAME.match(name)]
            for out in fleet.each('ls %s/releases 2>/dev/null || true' % deploy_to)]
