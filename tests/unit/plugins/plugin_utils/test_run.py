"""_run: the controller's side of a run: its identity, and the files its workers share while it runs."""

from __future__ import annotations

import multiprocessing
import os
import socket
import stat
import subprocess
import sys
import tempfile

import pytest

from ansible_collections.capstan.release.plugins.plugin_utils import _run
from ansible_collections.capstan.release.tests.unit.helpers import read, write


def private_tmp(tmp_path, monkeypatch):
    """The controller's temporary directory, for this test alone."""
    folder = tmp_path / 'controller-tmp'
    folder.mkdir()
    monkeypatch.setattr(tempfile, 'tempdir', str(folder))
    return str(folder)


def dead_pid():
    child = subprocess.Popen([sys.executable, '-c', 'pass'])
    child.wait()
    return child.pid


def run_of(pid, owner='ctl-1-2-uuid'):
    return {'owner': owner, 'pid': pid}


# identity


def test_identity_is_the_parent_process_its_user_host_and_command(monkeypatch):
    monkeypatch.setattr(sys, 'argv', ['/usr/bin/ansible-playbook', '-i', 'inventory', 'deploy.yml'])
    run = _run.identity('task-uuid', 'deploy')
    assert set(run) == {'owner', 'user', 'host', 'pid', 'mode', 'command'}
    assert (run['pid'], run['host'], run['mode']) == (os.getppid(), socket.gethostname(), 'deploy')
    assert run['owner'].startswith('%s-%d-' % (run['host'], run['pid'])) and run['owner'].endswith('-task-uuid')
    assert run['command'] == '/usr/bin/ansible-playbook -i inventory deploy.yml'
    assert run['user']


def test_identity_is_the_same_for_every_worker_of_one_run_and_task():
    assert _run.identity('u1', 'deploy') == _run.identity('u1', 'deploy')
    assert _run.identity('u1', 'deploy')['owner'] != _run.identity('u2', 'deploy')['owner']


def test_identity_tells_a_reused_pid_apart_by_its_start_time():
    start = _run._process_start(os.getppid())
    assert start is not None and start.isdigit()
    assert '-%s-' % start in _run.identity('u', 'deploy')['owner']


def test_identity_masks_credentials_on_the_command_line(monkeypatch):
    monkeypatch.setattr(sys, 'argv', ['ansible-playbook', 'deploy.yml', '-e', 'deploy_repo_url=https://user:tok@host/x.git',
                                      '-e', 'deploy_src=https://h/a.tgz?token=abc&x=1'])
    command = _run.identity('u', 'deploy')['command']
    assert 'tok@' not in command and 'abc' not in command
    assert 'deploy_repo_url=https://***@host/x.git' in command
    assert 'token=***' in command


def test_identity_quotes_the_command_line_as_a_shell_would_take_it(monkeypatch):
    monkeypatch.setattr(sys, 'argv', ['ansible-playbook', 'my deploy.yml', '-e', 'deploy_to=/srv/app'])
    assert _run.identity('u', 'rollback')['command'] == "ansible-playbook 'my deploy.yml' -e deploy_to=/srv/app"


# pid_alive


def test_pid_alive():
    assert _run.pid_alive(os.getpid()) and _run.pid_alive(str(os.getpid()))
    assert not _run.pid_alive(dead_pid())


# once and make_file_once


def _make_counted(path, counter):
    def make():
        with open(counter, 'a') as handle:
            handle.write('x')
        return {'made_by': os.getpid()}
    return _run.once(path, make)


def test_once_makes_the_value_once_and_every_caller_reads_it(tmp_path):
    counter = str(tmp_path / 'counter')
    path = str(tmp_path / 'manifest.json')
    first = _make_counted(path, counter)
    assert _make_counted(path, counter) == first
    assert read(counter) == 'x'


def test_once_across_workers_makes_the_value_once(tmp_path):
    counter = str(tmp_path / 'counter')
    path = str(tmp_path / 'manifest.json')
    with multiprocessing.get_context('fork').Pool(6) as pool:
        values = pool.starmap(_make_counted, [(path, counter)] * 12)
    assert read(counter) == 'x'
    assert len(set(value['made_by'] for value in values)) == 1
    assert [entry for entry in os.listdir(str(tmp_path)) if '.tmp-' in entry] == []


def test_make_file_once_makes_the_file_once(tmp_path):
    path = str(tmp_path / 'bundle.tar.gz')
    calls = []

    def make(tmp):
        calls.append(tmp)
        write(tmp, 'bundle')

    assert _run.make_file_once(path, make) == path
    assert _run.make_file_once(path, make) == path
    assert len(calls) == 1 and read(path) == 'bundle'
    assert calls[0] != path and not os.path.exists(calls[0])


def test_make_file_once_that_fails_leaves_nothing_and_the_next_caller_makes_it(tmp_path):
    path = str(tmp_path / 'bundle.tar.gz')

    def broken(tmp):
        write(tmp, 'half')
        raise OSError('source changed')

    with pytest.raises(OSError):
        _run.make_file_once(path, broken)
    assert sorted(os.listdir(str(tmp_path))) == ['bundle.tar.gz.lock']
    _run.make_file_once(path, lambda tmp: write(tmp, 'whole'))
    assert read(path) == 'whole'


