"""The test bed itself: hosts are isolated from each other and from the controller, and the
faults the flow tests rely on (cut, heal, slow) do what they say."""

from __future__ import annotations

import os
import socket
import time

import pytest

import bed


def connect_seconds(address):
    """How long one TCP connect to a host's sshd takes (None when it does not connect in 3 s)."""
    start = time.monotonic()
    try:
        with socket.create_connection((address, 22), timeout=3):
            return time.monotonic() - start
    except OSError:
        return None


def address(fleet, index):
    with open(str(fleet.inventory)) as handle:
        for line in handle:
            if line.startswith('host%d ' % index):
                return line.split('ansible_host=')[1].split()[0]
    raise AssertionError('host%d is not in %s' % (index, fleet.inventory))


def test_each_host_has_private_srv_tmp_and_root(fleet):
    marker = 'capstan-bed-%d' % os.getpid()
    fleet.sh(1, 'touch /srv/%s /tmp/%s /root/%s' % (marker, marker, marker))
    try:
        for path in ('/srv', '/tmp', '/root'):
            assert fleet.sh(2, 'ls -A %s' % path).split().count(marker) == 0
            assert not os.path.exists(os.path.join(path, marker)), 'the controller sees host1 files'
        assert fleet.sh(1, 'ls /srv').split().count(marker) == 1
    finally:
        fleet.sh(1, 'rm -f /srv/%s /tmp/%s /root/%s' % (marker, marker, marker))


def test_each_host_answers_ssh_as_itself(fleet):
    results = fleet.ok('release_info', {'deploy_to': '/srv/none'})
    assert sorted(results) == fleet.names
    assert [fleet.sh(i, 'hostname').strip() for i in (1, 2, 3)] == fleet.names


def test_cut_takes_a_host_off_the_network_and_heal_brings_it_back(fleet):
    target = address(fleet, 2)
    bed.cut(2)
    try:
        assert connect_seconds(target) is None
        assert connect_seconds(address(fleet, 1)) is not None
    finally:
        bed.heal(2)
    assert connect_seconds(target) is not None


def test_slow_adds_latency_to_one_host_only(fleet):
    bed.slow(1, 300)
    try:
        slowed = connect_seconds(address(fleet, 1))
        other = connect_seconds(address(fleet, 2))
    finally:
        bed.slow(1, 0)
    assert slowed is not None and slowed >= 0.25
    assert other is not None and other < 0.25
    assert connect_seconds(address(fleet, 1)) < 0.25


def test_a_fault_command_that_hangs_is_killed_and_run_once_more(tmp_path, monkeypatch):
    """`bed slow` once blocked for good (its bash waiting on a delay.py that ran on): cut, heal and
    slow are bounded, killed with everything they started in their session, and tried once more."""
    calls = tmp_path / 'calls'
    child = tmp_path / 'child.pid'
    tool = tmp_path / 'bed'
    # The first call hangs, waiting on a child of its own; the second succeeds.
    tool.write_text('#!/bin/sh\necho "$@" >> {calls}\n[ "$(wc -l < {calls})" -gt 1 ] && exit 0\n'
                    'sleep 600 &\necho $! > {child}\nwait\n'.format(calls=calls, child=child))
    tool.chmod(0o755)
    monkeypatch.setattr(bed, 'BED', tool)
    monkeypatch.setattr(bed, 'FAULT_TIMEOUT', 2)
    with pytest.warns(UserWarning, match='bed slow 2 300 hung for 2 s: killed and run again'):
        bed.slow(2, 300)
    assert calls.read_text().splitlines() == ['slow 2 300', 'slow 2 300']
    pid = int(child.read_text())
    for _look in range(50):
        if not os.path.exists('/proc/%d' % pid):
            break
        time.sleep(0.1)
    assert not os.path.exists('/proc/%d' % pid), 'what the hung call started (pid %d) still runs' % pid
