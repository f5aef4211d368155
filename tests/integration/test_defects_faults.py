"""Issue 8, resource and hook faults: each test pins one defect on three real SSH hosts and fails
on the code the issue was filed against. Black box: playbooks driven with -e, hosts' files read back.

Defects 2 (an undeletable old release), 3 (hook files Ansible cannot load), 6 (a full disk),
10 (crash leftovers).
"""

from __future__ import annotations

import json
import os
import re

from ansible_collections.capstan.release.tests.integration.faults import (Problems, fingerprint, lock_exists, lost, own_tree,
                                                                          records, release_names, run, said, shared_hash)
from ansible_collections.capstan.release.tests.integration.helpers import (LINKS, app, current, deploy, ok, play,
                                                                           prepare_shared)


def versions(fleet, deploy_to, tmp_path, *names, **extra):
    """Deploy each app version in turn; the release names, oldest first."""
    made = []
    for version in names:
        ok(deploy(fleet, deploy_to, app(tmp_path, version), **extra))
        made.append(current(fleet, deploy_to)[0])
    return made


def test_a_prune_that_cannot_remove_an_old_release_warns_and_keeps_the_new_release_live(fleet, request, tmp_path):
    """Defect 2: an old release that cannot be removed (a mount point inside it on host2: EBUSY)
    when the prune after a good deploy must remove it: the deploy succeeds with a warning naming
    host2 and that release, the new release stays live everywhere, the lock is free; the
    half-removed release is never a rollback target and never reported as successful."""
    deploy_to = own_tree(request)
    prepare_shared(fleet, deploy_to)
    old, middle = versions(fleet, deploy_to, tmp_path, 'v1', 'v2')
    pin = '%s/releases/%s/pin' % (deploy_to, old)
    fleet.sh(2, 'mkdir %s && mount -t tmpfs -o size=1m tmpfs %s' % (pin, pin))
    try:
        shared = shared_hash(fleet, deploy_to)
        problems = Problems()
        result = deploy(fleet, deploy_to, app(tmp_path, 'v3'), deploy_keep_releases=2)
        problems.check(result.rc == 0, 'the deploy failed (rc %d) because the prune could not remove %s on host2: %s'
                       % (result.rc, old, [m for _t, h, r in result.fatal for m in [r.get('msg')]][:3]))
        names = current(fleet, deploy_to)
        problems.check(names[0] > middle and len(set(names)) == 1, 'the new release is not live on every host: %s' % names)
        warnings = [r for r in records(result) if not r.startswith('fatal:') and 'warn' in r and 'host2' in r and old in r]
        problems.check(warnings, 'no warning names host2 and release %s' % old)
        problems.check(release_names(fleet, deploy_to)[0] == [middle, names[0]] and release_names(fleet, deploy_to)[2]
                       == [middle, names[0]], 'host1 and host3 did not prune %s: %s' % (old, release_names(fleet, deploy_to)))

        back = play(fleet, 'rollback.yml', deploy_to, deploy_hosts='host2', rollback_release=old)
        problems.check(back.rc != 0, 'a rollback to the half-removed release %s on host2 was not refused' % old)
        problems.check(current(fleet, deploy_to)[1] == names[0], 'host2 left release %s: it now runs %s'
                       % (names[0], current(fleet, deploy_to)[1]))

        report_path = tmp_path / 'report.json'
        ok(play(fleet, 'releases.yml', deploy_to, releases_json=str(report_path)))
        states = dict((r['name'], r['state']) for r in json.loads(report_path.read_text())['hosts']['host2']['releases'])
        problems.check(states.get(old) != 'successful', 'the releases report counts the half-removed %s as successful' % old)
        problems.extend(lost(fleet, deploy_to, shared))
        problems.verify()
    finally:
        fleet.sh(2, "for m in $(awk '$2 ~ \"^%s/\" {print $2}' /proc/self/mounts); do umount $m; done; true" % deploy_to)


BAD_HOOKS = {
    'syntax-error.yml': '- name: A task whose flow mapping never closes\n  ansible.builtin.debug: {msg: "x"\n',
    'a-mapping.yml': 'name: A mapping, not a list of tasks\nansible.builtin.debug:\n  msg: x\n',
}


