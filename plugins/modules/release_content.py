#!/usr/bin/python
# Copyright (c) 2026, capstan.release contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import annotations

DOCUMENTATION = r"""
module: release_content
short_description: Put the content of a release in place, sending only what the host does not already hold
version_added: 1.0.0
description:
  - Fills a new, empty release C(<deploy_to>/releases/<release>) (made by M(capstan.release.release_dir))
    with its content, from one of three sources (O(strategy)).
  - Every non-empty file whose content and mode an earlier release of the host already holds is
    hard linked to it instead of being sent or written again, so a deploy costs what changed, not
    the size of the application. Identical files found in the stored manifests of earlier releases
    (C(<deploy_to>/.capstan/manifests/<release>.json), trusted while the file's inode, size and mtime
    are as recorded) or, for releases without one (made by Capistrano), by hashing the current
    release's file at the same path.
  - V(copy) takes O(src), a directory or a tarball on the controller. The action plugin makes its
    manifest (paths, types, modes, sizes, sha256 of contents, link targets, empty directories too),
    asks the host once what it lacks (O(step=plan)), sends one tarball of only the missing contents
    and builds the release (O(step=build)), two module calls per host. The manifest crosses as one
    JSON string, and the module does not echo it back in its result.
  - V(git) keeps a mirror of O(repo_url) in C(<deploy_to>/repo) (C(git clone --mirror) the first
    time, C(git remote update --prune) later). O(step=resolve) updates it and resolves O(version) to
    a full commit sha; O(step=build) exports that commit (C(git archive), no C(.git)) into the release.
  - V(archive) takes O(src), a tarball at an C(http://), C(https://) or C(file://) URL or a path on
    the host. O(step=resolve) downloads a URL into C(<deploy_to>/.capstan/downloads), checks
    O(checksum) and returns its sha256; O(step=build) extracts it into the release.
  - Extraction is safe whatever the source holds; refused are absolute paths, C(..) components,
    entries under a symlink, symlinks pointing outside the release (absolute or climbing out with
    C(..)), devices, fifos and sockets. Modes are set as the source has them, without
    setuid, setgid and sticky bits; files are owned by the user the module runs as.
author: capstan.release contributors (!UNKNOWN)
options:
  step:
    description:
      - V(resolve) works out the revision the source holds, changing no release. For V(copy) on
        the controller (the manifest digest, see RV(revision)); for V(git) it updates the mirror
        and resolves O(version); for V(archive) it downloads a URL and checks it.
      - V(plan) (V(copy) only, called by the action plugin) reports which contents of O(manifest)
        the host lacks; it changes nothing.
      - V(build) puts the content into the release O(release).
    type: str
    choices: [resolve, plan, build]
    default: build
  strategy:
    description: Where the content comes from, see the description.
    type: str
    choices: [copy, git, archive]
    default: copy
  release:
    description:
      - The release to fill, 14 digits; it must exist, be unfinished and empty.
      - Required when O(step=build).
    type: str
  src:
    description:
      - For V(copy), a directory or a tarball (C(.tar), C(.tar.gz), C(.tgz), C(.tar.bz2), C(.tbz2),
        C(.tar.xz), C(.txz)) on the controller, relative to the working directory of the run.
      - For V(archive), an C(http://), C(https://) or C(file://) URL, or an absolute path on the host,
        of a tarball of one of those kinds. Downloads time out after 60 seconds without data.
      - Credentials in the URL (C(https://user:token@...), C(?token=...)) are masked (C(***)) in the
        result and in messages; the option is C(no_log).
    type: str
  checksum:
    description:
      - For V(archive), the checksum the archive must have, C(<algorithm>:<hex>) with an algorithm of
        C(md5), C(sha1), C(sha224), C(sha256), C(sha384) or C(sha512). A mismatch is refused before
        the release is touched.
    type: str
  repo_url:
    description:
      - For V(git), the URL of the repository, as C(git clone) takes it.
      - Credentials in it are masked (C(***)) in the result and in messages; the option is C(no_log).
        The mirror keeps the URL without them (git 2.31 or later; see the strategies documentation).
    type: str
  version:
    description:
      - For V(git), the branch, tag or commit (full or abbreviated sha) to deploy.
      - Empty means the remote's HEAD as the mirror has it (the default branch when it was cloned).
    type: str
    default: ""
  revision:
    description:
      - For O(step=build), what O(step=resolve) returned as RV(revision), the same on every host; the
        build refuses content that does not match it (V(copy) the manifest digest, V(git) the full
        commit sha, V(archive) the archive's sha256).
    type: str
  manifest:
    description:
      - For V(copy), the manifest of O(src) as O(step=resolve) returned it (RV(manifest), a JSON
        string), or the same list of entries as a list. The action plugin makes it from O(src) when
        it is not given.
    type: raw
  bundle:
    description: For V(copy) with O(step=build), the tarball of missing contents on the host; set by the action plugin.
    type: path
  bundle_data:
    description:
      - For V(copy) with O(step=build), the tarball of missing contents itself, base64-encoded; set by
        the action plugin instead of O(bundle) when it is small (up to 1 MiB), which saves the round
        trips of a file transfer.
    type: str
extends_documentation_fragment:
  - capstan.release.tree
attributes:
  action:
    support: full
    description: The action plugin makes the manifest and the bundle for V(copy) on the controller.
  check_mode:
    support: full
    description:
      - Reports what would be linked and sent and changes nothing.
      - The git mirror is left alone (the remote is asked with C(git ls-remote)); a download is removed once it is checked.
  diff_mode:
    support: partial
    description: Shows how many files, directories and symlinks the release gets, and how many were linked or sent.
notes:
  - Hard links share one file between releases. A hook or an application that edits a file of a
    release in place (rather than writing a new file and renaming it over the old one) edits it in
    every release that shares it, older ones included, and C(current) after a rollback. Replace
    files, never edit them in place; files of O(src) meant to be written at run time belong in
    C(shared/) (the deploy role's C(deploy_linked_files) and C(deploy_linked_dirs)). Identical
    files of one release share one file too. Empty files are never shared.
  - A release's manifest is recorded in C(<deploy_to>/.capstan/manifests/<release>.json); manifests
    of releases that no longer exist are removed by the next build.
  - Error messages name the deploy role's variables (C(deploy_src), C(deploy_src_checksum),
    C(deploy_repo_url), C(deploy_version)), which map to O(src), O(checksum), O(repo_url), O(version).
seealso:
  - module: capstan.release.release_dir
"""

