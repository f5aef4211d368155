# Copyright (c) 2026, capstan.release contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Controller side of capstan.release.release_step: each stage of the deploy and rollback flows.

The roles call it once per stage with their variables (``inputs``), the fleet's plan (made by
the capstan.release.fleet_plan filter from every host's start) and what the earlier stages of
this host returned. It checks the input with the rules of _checks (naming the role variable),
runs the host's part of the stage in one module call (release_step, or the health checks), and
keeps what hosts share (a copy source's manifest and bundles) once on the controller. The
fleet's decisions are in module_utils/_fleet.py; this file only wires them.
"""

from __future__ import annotations

import hashlib
import os
import time

from ansible.plugins.action import ActionBase

from ansible_collections.capstan.release.plugins.module_utils import _checks
from ansible_collections.capstan.release.plugins.module_utils._content import manifests
from ansible_collections.capstan.release.plugins.module_utils._content import plans
from ansible_collections.capstan.release.plugins.module_utils import _fleet
from ansible_collections.capstan.release.plugins.module_utils import _releases
from ansible_collections.capstan.release.plugins.module_utils import _secrets
from ansible_collections.capstan.release.plugins.module_utils._errors import CapstanError
from ansible_collections.capstan.release.plugins.plugin_utils import _hooks
from ansible_collections.capstan.release.plugins.plugin_utils import _run
from ansible_collections.capstan.release.plugins.plugin_utils import _transfer

STEP = 'capstan.release.release_step'
# Hook points that run after the last module stage of a flow and before its lock is released.
DEPLOY_LATE_HOOKS = ()
ROLLBACK_LATE_HOOKS = ('after_finishing_rollback', 'before_finished')


# The facts hooks and handlers see besides deploy_mode (DESIGN.md), set by each run when it has its plan.
PUBLIC_FACTS = ('deploy_release_name', 'deploy_release_path', 'deploy_previous_release', 'deploy_shared_path', 'deploy_revision')

# What each flow registers its first switch as: once a host got there, a host that went dark may
# run another release than the fleet.
SWITCH_STEPS = {'deploy': 'deploy__publishing', 'rollback': 'rollback__publishing', 'drill': 'drill__back'}


class ActionModule(ActionBase):

    # Only a bundle over the inline limit needs the remote temp dir (_transfer makes it then): no mkdir
    # round trip for every other call.
    TRANSFERS_FILES = False
    _supports_check_mode = True

    def run(self, tmp=None, task_vars=None):
        result = super(ActionModule, self).run(tmp, task_vars)
        del tmp  # not used
        self._vars = task_vars
        args = self._task.args
        flow, stage = args.get('flow', 'deploy'), args.get('stage')
        handler = getattr(self, '_%s_%s' % (flow, stage), None)
        self._inputs = args.get('inputs') or {}
        try:
            if handler is None:
                raise CapstanError('flow %r has no stage %r' % (flow, stage))
            result.update(handler(args))
        except CapstanError as error:
            result.update(failed=True, msg=self._clean(str(error)), **self._clean(error.details))
        except (IOError, OSError) as error:
            result.update(failed=True, msg=self._clean('%s of %s failed on the controller: %s' % (stage, flow, error)))
        finally:
            _transfer.cleanup(self)
        result['run_owner'] = self._identity(flow)['owner']
        return result

    # --- plumbing ----------------------------------------------------------------------------

    def _identity(self, mode):
        """The run's identity: every stage of one role run (all its serial batches) computes the same one."""
        role = getattr(self._task, '_role', None)
        run = _run.identity(getattr(role, '_uuid', None) or self._task._uuid, mode)
        run['inventory'] = list(self._vars.get('ansible_inventory_sources') or [])
        return run

    def _host(self):
        """The host the stage works on: the delegated one when a serial batch reaches the others."""
        return self._task.delegate_to or self._vars['inventory_hostname']

    def _serial(self):
        """Where this host's serial batch stands among the play's hosts (see _fleet.batches)."""
        return _fleet.batches(self._vars.get('ansible_play_hosts_all'), self._vars.get('ansible_play_batch'))

    @staticmethod
    def _release_path(inputs, name):
        """Where release ``name`` is in this host's tree (the tree's layout is _releases')."""
        return _releases.Tree(inputs['deploy_to'], resolve=False).release_path(name)

    def _clean(self, value):
        """A message (or a dict of details) as the operator sees it: URL credentials masked, Ansible's no_log mark
        replaced by the masked URL."""
        return _secrets.shown(value, self._inputs.get('deploy_repo_url') or self._inputs.get('deploy_src') or '')

    def _module(self, name, module_args):
        """Run one module on this host; its failure becomes this stage's (message cleaned)."""
        result = self._execute_module(module_name=name, module_args=module_args, task_vars=self._vars)
        result.pop('invocation', None)
        if result.get('warnings'):
            # Ansible shows a module's warnings without the host: say which host each is about.
            result['warnings'] = ['%s: %s' % (self._host(), self._clean(warning)) for warning in result['warnings']]
        if result.get('failed') or result.get('unreachable'):
            raise CapstanError(self._clean(result.get('msg') or 'the module failed'),
                               **dict((key, value) for key, value in result.items()
                                      if key in ('holder', 'unreachable', 'rc', 'stderr')))
        return result

    def _deploy_inputs(self, read_hooks=True):
        inputs = _checks.deploy(self._inputs)
        if read_hooks:
            self._hooks(inputs)
        return inputs

    def _hooks(self, inputs):
        """Every hook file found, parsed and shape-checked (before anything changes)."""
        play = getattr(getattr(self._task, '_parent', None), '_play', None)
        return _hooks.load(inputs['deploy_hooks'], [self._vars.get('playbook_dir')], self._loader, play)

    @staticmethod
    def _needs(inputs):
        """What this host needs between the stages (see _fleet.wanted): its hook points, the go/no-go, a health check."""
        return {'hooks': sorted(inputs['deploy_hooks']), 'confirm': bool(inputs.get('deploy_confirm')),
                'health': bool(inputs.get('deploy_health_command') or inputs.get('deploy_health_url'))}

    def _run_for(self, mode, inputs):
        run = self._identity(mode)
        run.update(ttl=inputs['deploy_lock_ttl'], **{'break': inputs['deploy_break_lock']})
        return run

    def _mine(self, start, mode):
        """``start`` (a registered starting result) when it belongs to this run, else None.

        A stage run from the shared role (capstan.release.common, between stages) acts for the flow
        role that included it: the start that role registered in this run is taken as it is.
        """
        if not isinstance(start, dict) or start.get('failed') or not (start.get('run') or {}).get('owner'):
            return None
        role = getattr(getattr(self._task, '_role', None), '_role_name', '') or ''
        if role.split('.')[-1] == 'common' or start['run']['owner'] == self._identity(mode)['owner']:
            return start
        return None

    def _manifest(self, run, inputs):
        """(manifest JSON, revision) of deploy_src, scanned once per run on the controller."""
        src = os.path.realpath(os.path.expanduser(inputs['deploy_src']))

        def scan():
            manifest = manifests.scan_source(src)
            return {'manifest': manifests.dump_manifest(manifest), 'revision': manifests.digest(manifest)}

        made = _run.once(os.path.join(_run.run_dir(run), 'manifest-%s.json' % hashlib.sha256(src.encode('utf-8')).hexdigest()[:16]),
                         scan)
        return made['manifest'], made['revision']

    def _refused(self, error, run):
        """A lock refusal, told whether its holder's pid still runs when it ran on this controller."""
        holder = error.details.get('holder') or {}
        msg = str(error)
        if holder.get('host') == run['host'] and holder.get('pid') and not _run.pid_alive(holder['pid']):
            msg += ' (pid %s is not running on %s)' % (holder['pid'], run['host'])
        return CapstanError(msg, **error.details)

    def _rescued(self, mode):
        """Where the failure path starts on this host: this run's owner (the host notes it, so the fleet
        sees which hosts got there) and the facts hooks and handlers see (PUBLIC_FACTS).

        They are this run's when it made its plan before failing; before that they are none
        (an earlier run of the playbook set them too, and its values must never show here).
        """
        owner = self._identity(mode)['owner']
        plan = self._vars.get('%s__plan' % mode)
        ours = isinstance(plan, dict) and (plan.get('run') or {}).get('owner') == owner
        facts = dict((name, self._templar.template(self._vars.get(name)) if ours else None) for name in PUBLIC_FACTS)
        facts['deploy_mode'] = mode
        return {'changed': False, 'owner': owner, 'facts': facts}

    def _deploy_rescued(self, args):
        return self._rescued('deploy')

    def _rollback_rescued(self, args):
        return self._rescued('rollback')

    def _drill_rescued(self, args):
        return self._rescued('drill')

    # --- deploy ------------------------------------------------------------------------------

    def _deploy_check(self, args):
        inputs = self._deploy_inputs()
        if inputs['deploy_strategy'] == 'copy':
            self._manifest(self._run_for('deploy', inputs), inputs)
        return {'changed': False, 'msg': 'the input of the deploy is good'}

    def _deploy_starting(self, args):
        inputs = self._deploy_inputs()
        run = self._run_for('deploy', inputs)
        _run.clean_leftovers()
        strategy = inputs['deploy_strategy']
        module_args = {'stage': 'start', 'deploy_to': inputs['deploy_to'], 'run': run, 'strategy': strategy,
                       'migrate_current': inputs['deploy_migrate_current']}
        what = 'deploy_src %s' % inputs['deploy_src']
        if strategy == 'copy':
            module_args['manifest'], module_args['revision'] = self._manifest(run, inputs)
        elif strategy == 'git':
            module_args.update(repo_url=inputs['deploy_repo_url'], version=inputs['deploy_version'])
            what = "deploy_version '%s' of deploy_repo_url" % (inputs['deploy_version'] or 'HEAD')
        else:
            module_args.update(src=inputs['deploy_src'], checksum=inputs['deploy_src_checksum'] or None)
        asked = time.time()
        try:
            started = self._module(STEP, module_args)
        except CapstanError as error:
            raise self._refused(error, run)
        missing = started.pop('missing', None)
        if missing is not None:
            _run.store(run, 'missing-%s.json' % self._host(), missing)
        override = self._release_name_asked(inputs['deploy_release_name'], run)
        started.update(run=run, time=asked, override=override, what=_secrets.mask(what),
                       hosts=list(self._vars.get('ansible_play_batch') or []),
                       deploy_to=inputs['deploy_to'], needs=self._needs(inputs))
        return started

    def _release_name_asked(self, value, run):
        """The release name this run was asked for (deploy_release_name), or ''.

        An earlier run of the same playbook leaves its release's name in deploy_release_name for
        its hooks and handlers (set_fact), which hides a name the play's own vars give. So a value
        that is only what an earlier run left is no request: the play's vars are asked instead.
        """
        left = set()
        for name in ('deploy__plan', 'rollback__plan', 'drill__plan'):
            previous = self._vars.get(name)
            if isinstance(previous, dict) and (previous.get('run') or {}).get('owner') != run['owner']:
                left.update(value for value in (previous.get('release'), previous.get('target')) if value)
        if not value or value not in left:
            return value
        play = getattr(getattr(self._task, '_parent', None), '_play', None)
        asked = (getattr(play, 'vars', None) or {}).get('deploy_release_name')
        if asked is None:
            return ''
        asked = self._templar.template(asked)
        return _checks.release_name(asked, 'deploy_release_name') if asked not in left else ''

    def _plan(self, args):
        plan = args.get('plan') or {}
        if plan.get('action') == 'refuse':
            raise CapstanError(plan.get('msg') or 'the fleet refused this deploy')
        return plan

    def _deploy_updating(self, args):
        inputs = self._deploy_inputs(read_hooks=False)
        plan = self._plan(args)
        start = self._mine(args.get('start'), 'deploy')
        if start is None:
            raise CapstanError('this host has no start in this run; nothing was built here')
        run = start['run']
        strategy = inputs['deploy_strategy']
        module_args = {'stage': 'build', 'deploy_to': inputs['deploy_to'], 'run': run, 'strategy': strategy,
                       'release': plan['release'], 'revision': plan['revision'],
                       'linked_dirs': inputs['deploy_linked_dirs'], 'linked_files': inputs['deploy_linked_files'],
                       'margin_mb': inputs['deploy_free_space_margin_mb']}
        if strategy == 'copy':
            manifest, revision = self._manifest(run, inputs)
            module_args.update(manifest=manifest, sent_bytes=start.get('sent_bytes') or 0)
            missing = _run.load(run, 'missing-%s.json' % self._host(), [])
            if missing and plan['action'] == 'build' and not self._task.check_mode:
                src = os.path.realpath(os.path.expanduser(inputs['deploy_src']))
                bundle = _run.make_file_once(_run.bundle_path(run, missing), lambda path: plans.write_bundle(
                    src, manifests.load_manifest(manifest), missing, path))
                _transfer.deliver(self, bundle, module_args)
        elif strategy == 'git':
            module_args['repo_url'] = inputs['deploy_repo_url']
        else:
            module_args.update(src=inputs['deploy_src'], checksum=inputs['deploy_src_checksum'] or None)
        built = self._module(STEP, module_args)
        built.pop('diff', None) if not self._task.diff else None
        return built

    def _deploy_publishing(self, args):
        inputs = self._deploy_inputs(read_hooks=False)
        plan = self._plan(args)
        start = self._mine(args.get('start'), 'deploy')
        release = plan['release']
        if self._task.check_mode and plan['action'] == 'build':
            switch = 'current would switch from release %s to release %s' % (start.get('current') or 'none', release)
            return {'changed': True, 'release': release, 'previous_release': start.get('current'), 'msg': switch,
                    'diff': {'prepared': switch + '\n'}}
        return self._module(STEP, {'stage': 'switch', 'deploy_to': inputs['deploy_to'], 'release': release,
                                   'migrate_current': inputs['deploy_migrate_current'], 'run': start['run']})

    def _deploy_finishing(self, args):
        inputs = self._deploy_inputs(read_hooks=False)
        plan = self._plan(args)
        if not inputs['deploy_health_command'] and not inputs['deploy_health_url']:
            return {'changed': False, 'skipped': True, 'skip_reason': 'no health check is set (deploy_health_command, deploy_health_url)'}
        if self._task.check_mode:
            return {'changed': False, 'msg': 'check mode: the health of release %s would be checked' % plan['release']}
        return self._health(inputs, self._release_path(inputs, plan['release']))

    def _health(self, inputs, release_path):
        """The health command and URL, each retried as deploy_health_retries and deploy_health_delay say."""
        checks = []
        if inputs['deploy_health_command']:
            checks.append(('deploy_health_command', 'ansible.legacy.command',
                           {'_raw_params': inputs['deploy_health_command'], '_uses_shell': True, 'chdir': release_path}))
        if inputs['deploy_health_url']:
            checks.append(('deploy_health_url', 'ansible.legacy.uri',
                           {'url': inputs['deploy_health_url'], 'status_code': [inputs['deploy_health_status']], 'timeout': 10}))
        done = {}
        for what, module, module_args in checks:
            tries = inputs['deploy_health_retries'] + 1
            for attempt in range(1, tries + 1):
                result = self._execute_module(module_name=module, module_args=module_args, task_vars=self._vars)
                if not result.get('failed') and not result.get('unreachable'):
                    done[what] = {'attempts': attempt}
                    break
                if result.get('unreachable') or attempt == tries:
                    detail = result.get('msg') or ''
                    if result.get('rc') is not None:
                        detail = 'exited with %s%s' % (result['rc'], (': ' + result['stderr'].strip()) if (result.get('stderr') or '').strip() else '')
                    raise CapstanError('%s %r failed after %d attempt%s: %s' % (
                        what, module_args.get('_raw_params') or module_args.get('url'), attempt, '' if attempt == 1 else 's',
                        self._clean(detail)), **({'unreachable': True} if result.get('unreachable') else {}))
                time.sleep(inputs['deploy_health_delay'])
        return {'changed': False, 'healthy': done}

    def _deploy_finished(self, args):
        inputs = self._deploy_inputs(read_hooks=False)
        plan = self._plan(args)
        start = self._mine(args.get('start'), 'deploy')
        if self._task.check_mode and plan['action'] == 'build':
            return {'changed': True, 'msg': 'check mode: release %s would be recorded, old releases pruned' % plan['release']}
        run = start['run']
        branch = inputs['deploy_branch'] or start.get('branch') or 'main'
        last = self._serial()['last']
        finished = self._module(STEP, {'stage': 'finish', 'deploy_to': inputs['deploy_to'], 'run': run,
                                       'release': plan['release'], 'branch': branch, 'log_user': run['user'],
                                       'keep_releases': inputs['deploy_keep_releases'],
                                       'keep_archives': inputs['deploy_keep_archives'], 'unlock': last})
        if last:
            _run.forget(run)
        return finished

    def _deploy_unlock(self, args):
        """With serial batches, the last batch releases the locks the earlier batches kept."""
        inputs = self._deploy_inputs(read_hooks=False)
        plan = args.get('plan') or {}
        return self._module(STEP, {'stage': 'unlock', 'deploy_to': inputs['deploy_to'],
                                   'run': plan.get('run') or self._run_for('deploy', inputs)})

    def _deploy_failed(self, args):
        return self._failed(args, 'deploy')

    # --- rollback ----------------------------------------------------------------------------

    def _rollback_inputs(self, read_hooks=True):
        inputs = _checks.rollback(self._inputs)
        if read_hooks:
            self._hooks(inputs)
        return inputs

    def _rollback_check(self, args):
        self._rollback_inputs()
        return {'changed': False, 'msg': 'the input of the rollback is good'}

    def _rollback_starting(self, args):
        inputs = self._rollback_inputs()
        batch, play_hosts = self._vars.get('ansible_play_batch') or [], self._vars.get('ansible_play_hosts') or []
        if len(batch) < len(play_hosts):
            raise CapstanError('a rollback switches every host at once, but this play runs in serial batches (%d of %d hosts); '
                               'run it without serial' % (len(batch), len(play_hosts)))
        run = self._run_for('rollback', inputs)
        _run.clean_leftovers()
        asked = time.time()
        try:
            started = self._module(STEP, {'stage': 'rollback_start', 'deploy_to': inputs['deploy_to'], 'run': run,
                                          'release': inputs['rollback_release'] or None})
        except CapstanError as error:
            raise self._refused(error, run)
        started.update(run=run, time=asked, hosts=list(batch), deploy_to=inputs['deploy_to'], needs=self._needs(inputs))
        return started

    def _rollback_publishing(self, args):
        inputs = self._rollback_inputs(read_hooks=False)
        plan = self._plan(args)
        start = self._mine(args.get('start'), 'rollback')
        if start.get('current') == plan['release']:
            return {'changed': False, 'release': plan['release'], 'msg': 'current already points to release %s' % plan['release']}
        run = start['run']
        return self._module(STEP, {'stage': 'switch', 'deploy_to': inputs['deploy_to'], 'release': plan['release'],
                                   'rollback': True, 'log_user': run['user'], 'run': run})

    def _rollback_finishing_rollback(self, args):
        inputs = self._rollback_inputs(read_hooks=False)
        plan = self._plan(args)
        start = self._mine(args.get('start'), 'rollback')
        run = start['run']
        late = any(point in inputs['deploy_hooks'] for point in ROLLBACK_LATE_HOOKS)
        finished = self._module(STEP, {'stage': 'rollback_finish', 'deploy_to': inputs['deploy_to'], 'run': run,
                                       'leaving': (plan.get('leaving') or {}).get(self._host(), start.get('leaving')),
                                       'unlock': not late,
                                       'keep_releases': inputs['deploy_keep_releases'],
                                       'keep_archives': inputs['deploy_keep_archives']})
        _run.forget(run)
        return finished

    def _rollback_finished(self, args):
        inputs = self._rollback_inputs(read_hooks=False)
        start = self._mine(args.get('start'), 'rollback')
        if not any(point in inputs['deploy_hooks'] for point in ROLLBACK_LATE_HOOKS):
            return {'changed': False, 'msg': 'the lock was released with the release the rollback left'}
        return self._module(STEP, {'stage': 'unlock', 'deploy_to': inputs['deploy_to'], 'run': start['run']})

    def _rollback_failed(self, args):
        return self._failed(args, 'rollback')

    # --- drill -------------------------------------------------------------------------------

    def _drill_starting(self, args):
        inputs = _checks.drill(self._inputs)
        batch, play_hosts = self._vars.get('ansible_play_batch') or [], self._vars.get('ansible_play_hosts') or []
        if len(batch) < len(play_hosts):
            raise CapstanError('a drill switches every host at once, but this play runs in serial batches; run it without serial')
        run = self._run_for('drill', inputs)
        _run.clean_leftovers()
        asked = time.time()
        try:
            started = self._module(STEP, {'stage': 'drill_start', 'deploy_to': inputs['deploy_to'], 'run': run})
        except CapstanError as error:
            raise self._refused(error, run)
        started.update(run=run, time=asked, hosts=list(batch), deploy_to=inputs['deploy_to'])
        return started

    def _drill_switch(self, args, to):
        inputs = _checks.drill(self._inputs)
        plan = self._plan(args)
        start = self._mine(args.get('start'), 'drill')
        began = time.time()
        switched = self._module(STEP, {'stage': 'drill_switch', 'deploy_to': inputs['deploy_to'], 'run': start['run'],
                                       'release': plan[to]})
        switched['seconds'] = round(time.time() - began, 3)
        return switched

    def _drill_back(self, args):
        return self._drill_switch(args, 'target')

    def _drill_forward(self, args):
        return self._drill_switch(args, 'release')

    def _drill_health(self, args):
        inputs = _checks.drill(self._inputs)
        plan = self._plan(args)
        which = args.get('release') or plan['release']
        if not inputs['deploy_health_command'] and not inputs['deploy_health_url']:
            return {'changed': False, 'skipped': True, 'skip_reason': 'no health check is set (deploy_health_command, deploy_health_url)'}
        return self._health(inputs, self._release_path(inputs, which))

    def _drill_finished(self, args):
        inputs = _checks.drill(self._inputs)
        plan = self._plan(args)
        start = self._mine(args.get('start'), 'drill')
        back, forward = self._slowest(plan, 'drill__back'), self._slowest(plan, 'drill__forward')
        finished = self._module(STEP, {'stage': 'drill_finish', 'deploy_to': inputs['deploy_to'], 'run': start['run'],
                                       'release': plan['release'], 'target': plan['target'], 'back_seconds': back,
                                       'forward_seconds': forward})
        _run.forget(start['run'])
        healthy = 'healthy both ways' if inputs['deploy_health_command'] or inputs['deploy_health_url'] else 'no health check set'
        hosts = len(plan['hosts'])
        figures = (inputs['deploy_to'], plan['target'], back, plan['release'], forward, hosts, '' if hosts == 1 else 's', healthy)
        finished['summary'] = ('drill of %s: back to release %s in %.2f s and forward to release %s in %.2f s on %d host%s '
                               '(the slowest host), %s' % figures)
        return finished

    def _slowest(self, plan, register):
        hostvars = self._vars.get('hostvars') or {}
        seconds = [0.0]
        for host in plan.get('hosts') or []:
            try:
                seconds.append(float(hostvars[host][register]['seconds']))
            except Exception:  # a host without the figure adds nothing
                continue
        return max(seconds)

    def _drill_failed(self, args):
        return self._failed(args, 'drill')

    # --- failure -----------------------------------------------------------------------------

    def _failed(self, args, mode):
        """Undo this run on this host (one module call), then say what failed and what is left, fleet-wide.

        What the fleet decides (this run's plan, whether every host recorded the deploy, the first
        failure, the hosts that could not be reached) is in _fleet, from the hosts' variables read
        here once.
        """
        try:
            inputs = {'deploy': _checks.deploy, 'rollback': _checks.rollback, 'drill': _checks.drill}[mode](self._inputs)
        except CapstanError:
            inputs = None
        owner = self._identity(mode)['owner']
        start = self._mine(args.get('start'), mode)
        steps = args.get('steps') or []
        me = self._vars['inventory_hostname']
        play_hosts = list(self._vars.get('ansible_play_hosts_all') or [])
        given = args.get('plan')
        names = _fleet.failure_variables(mode, steps, SWITCH_STEPS[mode], plans=not _fleet.of_run(given, owner))
        hosts = [me] + play_hosts + list((start or {}).get('hosts') or []) \
            + list((given.get('hosts') if isinstance(given, dict) else None) or [])
        seen = self._registered(hosts, names)
        plan = _fleet.find_plan(given, owner, play_hosts, seen, mode)
        seen.update(self._registered([host for host in plan.get('hosts') or [] if host not in hosts], names))
        release = plan.get('release') if plan.get('action') in ('build', 'resume', 'rollback', 'drill') else None
        outcome = {'notes': []}
        run = (start or {}).get('run') or plan.get('run') or self._identity(mode)
        if inputs and not self._task.check_mode:
            module_args = {'stage': {'deploy': 'abort', 'rollback': 'rollback_abort', 'drill': 'drill_abort'}[mode],
                           'deploy_to': inputs['deploy_to'], 'run': run, 'log_user': run['user']}
            if mode == 'drill':
                module_args['release'] = release
            if mode == 'deploy':
                module_args.update(release=release, auto_rollback=inputs['deploy_auto_rollback'],
                                   keep_recorded=_fleet.recorded_everywhere(plan, start, seen))
            try:
                outcome = self._execute_module(module_name=STEP, module_args=module_args, task_vars=self._vars)
            except Exception as error:  # the failure path never stops half-way: say what went wrong and carry on
                outcome = {'failed': True, 'msg': str(error)}
            if outcome.get('failed') or outcome.get('unreachable'):
                outcome = {'notes': ['undoing this run here failed too: %s' % self._clean(outcome.get('msg'))]}
        if self._task.delegate_to:
            return {'changed': bool(outcome.get('changed')), 'switched_back': outcome.get('switched_back'),
                    'unlocked': outcome.get('unlocked'), 'host': self._host()}
        others = dict((item.get('host'), item) for item in args.get('others') or [] if isinstance(item, dict) and item.get('host'))
        stopped = _fleet.last_step(steps, dict((name, self._vars.get(name)) for name in steps), owner)
        host, stage, message = _fleet.first_failure(me, play_hosts, seen, plan, start, mode, stopped)
        dark = _fleet.unreachable(plan, start, seen, mode, steps, SWITCH_STEPS[mode], play_hosts, outcome.get('current'))
        report = _fleet.failure_report((host, stage, self._clean(message)), outcome, dark, run,
                                       (inputs or {}).get('deploy_to') or self._inputs.get('deploy_to'), release, mode,
                                       others=others)
        switched = bool(outcome.get('switched_back'))
        result = {'changed': bool(outcome.get('changed')), 'switched_back': outcome.get('switched_back'),
                  'report': self._clean(report)}
        if switched:
            result['_ansible_notify'] = ['deploy:published', 'deploy:failed']
        elif outcome.get('changed'):
            result['_ansible_notify'] = ['deploy:failed']
        return result

    def _registered(self, hosts, names):
        """{host: {name: value}} of the variables ``names`` of ``hosts``, read from hostvars once each (see _fleet).

        A host whose variables cannot be read is left out, and so is a variable that cannot be
        read; one the host does not have is None.
        """
        hostvars = self._vars.get('hostvars') or {}
        seen, done = {}, set()
        for host in hosts:
            if host in done:
                continue
            done.add(host)
            try:
                facts = hostvars[host]
            except Exception:  # a host whose variables cannot be read: the decisions pass it over
                continue
            seen[host] = {}
            for name in names:
                try:
                    seen[host][name] = facts.get(name)
                except Exception:  # a variable that cannot be read: left out, as it is not the same as unset
                    continue
        return seen
