# Copyright (c) 2026, capstan.release contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Credentials inside URLs never leave this collection's hands: what it prints, records or refuses is masked.

    https://deploy:s3cret@git.example.com/app.git  ->  https://***@git.example.com/app.git
    https://files.example.com/app.tgz?token=abc    ->  https://files.example.com/app.tgz?token=***

``mask`` works on any text (a command line, a git error, a journal line), finding every URL in it.
``without_credentials`` is one URL with its credential taken out, for what is kept on disk (the
git mirror's remote); ``shown`` is what a result may show once Ansible's no_log has marked it.
"""

from __future__ import annotations

import re

MASK = '***'
# What Ansible puts in a module's output wherever the value of a no_log option was.
NO_LOG_MARK = '********'
# scheme://userinfo@ : everything between :// and the last @ before the host is the credential.
_USERINFO_RE = re.compile(r'(?P<scheme>\b[A-Za-z][A-Za-z0-9+.-]*://)(?P<userinfo>[^/?#\s\'"]+)@')
# The same at the start of one URL, with the scheme alone: http(s) userinfo is a credential even without a password
# (a token as the user name); another scheme's is one when it has a password (ssh://git@host names a user).
_URL_USERINFO_RE = re.compile(r'^(?P<scheme>[A-Za-z][A-Za-z0-9+.-]*)://(?P<userinfo>[^/?#\s\'"]+)@')
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


def without_credentials(url):
    """``url`` without its userinfo when that is a credential (see _URL_USERINFO_RE); any other URL as it is.

        https://deploy:s3cret@git.example.com/app.git  ->  https://git.example.com/app.git
        ssh://git@git.example.com/app.git              ->  ssh://git@git.example.com/app.git
    """
    if not isinstance(url, str):
        return url
    match = _URL_USERINFO_RE.match(url)
    if not match or (':' not in match.group('userinfo') and match.group('scheme').lower() not in ('http', 'https')):
        return url
    return match.group('scheme') + '://' + url[match.end():]


def has_credential(url):
    """True when the one URL ``url`` carries a credential: userinfo ``without_credentials`` takes out, or a secret parameter."""
    return isinstance(url, str) and (without_credentials(url) != url or _PARAM_RE.search(url) is not None)


def shown(value, url=None):
    """``value`` (text, or the lists and dicts of a result) as the operator may see it.

    Ansible's no_log mark is put back as ``url`` masked (the no_log option it stands for: a message
    names the URL it is about, credentials hidden), then every URL credential left is masked.
    """
    if isinstance(value, dict):
        return dict((key, shown(item, url)) for key, item in value.items())
    if isinstance(value, (list, tuple)):
        return [shown(item, url) for item in value]
    if isinstance(value, str) and url and isinstance(url, str) and NO_LOG_MARK in value:
        value = value.replace(NO_LOG_MARK, mask(url))
    return mask(value)
