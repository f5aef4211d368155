"""The gates around publishing, on three real SSH hosts: the health URL and command after it, the go/no-go before it."""

from __future__ import annotations

import json
import os
import pty
import select
import subprocess
import time

import bed
from ansible_collections.capstan.release.tests.integration.helpers import (LINKS, PLAYBOOK, REPO, Run, app, current, deploy,
                                                                           env, lock_files, ok, prepare_shared, releases)

PORT = 8080


def serve(fleet, index, deploy_to):
    """An HTTP server on host ``index``'s loopback serving its current release (it follows every switch)."""
    fleet.sh(index, 'setsid python3 -m http.server %d --bind 127.0.0.1 --directory %s/current '
                    '>/dev/null 2>&1 < /dev/null & echo $! > /tmp/http-%d.pid' % (PORT, deploy_to, PORT))
    deadline = time.monotonic() + 10
    while bed.run_on(index, 'python3 -c "import socket; socket.create_connection((\'127.0.0.1\', %d), 1)"'
                     % PORT).returncode != 0:
        assert time.monotonic() < deadline, 'the health server did not start on host%d' % index
        time.sleep(0.1)


def stop_serving(fleet, index):
    fleet.sh(index, 'kill $(cat /tmp/http-%d.pid) 2>/dev/null; rm -f /tmp/http-%d.pid; true' % (PORT, PORT))


def test_a_health_url_failing_on_one_host_switches_every_host_back(fleet, deploy_to, tmp_path):
    prepare_shared(fleet, deploy_to)
    ok(deploy(fleet, deploy_to, app(tmp_path, 'v1')))
    before = current(fleet, deploy_to)
    url = 'http://127.0.0.1:%d/public/VERSION' % PORT
    for index in (1, 2, 3):
        serve(fleet, index, deploy_to)
    try:
        ok(deploy(fleet, deploy_to, app(tmp_path, 'v2'), deploy_health_url=url))
        second = current(fleet, deploy_to)
        assert second[0] > before[0] and len(set(second)) == 1, second

        stop_serving(fleet, 2)
        run = deploy(fleet, deploy_to, app(tmp_path, 'v3'), deploy_health_url=url)
        assert run.rc != 0, run
        failures = run.failures()
        assert set(failures) == set(fleet.names), run
        assert 'Status code was -1' in failures['host2'] and 'Connection refused' in failures['host2'], failures
        assert all('failed on host2' in failures[h] for h in ('host1', 'host3')), failures
        assert all('current switched back to release %s' % second[0] in m for m in failures.values()), failures
        assert current(fleet, deploy_to) == second
        assert fleet.each('cat %s/current/public/VERSION' % deploy_to) == ['v2\n'] * 3
        assert len(set(fleet.each('ls %s/failed-release-*.tar.gz' % deploy_to))) == 1

        serve(fleet, 2, deploy_to)
        run = deploy(fleet, deploy_to, app(tmp_path, 'v3'), deploy_health_url=url.replace('VERSION', 'missing'))
        assert run.rc != 0 and 'Status code was 404 and not [200]' in run.failures()['host1'], run
        assert current(fleet, deploy_to) == second
    finally:
        for index in (1, 2, 3):
            stop_serving(fleet, index)
    assert lock_files(fleet, deploy_to) == [''] * 3


def test_health_checks_are_tried_again_as_often_as_asked(fleet, deploy_to, tmp_path):
    prepare_shared(fleet, deploy_to)
    ok(deploy(fleet, deploy_to, app(tmp_path, 'v1')))
    before = current(fleet, deploy_to)
    # Fails on its first two tries on each host, passes on the third.
    flaky = ('n=$(cat {d}/tries 2>/dev/null || echo 0); echo $((n + 1)) > {d}/tries; test "$n" -ge 2').format(d=deploy_to)
    run = deploy(fleet, deploy_to, app(tmp_path, 'v2'), deploy_health_command=flaky,
                 deploy_health_retries=1, deploy_health_delay=0)
    assert run.rc != 0, run
    assert current(fleet, deploy_to) == before
    assert fleet.each('cat %s/tries' % deploy_to) == ['2\n'] * 3

    fleet.each('rm %s/tries' % deploy_to)
    ok(deploy(fleet, deploy_to, app(tmp_path, 'v2'), deploy_health_command=flaky,
              deploy_health_retries=2, deploy_health_delay=0))
    assert fleet.each('cat %s/current/public/VERSION' % deploy_to) == ['v2\n'] * 3
    assert fleet.each('cat %s/tries' % deploy_to) == ['3\n'] * 3


