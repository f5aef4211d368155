# Copyright (c) 2026, capstan.release contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Credentials inside URLs never leave this collection's hands: what it prints, records or refuses is masked.

    https://deploy:s3cret@git.example.com/app.git  ->  https://***@git.example.com/app.git
    https://files.example.com/app.tgz?token=abc    ->  https://files.example.com/app.tgz?token=***

``mask`` works on any text (a command line, a git error, a journal line), finding every URL in it.
"""

from __future__ import annotations

import re

MASK = '***'
# scheme://userinfo@ : everything between :// and the last @ before the host is the credential.
_USERINFO_RE = re.compile(r'(?P<scheme>\b[A-Za-z][A-Za-z0-9+.-]*://)(?P<userinfo>[^/?#\s\'"]+)@')
# Query or fragment parameters whose names say they carry a secret.
_PARAM_RE = re.compile(r'(?P<key>[?&#;](?:[A-Za-z0-9_.-]*(?:token|secret|password|passwd|pass|key|sig|signature|auth|'
                       r'credential|session)[A-Za-z0-9_.-]*))=(?P<value>[^&#\s\'"]*)', re.IGNORECASE)


def mask(value):
    """``value`` with URL credentials replaced by ``***``; anything that is not text is returned as it is."""
    if not isinstance(value, str):
        return value
    value = _USERINFO_RE.sub(lambda match: match.group('scheme') + MASK + '@', value)
    return _PARAM_RE.sub(lambda match: match.group('key') + '=' + (MASK if match.group('value') else ''), value)


def has_secret(value):
    """True when ``value`` carries a credential that ``mask`` would hide."""
    return isinstance(value, str) and mask(value) != value


def mask_all(value):
    """``mask`` applied to every string inside lists and dicts (a result about to be returned)."""
    if isinstance(value, dict):
        return dict((key, mask_all(item)) for key, item in value.items())
    if isinstance(value, (list, tuple)):
        return [mask_all(item) for item in value]
    return mask(value)
