#!/usr/bin/python
# Copyright (c) 2026, capstan.release contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import annotations

DOCUMENTATION = r"""
module: release_prune
short_description: Remove old releases and archives of a Capistrano-style deploy tree
version_added: 1.0.0
description:
  - Keeps the newest O(keep_releases) releases of C(<deploy_to>/releases/) that went live
    successfully and removes the older ones. Age is the release name (14 digits, UTC
    C(YYYYmmddHHMMSS)), never a file time.
  - The release C(current) points to is never removed and always counts among the kept; when
    it is older than the newest O(keep_releases) (after a rollback), it takes the place of the
    oldest of them.
  - Only releases that went live successfully count toward O(keep_releases). Leftovers of runs
    that did not complete (unfinished, finished but never live, failed) never push a good
    release out; they are tarred to C(<deploy_to>/failed-release-<name>.tar.gz) and removed.
  - O(rolled_back) names the release a rollback just left; it is tarred to
    C(<deploy_to>/rolled-back-release-<name>.tar.gz) and removed.
  - Archives are written with mode 0600, symlinks stored as symlinks and never followed.
    Archives have their own retention, O(keep_archives).
  - Entries of C(releases/) that are not release directories (other names, names that are
    not 14 digits, symlinks, files) are reported in RV(foreign) and left alone. Nothing in
    C(shared/) and nothing outside O(deploy_to) is touched; symlinks in a removed release are
    removed, never followed.
author: capstan.release contributors (!UNKNOWN)
options:
  keep_releases:
    description: How many releases that went live successfully to keep, C(current) among them; at least 1.
    type: int
    default: 5
  keep_archives:
    description:
      - How many C(failed-release-*) and C(rolled-back-release-*) archives to keep in
        O(deploy_to), the newest by release name; the archives this call writes count too.
      - Archives have their own retention, independent of O(keep_releases). V(0) keeps none.
    type: int
    default: 5
  exclude:
    description: Release names never touched by this call, for example the release being built.
    type: list
    elements: str
    default: []
  rolled_back:
    description:
      - The release a rollback just left. It is archived as C(rolled-back-release-<name>.tar.gz)
        and removed, and it takes no place among the kept.
      - Refused when it is the release C(current) points to. Nothing happens when it no longer exists.
    type: str
extends_documentation_fragment:
  - capstan.release.tree
  - capstan.release.tree.run
attributes:
  check_mode:
    support: full
    description: Reports what would be removed and archived, and changes nothing.
  diff_mode:
    support: full
    description: Shows the releases and archives before and after.
notes:
  - A release that is not in the tree's journal (made by Capistrano) counts as having gone live
    when C(revisions.log) names it, when C(current) points to it, or when it is older than the
    current release and holds a C(REVISION) file; other such releases are leftovers.
seealso:
  - module: capstan.release.release_dir
  - module: capstan.release.symlink_swap
"""

EXAMPLES = r"""
- name: Keep the five newest releases, not touching the one being deployed
  capstan.release.release_prune:
    deploy_to: /srv/app
    keep_releases: 5
    exclude: ["20261121221404"]

- name: Archive and remove the release a rollback left
  capstan.release.release_prune:
    deploy_to: /srv/app
    keep_releases: 5
    keep_archives: 3
    rolled_back: "{{ rollback.leaving }}"
  when: rollback.leaving is not none
"""

RETURN = r"""
removed:
  description: The releases removed (in check mode, that would be removed), oldest first, the rolled-back release first.
  returned: success
  type: list
  elements: dict
  contains:
    name:
      description: The release name.
      type: str
      sample: "20261121221359"
    reason:
      description:
        - Why it went. V(old) for a successful release beyond O(keep_releases), V(rolled_back) for
          O(rolled_back), otherwise the state of a leftover (V(unfinished), V(finished), V(failed),
          V(unknown)).
      type: str
      sample: old
    archive:
      description: Absolute path of the archive it was tarred to, or null for an old successful release.
      type: str
      sample: /srv/app/failed-release-20261121221359.tar.gz
archives_removed:
  description: File names of the archives in O(deploy_to) removed by O(keep_archives), oldest first.
  returned: success
  type: list
  elements: str
  sample: [failed-release-20261101000000.tar.gz]
kept:
  description: The release names left in C(releases/), oldest first.
  returned: success
  type: list
  elements: str
  sample: ["20261121221359", "20261121221404"]
current:
  description: The release C(current) points to, or null when it points to none.
  returned: success
  type: str
  sample: "20261121221404"
foreign:
  description: Entries of C(releases/) that are not release directories, left untouched.
  returned: success
  type: list
  elements: str
  sample: [foo, "2026112122140"]
"""

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.capstan.release.plugins.module_utils._module import run_step
from ansible_collections.capstan.release.plugins.module_utils._steps import prune


def main():
    module = AnsibleModule(
        argument_spec=dict(
            deploy_to=dict(type='path', required=True),
            keep_releases=dict(type='int', default=5),
            keep_archives=dict(type='int', default=5),
            exclude=dict(type='list', elements='str', default=[]),
            rolled_back=dict(type='str'),
            run=dict(type='str'),
        ),
        supports_check_mode=True,
    )
    params = module.params
    run_step(module, 'pruning releases in %s' % params['deploy_to'], prune, params['deploy_to'], params['keep_releases'],
             params['keep_archives'], exclude=params['exclude'], rolled_back=params['rolled_back'],
             check=module.check_mode, run=params['run'])


if __name__ == '__main__':
    main()