EXAMPLES = r"""
- name: Work out the revision of ./build (on the controller)
  capstan.release.release_content:
    deploy_to: /srv/app
    step: resolve
    src: build/
  run_once: true
  register: source

- name: Put ./build into the new release, sending only what changed
  capstan.release.release_content:
    deploy_to: /srv/app
    release: "20261121221404"
    src: build/
    manifest: "{{ source.manifest }}"
    revision: "{{ source.revision }}"

- name: Resolve the tag v1.4.2 of the repository (updates /srv/app/repo)
  capstan.release.release_content:
    deploy_to: /srv/app
    step: resolve
    strategy: git
    repo_url: https://git.example.com/app.git
    version: v1.4.2
  register: commit

- name: Export it into the release
  capstan.release.release_content:
    deploy_to: /srv/app
    release: "20261121221404"
    strategy: git
    repo_url: https://git.example.com/app.git
    revision: "{{ commit.revision }}"

- name: Download and check an archive
  capstan.release.release_content:
    deploy_to: /srv/app
    step: resolve
    strategy: archive
    src: https://artifacts.example.com/app-1.4.2.tar.gz
    checksum: sha256:0f3c2d6a5b4e9f8a7c1d2e3f4a5b6c7d8e9f0a1b2c3d4e5f6a7b8c9d0e1f2a3b
  register: artifact
"""

