"""Issue 8, input and tree defects: each test pins one defect on three real SSH hosts and fails on
the code the issue was filed against. Black box: playbooks driven with -e, hosts' files read back.

Defects 1 (linked paths), 7 (deploy_to), 8 (messages), 9 (invalid dates), 11 (a missing tree).
"""

from __future__ import annotations

import datetime
import json
import os

from ansible_collections.capstan.release.tests.integration.faults import (TEMPLATING, Problems, fingerprint, lock_exists,
                                                                          lost, own_tree, release_names, run, said,
                                                                          shared_hash)
from ansible_collections.capstan.release.tests.integration.helpers import (LINKS, app, current, deploy, ok, play,
                                                                           prepare_shared)


def refused_unchanged(problems, fleet, deploy_to, result, before, what, *phrases):
    """A refusal: rc != 0, every phrase said, every host's tree exactly as ``before``."""
    problems.check(result.rc != 0, '%s: rc 0, the run was not refused' % what)
    text = said(result)
    for phrase in phrases:
        problems.check(phrase.lower() in text, '%s: the output does not say %r' % (what, phrase))
    problems.check(fingerprint(fleet, deploy_to) == before, '%s: the tree changed on some host' % what)
    problems.check(not any(lock_exists(fleet, deploy_to)), '%s: a lock was left' % what)


def test_overlapping_linked_paths_are_refused_before_anything_changes(fleet, request, tmp_path):
    """Defect 1: linked dirs and files that overlap (a file inside a linked dir, a dir inside a linked
    dir, a duplicate, a non-normalised entry) are refused before any host changes, naming the
    variables and the entries; shared/ keeps what it holds."""
    deploy_to = own_tree(request)
    prepare_shared(fleet, deploy_to)
    fleet.each('mkdir -p %s/shared/public/uploads && echo photo > %s/shared/public/uploads/photo.jpg' % (deploy_to, deploy_to))
    ok(deploy(fleet, deploy_to, app(tmp_path, 'v1')))
    shared = shared_hash(fleet, deploy_to)
    cases = [
        ({'deploy_linked_dirs': ['config'], 'deploy_linked_files': ['config/app.yml']},
         ['deploy_linked_dirs', 'deploy_linked_files', 'config/app.yml']),
        ({'deploy_linked_dirs': ['public', 'public/uploads'], 'deploy_linked_files': []},
         ['deploy_linked_dirs', 'public/uploads']),
        ({'deploy_linked_dirs': ['log', 'log'], 'deploy_linked_files': ['config/app.yml']},
         ['deploy_linked_dirs', 'log']),
        ({'deploy_linked_dirs': ['./log'], 'deploy_linked_files': ['config/app.yml']},
         ['deploy_linked_dirs', './log']),
    ]
    problems = Problems()
    for number, (links, phrases) in enumerate(cases, 2):
        before = fingerprint(fleet, deploy_to)
        result = deploy(fleet, deploy_to, app(tmp_path, 'v%d' % number), **links)
        refused_unchanged(problems, fleet, deploy_to, result, before, json.dumps(links), *phrases)
    problems.check(fleet.each('cat %s/shared/config/app.yml 2>&1; true' % deploy_to)
                   == ['greeting: hello from host%d\n' % i for i in (1, 2, 3)],
                   'shared/config/app.yml lost its content: %s' % fleet.each('ls -l %s/shared/config/; true' % deploy_to))
    problems.check(fleet.each('cat %s/shared/public/uploads/photo.jpg 2>&1; true' % deploy_to) == ['photo\n'] * 3,
                   'shared/public/uploads/photo.jpg is gone: %s' % fleet.each('ls -la %s/shared/public/; true' % deploy_to))
    problems.extend(lost(fleet, deploy_to, shared))
    problems.verify()


