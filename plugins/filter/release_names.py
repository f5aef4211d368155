# Copyright (c) 2026, capstan.release contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Controller-side release naming: one name for the whole fleet, computed once per run."""

from __future__ import annotations

from ansible.errors import AnsibleFilterError

from ansible_collections.capstan.release.plugins.module_utils._errors import CapstanError
from ansible_collections.capstan.release.plugins.module_utils._releases import next_release_name


def _flatten(value):
    if isinstance(value, (list, tuple, set)):
        for item in value:
            yield from _flatten(item)
    elif isinstance(value, str):
        yield value
    elif value is not None:
        raise AnsibleFilterError('next_release_name takes lists of release names, got %r' % (value,))


def next_release_name_filter(existing):
    """The UTC-time release name, strictly greater than every name in ``existing`` (lists nest)."""
    try:
        return next_release_name(list(_flatten(existing)))
    except CapstanError as error:
        raise AnsibleFilterError(str(error))


class FilterModule(object):
    def filters(self):
        return {'next_release_name': next_release_name_filter}
