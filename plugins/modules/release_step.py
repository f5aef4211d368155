#!/usr/bin/python
# Copyright (c) 2026, capstan.release contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import annotations

DOCUMENTATION = r"""
module: release_step
short_description: One stage of a deploy or rollback, the host's whole part of it in one round trip
version_added: 1.1.0
description:
  - The roles C(capstan.release.deploy) and C(capstan.release.rollback) run every stage of their
    flow with this module and its action plugin. The action plugin checks the roles' input,
    makes the fleet's decisions on the controller (the release name for every host, whether
    there is anything to deploy, what to undo after a failure) and runs this module once per
    host and stage; the module does the host's part of the stage in one call.
  - It can be used on its own, but the roles are how it is meant to be used; the single steps
    have modules of their own (M(capstan.release.release_dir), M(capstan.release.symlink_swap),
    M(capstan.release.release_prune), M(capstan.release.release_lock)).
  - V(start) refuses a tree another run holds, reads the tree, resolves the source's revision
    (C(git ls-remote) for git, without touching the mirror; the archive's sha256; the
    manifest's digest for copy, given), says whether the host already runs it (RV(status)),
    and takes the lock unless it does. For copy it also says which contents the host lacks.
  - V(build) takes the lock (if V(start) did not), checks free space, creates the release,
    fills it by the strategy, links the shared paths and marks it finished. A release already
    finished with O(revision) (left by a run that stopped) is kept as it is.
  - V(switch) points C(current) at the finished release O(release), as
    M(capstan.release.symlink_swap) does (O(rollback) marks the release it leaves as rolled
    back). The roles switch with this stage, so that one module for every stage of a run is one
    module for Ansible to package on the controller, not two.
  - V(finish) records the deploy (journal and C(revisions.log)), prunes old releases and
    releases the lock. What fails while pruning is a warning, never a failure.
  - V(abort) undoes what the run O(run) did on this host, wherever it stopped; it switches
    C(current) back, archives and removes the release it created (without an archive when
    the disk is full), and releases the lock.
  - V(rollback_start), V(rollback_finish) and V(rollback_abort) are the same for a rollback;
    V(unlock) releases the run's lock.
  - V(drill_start), V(drill_switch), V(drill_finish) and V(drill_abort) are the rollback drill's
    (role C(capstan.release.drill)); its switches keep both releases and are recorded as a drill.
author: capstan.release contributors (!UNKNOWN)
options:
  stage:
    description: The stage to run, see the description.
    type: str
    required: true
    choices: [start, build, switch, finish, abort, unlock, rollback_start, rollback_finish, rollback_abort, drill_start,
              drill_switch, drill_finish, drill_abort]
  run:
    description:
      - The run's identity, the same on every host, made once by the action plugin. Keys
        C(owner) (the token the lock and the journal carry, required), C(user), C(host),
        C(pid) and C(command) of the controller's C(ansible-playbook) (recorded in the lock and
        shown to whoever is refused), C(mode) (V(deploy) or V(rollback)), C(ttl) (seconds
        after which a lock looks stale) and C(break) (take a lock another run left).
    type: dict
    required: true
  strategy:
    description: Where the release's content comes from (V(start), V(build)).
    type: str
    choices: [copy, git, archive]
    default: copy
  release:
    description:
      - The release this run deploys, 14 digits (V(build), V(finish), V(abort)); for V(switch), the release C(current)
        points to afterwards; for V(rollback_start), a named target.
    type: str
  revision:
    description: The revision to deploy, the same on every host (for copy also given to V(start)).
    type: str
  manifest:
    description: For copy, the manifest of the content as JSON (made by the action plugin).
    type: raw
  bundle:
    description: For copy, the path on the host of a tarball of the contents the host lacks.
    type: path
  bundle_data:
    description: For copy, the same tarball as base64, when small.
    type: str
  sent_bytes:
    description: For copy, the bytes of the contents sent (what the build writes).
    type: int
    default: 0
  src:
    description:
      - For archive, the URL or host path of the tarball.
      - C(no_log); credentials in the URL are masked (C(***)) in messages.
    type: str
  checksum:
    description: For archive, C(<algorithm>:<hex digest>) the tarball must have.
    type: str
  repo_url:
    description:
      - For git, the repository.
      - C(no_log); credentials in the URL are masked (C(***)) in messages, and the mirror keeps the URL
        without them (git 2.31 or later).
    type: str
  version:
    description: For git, the branch, tag or commit to deploy (empty is the remote's default branch).
    type: str
    default: ''
  linked_dirs:
    description: Directories of C(shared/) linked into the release.
    type: list
    elements: str
    default: []
  linked_files:
    description: Files of C(shared/) linked into the release; each must exist before the release is made.
    type: list
    elements: str
    default: []
  migrate_current:
    description: Accept a C(current) that is a real directory (V(start), V(build); V(switch) moves it into C(releases/)).
    type: bool
    default: false
  margin_mb:
    description: MiB that must stay free beyond what the build writes (V(build)).
    type: int
    default: 64
  branch:
    description: The branch named in C(revisions.log) (V(finish)).
    type: str
    default: main
  log_user:
    description: The user named in C(revisions.log).
    type: str
  keep_releases:
    description: Successful releases kept by the prune (V(finish), V(rollback_finish)).
    type: int
    default: 5
  keep_archives:
    description: Archives kept by the prune.
    type: int
    default: 5
  auto_rollback:
    description: With V(abort), switch C(current) back when this run had switched it.
    type: bool
    default: true
  keep_recorded:
    description: With V(abort), leave a release this run recorded as deployed live (the failure came after the deploy was done).
    type: bool
    default: false
  leaving:
    description: With V(rollback_finish), the release the rollback left, archived and removed.
    type: str
  target:
    description: With V(drill_finish), the release the drill went back to.
    type: str
  back_seconds:
    description: With V(drill_finish), how long the switch back took, recorded in the journal.
    type: float
  forward_seconds:
    description: With V(drill_finish), how long the switch forward took.
    type: float
  rollback:
    description:
      - With V(switch), the switch is a rollback's, recorded in the journal and C(revisions.log) as
        M(capstan.release.symlink_swap) records one (a newer release it leaves is marked rolled back).
    type: bool
    default: false
  unlock:
    description:
      - With V(finish) and V(rollback_finish), release the lock too; false keeps it (hooks still run
        under it, or later serial batches are still to come).
    type: bool
    default: true
extends_documentation_fragment:
  - capstan.release.tree
attributes:
  check_mode:
    support: full
    description: Decides everything as it would and changes nothing; no lock is taken.
  diff_mode:
    support: partial
    description: Shows the release and C(current) before and after where the stage changes them.
seealso:
  - module: capstan.release.release_dir
  - module: capstan.release.symlink_swap
  - module: capstan.release.release_prune
  - module: capstan.release.release_lock
"""

