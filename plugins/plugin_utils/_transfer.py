# Copyright (c) 2026, capstan.release contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""How a bundle of missing content reaches a host from an action plugin: inside the module's arguments
when small (no extra round trip), else as a file in the remote temporary directory."""

from __future__ import annotations

import base64
import os

# A bundle up to this size goes inside the build call's arguments (no transfer, no remote temp dir).
INLINE_LIMIT = 1024 * 1024


def deliver(action, bundle, module_args):
    """Add ``bundle`` (a local tarball) to ``module_args`` as ``bundle_data`` or, transferred, as ``bundle``."""
    if os.path.getsize(bundle) <= INLINE_LIMIT:
        with open(bundle, 'rb') as handle:
            module_args['bundle_data'] = base64.b64encode(handle.read()).decode('ascii')
        return module_args
    shell = action._connection._shell
    tmpdir = shell.tmpdir or action._make_tmp_path()
    remote = shell.join_path(tmpdir, 'content.tar.gz')
    action._transfer_file(bundle, remote)
    action._fixup_perms2((tmpdir, remote))
    module_args['bundle'] = remote
    return module_args


def cleanup(action):
    """Remove the remote temporary directory a transfer made."""
    if action._connection._shell.tmpdir:
        action._remove_tmp_path(action._connection._shell.tmpdir)
