# Copyright (c) 2026, capstan.release contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Benchmark-only callback: what each host cost, independent of task names.

Enabled by benchmarks/run.py only (ANSIBLE_CALLBACK_PLUGINS=benchmarks/callback_plugins,
ANSIBLE_CALLBACKS_ENABLED=capstan_bench, CAPSTAN_BENCH_COUNTS=<file>). It appends JSON lines
to that file:

- ``{"kind": "module", "host": H, "module": M, "delegate_to": D}`` each time an action plugin
  executes a module (``ActionBase._execute_module``, also through mitogen's mixin). That is
  one module run on the host, whatever the task is called and however many modules one action
  runs (capstan's copy runs two in one task); controller-only actions (set_fact, assert, debug,
  include_*, meta) execute none.
- ``{"kind": "command", "host": H}`` for every command sent over the connection
  (``ActionBase._low_level_execute_command``): with pipelining that is one per module run, plus
  any temp-dir creation or removal; ``{"kind": "transfer", "host": H}`` for each file put.
- ``{"kind": "result", ...}`` for a task result carrying ``sent_bytes`` (copy-strategy figures).
- ``{"kind": "recap", "hosts": {H: {ok, changed, failed, skipped, unreachable, rescued, ignored}}}``
  once, at the end: the play recap, as Ansible prints it.

Module runs are written by the worker processes (forked after this plugin patched the class),
each line with one O_APPEND write, so lines from parallel workers never interleave.
"""

from __future__ import annotations

import json
import os
import sys

from ansible.plugins.action import ActionBase
from ansible.plugins.callback import CallbackBase

DOCUMENTATION = r"""
name: capstan_bench
type: aggregate
short_description: Counts module runs and task results per host (capstan.release's benchmarks)
description:
  - Appends one JSON line per module run, per remote command, and the play recap to the file
    named by the environment variable CAPSTAN_BENCH_COUNTS.
requirements:
  - enable with ANSIBLE_CALLBACKS_ENABLED=capstan_bench
author: capstan.release contributors (!UNKNOWN)
"""

COUNTS_ENV = 'CAPSTAN_BENCH_COUNTS'
_PATCHED = set()


def _write(record):
    path = os.environ.get(COUNTS_ENV)
    if not path:
        return
    line = (json.dumps(record, sort_keys=True, default=str) + '\n').encode('utf-8')
    fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
    try:
        os.write(fd, line)
    finally:
        os.close(fd)


def _host_of(action, task_vars):
    host = (task_vars or {}).get('inventory_hostname')
    if host is None:
        host = getattr(getattr(action, '_play_context', None), 'remote_addr', None)
    return host


def _delegate_of(action):
    try:
        return action._task.delegate_to or None
    except AttributeError:
        return None


def _patch(cls):
    """Wrap cls._execute_module / _low_level_execute_command / _transfer_file to log each call."""
    if cls in _PATCHED:
        return
    _PATCHED.add(cls)
    execute_module = cls.__dict__.get('_execute_module')
    low_level = cls.__dict__.get('_low_level_execute_command')
    transfer = cls.__dict__.get('_transfer_file')

    if execute_module is not None:
        def _execute_module_counted(self, *args, **kwargs):
            module_name = kwargs.get('module_name', args[0] if args else None)
            task_vars = kwargs.get('task_vars', args[3] if len(args) > 3 else None)
            _write({'kind': 'module', 'host': _host_of(self, task_vars), 'delegate_to': _delegate_of(self),
                    'module': module_name or getattr(self._task, 'action', None)})
            return execute_module(self, *args, **kwargs)
        cls._execute_module = _execute_module_counted

    if low_level is not None:
        def _low_level_counted(self, *args, **kwargs):
            _write({'kind': 'command', 'host': getattr(self._play_context, 'remote_addr', None),
                    'delegate_to': _delegate_of(self)})
            return low_level(self, *args, **kwargs)
        cls._low_level_execute_command = _low_level_counted

    if transfer is not None:
        def _transfer_counted(self, *args, **kwargs):
            _write({'kind': 'transfer', 'host': getattr(self._play_context, 'remote_addr', None),
                    'delegate_to': _delegate_of(self)})
            return transfer(self, *args, **kwargs)
        cls._transfer_file = _transfer_counted


def _patch_mitogen():
    """mitogen_linear puts its own mixin before ActionBase: count through it too."""
    mixins = sys.modules.get('ansible_mitogen.mixins')
    if mixins is not None and hasattr(mixins, 'ActionModuleMixin'):
        _patch(mixins.ActionModuleMixin)


class CallbackModule(CallbackBase):
    CALLBACK_VERSION = 2.0
    CALLBACK_TYPE = 'aggregate'
    CALLBACK_NAME = 'capstan_bench'
    CALLBACK_NEEDS_ENABLED = True

    def __init__(self, *args, **kwargs):
        super(CallbackModule, self).__init__(*args, **kwargs)
        _patch(ActionBase)

    def v2_playbook_on_play_start(self, play):
        _patch_mitogen()

    def v2_playbook_on_task_start(self, task, is_conditional):
        _patch_mitogen()

    def v2_runner_on_ok(self, result):
        data = result._result
        if isinstance(data, dict) and 'sent_bytes' in data:
            _write({'kind': 'result', 'host': result._host.get_name(),
                    'figures': dict((key, data.get(key)) for key in ('files', 'bytes', 'linked', 'sent', 'sent_bytes',
                                                                     'written', 'copied', 'release'))})

    def v2_playbook_on_stats(self, stats):
        hosts = {}
        for host in sorted(stats.processed):
            summary = stats.summarize(host)
            hosts[host] = {
                'ok': summary.get('ok', 0), 'changed': summary.get('changed', 0), 'failed': summary.get('failures', 0),
                'skipped': summary.get('skipped', 0), 'unreachable': summary.get('unreachable', 0),
                'rescued': summary.get('rescued', 0), 'ignored': summary.get('ignored', 0),
            }
        _write({'kind': 'recap', 'hosts': hosts})