def test_a_linked_file_reached_through_a_symlink_into_shared_never_replaces_a_shared_file(fleet, request, tmp_path):
    """Defect 1: nothing whose real path is inside shared/ is unlinked. The app ships etc -> config
    (a link inside the release), config is a linked dir, etc/app.yml a linked file: the linked
    file's path in the release really is shared/config/app.yml, which must keep its content
    (the deploy may refuse or handle it, never replace the shared file by a link)."""
    deploy_to = own_tree(request)
    prepare_shared(fleet, deploy_to)
    ok(deploy(fleet, deploy_to, app(tmp_path, 'v1')))
    fleet.each('mkdir -p %s/shared/etc && echo "etc of this host" > %s/shared/etc/app.yml' % (deploy_to, deploy_to))
    source = app(tmp_path, 'v2')
    os.symlink('config', str(source / 'etc'))
    shared = shared_hash(fleet, deploy_to)
    result = deploy(fleet, deploy_to, source, deploy_linked_dirs=['config'], deploy_linked_files=['etc/app.yml'])
    problems = Problems()
    problems.check(fleet.each('test -f %s/shared/config/app.yml && ! test -L %s/shared/config/app.yml && '
                              'cat %s/shared/config/app.yml || ls -l %s/shared/config/; true' % ((deploy_to,) * 4))
                   == ['greeting: hello from host%d\n' % i for i in (1, 2, 3)],
                   'rc %d; shared/config/app.yml is no longer the file it was: %s'
                   % (result.rc, fleet.each('ls -l %s/shared/config/; true' % deploy_to)))
    problems.extend(lost(fleet, deploy_to, shared))
    problems.verify()


def test_deploy_to_is_judged_after_normalising_by_every_playbook(fleet, request, tmp_path):
    """Defect 7: deploy_to '//', '/./', '/srv/x/../..' (all of them /) and 'srv/app' (relative) are
    refused before anything changes by the deploy, rollback and releases playbooks, naming
    deploy_to (tried in check mode: the bed's hosts share this machine's root filesystem); a path
    that normalises inside /srv (/srv/<x>/../<y>) deploys into /srv/<y>."""
    deploy_to = own_tree(request)
    root = sorted(os.listdir('/'))
    source = str(app(tmp_path, 'v1'))
    problems = Problems()
    for bad in ('//', '/./', '/srv/x/../..', 'srv/app'):
        for playbook, variables in (('deploy.yml', dict(LINKS, deploy_src=source)), ('rollback.yml', {}), ('releases.yml', {})):
            result = run(fleet, playbook, dict(variables, deploy_to=bad), '--check')
            problems.check(result.rc != 0, '%s --check -e deploy_to=%s: rc 0, not refused' % (playbook, bad))
            problems.check('deploy_to' in said(result), '%s --check -e deploy_to=%s: the output does not name deploy_to'
                           % (playbook, bad))
    relative = run(fleet, 'deploy.yml', dict(LINKS, deploy_src=source, deploy_to='srv/app'))
    problems.check(relative.rc != 0 and 'deploy_to' in said(relative), 'deploy.yml -e deploy_to=srv/app: not refused naming deploy_to')
    problems.check(fleet.each('ls -d /root/srv 2>/dev/null; true') == [''] * 3, 'a relative deploy_to created srv/ on a host')
    problems.check(sorted(os.listdir('/')) == root, 'entries appeared at /: %s' % sorted(set(os.listdir('/')) - set(root)))

    prepare_shared(fleet, deploy_to)
    fleet.each('mkdir -p %s/shared/log' % deploy_to)
    shared = shared_hash(fleet, deploy_to)
    detour = '%s-x/../%s' % (deploy_to, os.path.basename(deploy_to))
    result = deploy(fleet, detour, app(tmp_path, 'v2'))
    problems.check(result.rc == 0, '-e deploy_to=%s: rc %d' % (detour, result.rc))
    problems.check(fleet.each('test -e %s-x && echo exists || echo absent' % deploy_to) == ['absent\n'] * 3,
                   '%s-x was created' % deploy_to)
    problems.check(fleet.each('cat %s/current/public/VERSION 2>&1; true' % deploy_to) == ['v2\n'] * 3,
                   'the deploy did not land in %s' % deploy_to)
    problems.extend(lost(fleet, deploy_to, shared))
    problems.verify()


