# Copyright (c) 2026, capstan.release contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Test-only stdout callback: one JSON object a line per host result, for ad-hoc runs."""

from __future__ import annotations

import json

from ansible.plugins.callback import CallbackBase

DOCUMENTATION = r"""
name: jsonlines
type: stdout
short_description: One JSON line per host result (capstan.release's integration tests)
description:
  - Prints one JSON object a line for each host result, with keys host, status and result.
author: capstan.release contributors (!UNKNOWN)
"""


class CallbackModule(CallbackBase):
    CALLBACK_VERSION = 2.0
    CALLBACK_TYPE = 'stdout'
    CALLBACK_NAME = 'jsonlines'

    def _emit(self, result, status):
        record = {'host': result.host.get_name(), 'status': status, 'result': self._convert(result.result)}
        self._display.display(json.dumps(record, sort_keys=True, default=str))

    def _convert(self, value):
        return json.loads(self._dump_results(value, indent=0))

    def v2_runner_on_ok(self, result):
        self._emit(result, 'ok')

    def v2_runner_on_failed(self, result, ignore_errors=False):
        self._emit(result, 'failed')

    def v2_runner_on_unreachable(self, result):
        self._emit(result, 'unreachable')

    def v2_runner_on_skipped(self, result):
        self._emit(result, 'skipped')
