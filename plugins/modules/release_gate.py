# Copyright (c) 2026, capstan.release contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

# The work is done on the controller by the action plugin plugins/action/release_gate.py;
# this file documents it.

from __future__ import annotations

DOCUMENTATION = r"""
module: release_gate
short_description: Go/no-go - ask a person at the controller to confirm, with a timeout
version_added: 1.0.0
description:
  - Shows O(prompt) on the terminal of the controller and waits up to O(timeout) seconds for a
    line. Only O(expect) (by default V(yes)) followed by Enter is a go; any other answer, no
    answer in time, Ctrl+C, or a controller without a terminal (CI, cron) is a no-go.
  - It never fails on a no-go. It returns RV(go=false) and the reason, so the caller decides
    what a no-go means. The deploy role checks RV(go) on every host and publishes on none of
    them after a no-go.
  - Run it with C(run_once), or every host asks.
author: capstan.release contributors (!UNKNOWN)
options:
  prompt:
    description: The question, e.g. which release goes live on which hosts.
    type: str
    required: true
  timeout:
    description: Seconds to wait for the answer, at least 1.
    type: int
    default: 300
  expect:
    description: The answer that means go, compared after trimming spaces.
    type: str
    default: "yes"
attributes:
  action:
    support: full
    description: Runs on the controller; no host is contacted.
  check_mode:
    support: full
    description: Does not ask in check mode and returns RV(go=true), since nothing would change anyway.
  diff_mode:
    support: none
    description: Changes nothing.
notes:
  - Uses Ansible's own prompt, so it works with any number of forks and keeps the terminal's settings.
seealso:
  - module: ansible.builtin.pause
"""

EXAMPLES = r"""
- name: Ask before the new release goes live
  capstan.release.release_gate:
    prompt: "Publish release 20261121221404 on web1, web2?"
    timeout: 120
  register: gate
  run_once: true

- name: Stop on a no-go
  ansible.builtin.assert:
    that: gate.go
    fail_msg: "{{ gate.msg }}"
"""

RETURN = r"""
go:
  description: Whether the person confirmed in time.
  returned: always
  type: bool
answer:
  description: What was typed, or null when there was no terminal to ask on.
  returned: always
  type: str
waited:
  description: Seconds spent waiting for the answer.
  returned: when asked
  type: float
msg:
  description: The decision in words, e.g. C(no-go - no answer within 120 seconds).
  returned: always
  type: str
"""