RETURN = r"""
revision:
  description:
    - What the content is. V(copy) the manifest digest (sha256 over paths, types, modes, contents and
      link targets; times are not part of it), V(git) the full commit sha, V(archive) the sha256 of
      the archive file.
  returned: success
  type: str
  sample: 3f2a9c1d5e7b8a6f4c2d0e9b7a5f3c1d2e4b6a8c0f9e7d5c3b1a2f4e6d8c0b9a
revision_time:
  description: For V(git) with O(step=resolve), the commit time in seconds since the epoch (null in check mode).
  returned: when O(strategy=git) and O(step=resolve)
  type: str
  sample: "1763700000"
branch:
  description: For V(git) with O(step=resolve), O(version), or the mirror's default branch when O(version) is empty.
  returned: when O(strategy=git) and O(step=resolve)
  type: str
  sample: main
repo_path:
  description: The git mirror.
  returned: when O(strategy=git) and O(step=resolve)
  type: str
  sample: /srv/app/repo
manifest:
  description:
    - For V(copy) with O(step=resolve), the manifest of O(src) as compact JSON, to pass back as O(manifest),
      a list of entries sorted by path, each with C(path), C(type) (C(file), C(dir) or C(symlink)), C(mode),
      and C(size), C(sha256) and C(mtime) for files, C(target) for symlinks.
  returned: when O(strategy=copy) and O(step=resolve)
  type: str
  sample: '[{"mode":493,"path":"public","type":"dir"},{"mode":420,"mtime":1763700000,"path":"public/index.html","sha256":"9f86...","size":11,"type":"file"}]'
archive:
  description: For V(archive) with O(step=resolve), the archive on the host (a download, or O(src)'s path); null when a download was not kept.
  returned: when O(strategy=archive) and O(step=resolve)
  type: str
  sample: /srv/app/.capstan/downloads/3f2a9c1d5e7b8a6f4c2d0e9b7a5f3c1d2e4b6a8c0f9e7d5c3b1a2f4e6d8c0b9a.archive
downloaded:
  description: For V(archive) with O(step=resolve), whether O(src) was downloaded.
  returned: when O(strategy=archive) and O(step=resolve)
  type: bool
missing:
  description: For O(step=plan), the sha256 of every content the host lacks.
  returned: when O(step=plan)
  type: list
  elements: str
files:
  description: How many files the content has.
  returned: when O(step) is V(plan) or V(build), and for V(copy) with O(step=resolve)
  type: int
  sample: 2000
dirs:
  description: How many directories the content has.
  returned: when O(step) is V(plan) or V(build), and for V(copy) with O(step=resolve)
  type: int
  sample: 40
symlinks:
  description: How many symlinks the content has.
  returned: when O(step) is V(plan) or V(build), and for V(copy) with O(step=resolve)
  type: int
  sample: 2
bytes:
  description: The size of the content's files, in bytes.
  returned: when O(step) is V(plan) or V(build), and for V(copy) with O(step=resolve)
  type: int
  sample: 8200000
linked:
  description: How many files were (in check mode, would be) hard linked to a file of an earlier release or of this one.
  returned: when O(step) is V(plan) or V(build)
  type: int
  sample: 1999
copied:
  description: How many files were copied from a file of the host that could not be linked (another mode or owner).
  returned: when O(step=build)
  type: int
  sample: 0
written:
  description: How many files were written from the bundle, the git export or the archive.
  returned: when O(step=build)
  type: int
  sample: 1
sent:
  description: For V(copy), how many contents were (in check mode, would be) sent to the host.
  returned: when O(step) is V(plan) or V(build)
  type: int
  sample: 1
sent_bytes:
  description: For V(copy), the bytes of the contents sent, before compression.
  returned: when O(step) is V(plan) or V(build)
  type: int
  sample: 4096
release_path:
  description: The release directory.
  returned: when O(step=build)
  type: str
  sample: /srv/app/releases/20261121221404
manifest_path:
  description: Where the release's manifest was recorded.
  returned: when O(step=build), not in check mode
  type: str
  sample: /srv/app/.capstan/manifests/20261121221404.json
manifests_removed:
  description: Releases whose manifests were removed because the releases are gone.
  returned: when O(step=build), not in check mode
  type: list
  elements: str
  sample: ["20261101120000"]
"""

import base64

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.capstan.release.plugins.module_utils import _secrets
from ansible_collections.capstan.release.plugins.module_utils._content import archive_source
from ansible_collections.capstan.release.plugins.module_utils._content import builds
from ansible_collections.capstan.release.plugins.module_utils._content import git_source
from ansible_collections.capstan.release.plugins.module_utils._content import plans
from ansible_collections.capstan.release.plugins.module_utils._errors import CapstanError
from ansible_collections.capstan.release.plugins.module_utils._module import run_step

