#!/usr/bin/python
# Copyright (c) 2026, capstan.release contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import annotations

DOCUMENTATION = r"""
module: release_dir
short_description: Prepare, finish, record or discard one release of a Capistrano-style deploy tree
version_added: 1.0.0
description:
  - Manages one release directory C(<deploy_to>/releases/<release>) through its life, one
    whole step a call, in Capistrano's layout (C(releases/), C(shared/), C(current),
    C(revisions.log)).
  - O(state=present) creates O(deploy_to), C(releases/) and C(shared/) and an empty release,
    recorded as unfinished in the tree's journal until it is finished. A release name older
    than the newest existing release is refused.
  - O(state=finished) links O(linked_dirs) and O(linked_files) into the release (absolute
    targets in C(shared/), parents created, a directory already at a linked path replaced by
    the link), writes C(REVISION) and C(REVISION_TIME) and marks the release finished, creating
    it first when needed. A finished release keeps its revision; finishing it again with the
    same O(revision) changes nothing, with another one is refused.
  - O(state=succeeded) records that the release went live and completed, in the journal and as
    Capistrano's deploy line in C(revisions.log) (see RV(log_line)). C(current) must point to the
    release.
  - O(state=absent) removes a release whose deploy failed, tarred to
    C(<deploy_to>/failed-release-<release>.tar.gz) first (mode 0600, symlinks stored as symlinks,
    never followed). The release C(current) points to, and a release that went live successfully,
    are refused; a missing release is left as it is.
  - Like Capistrano's pre-flight check, every O(linked_files) entry must already exist in
    C(shared/); a missing one fails before anything is created.
author: capstan.release contributors (!UNKNOWN)
options:
  release:
    description:
      - Name of the release, 14 digits (UTC C(YYYYmmddHHMMSS)), the same on every host of a run.
      - For O(state=present) and O(state=finished) a new name must be greater than every existing
        release name.
    type: str
    required: true
  state:
    description:
      - V(present) creates the tree and an unfinished, empty release.
      - V(finished) links the shared paths, writes C(REVISION) and C(REVISION_TIME) and marks the
        release finished, so that it may become C(current).
      - V(succeeded) records that the release went live, in the journal and in C(revisions.log).
      - V(absent) archives and removes a failed release.
    type: str
    choices: [present, finished, succeeded, absent]
    default: present
  revision:
    description:
      - What the release holds, written to C(REVISION) with a trailing newline as Capistrano's
        C(echo) does; a git sha or a content digest, one line.
      - Required when O(state=finished).
    type: str
  revision_time:
    description:
      - Written to C(REVISION_TIME) with a trailing newline. Capistrano writes the commit time
        in seconds since the epoch.
      - Defaults to the time of the call, in seconds since the epoch.
      - Used when O(state=finished).
    type: str
  linked_dirs:
    description:
      - Directories of C(shared/) linked into the release, as paths relative to the release
        without C(.) or C(..) components, for example C(log) or C(public/system).
      - A missing directory is created in C(shared/).
      - Linked when O(state=finished); checked when O(state=present).
    type: list
    elements: str
    default: []
  linked_files:
    description:
      - Files of C(shared/) linked into the release, as paths relative to the release without
        C(.) or C(..) components, for example C(config/database.yml).
      - Each must already exist in C(shared/); a missing one fails before anything is created.
      - Linked when O(state=finished); checked when O(state=present).
    type: list
    elements: str
    default: []
  branch:
    description:
      - The branch named in the C(revisions.log) line when O(state=succeeded). The deploy role
        passes the deployed git ref.
      - Capistrano's own default is C(master); this module defaults to V(main), git's current
        default branch name.
    type: str
    default: main
  log_user:
    description:
      - The user named in the C(revisions.log) line when O(state=succeeded). Capistrano names
        the user who ran the deploy on the controller.
      - Defaults to the user the module runs as.
    type: str
extends_documentation_fragment:
  - capstan.release.tree
  - capstan.release.tree.run
attributes:
  check_mode:
    support: full
    description: Reports what would change and changes nothing.
  diff_mode:
    support: full
    description: Shows the releases, or the state and revision of the release, before and after.
notes:
  - The journal that records the state of each release lives in C(<deploy_to>/.capstan/).
  - A release that is not in the journal (made by Capistrano) counts as having gone live when
    C(revisions.log) names it, when C(current) points to it, or when it is older than the
    current release and holds a C(REVISION) file.
seealso:
  - module: capstan.release.symlink_swap
  - module: capstan.release.release_prune
"""

