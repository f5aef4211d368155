"""Resources running out or refusing: a full disk and a read-only deploy_to on one host, an old
release that cannot be deleted, and a tree of 1,000 releases and 1,000 leftovers to prune."""

from __future__ import annotations

import os
import re

import pytest

import harness
import probe
from harness import bed, nothing_lost

ODD = 2   # the host whose disk is full, read-only or holds the undeletable release


def tmpfs_with_baseline(case, index, size):
    """deploy_to on host ``index`` becomes a tmpfs of ``size`` holding the baseline tree."""
    path = case.deploy_to
    case.fleet.sh(index, 'mount -t tmpfs -o size={size} tmpfs {d} && cp -a {saved}/. {d}/'.format(
        size=size, d=path, saved=harness.SAVED))
    case.cleanups.append(lambda: bed.run_on(index, 'umount {d} || umount -l {d}'.format(d=path)))


def test_a_full_disk_on_one_host_publishes_nowhere_and_wedges_nothing(case):
    for index in range(1, len(case.fleet.names) + 1):
        tmpfs_with_baseline(case, index, '64m')
    used = int(case.fleet.sh(ODD, 'df -k --output=used %s | tail -n 1' % case.deploy_to))
    case.fleet.sh(ODD, 'mount -o remount,size=%dk %s' % (used + 256, case.deploy_to))
    big = case.source('v4')
    (big / 'public' / 'big.bin').write_bytes(os.urandom(2 * 1024 * 1024))

    # No margin: the free-space check must refuse the 2 MiB release on the bytes alone, and a small
    # release must still fit in what is left.
    run = case.run(case.command('deploy', deploy_free_space_margin_mb=0))
    harness.assert_failed_cleanly(run)
    assert 'not enough free space' in run.output, run
    assert case.currents() == [case.previous] * len(case.fleet.names), 'a host published: %s' % case.currents()
    nothing_lost(case)

    after = case.run(case.command('deploy', version='v5', deploy_free_space_margin_mb=0))
    assert after.rc == 0, 'a small deploy after the full disk failed: the tree is wedged: %r' % after
    assert [entry['version'] for entry in nothing_lost(case)] == ['v5'] * len(case.fleet.names)


@pytest.mark.parametrize('flow', ['deploy', 'rollback'])
def test_a_read_only_deploy_to_on_one_host_changes_nothing_anywhere(case, flow):
    tmpfs_with_baseline(case, ODD, '256m')  # room for deploy_free_space_margin_mb's 64 MiB
    case.fleet.sh(ODD, 'mount -o remount,ro %s' % case.deploy_to)
    argv = case.command(flow)
    run = case.run(argv)
    harness.assert_failed_cleanly(run)
    looks = case.look()
    assert [entry['current'] for entry in looks] == [case.previous] * len(looks), 'a host switched: %r' % looks
    assert [entry['releases'] for entry in looks] == [entry['releases'] for entry in case.baseline.looks], (
        'a release was left behind: %s' % [entry['releases'] for entry in looks])

    case.fleet.sh(ODD, 'mount -o remount,rw %s' % case.deploy_to)
    nothing_lost(case)
    if case.last is run:   # (nothing_lost ran no clearing command, which would have done the work)
        again = case.run(argv)
        assert again.rc == 0, 'the same run failed once deploy_to was writable again: %r' % again
    harness.assert_intended(case, flow)
    nothing_lost(case)


