"""Issue 8, interrupted and concurrent runs: each test pins one defect on three real SSH hosts and
fails on the code the issue was filed against. A run is held in a hook that marks each host under
/var/tmp (shared with the controller) and waits; the test polls the marks, then kills the whole
controller process tree (SIGKILL, walking /proc: Ansible's workers call setsid) or lets it go on.

Defects 4 (a deploy killed after the switch), 5 (the lock holder), 12 (a rollback killed after its switch).
"""

from __future__ import annotations

import os
import pwd
import re
import socket
import time

from ansible_collections.capstan.release.tests.integration.faults import (Background, Problems, blocking_hook, fingerprint,
                                                                          lost, marker_prefix, own_tree, playbook_cmd,
                                                                          read_lock, release_names, remove_markers, run,
                                                                          said, shared_hash)
from ansible_collections.capstan.release.tests.integration.helpers import (LINKS, REPO, app, current, deploy, ok, play,
                                                                           prepare_shared)

HINT = '-e deploy_break_lock=true'


def versions(fleet, deploy_to, tmp_path, *names):
    """Deploy each app version in turn; the release names, oldest first."""
    made = []
    for version in names:
        ok(deploy(fleet, deploy_to, app(tmp_path, version)))
        made.append(current(fleet, deploy_to)[0])
    return made


def killed_in_hook(fleet, playbook, variables, point, tmp_path):
    """Run ``playbook`` with a hook at ``point`` that holds every host, and kill its whole process tree there."""
    marker = marker_prefix()
    hook = blocking_hook(tmp_path / 'hold.yml', marker)
    held = Background(fleet, playbook, dict(variables, deploy_hooks={point: str(hook)}), tmp_path / 'held.out')
    try:
        held.wait_for_markers(fleet, marker)
    finally:
        held.kill_tree()
        remove_markers(fleet, marker)  # lets the hook's loop on each host end
    return held


def test_a_deploy_killed_after_the_switch_is_finished_by_the_run_that_breaks_its_lock(fleet, request, tmp_path):
    """Defect 4: a deploy killed after every host switched (in an after_published hook) is not
    "already live": a re-run is refused with the exact clearing hint, and the re-run with
    -e deploy_break_lock=true finishes it: the same release stays current (no new release), the
    health command runs on every host, revisions.log gets its line, old releases are pruned."""
    deploy_to = own_tree(request)
    prepare_shared(fleet, deploy_to)
    middle = versions(fleet, deploy_to, tmp_path, 'v1', 'v2')[1]
    shared = shared_hash(fleet, deploy_to)
    variables = dict(LINKS, deploy_to=deploy_to, deploy_src=str(app(tmp_path, 'v3')), deploy_keep_releases=2)
    killed_in_hook(fleet, 'deploy.yml', variables, 'after_published', tmp_path)
    name = current(fleet, deploy_to)
    assert len(set(name)) == 1 and name[0] > middle, 'the killed deploy did not switch every host: %s' % name

    problems = Problems()
    before = fingerprint(fleet, deploy_to)
    again = run(fleet, 'deploy.yml', variables)
    problems.check(again.rc != 0, 'a re-run while the killed run holds the lock: rc 0')
    problems.check(HINT in said(again), 'the refusal does not give %r' % HINT)
    problems.check(fingerprint(fleet, deploy_to) == before, 'the refused re-run changed the tree')

    health = marker_prefix() + '-health'
    try:
        done = run(fleet, 'deploy.yml', dict(variables, deploy_break_lock=True,
                                             deploy_health_command='touch %s-$(hostname)' % health))
        problems.check(done.rc == 0, 'the re-run with %s: rc %d' % (HINT, done.rc))
        problems.check(current(fleet, deploy_to) == name, 'current moved from %s to %s' % (name[0], current(fleet, deploy_to)))
        problems.check(all(os.path.exists('%s-%s' % (health, host)) for host in fleet.names),
                       'the health command did not run on every host')
        revisions = fleet.each('cat %s/current/REVISION; true' % deploy_to)
        logs = fleet.each('cat %s/revisions.log; true' % deploy_to)
        problems.check(all(re.search(r'^Branch \S+ \(at %s\) deployed as release %s by \S+$' % (re.escape(rev.strip()), name[0]),
                                     log, re.M) for rev, log in zip(revisions, logs)),
                       'revisions.log has no "deployed as release %s" line: %s' % (name[0], [log.splitlines()[-1:] for log in logs]))
        problems.check(release_names(fleet, deploy_to) == [[middle, name[0]]] * 3,
                       'deploy_keep_releases=2 did not prune: releases/ holds %s' % release_names(fleet, deploy_to))
        problems.extend(lost(fleet, deploy_to, shared))
        problems.verify()
    finally:
        remove_markers(fleet, health)


