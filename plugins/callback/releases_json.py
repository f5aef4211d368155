# Copyright (c) 2026, capstan.release contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Stdout callback: the releases playbook's report as one JSON document on stdout, nothing else."""

from __future__ import annotations

DOCUMENTATION = r"""
name: releases_json
type: stdout
short_description: Print the report of the releases playbook as one JSON document
version_added: 1.0.0
description:
  - For C(ansible-playbook capstan.release.releases) - prints, once the run ends, the report
    the playbook gathered (the fact C(releases_report), see P(capstan.release.releases_report#filter))
    as one JSON document on stdout, and nothing else there, so the output pipes into C(jq).
  - Failed and unreachable hosts are reported on stderr, one line each; the exit status of
    C(ansible-playbook) tells whether the run succeeded. When no report was gathered (bad
    input, every host failed), stdout stays empty.
  - Enable it for one run with C(ANSIBLE_STDOUT_CALLBACK=capstan.release.releases_json).
author: capstan.release contributors (!UNKNOWN)
"""

import json

from ansible.plugins.callback import CallbackBase

REPORT_FACT = 'releases_report'


class CallbackModule(CallbackBase):
    CALLBACK_VERSION = 2.0
    CALLBACK_TYPE = 'stdout'
    CALLBACK_NAME = 'capstan.release.releases_json'

    def __init__(self, *args, **kwargs):
        super(CallbackModule, self).__init__(*args, **kwargs)
        self._report = None

    def v2_runner_on_ok(self, result):
        facts = result._result.get('ansible_facts') or {}
        if REPORT_FACT in facts:
            self._report = facts[REPORT_FACT]

    def _problem(self, result, what):
        message = result._result.get('msg') or what
        self._display.display('%s: %s: %s' % (result._host.get_name(), what, message), stderr=True)

    def v2_runner_on_failed(self, result, ignore_errors=False):
        if not ignore_errors:
            self._problem(result, 'failed')

    def v2_runner_on_unreachable(self, result):
        self._problem(result, 'unreachable')

    def v2_playbook_on_stats(self, stats):
        if self._report is not None:
            self._display.display(json.dumps(self._report, indent=2, sort_keys=True, default=str))