def test_an_old_release_that_cannot_be_deleted_is_a_warning_and_never_a_rollback_target(case):
    oldest = case.baseline.names[0]
    stuck = '%s/releases/%s/public/stuck' % (case.deploy_to, oldest)
    case.fleet.sh(ODD, 'mkdir -p {p} && mount -t tmpfs -o size=1m tmpfs {p} && echo busy > {p}/file'.format(p=stuck))
    case.cleanups.append(lambda: bed.run_on(ODD, 'umount {p} || umount -l {p}'.format(p=stuck)))
    odd = case.fleet.names[ODD - 1]

    run = case.run(case.command('deploy', deploy_keep_releases=2))
    assert run.rc == 0, 'a prune that failed after the release was live took the deploy down: %r' % run
    assert harness.warned_about(run, odd), 'no warning naming %s: %r' % (odd, run)
    harness.assert_intended(case, 'deploy')

    back = case.run(case.command('rollback'))
    assert back.rc == 0, back
    assert case.currents() == [case.previous] * len(case.fleet.names), case.currents()
    # Only the odd host still has (part of) the oldest release: a rollback there must never land on it.
    named = case.run(case.command('rollback', rollback_release=oldest, deploy_hosts=odd))
    harness.assert_failed_cleanly(named)
    assert case.currents()[ODD - 1] == case.previous, 'the half-deleted release %s went live on %s' % (oldest, odd)
    unnamed = case.run(case.command('rollback', deploy_hosts=odd))
    assert case.currents()[ODD - 1] == case.previous, (
        'a rollback on %s landed on the half-deleted release %s: %r' % (odd, oldest, unnamed))
    nothing_lost(case)


MAKE_TREE = r'''
import datetime, os, sys
deploy_to, count = sys.argv[1], int(sys.argv[2])
start = datetime.datetime(2020, 1, 1)
lines = []
for i in range(count):
    name = (start + datetime.timedelta(minutes=2 * i)).strftime('%Y%m%d%H%M%S')
    path = os.path.join(deploy_to, 'releases', name)
    os.makedirs(os.path.join(path, 'public'))
    for file, text in (('REVISION', 'old%d\n' % i), ('REVISION_TIME', '1577836800\n'), ('public/VERSION', 'old%d\n' % i)):
        with open(os.path.join(path, file), 'w') as handle:
            handle.write(text)
    lines.append('Branch main (at old%d) deployed as release %s by root\n' % (i, name))
    # A leftover a minute later: what a crashed run leaves, a release directory without REVISION.
    leftover = (start + datetime.timedelta(minutes=2 * i + 1)).strftime('%Y%m%d%H%M%S')
    os.makedirs(os.path.join(deploy_to, 'releases', leftover, 'public'))
    with open(os.path.join(deploy_to, 'releases', leftover, 'public', 'partial.txt'), 'w') as handle:
        handle.write('half a release\n')
log = os.path.join(deploy_to, 'revisions.log')
with open(log) as handle:
    lines.append(handle.read())
with open(log, 'w') as handle:
    handle.write(''.join(lines))
'''
MANY = 1000
ARCHIVE = re.compile(r'failed-release-[0-9]{14}\.tar\.gz')


def test_prune_of_1000_releases_and_1000_leftovers_keeps_5_and_writes_at_most_5_archives(case):
    for index in range(1, len(case.fleet.names) + 1):
        proc = bed.run_on(index, ['/usr/bin/python3', '-c', MAKE_TREE, case.deploy_to, str(MANY)])
        assert proc.returncode == 0, proc.stderr
    oldest_kept = case.look()[0]['releases'][2 * MANY - 2]
    journal = [entry['journal_lines'] for entry in case.look()]

    run = case.run(case.command('deploy'))   # deploy_keep_releases and deploy_keep_archives: 5, the defaults
    assert run.rc == 0, run
    looks = case.look()
    for host, entry, lines in zip(case.fleet.names, looks, journal):
        assert entry['releases'] == [oldest_kept] + case.baseline.names + [entry['current']], (
            '%s kept %d releases, not the newest 5 that went live: %s...' % (host, len(entry['releases']), entry['releases'][:8]))
        archives = [name for name in entry['archives'] if ARCHIVE.match(name)]
        assert len(archives) <= 5, '%s keeps %d failed-release archives' % (host, len(archives))
        written = set(ARCHIVE.findall(case.fleet.sh(
            case.fleet.names.index(host) + 1, 'tail -n +%d %s/%s' % (lines + 1, case.deploy_to, probe.JOURNAL))))
        assert len(written) <= 5, '%s wrote %d failed-release archives (then deleted all but 5)' % (host, len(written))
    harness.assert_intended(case, 'deploy')
    nothing_lost(case)