def test_the_lock_names_the_real_ansible_playbook_process_and_its_command_line(fleet, request, tmp_path):
    """Defect 5: while a deploy is held in a hook, the lock on the hosts names the ansible-playbook
    process the test started (its pid, alive), the exact command line, the user and the
    controller's host name; a second deploy meanwhile is refused naming that pid and command and
    -e deploy_break_lock=true, changing nothing; with -e deploy_lock_ttl=1 the refusal says the
    lock looks stale. Let go, the held deploy finishes."""
    deploy_to = own_tree(request)
    prepare_shared(fleet, deploy_to)
    versions(fleet, deploy_to, tmp_path, 'v1')
    shared = shared_hash(fleet, deploy_to)
    marker = marker_prefix()
    hook = blocking_hook(tmp_path / 'hold.yml', marker)
    # The hook first: a refusal that shortens a long command line still shows the holder's own -e.
    variables = dict(deploy_hooks={'after_updated': str(hook)}, deploy_to=deploy_to, deploy_src=str(app(tmp_path, 'v2')), **LINKS)
    command = playbook_cmd(fleet, 'deploy.yml', variables)
    problems = Problems()
    held = Background(fleet, 'deploy.yml', variables, tmp_path / 'held.out')
    try:
        held.wait_for_markers(fleet, marker)
        holder = read_lock(fleet, 1, deploy_to)
        problems.check(str(holder.get('pid')) == str(held.pid), 'the lock names pid %r, not ansible-playbook\'s pid %d (%s)'
                       % (holder.get('pid'), held.pid, 'alive' if os.path.exists('/proc/%s' % holder.get('pid')) else 'gone'))
        recorded = str(holder.get('command'))
        problems.check(os.path.join(REPO, 'playbooks', 'deploy.yml') in recorded and command[-1] in recorded,
                       'the lock\'s command %r is not the command line that was run' % recorded)
        problems.check(holder.get('user') == pwd.getpwuid(os.geteuid()).pw_name, 'the lock names user %r' % holder.get('user'))
        problems.check(holder.get('host') == socket.gethostname(), 'the lock names host %r, not %r'
                       % (holder.get('host'), socket.gethostname()))

        before = fingerprint(fleet, deploy_to)
        second = run(fleet, 'deploy.yml', dict(LINKS, deploy_to=deploy_to, deploy_src=str(app(tmp_path, 'v3'))))
        text = said(second)
        problems.check(second.rc != 0, 'a second deploy while the first holds the lock: rc 0')
        problems.check(re.search(r'(?<![0-9])%d(?![0-9])' % held.pid, text), 'the refusal does not name pid %d' % held.pid)
        problems.check(str(hook).lower() in text, 'the refusal does not give the holder\'s command (with its -e)')
        problems.check(HINT in text, 'the refusal does not give %r' % HINT)
        problems.check(fingerprint(fleet, deploy_to) == before, 'the refused deploy changed the tree')

        for _poll in range(150):  # the lock must be older than the 1 s TTL below; bounded
            if int(fleet.sh(1, 'echo $(( $(date +%%s) - $(stat -c %%Y %s/.capstan/lock) ))' % deploy_to)) >= 2:
                break
            time.sleep(0.2)
        stale = run(fleet, 'deploy.yml', dict(LINKS, deploy_to=deploy_to, deploy_src=str(app(tmp_path, 'v3')), deploy_lock_ttl=1))
        problems.check(stale.rc != 0, 'a deploy with deploy_lock_ttl=1 broke or ignored the live lock: rc 0')
        problems.check('stale' in said(stale), 'with deploy_lock_ttl=1 the refusal does not say the lock looks stale')
        problems.check(fingerprint(fleet, deploy_to) == before, 'the refused deploy (deploy_lock_ttl=1) changed the tree')
    finally:
        remove_markers(fleet, marker)
    finished = held.finish()
    problems.check(finished.rc == 0, 'the held deploy, let go, failed: %r' % finished)
    problems.check(fleet.each('cat %s/current/public/VERSION; true' % deploy_to) == ['v2\n'] * 3, 'the held deploy did not publish v2')
    problems.extend(lost(fleet, deploy_to, shared))
    problems.verify()


