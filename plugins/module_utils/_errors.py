# Copyright (c) 2026, capstan.release contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""The one exception the release model raises: a sentence for the operator."""

from __future__ import annotations


class CapstanError(Exception):
    """A refusal or failure whose text is one sentence naming the input and what is allowed.

    Modules turn it into ``fail_json(msg=str(error), **error.details)``.
    """

    def __init__(self, msg, **details):
        super(CapstanError, self).__init__(msg)
        self.msg = msg
        self.details = details

    def __str__(self):
        return self.msg
