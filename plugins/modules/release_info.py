#!/usr/bin/python
# Copyright (c) 2026, capstan.release contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import annotations

DOCUMENTATION = r"""
module: release_info
short_description: Report the releases, history and lock of a deploy tree
version_added: 1.0.0
description:
  - Reads one deploy tree and reports what is there, changing nothing - its releases and
    their states, what C(current) points to, the archives of failed and rolled-back releases,
    the deploy lock holder, Capistrano's C(revisions.log) and capstan's journal.
  - Releases are ordered by name, never by modification time. Entries of C(releases/) whose
    name is not 14 digits are reported in RV(foreign) and never counted.
  - A O(deploy_to) that does not exist is reported with RV(exists=false) and empty lists.
author: capstan.release contributors (!UNKNOWN)
extends_documentation_fragment:
  - capstan.release.tree
attributes:
  check_mode:
    support: full
    description: Never changes anything; it runs the same in check mode.
  diff_mode:
    support: none
    description: Changes nothing, so there is nothing to show.
seealso:
  - module: capstan.release.rollback_target
  - module: capstan.release.release_lock
"""

EXAMPLES = r"""
- name: Read the deploy tree
  capstan.release.release_info:
    deploy_to: /srv/app
  register: tree

- name: Show what is live
  ansible.builtin.debug:
    msg: "{{ tree.current }} ({{ tree.successful | length }} successful releases)"
"""

RETURN = r"""
exists:
  description: Whether O(deploy_to) is a directory.
  returned: success
  type: bool
  sample: true
deploy_to:
  description: O(deploy_to), normalised.
  returned: success
  type: str
  sample: /srv/app
current:
  description: The release C(current) points to, or null when it does not point to a release.
  returned: success
  type: str
  sample: "20261121221404"
current_kind:
  description:
    - What C(current) is.
    - V(release) - a symlink to a release.
    - V(missing) - there is no C(current).
    - V(dangling) - a symlink into C(releases/) whose release does not exist.
    - V(outside) - a symlink to something that is not a release of this tree.
    - V(directory) - a real directory (a tree from before releases were used).
    - V(file) - a regular file or other non-link.
  returned: success
  type: str
  choices: [release, missing, dangling, outside, directory, file]
  sample: release
current_link:
  description: The target of the C(current) symlink as read from the link, or null when C(current) is not a symlink.
  returned: success
  type: str
  sample: /srv/app/releases/20261121221404
releases:
  description: Every release directory, oldest first.
  returned: success
  type: list
  elements: dict
  contains:
    name:
      description: The release name, 14 digits (UTC C(YYYYmmddHHMMSS)).
      type: str
      sample: "20261121221404"
    path:
      description: Absolute path of the release.
      type: str
      sample: /srv/app/releases/20261121221404
    state:
      description:
        - V(unfinished) - created, content not complete.
        - V(finished) - content complete, not yet live.
        - V(successful) - went live and completed.
        - V(failed) - its deploy failed.
        - V(rolled_back) - a rollback left it.
        - V(unknown) - no record says what it is (for example a release newer than current
          that no log mentions).
      type: str
      choices: [unfinished, finished, successful, failed, rolled_back, unknown]
      sample: successful
    revision:
      description: The content of its C(REVISION) file, or null.
      type: str
      sample: 9f1c2d3e4b5a69788766554433221100ffeeddcc
    revision_time:
      description: The content of its C(REVISION_TIME) file (seconds since the epoch), or null.
      type: str
      sample: "1795385644"
    current:
      description: Whether C(current) points to it.
      type: bool
      sample: true
release_names:
  description: The names of RV(releases), oldest first.
  returned: success
  type: list
  elements: str
  sample: ["20261121221359", "20261121221404"]
successful:
  description: The releases that went live successfully, oldest first; they count toward keep_releases and a rollback may go to them.
  returned: success
  type: list
  elements: str
  sample: ["20261121221359", "20261121221404"]
foreign:
  description: Other entries of C(releases/) (names that are not 14 digits, or not directories); never counted, never deleted.
  returned: success
  type: list
  elements: str
  sample: ["old-site"]
archives:
  description: File names of C(failed-release-<name>.tar.gz) and C(rolled-back-release-<name>.tar.gz) in O(deploy_to), oldest release first.
  returned: success
  type: list
  elements: str
  sample: ["rolled-back-release-20261121221404.tar.gz"]
lock:
  description:
    - The holder of the deploy lock, empty when unlocked.
    - Keys C(owner), C(user), C(host), C(pid), C(command) and C(time); a lock file that cannot
      be read shows C(owner=null) and C(unreadable).
  returned: success
  type: dict
  sample:
    owner: 1795385644-ctl01-4242
    user: alice
    host: ctl01
    pid: 4242
    command: ansible-playbook capstan.release.deploy -i inventory
    time: "2026-11-21T22:14:04Z"
revisions:
  description: The entries of Capistrano's C(revisions.log), oldest first; lines in other formats are left out.
  returned: success
  type: list
  elements: dict
  contains:
    kind:
      description: V(deploy) or V(rollback).
      type: str
      sample: deploy
    release:
      description: The release the line names.
      type: str
      sample: "20261121221404"
    user:
      description: The user the line names.
      type: str
      sample: alice
    branch:
      description: The branch deployed (deploy lines only).
      type: str
      sample: main
    sha:
      description: The revision deployed (deploy lines only).
      type: str
      sample: 9f1c2d3e4b5a69788766554433221100ffeeddcc
events:
  description: capstan's journal of this tree, oldest first; each event has C(time), C(event) and C(release), and more keys depending on the event.
  returned: success
  type: list
  elements: dict
  sample:
    - time: "2026-11-21T22:14:04Z"
      event: published
      release: "20261121221404"
      previous: "20261121221359"
      mode: deploy
"""

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.capstan.release.plugins.module_utils._module import run_step
from ansible_collections.capstan.release.plugins.module_utils._steps import info


def main():
    module = AnsibleModule(
        argument_spec=dict(
            deploy_to=dict(type='path', required=True),
        ),
        supports_check_mode=True,
    )
    run_step(module, 'reading %s' % module.params['deploy_to'], info, module.params['deploy_to'])


if __name__ == '__main__':
    main()