def test_messages_name_the_cause_not_a_templating_error(fleet, request, tmp_path):
    """Defect 8: deploy_linked_dirs given as a string, and a release named 99991231235959 (no name
    after it fits in 14 digits), are each refused before anything changes with one clear sentence:
    no templating error, no OverflowError, no traceback."""
    deploy_to = own_tree(request)
    prepare_shared(fleet, deploy_to)
    ok(deploy(fleet, deploy_to, app(tmp_path, 'v1')))
    shared = shared_hash(fleet, deploy_to)
    problems = Problems()

    before = fingerprint(fleet, deploy_to)
    result = deploy(fleet, deploy_to, app(tmp_path, 'v2'), deploy_linked_dirs='log')
    refused_unchanged(problems, fleet, deploy_to, result, before, 'deploy_linked_dirs="log"', 'deploy_linked_dirs', 'list')
    for phrase in TEMPLATING:
        problems.check(phrase not in said(result), 'deploy_linked_dirs="log": the output says %r' % phrase)

    fleet.each('mkdir %s/releases/99991231235959 && echo f00 > %s/releases/99991231235959/REVISION' % (deploy_to, deploy_to))
    before = fingerprint(fleet, deploy_to)
    result = deploy(fleet, deploy_to, app(tmp_path, 'v3'))
    refused_unchanged(problems, fleet, deploy_to, result, before, 'release 99991231235959', '99991231235959')
    for phrase in ('overflowerror', 'date value out of range') + TEMPLATING:
        problems.check(phrase not in said(result), 'release 99991231235959: the output says %r' % phrase)
    fleet.each('rm -r %s/releases/99991231235959' % deploy_to)

    problems.extend(lost(fleet, deploy_to, shared))
    problems.verify()


def test_a_current_directory_is_refused_at_the_start_and_migrated_with_deploy_migrate_current(fleet, request, tmp_path):
    """Defect 8: a current that is a real directory is refused before any release is built, naming
    deploy_migrate_current; with -e deploy_migrate_current=true the directory becomes a release
    (its content kept) and current a symlink to the new release."""
    deploy_to = own_tree(request)
    prepare_shared(fleet, deploy_to)
    fleet.each('mkdir -p %s/shared/log %s/current/public && echo "old app" > %s/current/public/VERSION'
               % (deploy_to, deploy_to, deploy_to))
    shared = shared_hash(fleet, deploy_to)
    problems = Problems()

    result = deploy(fleet, deploy_to, app(tmp_path, 'v1'))
    problems.check(result.rc != 0, 'current a directory: rc 0')
    problems.check('deploy_migrate_current' in said(result), 'current a directory: the output does not name deploy_migrate_current')
    problems.check(release_names(fleet, deploy_to) == [[]] * 3,
                   'current a directory: a release was built first: %s' % release_names(fleet, deploy_to))
    problems.check(fleet.each('ls %s | grep -c tar.gz; true' % deploy_to) == ['0\n'] * 3,
                   'current a directory: an archive was written: %s' % fleet.each('ls %s; true' % deploy_to))
    problems.check(fleet.each('test -d %s/current && ! test -L %s/current && cat %s/current/public/VERSION; true'
                              % (deploy_to, deploy_to, deploy_to)) == ['old app\n'] * 3, 'the current directory changed')
    problems.check(shared_hash(fleet, deploy_to) == shared, 'current a directory: shared/ changed')
    problems.check(not any(lock_exists(fleet, deploy_to)), 'current a directory: a lock was left')

    result = deploy(fleet, deploy_to, app(tmp_path, 'v1'), deploy_migrate_current=True)
    problems.check(result.rc == 0, 'deploy_migrate_current=true: rc %d' % result.rc)
    names = release_names(fleet, deploy_to)
    problems.check(all(len(n) == 2 for n in names) and len(set(map(tuple, names))) == 1,
                   'deploy_migrate_current=true: releases/ holds %s, not the moved directory and the new release' % names)
    if all(len(n) == 2 for n in names):
        problems.check(current(fleet, deploy_to) == [n[1] for n in names], 'current is not the new release')
        problems.check([fleet.sh(i, 'cat %s/releases/%s/public/VERSION; true' % (deploy_to, n[0])) for i, n in enumerate(names, 1)]
                       == ['old app\n'] * 3, 'the old current directory was not kept as a release')
    problems.check(fleet.each('cat %s/current/public/VERSION; true' % deploy_to) == ['v1\n'] * 3, 'current does not serve v1')
    problems.extend(lost(fleet, deploy_to, shared))
    problems.verify()


