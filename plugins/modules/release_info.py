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
  - With O(history=true) it also reports the delivery history of the tree (RV(history)) - deploys,
    rollbacks, failures before and after going live, restores - and their figures (change
    failure rate, time to restore), from capstan's journal, or from C(revisions.log) for a tree
    made by Capistrano. The collection's docs/releases.md defines every figure.
options:
  history:
    description:
      - Also report RV(history) and each release's RV(releases[].live_at).
      - Off by default so the deploy and rollback roles read the tree as cheaply as before.
    type: bool
    default: false
  history_days:
    description:
      - With O(history=true), count only what happened in the last this many days (by this
        host's clock, the one that stamped its journal). Unset counts the whole history.
      - A whole number, at least 1.
    type: int
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

- name: Read the delivery figures of the last 30 days
  capstan.release.release_info:
    deploy_to: /srv/app
    history: true
    history_days: 30
  register: tree

- name: Show the change failure rate
  ansible.builtin.debug:
    msg: "{{ tree.history.figures.change_failures }} of {{ tree.history.figures.deploys }} deploys failed"
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
    live_at:
      description:
        - When it last went live (its last C(published) journal event), UTC; null when the journal
          never saw it go live.
        - Returned with O(history=true) only.
      type: str
      sample: "2026-11-21T22:14:09Z"
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
    - The holder of the deploy lock (C(<deploy_to>/.capstan/lock)), empty when unlocked.
    - A lock taken by the deploy, rollback or drill flows has the keys C(owner), C(user), C(host),
      C(pid), C(command), C(time) and C(mode); a rollback's lock also has C(target) and, when it
      leaves a release, C(leaving); a drill's has C(target). A lock taken by
      M(capstan.release.release_lock) has no C(mode), C(target) or C(leaving).
    - A lock file that cannot be read shows C(owner=null) and C(unreadable) (the start of its
      text, or empty with C(error) when the file could not be read).
  returned: success
  type: dict
  contains:
    owner:
      description:
        - The token of the run holding the lock - controller host, C(ansible-playbook) pid, that
          process's start time and the role run's id, joined by C(-).
        - Null when the lock file cannot be read.
      type: str
      sample: ctl01-4242-8812345-02fc0000-0001-8a96-32cd-000000000007
    user:
      description: The user who ran C(ansible-playbook) on the controller.
      type: str
      sample: alice
    host:
      description: The controller's host name.
      type: str
      sample: ctl01
    pid:
      description: The pid of C(ansible-playbook) on the controller.
      type: int
      sample: 4242
    command:
      description: The command line of that C(ansible-playbook), credentials in URLs masked.
      type: str
      sample: /usr/bin/ansible-playbook capstan.release.deploy -i inventory -e deploy_to=/srv/app -e deploy_src=./build
    time:
      description: When the lock was taken, UTC, C(YYYY-mm-ddTHH:MM:SSZ).
      type: str
      sample: "2026-11-21T22:14:04Z"
    mode:
      description: What the holder is doing; absent in a lock taken by M(capstan.release.release_lock).
      type: str
      choices: [deploy, rollback, drill]
      sample: rollback
    target:
      description: The release a rollback or a drill goes to (rollback and drill locks only).
      type: str
      sample: "20261121221359"
    leaving:
      description: The release a rollback leaves, to archive and remove (rollback locks only, when it leaves one).
      type: str
      sample: "20261121221404"
    unreadable:
      description: The first 200 characters of a lock file that holds no holder, or empty when it could not be read (unreadable locks only).
      type: str
      sample: ""
    error:
      description: Why the lock file could not be read (unreadable locks only).
      type: str
      sample: "[Errno 13] Permission denied: '/srv/app/.capstan/lock'"
  sample:
    owner: ctl01-4242-8812345-02fc0000-0001-8a96-32cd-000000000007
    user: alice
    host: ctl01
    pid: 4242
    command: /usr/bin/ansible-playbook capstan.release.rollback -i inventory -e deploy_to=/srv/app
    time: "2026-11-21T22:20:00Z"
    mode: rollback
    target: "20261121221359"
    leaving: "20261121221404"
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
history:
  description:
    - The delivery history of the tree and its figures; docs/releases.md defines them.
    - Times are UTC, C(YYYY-mm-ddTHH:MM:SSZ); durations are seconds.
  returned: when O(history=true)
  type: dict
  contains:
    source:
      description:
        - Where the history comes from.
        - V(journal) - capstan's journal (C(<deploy_to>/.capstan/journal)).
        - V(revisions.log) - no journal (a tree made by Capistrano), Capistrano's log; it has no
          times but release names, so RV(history.figures.time_to_restore),
          RV(history.figures.failed_before_live), RV(history.figures.automatic_rollbacks) and
          RV(history.figures.unrestored) are null.
        - V(none) - neither.
      type: str
      choices: [journal, revisions.log, none]
      sample: journal
    days:
      description: O(history_days), or null for the whole history.
      type: int
      sample: 30
    since:
      description: The start of the window, UTC, or null for the whole history.
      type: str
      sample: "2026-10-22T22:14:04Z"
    figures:
      description: The figures of the window.
      type: dict
      contains:
        deploys:
          description: Releases that went live by a deploy.
          type: int
          sample: 4
        rollbacks:
          description: Switches by a rollback run or an automatic switch-back after a failed deploy.
          type: int
          sample: 2
        automatic_rollbacks:
          description: Of RV(history.figures.rollbacks), the switch-backs a failing deploy made by itself.
          type: int
          sample: 1
        failed_before_live:
          description: Deploys that failed before their release went live (never reached users, not in the change failure rate).
          type: int
          sample: 1
        change_failures:
          description: Deploys that failed after going live or were later rolled back from.
          type: int
          sample: 2
        change_failure_rate:
          description: RV(history.figures.change_failures) / RV(history.figures.deploys), 0 to 1; null without deploys.
          type: float
          sample: 0.5
        time_to_restore:
          description: The restores with a known duration, and the median and max of their durations in seconds (null without any).
          type: dict
          sample: {restores: 2, median: 9, max: 12}
        unrestored:
          description: Releases whose deploy failed after going live and that are still live.
          type: int
          sample: 0
    deploys:
      description: Each deploy of the window, oldest first.
      type: list
      elements: dict
      sample:
        - release: "20261121221404"
          run: 20261121T221404Z-ctl01-4242-1234
          live_at: "2026-11-21T22:14:09Z"
          outcome: succeeded
          rolled_back: true
          change_failure: true
    rollbacks:
      description:
        - Each rollback of the window, oldest first; V(release) is where it went, V(left) the release it left.
        - V(at) is the time of the switch; V(after) the earliest it happened (the same, or for
          C(revisions.log) the time the release left went live).
      type: list
      elements: dict
      sample:
        - release: "20261121221359"
          left: "20261121221404"
          run: 20261121T222000Z-ctl01-4300-99
          at: "2026-11-21T22:20:02Z"
          after: "2026-11-21T22:20:02Z"
          automatic: false
    failed_before_live:
      description: Each deploy of the window that failed before its release went live.
      type: list
      elements: dict
      sample:
        - release: "20261121221500"
          run: 20261121T221500Z-ctl01-4250-77
          at: "2026-11-21T22:15:06Z"
    restores:
      description: Each restore of the window - a bad release's time live, ended by the switch that replaced it.
      type: list
      elements: dict
      sample:
        - release: "20261121221404"
          live_at: "2026-11-21T22:14:09Z"
          live_run: 20261121T221404Z-ctl01-4242-1234
          restored_at: "2026-11-21T22:20:02Z"
          restored_to: "20261121221359"
          seconds: 353
          by: rollback
    unrestored:
      description: A release whose deploy failed after going live and that is still live.
      type: list
      elements: dict
      sample: []
"""

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.capstan.release.plugins.module_utils._module import run_step
from ansible_collections.capstan.release.plugins.module_utils._steps import info


def main():
    module = AnsibleModule(
        argument_spec=dict(
            deploy_to=dict(type='path', required=True),
            history=dict(type='bool', default=False),
            history_days=dict(type='int'),
        ),
        supports_check_mode=True,
    )
    params = module.params
    run_step(module, 'reading %s' % params['deploy_to'], info, params['deploy_to'],
             history=params['history'], history_days=params['history_days'])


if __name__ == '__main__':
    main()