EXAMPLES = r"""
# The roles run this module; playbooks use the roles:
- name: Deploy
  hosts: app
  roles:
    - role: capstan.release.deploy
      vars:
        deploy_to: /srv/app
        deploy_src: ./build
"""

RETURN = r"""
status:
  description:
    - With V(start), V(live) when C(current) is recorded complete with the revision, V(unrecorded) when it holds it
      but was never recorded, else V(other).
  returned: stage is start
  type: str
  sample: live
revision:
  description: The revision the source resolves to.
  returned: stage is start or build
  type: str
  sample: 3f786850e387550fdab836ed7e6dc881de23001b
current:
  description: The release C(current) points to (before the stage), or null.
  returned: always
  type: str
  sample: "20261121221404"
newest:
  description: With V(start), the newest release of the tree.
  returned: stage is start
  type: str
  sample: "20261121221404"
locked:
  description: Whether the stage took the deploy lock.
  returned: stage is start
  type: bool
  sample: true
missing:
  description: With V(start) for copy, the sha256 of every content the host lacks (the action plugin keeps them and drops them from the result).
  returned: stage is start and strategy is copy
  type: list
  elements: str
  sample: []
release:
  description: The release built, switched to or rolled back to.
  returned: stage is build, switch or rollback_start
  type: str
  sample: "20261121221404"
leaving:
  description: With V(rollback_start), the release the rollback leaves (archived and removed by V(rollback_finish)).
  returned: stage is rollback_start
  type: str
  sample: "20261121221404"
release_path:
  description: Absolute path of RV(release).
  returned: stage is build, switch or rollback_start
  type: str
  sample: /srv/app/releases/20261121221404
previous_release:
  description: With V(switch), the release C(current) pointed to before, or null.
  returned: stage is switch
  type: str
  sample: "20261121221359"
previous_path:
  description: With V(switch), the absolute path of RV(previous_release), or null.
  returned: stage is switch
  type: str
  sample: /srv/app/releases/20261121221359
previous_link:
  description: With V(switch), what C(current) pointed to before, as read from the link.
  returned: stage is switch
  type: str
  sample: /srv/app/releases/20261121221359
migrated:
  description: With V(switch), the release name a real C(current) directory was moved to (O(migrate_current)).
  returned: stage is switch
  type: str
  sample: "20261121221403"
switched_back:
  description: With V(abort) and V(rollback_abort), the release C(current) went back to, or null.
  returned: stage is abort or rollback_abort
  type: str
  sample: "20261121221359"
unlocked:
  description: Whether the stage released the lock.
  returned: stage is finish, abort, unlock, rollback_finish or rollback_abort
  type: bool
  sample: true
"""

import base64

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.capstan.release.plugins.module_utils import _stages
from ansible_collections.capstan.release.plugins.module_utils._errors import CapstanError
from ansible_collections.capstan.release.plugins.module_utils._module import run_step

DOWNLOAD_TIMEOUT = 60


