# Copyright (c) 2026, capstan.release contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import annotations


class ModuleDocFragment(object):
    """Options every module of capstan.release shares."""

    # The deploy tree every module works on.
    DOCUMENTATION = r"""
options:
  deploy_to:
    description:
      - The deploy tree, an absolute path, laid out as Capistrano 3 does
        (C(current), C(releases/), C(shared/), C(revisions.log)).
    type: path
    required: true
"""

    # Modules that change the tree record what they did in its journal.
    RUN = r"""
options:
  run:
    description: An identifier of this deploy run, recorded in the journal (C(<deploy_to>/.capstan/journal)).
    type: str
"""