EXAMPLES = r"""
- name: Create the release
  capstan.release.release_dir:
    deploy_to: /srv/app
    release: "20261121221404"
    linked_files: [config/database.yml]
  register: release

- name: Copy the application into it
  ansible.builtin.unarchive:
    src: app.tar.gz
    dest: "{{ release.release_path }}"

- name: Finish the release
  capstan.release.release_dir:
    deploy_to: /srv/app
    release: "20261121221404"
    state: finished
    revision: 3f2a9c1d5e7b
    linked_dirs: [log, tmp/pids, public/system]
    linked_files: [config/database.yml]

- name: Record that it went live
  capstan.release.release_dir:
    deploy_to: /srv/app
    release: "20261121221404"
    state: succeeded
    branch: main
    log_user: alice

- name: Remove the release of a failed deploy
  capstan.release.release_dir:
    deploy_to: /srv/app
    release: "20261121221404"
    state: absent
"""

RETURN = r"""
release:
  description: The name of the release.
  returned: success
  type: str
  sample: "20261121221404"
state:
  description:
    - The state of the release afterwards (in check mode, the state it would have).
    - For O(state=present), V(unfinished), or the state of a release that already existed.
    - For O(state=finished), V(finished), or V(successful) for a release that already went live.
    - V(successful) for O(state=succeeded), V(absent) for O(state=absent).
  returned: success
  type: str
  sample: finished
release_path:
  description: Absolute path of the release directory.
  returned: when O(state) is V(present), V(finished) or V(succeeded)
  type: str
  sample: /srv/app/releases/20261121221404
shared_path:
  description: Absolute path of C(shared/), where linked dirs and files live.
  returned: when O(state) is V(present) or V(finished)
  type: str
  sample: /srv/app/shared
previous_release:
  description: The release C(current) pointed to when the call started, or null when it pointed to none.
  returned: when O(state) is V(present) or V(finished)
  type: str
  sample: "20261121221359"
revision:
  description:
    - The revision of the release.
    - For O(state=succeeded), read from its C(REVISION) file (V(unknown) when it has none).
  returned: when O(state) is V(finished) or V(succeeded)
  type: str
  sample: 3f2a9c1d5e7b
links:
  description: Absolute paths of the links in the release, linked dirs first, then linked files.
  returned: when O(state=finished)
  type: list
  elements: str
  sample: [/srv/app/releases/20261121221404/log, /srv/app/releases/20261121221404/config/database.yml]
log_line:
  description: The line recorded in C(revisions.log) (or that was recorded when the release went live earlier).
  returned: when O(state=succeeded)
  type: str
  sample: Branch main (at 3f2a9c1d5e7b) deployed as release 20261121221404 by alice
archive:
  description: Absolute path of the archive the removed release was tarred to; null when there was no release to remove.
  returned: when O(state=absent)
  type: str
  sample: /srv/app/failed-release-20261121221404.tar.gz
"""

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.capstan.release.plugins.module_utils._module import run_step
from ansible_collections.capstan.release.plugins.module_utils._steps import (
    discard_release,
    finish_release,
    prepare_release,
    succeed_release,
)

ACTIONS = {
    'present': 'preparing',
    'finished': 'finishing',
    'succeeded': 'recording',
    'absent': 'removing',
}


def release_step(params, check):
    """The step of ``params['state']``, with this call's options."""
    state = params['state']
    deploy_to, name, run = params['deploy_to'], params['release'], params['run']
    if state == 'present':
        return prepare_release(deploy_to, name, linked_files=params['linked_files'], linked_dirs=params['linked_dirs'],
                               check=check, run=run)
    if state == 'finished':
        return finish_release(deploy_to, name, params['revision'], revision_time=params['revision_time'],
                              linked_dirs=params['linked_dirs'], linked_files=params['linked_files'], check=check, run=run)
    if state == 'succeeded':
        return succeed_release(deploy_to, name, params['branch'], params['log_user'], check=check, run=run)
    return discard_release(deploy_to, name, check=check, run=run)


def main():
    module = AnsibleModule(
        argument_spec=dict(
            deploy_to=dict(type='path', required=True),
            release=dict(type='str', required=True),
            state=dict(type='str', default='present', choices=['present', 'finished', 'succeeded', 'absent']),
            revision=dict(type='str'),
            revision_time=dict(type='str'),
            linked_dirs=dict(type='list', elements='str', default=[]),
            linked_files=dict(type='list', elements='str', default=[]),
            branch=dict(type='str', default='main'),
            log_user=dict(type='str'),
            run=dict(type='str'),
        ),
        required_if=[('state', 'finished', ['revision'])],
        supports_check_mode=True,
    )
    params = module.params
    what = '%s release %s in %s' % (ACTIONS[params['state']], params['release'], params['deploy_to'])
    run_step(module, what, release_step, params, module.check_mode)


if __name__ == '__main__':
    main()