def step(module, params):
    """Run ``params['stage']`` with the module's runners for git and downloads."""
    check = module.check_mode
    deploy_to, run, stage = params['deploy_to'], params['run'], params['stage']
    if not isinstance(run, dict) or not run.get('owner'):
        raise CapstanError('run must name the run: a dict with at least an owner token')

    def runner(argv, cwd, environ=None):
        return module.run_command(argv, cwd=cwd, environ_update=dict(environ or {}, GIT_TERMINAL_PROMPT='0', LC_ALL='C'))

    def opener(url):
        from ansible.module_utils.urls import open_url  # only archive downloads need it
        return open_url(url, timeout=DOWNLOAD_TIMEOUT, validate_certs=True)

    source = dict(src=params['src'], checksum=params['checksum'], repo_url=params['repo_url'])
    if stage == 'start':
        return _stages.start_deploy(deploy_to, run, params['strategy'], revision=params['revision'], manifest=params['manifest'],
                                    version=params['version'], migrate_current=params['migrate_current'], runner=runner,
                                    opener=opener, check=check, **source)
    if stage == 'build':
        bundle = params['bundle']
        if params['bundle_data']:
            try:
                bundle = base64.b64decode(params['bundle_data'], validate=True)
            except (TypeError, ValueError) as error:
                raise CapstanError('bundle_data must be a base64-encoded tarball: %s' % error)
        return _stages.build_release(deploy_to, run, params['release'], params['strategy'], params['revision'],
                                     linked_dirs=params['linked_dirs'], linked_files=params['linked_files'],
                                     manifest=params['manifest'], bundle=bundle, sent_bytes=params['sent_bytes'],
                                     margin_mb=params['margin_mb'], runner=runner, opener=opener, check=check, **source)
    if stage == 'switch':
        return _stages.switch(deploy_to, run, params['release'], migrate=params['migrate_current'], rollback=params['rollback'],
                              log_user=params['log_user'], check=check)
    if stage == 'finish':
        return _stages.finish_deploy(deploy_to, run, params['release'], params['branch'], params['log_user'],
                                     params['keep_releases'], params['keep_archives'], unlock=params['unlock'], check=check)
    if stage == 'abort':
        return _stages.abort_deploy(deploy_to, run, params['release'], params['auto_rollback'], params['log_user'],
                                    keep_recorded=params['keep_recorded'], check=check)
    if stage == 'unlock':
        return _stages.unlock(deploy_to, run, check=check)
    if stage == 'rollback_start':
        return _stages.start_rollback(deploy_to, run, params['release'] or None, check=check)
    if stage == 'rollback_finish':
        return _stages.finish_rollback(deploy_to, run, params['leaving'], params['keep_releases'], params['keep_archives'],
                                       unlock=params['unlock'], check=check)
    if stage == 'rollback_abort':
        return _stages.abort_rollback(deploy_to, run, params['log_user'], check=check)
    if stage == 'drill_start':
        return _stages.start_drill(deploy_to, run, check=check)
    if stage == 'drill_switch':
        return _stages.drill_switch(deploy_to, run, params['release'], check=check)
    if stage == 'drill_finish':
        return _stages.finish_drill(deploy_to, run, params['release'], params['target'], params['back_seconds'],
                                    params['forward_seconds'], check=check)
    return _stages.abort_drill(deploy_to, run, params['release'], check=check)


def main():
    module = AnsibleModule(
        argument_spec=dict(
            deploy_to=dict(type='path', required=True),
            stage=dict(type='str', required=True,
                       choices=['start', 'build', 'switch', 'finish', 'abort', 'unlock', 'rollback_start', 'rollback_finish', 'rollback_abort',
                                'drill_start', 'drill_switch', 'drill_finish', 'drill_abort']),
            run=dict(type='dict', required=True),
            strategy=dict(type='str', default='copy', choices=['copy', 'git', 'archive']),
            release=dict(type='str'),
            revision=dict(type='str'),
            manifest=dict(type='raw'),
            bundle=dict(type='path'),
            bundle_data=dict(type='str'),
            sent_bytes=dict(type='int', default=0),
            src=dict(type='str', no_log=True),
            checksum=dict(type='str', no_log=False),
            repo_url=dict(type='str', no_log=True),
            version=dict(type='str', default=''),
            linked_dirs=dict(type='list', elements='str', default=[]),
            linked_files=dict(type='list', elements='str', default=[]),
            migrate_current=dict(type='bool', default=False),
            margin_mb=dict(type='int', default=64),
            branch=dict(type='str', default='main'),
            log_user=dict(type='str'),
            keep_releases=dict(type='int', default=5),
            keep_archives=dict(type='int', default=5),
            auto_rollback=dict(type='bool', default=True),
            keep_recorded=dict(type='bool', default=False),
            leaving=dict(type='str'),
            unlock=dict(type='bool', default=True),
            rollback=dict(type='bool', default=False),
            target=dict(type='str'),
            back_seconds=dict(type='float'),
            forward_seconds=dict(type='float'),
        ),
        mutually_exclusive=[('bundle', 'bundle_data')],
        supports_check_mode=True,
    )
    params = module.params
    what = 'switching current' if params['stage'] == 'switch' else params['stage']
    run_step(module, '%s in %s' % (what, params['deploy_to']), step, module, params)


if __name__ == '__main__':
    main()