def deploy_at_a_terminal(fleet, deploy_to, src, answer, **extra):
    """Run the deploy playbook on a terminal of its own (a pty); type ``answer`` at the go/no-go prompt (None: nothing)."""
    variables = dict(LINKS, deploy_to=deploy_to, deploy_src=str(src), deploy_confirm=True)
    variables.update(extra)
    argv = [PLAYBOOK, os.path.join(REPO, 'playbooks', 'deploy.yml'), '-i', str(fleet.inventory),
            '-e', json.dumps(variables)]
    pid, fd = pty.fork()
    if pid == 0:  # the child: a new session whose controlling terminal is the pty
        os.chdir(REPO)
        os.execve(argv[0], argv, env())
    output, asked, deadline = b'', False, time.monotonic() + 600
    while time.monotonic() < deadline:
        ready = select.select([fd], [], [], 1)[0]
        if not ready:
            continue
        try:
            chunk = os.read(fd, 65536)
        except OSError:  # the child closed the terminal
            break
        if not chunk:
            break
        output += chunk
        if not asked and b'anything else is a no-go): ' in output:
            asked = True
            if answer is not None:
                time.sleep(0.5)  # the prompt flushes what was typed before it reads
                os.write(fd, answer.encode() + b'\r')
    status = os.waitpid(pid, 0)[1]
    os.close(fd)
    text = output.decode('utf-8', 'replace').replace('\r\n', '\n').replace('\r', '\n')
    return Run(subprocess.CompletedProcess(argv, os.waitstatus_to_exitcode(status), text, '')), asked


def test_go_no_go_publishes_only_on_a_yes_typed_in_time(fleet, deploy_to, tmp_path):
    prepare_shared(fleet, deploy_to)
    ok(deploy(fleet, deploy_to, app(tmp_path, 'v1')))
    before = current(fleet, deploy_to)

    # No terminal (CI, cron): no one can say yes, so nothing goes live.
    run = deploy(fleet, deploy_to, app(tmp_path, 'v2'), deploy_confirm=True)
    assert run.rc != 0, run
    assert all('no-go: no one can answer' in m and 'nothing was published' in m
               for m in run.failures().values()) and len(run.failures()) == 3, run

    for answer, timeout, reason in (('no', 30, "no-go: the answer was 'no'"), (None, 2, 'no-go: no answer within 2 seconds')):
        run, asked = deploy_at_a_terminal(fleet, deploy_to, app(tmp_path, 'v2'), answer, deploy_confirm_timeout=timeout)
        assert asked and run.rc != 0, run
        assert len(run.failures()) == 3 and all(reason in m for m in run.failures().values()), run
        assert current(fleet, deploy_to) == before
        assert releases(fleet, deploy_to) == [before[:1]] * 3
    assert fleet.each('ls %s | grep -c "^failed-release-"' % deploy_to) == ['3\n'] * 3

    run, asked = deploy_at_a_terminal(fleet, deploy_to, app(tmp_path, 'v2'), 'yes')
    assert asked and run.rc == 0, run
    assert 'Publish release' in run.stdout and 'on host1, host2, host3?' in run.stdout, run
    after = current(fleet, deploy_to)
    assert after[0] > before[0] and len(set(after)) == 1, after
    assert fleet.each('cat %s/current/public/VERSION' % deploy_to) == ['v2\n'] * 3
    assert lock_files(fleet, deploy_to) == [''] * 3