def test_a_hook_file_that_does_not_parse_or_is_no_task_list_is_refused_before_anything_changes(fleet, request, tmp_path):
    """Defect 3: a hook file with a YAML syntax error, or one holding a mapping instead of a list of
    tasks, named for after_published or after_updated, is refused before anything changes, the
    message naming deploy_hooks and the file: no lock, no new release, current unchanged."""
    deploy_to = own_tree(request)
    prepare_shared(fleet, deploy_to)
    ok(deploy(fleet, deploy_to, app(tmp_path, 'v1')))
    shared = shared_hash(fleet, deploy_to)
    problems = Problems()
    number = 1
    for name, text in sorted(BAD_HOOKS.items()):
        hook = tmp_path / name
        hook.write_text(text)
        for point in ('after_published', 'after_updated'):
            number += 1
            before = fingerprint(fleet, deploy_to)
            result = deploy(fleet, deploy_to, app(tmp_path, 'v%d' % number), deploy_hooks={point: str(hook)})
            what = '%s as %s' % (name, point)
            problems.check(result.rc != 0, '%s: rc 0' % what)
            for phrase in ('deploy_hooks', name):
                problems.check(phrase in said(result), '%s: the output does not say %r' % (what, phrase))
            problems.check(fingerprint(fleet, deploy_to) == before, '%s: the tree changed (releases %s, current %s)'
                           % (what, release_names(fleet, deploy_to), current(fleet, deploy_to)))
            problems.check(not any(lock_exists(fleet, deploy_to)), '%s: the lock was left' % what)
    problems.extend(lost(fleet, deploy_to, shared))
    problems.verify()


def test_a_hook_that_fails_to_load_after_publishing_goes_through_the_failure_path(fleet, request, tmp_path):
    """Defect 3: a hook Ansible cannot load. One whose task names a module that does not exist is
    refused before anything changes (its tasks are parsed up front, naming deploy_hooks); one that
    only fails when Ansible loads it at run time (it includes a file that is not there) fails the
    deploy the way any post-publish failure does: every host back on the previous release, the
    lock free, the failed release archived and removed."""
    deploy_to = own_tree(request)
    prepare_shared(fleet, deploy_to)
    first = versions(fleet, deploy_to, tmp_path, 'v1')[0]
    shared = shared_hash(fleet, deploy_to)
    problems = Problems()

    unknown = tmp_path / 'unknown-module.yml'
    unknown.write_text('- name: A task of a module that does not exist\n  no.such.module: {}\n')
    before = fingerprint(fleet, deploy_to)
    result = deploy(fleet, deploy_to, app(tmp_path, 'v2'), deploy_hooks={'after_published': str(unknown)})
    problems.check(result.rc != 0, 'a hook with an unknown module: rc 0')
    problems.check('deploy_hooks.after_published' in said(result), 'a hook with an unknown module: deploy_hooks is not named')
    problems.check(fingerprint(fleet, deploy_to) == before, 'a hook with an unknown module: the tree changed')

    missing = tmp_path / 'includes-a-missing-file.yml'
    missing.write_text('- name: Include a file that is not there\n  ansible.builtin.include_tasks: %s/not-there.yml\n' % tmp_path)
    result = deploy(fleet, deploy_to, app(tmp_path, 'v2'), deploy_hooks={'after_published': str(missing)})
    problems.check(result.rc != 0, 'rc 0')
    problems.check(current(fleet, deploy_to) == [first] * 3, 'current is %s, not back on %s' % (current(fleet, deploy_to), first))
    problems.check(release_names(fleet, deploy_to) == [[first]] * 3, 'releases/ holds %s' % release_names(fleet, deploy_to))
    archives = [out.split() for out in fleet.each(
        'cd %s && ls -d failed-release-*.tar.gz rolled-back-release-*.tar.gz 2>/dev/null; true' % deploy_to)]
    problems.check(all(len(a) == 1 and re.search('[0-9]{14}', a[0]).group(0) > first for a in archives),
                   'the failed release was not archived: %s' % archives)
    problems.extend(lost(fleet, deploy_to, shared))
    problems.verify()


