#!/usr/bin/python
# Copyright (c) 2026, capstan.release contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import annotations

DOCUMENTATION = r"""
module: symlink_swap
short_description: Point C(current) at a finished release with one atomic rename
version_added: 1.0.0
description:
  - Switches C(<deploy_to>/current) to C(<deploy_to>/releases/<release>) the way Capistrano
    publishes, with a temporary symlink beside C(current) renamed over it with rename(2), so
    there is no moment without C(current); the directory is fsynced afterwards.
  - The link target is absolute. Only a finished release (its content complete, REVISION
    written) is accepted; a missing, unfinished or failed release is refused.
  - A C(current) that is a real directory (a tree from before releases were used) is refused
    unless O(migrate=true), which moves that directory into C(releases/) under the newest free
    name older than O(release) and then switches.
  - With O(rollback=true) the switch is recorded as a rollback, and Capistrano's line
    C(<user> rolled back to release <release>) is appended to C(revisions.log).
author: capstan.release contributors (!UNKNOWN)
options:
  release:
    description: Name of the release to make current, 14 digits (UTC C(YYYYmmddHHMMSS)).
    type: str
    required: true
  migrate:
    description: Move a real C(current) directory into C(releases/) instead of refusing it.
    type: bool
    default: false
  rollback:
    description: Record this switch as a rollback in the journal and in C(revisions.log).
    type: bool
    default: false
  log_user:
    description:
      - The user named in the C(revisions.log) rollback line. Capistrano names the user who
        ran the deploy on the controller.
      - Defaults to the user the module runs as.
    type: str
extends_documentation_fragment:
  - capstan.release.tree
  - capstan.release.tree.run
attributes:
  check_mode:
    support: full
    description: Reports whether C(current) would change and changes nothing.
  diff_mode:
    support: full
    description: Shows the link target of C(current) before and after.
notes:
  - The temporary link is created in O(deploy_to), so the rename never crosses a filesystem.
seealso:
  - module: capstan.release.release_dir
  - module: capstan.release.rollback_target
"""

EXAMPLES = r"""
- name: Publish the new release
  capstan.release.symlink_swap:
    deploy_to: /srv/app
    release: "20261121221404"
  register: swap

- name: Roll back to where we were
  capstan.release.symlink_swap:
    deploy_to: /srv/app
    release: "{{ swap.previous_release }}"
    rollback: true
    log_user: alice
"""

RETURN = r"""
release:
  description: The release C(current) now points to.
  returned: success
  type: str
  sample: "20261121221404"
release_path:
  description: Absolute path of that release, the target of C(current).
  returned: success
  type: str
  sample: /srv/app/releases/20261121221404
previous_release:
  description: The release C(current) pointed to before, or null when there was none.
  returned: success
  type: str
  sample: "20261121221359"
previous_path:
  description: Absolute path of RV(previous_release), or null.
  returned: success
  type: str
  sample: /srv/app/releases/20261121221359
previous_link:
  description: What C(current) pointed to before, as read from the link (also for a dangling link or one outside C(releases/)).
  returned: success
  type: str
  sample: /srv/app/releases/20261121221359
migrated:
  description: The release name a real C(current) directory was moved to, when O(migrate=true) did so.
  returned: success
  type: str
  sample: "20261121221403"
"""

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.capstan.release.plugins.module_utils._module import run_step
from ansible_collections.capstan.release.plugins.module_utils._steps import swap_current


def main():
    module = AnsibleModule(
        argument_spec=dict(
            deploy_to=dict(type='path', required=True),
            release=dict(type='str', required=True),
            migrate=dict(type='bool', default=False),
            rollback=dict(type='bool', default=False),
            log_user=dict(type='str'),
            run=dict(type='str'),
        ),
        supports_check_mode=True,
    )
    params = module.params
    run_step(module, 'switching current in %s' % params['deploy_to'], swap_current, params['deploy_to'], params['release'],
             migrate=params['migrate'], rollback=params['rollback'], log_user=params['log_user'],
             check=module.check_mode, run=params['run'])


if __name__ == '__main__':
    main()
