#!/usr/bin/python
# Copyright (c) 2026, capstan.release contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import annotations

DOCUMENTATION = r"""
module: release_lock
short_description: Take or release the deploy lock of a deploy tree
version_added: 1.0.0
description:
  - Allows one deploy or rollback per deploy tree at a time. The lock is the file
    C(<deploy_to>/.capstan/lock), a JSON object naming its holder (O(owner), O(user), O(host),
    O(pid), O(command) and the time it was taken). It is created atomically with link(2), so
    of several runs racing for it exactly one wins, and it never exists half-written.
  - With O(state=present) the lock is taken, creating O(deploy_to) and C(.capstan/) when
    needed. When another run holds it, the module fails at once, changing nothing; the message
    names the holder (user, host, pid, time and the command it ran) and says how to clear a
    stale lock - re-run the same playbook with C(-e deploy_break_lock=true), which sets
    O(force=true).
  - With O(state=absent) the lock is released. Only its owner releases it; anyone else needs
    O(force=true).
  - Taking a lock this run already holds, or releasing a lock nobody holds, changes nothing.
author: capstan.release contributors (!UNKNOWN)
options:
  state:
    description: V(present) takes the lock, V(absent) releases it.
    type: str
    choices: [present, absent]
    default: present
  owner:
    description:
      - A token identifying this run, the same on every host, for example the controller's
        host name, pid and start time. The lock belongs to this token.
    type: str
    required: true
  user:
    description: The user running the deploy on the controller, recorded in the lock.
    type: str
  host:
    description: The controller host name, recorded in the lock.
    type: str
  pid:
    description: The process id of the run on the controller, recorded in the lock.
    type: int
  command:
    description: The command that was run, recorded in the lock and shown to whoever is refused.
    type: str
  read:
    description:
      - With O(state=present), also read the tree once the lock is taken and return it as
        RV(tree), what M(capstan.release.release_info) returns, saving the run a round trip.
    type: bool
    default: false
  force:
    description:
      - Break a lock held by someone else, a stale lock left by a run that is gone.
      - Set by the roles from C(deploy_break_lock).
    type: bool
    default: false
extends_documentation_fragment:
  - capstan.release.tree
attributes:
  check_mode:
    support: full
    description: Reports whether the lock would be taken, broken or released and changes nothing; a lock held by another run is refused as without check mode.
  diff_mode:
    support: full
    description: Shows the holder before and after.
seealso:
  - module: capstan.release.release_info
"""

EXAMPLES = r"""
- name: Take the deploy lock
  capstan.release.release_lock:
    deploy_to: /srv/app
    owner: "{{ deploy_run_id }}"
    user: "{{ lookup('ansible.builtin.env', 'USER') }}"
    host: "{{ lookup('ansible.builtin.pipe', 'hostname') }}"
    command: ansible-playbook capstan.release.deploy -i inventory
    force: "{{ deploy_break_lock | default(false) }}"

- name: Release the deploy lock
  capstan.release.release_lock:
    deploy_to: /srv/app
    owner: "{{ deploy_run_id }}"
    state: absent
"""

RETURN = r"""
locked:
  description: Whether this run holds the lock now (after O(state=present)) or nobody does (false, after O(state=absent)).
  returned: success
  type: bool
  sample: true
holder:
  description:
    - The holder of the lock now, empty after O(state=absent); in check mode, the holder the
      lock would have.
    - When the lock is held by another run, the module fails and returns that run's holder here.
  returned: success, and on failure when another run holds the lock
  type: dict
  sample:
    owner: ctl01-4242-8812345-02fc0000-0001-8a96-32cd-000000000007
    user: alice
    host: ctl01
    pid: 4242
    mode: deploy
    command: /usr/bin/ansible-playbook capstan.release.deploy -i inventory -e deploy_to=/srv/app -e deploy_src=./build
    time: "2026-11-21T22:14:04Z"
broken:
  description: The holder displaced by O(force=true), empty when no lock of another run was broken.
  returned: success
  type: dict
  sample:
    owner: runner-3-77-5512345-02fc0000-0001-1f2e-3d4c-000000000007
    user: ci
    host: runner-3
    pid: 77
    mode: rollback
    target: "20261121221359"
    command: /usr/bin/ansible-playbook rollback.yml -i inventory -e deploy_to=/srv/app
    time: "2026-11-21T20:40:00Z"
lock_path:
  description: The lock file.
  returned: success
  type: str
  sample: /srv/app/.capstan/lock
tree:
  description:
    - The deploy tree read once the lock is taken, with the keys M(capstan.release.release_info)
      returns (current, releases, release_names, archives, lock, ...).
  returned: when O(read=true) and O(state=present)
  type: dict
  sample: {"current": "20261121221404", "release_names": ["20261120101010", "20261121221404"]}
"""

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.capstan.release.plugins.module_utils._module import run_step
from ansible_collections.capstan.release.plugins.module_utils._steps import lock


def main():
    module = AnsibleModule(
        argument_spec=dict(
            deploy_to=dict(type='path', required=True),
            state=dict(type='str', choices=['present', 'absent'], default='present'),
            owner=dict(type='str', required=True),
            user=dict(type='str'),
            host=dict(type='str'),
            pid=dict(type='int'),
            command=dict(type='str'),
            force=dict(type='bool', default=False),
            read=dict(type='bool', default=False),
        ),
        supports_check_mode=True,
    )
    params = module.params
    what = '%s the lock of %s' % ('taking' if params['state'] == 'present' else 'releasing', params['deploy_to'])
    run_step(module, what, lock, params['deploy_to'], params['state'], params['owner'], user=params['user'],
             host=params['host'], pid=params['pid'], command=params['command'], force=params['force'],
             check=module.check_mode, read=params['read'])


if __name__ == '__main__':
    main()