# the run's files: bundle_path, run_dir, store, load


def test_bundle_path_is_per_run_and_per_set_of_contents(tmp_path, monkeypatch):
    folder = private_tmp(tmp_path, monkeypatch)
    run = run_of(4242)
    path = _run.bundle_path(run, ['b' * 64, 'a' * 64])
    assert path == _run.bundle_path(run, ['a' * 64, 'b' * 64])
    assert path != _run.bundle_path(run, ['a' * 64])
    assert path != _run.bundle_path(run_of(4243), ['a' * 64, 'b' * 64])
    assert os.path.dirname(path) == folder
    assert os.path.basename(path).startswith('capstan-bundle-4242-') and path.endswith('.tar.gz')


def test_run_dir_is_private_to_the_run(tmp_path, monkeypatch):
    folder = private_tmp(tmp_path, monkeypatch)
    path = _run.run_dir(run_of(4242))
    assert os.path.dirname(path) == folder and os.path.basename(path).startswith('capstan-run-4242-')
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o700
    assert _run.run_dir(run_of(4242, 'another-run')) != path


def test_store_then_load(tmp_path, monkeypatch):
    private_tmp(tmp_path, monkeypatch)
    run = run_of(4242)
    _run.store(run, 'missing-web1.json', ['a' * 64])
    assert _run.load(run, 'missing-web1.json') == ['a' * 64]
    assert [entry for entry in os.listdir(_run.run_dir(run)) if '.tmp-' in entry] == []


def test_load_of_nothing_or_of_a_torn_file_is_the_default(tmp_path, monkeypatch):
    private_tmp(tmp_path, monkeypatch)
    run = run_of(4242)
    assert _run.load(run, 'missing-web1.json', []) == []
    write(os.path.join(_run.run_dir(run), 'torn.json'), '["aaa')
    assert _run.load(run, 'torn.json', 'default') == 'default'


# forget and clean_leftovers


def test_forget_removes_this_runs_files_only(tmp_path, monkeypatch):
    folder = private_tmp(tmp_path, monkeypatch)
    mine, other = run_of(4242), run_of(4243)
    _run.store(mine, 'x.json', 1)
    _run.store(other, 'x.json', 2)
    for run in (mine, other):
        _run.make_file_once(_run.bundle_path(run, ['a' * 64]), lambda tmp: write(tmp, 'b'))
    write(os.path.join(folder, 'capstan-run-42420-x', 'keep'), 'other pid')
    write(os.path.join(folder, 'unrelated'), 'keep')
    _run.forget(mine)
    remaining = sorted(os.listdir(folder))
    assert not any(entry.startswith(('capstan-run-4242-', 'capstan-bundle-4242-')) for entry in remaining)
    assert 'capstan-run-42420-x' in remaining and 'unrelated' in remaining
    assert _run.load(other, 'x.json') == 2
    assert os.path.exists(_run.bundle_path(other, ['a' * 64]))


def test_forget_keeps_the_files_of_another_run_of_the_same_playbook(tmp_path, monkeypatch):
    private_tmp(tmp_path, monkeypatch)
    deploy, rollback = run_of(4242), run_of(4242, 'a-rollback-in-a-hook')
    for run in (deploy, rollback):
        _run.store(run, 'plan.json', run['owner'])
        _run.make_file_once(_run.bundle_path(run, ['a' * 64]), lambda tmp: write(tmp, 'b'))
    _run.forget(rollback)
    assert _run.load(rollback, 'plan.json') is None and not os.path.exists(_run.bundle_path(rollback, ['a' * 64]))
    assert _run.load(deploy, 'plan.json') == deploy['owner'] and os.path.exists(_run.bundle_path(deploy, ['a' * 64]))


def test_clean_leftovers_removes_the_files_of_runs_whose_controller_is_gone(tmp_path, monkeypatch):
    folder = private_tmp(tmp_path, monkeypatch)
    gone = dead_pid()
    alive = os.getpid()
    _run.store(run_of(gone), 'x.json', 1)
    _run.store(run_of(alive), 'x.json', 2)
    write(os.path.join(folder, 'capstan-bundle-%d-abc.tar.gz' % gone), 'bundle')
    write(os.path.join(folder, 'capstan-bundle-%d-abc.tar.gz.lock' % gone), '')
    write(os.path.join(folder, 'capstan-bundle-%d-abc.tar.gz' % alive), 'bundle')
    write(os.path.join(folder, 'capstan-notes-%d-x' % gone), 'not ours')
    gone_dir, alive_dir = (os.path.basename(_run.run_dir(run_of(pid))) for pid in (gone, alive))
    removed = _run.clean_leftovers()
    assert sorted(removed) == sorted([gone_dir, 'capstan-bundle-%d-abc.tar.gz' % gone,
                                      'capstan-bundle-%d-abc.tar.gz.lock' % gone])
    kept = [alive_dir, 'capstan-bundle-%d-abc.tar.gz' % alive, 'capstan-notes-%d-x' % gone]
    assert sorted(os.listdir(folder)) == sorted(kept)


def test_clean_leftovers_of_a_missing_folder_is_nothing(tmp_path):
    assert _run.clean_leftovers(str(tmp_path / 'nowhere')) == []