def test_an_invalid_date_in_releases_is_foreign_never_counted_named_after_or_pruned(fleet, request, tmp_path):
    """Defect 9: releases/20261301000000 (month 13) is a foreign entry: the next release name comes
    from the real clock (so it is less than 20261301000000), a prune keeping one release leaves
    it alone, and the releases report lists it as foreign."""
    deploy_to = own_tree(request)
    prepare_shared(fleet, deploy_to)
    ok(deploy(fleet, deploy_to, app(tmp_path, 'v1')))
    first = current(fleet, deploy_to)[0]
    fleet.each('mkdir %s/releases/20261301000000 && echo f00 > %s/releases/20261301000000/REVISION' % (deploy_to, deploy_to))
    shared = shared_hash(fleet, deploy_to)
    problems = Problems()

    result = deploy(fleet, deploy_to, app(tmp_path, 'v2'), deploy_keep_releases=1)
    problems.check(result.rc == 0, 'deploy: rc %d' % result.rc)
    names = current(fleet, deploy_to)
    today = datetime.datetime.now(datetime.timezone.utc)
    problems.check(all(first < name < '20261301000000' and abs(
        (datetime.datetime.strptime(name, '%Y%m%d%H%M%S').replace(tzinfo=datetime.timezone.utc) - today).total_seconds()) < 3600
        for name in names), 'the new release is named %s, not after the clock (%s)' % (names, today.strftime('%Y%m%d%H%M%S')))
    problems.check(fleet.each('cat %s/releases/20261301000000/REVISION 2>&1; true' % deploy_to) == ['f00\n'] * 3,
                   'releases/20261301000000 was removed or changed')

    report_path = tmp_path / 'report.json'
    ok(play(fleet, 'releases.yml', deploy_to, releases_json=str(report_path)))
    report = json.loads(report_path.read_text())
    for host in fleet.names:
        entry = report['hosts'][host]
        problems.check('20261301000000' in (entry.get('foreign') or []), '%s: 20261301000000 not reported as foreign: %s'
                       % (host, entry.get('foreign')))
        problems.check('20261301000000' not in [r['name'] for r in entry.get('releases') or []],
                       '%s: 20261301000000 reported as a release' % host)
    problems.extend(lost(fleet, deploy_to, shared))
    problems.verify()


def test_runs_on_a_missing_tree_create_nothing(fleet, request, tmp_path):
    """Defect 11: a rollback of a deploy_to that does not exist is refused and leaves nothing there
    (no .capstan/); the read-only releases playbook and a --check deploy create nothing either."""
    deploy_to = own_tree(request)
    problems = Problems()
    source = str(app(tmp_path, 'v1'))
    for what, playbook, variables, options in (
            ('releases', 'releases.yml', {}, ()),
            ('check-deploy', 'deploy.yml', {'deploy_src': source}, ('--check',)),
            ('rollback', 'rollback.yml', {}, ())):
        target = '%s-%s' % (deploy_to, what)
        result = run(fleet, playbook, dict(variables, deploy_to=target), *options)
        if what == 'rollback':
            problems.check(result.rc != 0, 'rollback of a missing tree: rc 0')
        problems.check(fleet.each('find %s 2>/dev/null; true' % target) == [''] * 3,
                       '%s of a missing tree left %s' % (what, fleet.each('find %s 2>/dev/null; true' % target)))
    problems.verify()