def test_a_rollback_killed_after_its_switch_is_completed_by_the_run_that_breaks_its_lock(fleet, request, tmp_path):
    """Defect 12: a rollback killed right after its switch (in an after_publishing hook): a plain
    re-run is refused with the clearing hint; the re-run with -e deploy_break_lock=true completes
    that rollback: every host stays on the release it reached (never one further back), the
    release it left is archived as rolled-back-release-<name>.tar.gz and removed, the lock is
    free, and revisions.log has one "rolled back to release" line, for that release."""
    deploy_to = own_tree(request)
    prepare_shared(fleet, deploy_to)
    first, second, third = versions(fleet, deploy_to, tmp_path, 'v1', 'v2', 'v3')
    shared = shared_hash(fleet, deploy_to)
    killed_in_hook(fleet, 'rollback.yml', {'deploy_to': deploy_to}, 'after_publishing', tmp_path)
    assert current(fleet, deploy_to) == [second] * 3, 'the killed rollback did not switch every host: %s' % current(fleet, deploy_to)

    problems = Problems()
    before = fingerprint(fleet, deploy_to)
    again = play(fleet, 'rollback.yml', deploy_to)
    problems.check(again.rc != 0, 'a re-run while the killed rollback holds the lock: rc 0')
    problems.check(HINT in said(again), 'the refusal does not give %r' % HINT)
    problems.check(fingerprint(fleet, deploy_to) == before, 'the refused re-run changed the tree')

    done = play(fleet, 'rollback.yml', deploy_to, deploy_break_lock=True)
    problems.check(done.rc == 0, 'the re-run with %s: rc %d' % (HINT, done.rc))
    problems.check(current(fleet, deploy_to) == [second] * 3, 'the re-run went on from %s to %s'
                   % (second, current(fleet, deploy_to)))
    problems.check(release_names(fleet, deploy_to) == [[first, second]] * 3, 'releases/ holds %s, not %s and %s'
                   % (release_names(fleet, deploy_to), first, second))
    problems.check(fleet.each('cd %s && ls rolled-back-release-*.tar.gz; true' % deploy_to)
                   == ['rolled-back-release-%s.tar.gz\n' % third] * 3,
                   'the archives are %s, not rolled-back-release-%s.tar.gz alone'
                   % (fleet.each('cd %s && ls *.tar.gz; true' % deploy_to), third))
    lines = [[line for line in out.splitlines() if 'rolled back to release' in line]
             for out in fleet.each('cat %s/revisions.log; true' % deploy_to)]
    problems.check(lines == [['root rolled back to release %s' % second]] * 3, 'revisions.log says %s' % lines)
    problems.extend(lost(fleet, deploy_to, shared))
    problems.verify()
