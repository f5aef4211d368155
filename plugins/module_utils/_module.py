# Copyright (c) 2026, capstan.release contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""The end every module's main() shares: run one step, turn its errors into fail_json, exit."""

from __future__ import annotations

from ansible_collections.capstan.release.plugins.module_utils import _secrets
from ansible_collections.capstan.release.plugins.module_utils._errors import CapstanError


def run_step(module, what, step, *args, **kwargs):
    """Exit ``module`` with the result of ``step(*args, **kwargs)``.

    A CapstanError fails with its own sentence and details; an OSError fails with
    ``'<what> failed: <error>'``. Either way URL credentials are masked (a message that names
    deploy_repo_url, git's stderr), whether or not Ansible's no_log would find them. The
    result's ``diff`` is dropped unless diff mode is on.
    """
    try:
        result = step(*args, **kwargs)
    except CapstanError as error:
        module.fail_json(msg=_secrets.mask(str(error)), **_secrets.mask_all(error.details))
    except (IOError, OSError) as error:
        module.fail_json(msg=_secrets.mask('%s failed: %s' % (what, error)))
    if not module._diff:
        result.pop('diff', None)
    module.exit_json(**result)
