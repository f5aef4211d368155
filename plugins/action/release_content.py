# Copyright (c) 2026, capstan.release contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Controller side of capstan.release.release_content.

For strategy=copy the source is on the controller: this plugin makes its manifest, asks the
host what it lacks (module step=plan), sends one tarball of only the missing contents and
has the module build the release (step=build). git and archive run on the host as they are;
their results come back with URL credentials masked and Ansible's no_log mark (src and
repo_url are no_log) replaced by the masked URL.
"""

from __future__ import annotations

import os
import tempfile

from ansible.plugins.action import ActionBase

from ansible_collections.capstan.release.plugins.module_utils import _secrets
from ansible_collections.capstan.release.plugins.module_utils._content import manifests
from ansible_collections.capstan.release.plugins.module_utils._content import plans
from ansible_collections.capstan.release.plugins.module_utils._errors import CapstanError
from ansible_collections.capstan.release.plugins.plugin_utils import _transfer

MODULE = 'capstan.release.release_content'


class ActionModule(ActionBase):

    # Only a bundle over the inline limit needs the remote temp dir (_transfer makes it then): no mkdir
    # round trip for every other call.
    TRANSFERS_FILES = False

    def run(self, tmp=None, task_vars=None):
        result = super(ActionModule, self).run(tmp, task_vars)
        del tmp  # not used
        args = dict(self._task.args)
        try:
            if args.get('strategy', 'copy') != 'copy':
                url = args.get('repo_url') if args.get('strategy') == 'git' else args.get('src')
                result.update(_secrets.shown(self._execute_module(module_name=MODULE, module_args=args, task_vars=task_vars), url))
            else:
                result.update(self._copy(args, task_vars))
        except CapstanError as error:
            result.update(failed=True, msg=_secrets.mask(str(error)))
        except (IOError, OSError) as error:
            result.update(failed=True, msg=_secrets.mask('copying deploy_src %s failed: %s' % (args.get('src'), error)))
        finally:
            _transfer.cleanup(self)
        return result

    def _copy(self, args, task_vars):
        src = args.get('src')
        if not src or not isinstance(src, str):
            raise CapstanError('src (deploy_src) is required for strategy=copy: a directory or a tarball on the controller')
        src = os.path.realpath(os.path.expanduser(src))
        step = args.get('step', 'build')
        manifest = args.get('manifest')
        manifest = manifests.load_manifest(manifest) if manifest is not None else manifests.scan_source(src)
        revision = manifests.digest(manifest)
        if step == 'resolve':
            return dict(manifests.summary(manifest), changed=False, revision=revision, manifest=manifests.dump_manifest(manifest))
        if args.get('revision') not in (None, revision):
            raise CapstanError('deploy_src %s has digest %s, not the revision %s this deploy resolved' % (src, revision, args['revision']))
        module_args = dict((key, value) for key, value in args.items() if key in ('deploy_to', 'release'))
        module_args.update(strategy='copy', manifest=manifests.dump_manifest(manifest), revision=revision)
        planned = self._execute_module(module_name=MODULE, module_args=dict(module_args, step='plan'), task_vars=task_vars)
        if planned.get('failed') or step == 'plan':
            return planned
        if self._task.check_mode:
            counts = dict((key, planned[key]) for key in ('files', 'dirs', 'symlinks', 'bytes', 'linked', 'sent', 'sent_bytes'))
            return dict(counts, changed=True, revision=revision, release=args.get('release'), copied=0, written=counts['sent'],
                        diff={'before': {'release': args.get('release'), 'files': 0},
                              'after': dict(counts, release=args.get('release'))})
        bundle = None
        try:
            if planned['missing']:
                fd, bundle = tempfile.mkstemp(prefix='capstan-bundle-%d-' % os.getppid(), suffix='.tar.gz')
                os.close(fd)
                plans.write_bundle(src, manifest, planned['missing'], bundle)
                _transfer.deliver(self, bundle, module_args)
            built = self._execute_module(module_name=MODULE, module_args=dict(module_args, step='build'), task_vars=task_vars)
        finally:
            if bundle:
                os.unlink(bundle)
        if not built.get('failed'):
            built['sent'], built['sent_bytes'] = planned['sent'], planned['sent_bytes']
        return built
