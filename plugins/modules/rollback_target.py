#!/usr/bin/python
# Copyright (c) 2026, capstan.release contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import annotations

DOCUMENTATION = r"""
module: rollback_target
short_description: Resolve the release a rollback goes to
version_added: 1.0.0
description:
  - Works out, without changing anything, which release a rollback of O(deploy_to) switches
    C(current) to, so every host can be checked before any of them switches.
  - Without O(release), the target is the newest release older than the current one that
    went live successfully. Releases are ordered by name, never by modification time;
    unfinished and failed releases are skipped. After a rollback the release it left is
    archived and removed, so repeated rollbacks step back one release further each time.
  - With O(release), that release is the target. It must be a release name of 14 digits,
    exist on the host and have gone live successfully (or be the current release).
  - A refusal names the releases that are available.
author: capstan.release contributors (!UNKNOWN)
options:
  release:
    description:
      - Name of the release to roll back to, 14 digits (UTC C(YYYYmmddHHMMSS)); the role
        passes the playbook variable C(rollback_release) here.
      - When not set, the newest successful release older than the current one.
      - Naming the current release resolves to RV(noop=true); naming a newer successful release
        rolls forward to it.
    type: str
extends_documentation_fragment:
  - capstan.release.tree
attributes:
  check_mode:
    support: full
    description: Never changes anything; it runs the same in check mode.
  diff_mode:
    support: none
    description: Changes nothing, so there is nothing to show.
notes:
  - Fails when C(current) is missing, dangling or not a link into C(releases/), since there is
    then no release to roll back from.
seealso:
  - module: capstan.release.symlink_swap
  - module: capstan.release.release_info
"""

EXAMPLES = r"""
- name: Find the release before current
  capstan.release.rollback_target:
    deploy_to: /srv/app
  register: target

- name: Find a named release
  capstan.release.rollback_target:
    deploy_to: /srv/app
    release: "20261121221404"
  register: target

- name: Switch current to it
  capstan.release.symlink_swap:
    deploy_to: /srv/app
    release: "{{ target.release }}"
    rollback: true
  when: not target.noop
"""

RETURN = r"""
release:
  description: The release the rollback switches C(current) to.
  returned: success
  type: str
  sample: "20261121221359"
release_path:
  description: Absolute path of RV(release).
  returned: success
  type: str
  sample: /srv/app/releases/20261121221359
current:
  description: The release C(current) points to now.
  returned: success
  type: str
  sample: "20261121221404"
leaving:
  description:
    - The release the rollback leaves, which is then archived as
      C(rolled-back-release-<name>.tar.gz) and removed.
    - Null when RV(release) is the current release or newer than it.
  returned: success
  type: str
  sample: "20261121221404"
noop:
  description: True when RV(release) is already current, so rolling back to it changes nothing.
  returned: success
  type: bool
  sample: false
available:
  description: The releases that went live successfully, oldest first; the ones a rollback may go to.
  returned: success
  type: list
  elements: str
  sample: ["20261121221359", "20261121221404"]
"""

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.capstan.release.plugins.module_utils._module import run_step
from ansible_collections.capstan.release.plugins.module_utils._steps import rollback_target


def main():
    module = AnsibleModule(
        argument_spec=dict(
            deploy_to=dict(type='path', required=True),
            release=dict(type='str'),
        ),
        supports_check_mode=True,
    )
    params = module.params
    run_step(module, 'reading the releases of %s' % params['deploy_to'], rollback_target, params['deploy_to'],
             release=params['release'])


if __name__ == '__main__':
    main()
