# Copyright (c) 2026, capstan.release contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Go/no-go: ask the person at the controller's terminal, and wait only so long."""

from __future__ import annotations

import time

from ansible.errors import AnsiblePromptInterrupt, AnsiblePromptNoninteractive
from ansible.module_utils.common.text.converters import to_text
from ansible.plugins.action import ActionBase
from ansible.utils.display import Display

display = Display()

ARGUMENT_SPEC = {
    'prompt': {'type': 'str', 'required': True},
    'timeout': {'type': 'int', 'default': 300},
    'expect': {'type': 'str', 'default': 'yes'},
}


def decide(answer, expect, waited, timeout):
    """(go, msg) for what the person typed; only the expected word, typed in time, is a go."""
    if answer is None:
        return False, 'no-go: no one can answer, the controller has no terminal (stdin is not interactive)'
    if waited >= timeout:
        return False, 'no-go: no answer within %d seconds' % timeout
    if answer.strip() != expect:
        return False, 'no-go: the answer was %r, not %r' % (answer.strip(), expect)
    return True, 'go: confirmed after %d seconds' % int(waited)


class ActionModule(ActionBase):
    """Reads one line from the controller's terminal through Ansible's own prompt machinery."""

    TRANSFERS_FILES = False
    _requires_connection = False
    _supports_check_mode = True
    _supports_async = False

    def run(self, tmp=None, task_vars=None):
        result = super(ActionModule, self).run(tmp, task_vars)
        del tmp  # no remote files
        args = self.validate_argument_spec(argument_spec=ARGUMENT_SPEC)[1]
        if args['timeout'] < 1:
            return dict(result, failed=True, msg='timeout must be a whole number of seconds of at least 1, got %d' % args['timeout'])
        result.update(changed=False, go=False, answer=None)
        if self._task.check_mode:
            result.update(go=True, msg='check mode: would ask %r and wait up to %d seconds' % (args['prompt'], args['timeout']))
            return result
        prompt = '%s\n(type %s and Enter within %d seconds; anything else is a no-go): ' % (
            args['prompt'], args['expect'], args['timeout'])
        start = time.monotonic()
        try:
            typed = display.prompt_until(prompt, seconds=args['timeout'], complete_input=(b'\r', b'\n'))
        except AnsiblePromptNoninteractive:
            answer = None
        except AnsiblePromptInterrupt:
            answer = ''
        else:
            answer = to_text(typed, errors='surrogate_or_strict')
        waited = time.monotonic() - start
        go, msg = decide(answer, args['expect'], waited, args['timeout'])
        result.update(go=go, answer=answer, waited=round(waited, 1), msg=msg)
        return result