def test_a_full_disk_is_refused_before_building_and_a_release_that_fills_it_is_removed_without_an_archive(
        fleet, request, tmp_path):
    """Defect 6: deploy_to on an 8 MB tmpfs on every host. An app bigger than the free space is
    refused before building ("free space", naming deploy_free_space_margin_mb), nothing changed;
    when the disk fills up during the build anyway (a before_updating hook fills it), the run
    fails, the failed release is removed without an archive, the lock is free, and once the
    filler is gone the next deploy succeeds."""
    disk = own_tree(request)
    deploy_to = disk + '/app'
    filler = disk + '/filler'
    fleet.each('mkdir -p %s && mount -t tmpfs -o size=8m tmpfs %s' % (disk, disk))
    try:
        prepare_shared(fleet, deploy_to)
        fleet.each('mkdir -p %s/shared/log' % deploy_to)
        # The disk is 8 MB: the default margin (64 MiB) would refuse every deploy on it.
        first = versions(fleet, deploy_to, tmp_path, 'v1', deploy_free_space_margin_mb=1)[0]
        shared = shared_hash(fleet, deploy_to)
        problems = Problems()

        big = app(tmp_path, 'big')
        (big / 'public' / 'big.bin').write_bytes(os.urandom(12 * 1024 * 1024))
        before = fingerprint(fleet, deploy_to)
        result = deploy(fleet, deploy_to, big, deploy_free_space_margin_mb=1)
        problems.check(result.rc != 0, 'an app bigger than the disk: rc 0')
        for phrase in ('free space', 'deploy_free_space_margin_mb'):
            problems.check(phrase in said(result), 'an app bigger than the disk: the output does not say %r' % phrase)
        problems.check(fingerprint(fleet, deploy_to) == before, 'an app bigger than the disk: the tree changed: %s'
                       % fleet.each('ls -a %s %s/releases; true' % (deploy_to, deploy_to)))
        problems.check(not any(lock_exists(fleet, deploy_to)), 'an app bigger than the disk: the lock was left')

        fleet.each('rm -f %s/.capstan/lock' % deploy_to)  # so the second case is tried even on a tree the first wedged
        hook = tmp_path / 'fill.yml'
        hook.write_text('- name: Fill the disk deploy_to is on\n'
                        '  ansible.builtin.shell: dd if=/dev/zero of=%s bs=64k 2>/dev/null || true\n'
                        '  changed_when: true\n' % filler)
        second = app(tmp_path, 'v2')
        (second / 'public' / 'blob.bin').write_bytes(os.urandom(2 * 1024 * 1024))
        result = deploy(fleet, deploy_to, second, deploy_free_space_margin_mb=1, deploy_hooks={'before_updating': str(hook)})
        problems.check(result.rc != 0, 'the disk filled during the build: rc 0')
        problems.check(current(fleet, deploy_to) == [first] * 3, 'the disk filled: current is %s' % current(fleet, deploy_to))
        problems.check(release_names(fleet, deploy_to) == [[first]] * 3,
                       'the disk filled: the failed release was left: %s' % release_names(fleet, deploy_to))
        problems.check(fleet.each('ls -a %s | grep -c "tar[.]gz"; true' % deploy_to) == ['0\n'] * 3,
                       'the disk filled: an archive (or part of one) was left: %s' % fleet.each('ls -a %s; true' % deploy_to))
        problems.check(not any(lock_exists(fleet, deploy_to)), 'the disk filled: the lock was left')

        fleet.each('rm -f %s' % filler)
        result = deploy(fleet, deploy_to, second, deploy_free_space_margin_mb=1)
        problems.check(result.rc == 0, 'with the filler gone the next deploy failed (rc %d): %s'
                       % (result.rc, [r.get('msg') for _t, _h, r in result.fatal][:3]))
        problems.check(fleet.each('cat %s/current/public/VERSION; true' % deploy_to) == ['v2\n'] * 3,
                       'with the filler gone v2 is not live')
        problems.extend(lost(fleet, deploy_to, shared))
        problems.verify()
    finally:
        fleet.each('umount %s 2>/dev/null || umount -l %s 2>/dev/null; true' % (disk, disk))


def free_pid():
    """A pid no process has (checked in /proc)."""
    with open('/proc/sys/kernel/pid_max') as handle:
        top = int(handle.read())
    return next(pid for pid in range(top - 1, 300, -1) if not os.path.exists('/proc/%d' % pid))


def test_crash_leftovers_are_cleaned_by_the_next_deploy(fleet, request, tmp_path):
    """Defect 10: partial archives (.<archive>.tar.gz.partial-<pid>) in deploy_to, and copy bundles
    of controller runs that are gone (capstan-bundle-<pid>-<random>.tar.gz in the controller's
    temp dir, the pid dead), are removed by the next deploy; a bundle of a live pid is kept.
    The controller's temp dir is this test's own (TMPDIR): runs of other sessions on this
    machine share /tmp and may clean it."""
    deploy_to = own_tree(request)
    prepare_shared(fleet, deploy_to)
    versions(fleet, deploy_to, tmp_path, 'v1')
    partials = ['.failed-release-20260101000000.tar.gz.partial-999999', '.rolled-back-release-20260101000000.tar.gz.partial-12345']
    fleet.each(' && '.join('echo torn > %s/%s' % (deploy_to, name) for name in partials))
    controller_tmp = tmp_path / 'controller-tmp'
    controller_tmp.mkdir()
    gone = controller_tmp / ('capstan-bundle-%d-k3x9q2.tar.gz' % free_pid())
    live = controller_tmp / ('capstan-bundle-%d-l1v3ab.tar.gz' % os.getpid())
    for path in (gone, live):
        path.write_bytes(b'\x1f\x8b torn bundle')
    shared = shared_hash(fleet, deploy_to)
    problems = Problems()
    ok(run(fleet, 'deploy.yml', dict(LINKS, deploy_to=deploy_to, deploy_src=str(app(tmp_path, 'v2'))), TMPDIR=str(controller_tmp)))
    problems.check(fleet.each('ls -a %s | grep -c partial; true' % deploy_to) == ['0\n'] * 3,
                   'partial archives survived: %s' % fleet.each('ls -a %s | grep partial; true' % deploy_to))
    problems.check(not gone.exists(), 'the bundle of a run that is gone survived: %s' % gone.name)
    problems.check(live.exists(), 'the bundle of a live run was removed: %s' % live.name)
    problems.extend(lost(fleet, deploy_to, shared))
    problems.verify()