DOWNLOAD_TIMEOUT = 60


def content_step(module, params, check):
    """The step of ``params['step']`` for ``params['strategy']``."""
    step, strategy = params['step'], params['strategy']
    deploy_to, release = params['deploy_to'], params['release']

    def runner(argv, cwd, environ=None):
        return module.run_command(argv, cwd=cwd, environ_update=dict(environ or {}, GIT_TERMINAL_PROMPT='0', LC_ALL='C'))

    def opener(url):
        from ansible.module_utils.urls import open_url  # only archive downloads need it: it costs every other call an import
        return open_url(url, timeout=DOWNLOAD_TIMEOUT, validate_certs=True)

    if step == 'build' and not release:
        raise CapstanError('release is required to build a release')
    if strategy == 'copy':
        if step == 'resolve':
            raise CapstanError('strategy=copy resolves on the controller, through the action plugin of capstan.release.release_content')
        if params['manifest'] is None:
            raise CapstanError('manifest is required for strategy=copy (the action plugin makes it from src)')
        if step == 'plan':
            return plans.plan(deploy_to, params['manifest'], release)
        bundle = params['bundle']
        if params['bundle_data']:
            try:
                bundle = base64.b64decode(params['bundle_data'])
            except (TypeError, ValueError) as error:
                raise CapstanError('bundle_data must be a base64-encoded tarball: %s' % error)
        return builds.build(deploy_to, release, params['manifest'], bundle=bundle,
                            revision=params['revision'], check=check)
    if step == 'plan':
        raise CapstanError('step=plan is only for strategy=copy')
    if strategy == 'git':
        if step == 'resolve':
            return git_source.resolve_git(runner, deploy_to, params['repo_url'], params['version'], check=check)
        return git_source.build_from_git(runner, deploy_to, release, params['revision'], check=check)
    if step == 'resolve':
        return archive_source.resolve_archive(deploy_to, params['src'], params['checksum'], opener=opener, check=check)
    return archive_source.build_from_archive(deploy_to, release, params['src'], params['revision'], checksum=params['checksum'],
                                             opener=opener, check=check)


def main():
    module = AnsibleModule(
        argument_spec=dict(
            deploy_to=dict(type='path', required=True),
            step=dict(type='str', default='build', choices=['resolve', 'plan', 'build']),
            strategy=dict(type='str', default='copy', choices=['copy', 'git', 'archive']),
            release=dict(type='str'),
            src=dict(type='str', no_log=True),
            checksum=dict(type='str', no_log=False),
            repo_url=dict(type='str', no_log=True),
            version=dict(type='str', default=''),
            revision=dict(type='str'),
            manifest=dict(type='raw'),
            bundle=dict(type='path'),
            bundle_data=dict(type='str'),
        ),
        mutually_exclusive=[('bundle', 'bundle_data')],
        required_if=[
            ('strategy', 'git', ['repo_url']),
            ('strategy', 'archive', ['src']),
        ],
        supports_check_mode=True,
    )
    params = module.params
    what = '%s %s content in %s' % (params['step'], params['strategy'], params['deploy_to'])
    run_step(module, what, with_short_invocation, module, params, module.check_mode)


def with_short_invocation(module, params, check):
    """The step's result, with the module's arguments echoed back without the manifest (thousands of entries)
    and with URL credentials masked."""
    result = content_step(module, params, check)
    shown = dict(params, src=_secrets.mask(params['src']), repo_url=_secrets.mask(params['repo_url']))
    if shown.get('bundle_data'):
        shown['bundle_data'] = '(%d bytes of base64)' % len(params['bundle_data'])
    if shown.get('manifest') is not None:
        shown['manifest'] = '(%d bytes of JSON)' % len(params['manifest']) if isinstance(params['manifest'], str) else '(%d entries)' % len(params['manifest'])
    result['invocation'] = {'module_args': shown}
    return result


if __name__ == '__main__':
    main()
