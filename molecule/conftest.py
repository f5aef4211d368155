# Copyright (c) 2026, capstan.release contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""What the testinfra tests of every Molecule scenario share (pytest loads this conftest for
molecule/*/tests/).

``tree`` is the deploy tree on the host under test, as that host sees it (over SSH on the test
bed, locally for ``default``); ``fleet`` is the trees of every host of the scenario, for what must
hold across hosts; ``scenario`` is the scenario's variables (its molecule.yml's group_vars).
``check_tree`` is what is true of every tree after any deploy or rollback, finished or failed,
and ``check_watch`` reads what current_watch.py saw; each scenario's tests call both.

A tree is read in one command per host (a listing with owners, modes, link targets and times,
plus the small files' text and the archives' members), then asserted on locally: a test run
reads each host once instead of a few hundred times.
"""

from __future__ import annotations

import json
import os
import posixpath
import re

import pytest
import testinfra
import yaml

NAME = re.compile(r'^[0-9]{14}$')
# revisions.log, byte for byte as Capistrano writes it.
DEPLOYED = re.compile(r'^Branch (?P<branch>\S+) \(at (?P<sha>\S+)\) deployed as release (?P<name>[0-9]{14}) by (?P<user>\S+)$')
ROLLED_BACK = re.compile(r'^(?P<user>\S+) rolled back to release (?P<name>[0-9]{14})$')
ARCHIVE = re.compile(r'^(?P<kind>failed|rolled-back)-release-(?P<name>[0-9]{14})\.tar\.gz$')

# Run on the host with its python3: prints the tree under argv[1] (and the file argv[2]) as JSON.
SNAPSHOT = r'''
import grp, hashlib, json, os, pwd, stat, sys, tarfile
root, extra = sys.argv[1], sys.argv[2]
def text(path):
    with open(path, 'rb') as handle:
        return handle.read().decode('utf-8', 'replace')
def name(table, key):
    try:
        return table(key)[0]
    except KeyError:
        return str(key)
entries = {}
for directory, dirs, files in os.walk(root):
    for entry in dirs + files:
        path = os.path.join(directory, entry)
        info = os.lstat(path)
        item = {'user': name(pwd.getpwuid, info.st_uid), 'group': name(grp.getgrgid, info.st_gid),
                'mode': stat.S_IMODE(info.st_mode), 'mtime': info.st_mtime}
        if stat.S_ISLNK(info.st_mode):
            item.update(type='link', target=os.readlink(path))
        elif stat.S_ISDIR(info.st_mode):
            item.update(type='dir')
        else:
            item.update(type='file', sha256=hashlib.sha256(open(path, 'rb').read()).hexdigest())
            if path.endswith('.tar.gz'):
                with tarfile.open(path) as tar:
                    item['members'] = dict((m.name, tar.extractfile(m).read().decode('utf-8', 'replace'))
                                           for m in tar.getmembers() if m.isfile() and m.size < 65536)
            elif info.st_size < 65536:
                item['text'] = text(path)
        entries[os.path.relpath(path, root)] = item
print(json.dumps({'entries': entries, 'extra': text(extra) if os.path.isfile(extra) else None}))
'''
_SNAPSHOTS = {}


@pytest.fixture(scope='session')
def scenario():
    """The scenario's variables: group_vars.all of its molecule.yml merged over .config/molecule/config.yml."""
    with open(os.environ['MOLECULE_FILE'], encoding='utf-8') as handle:
        config = yaml.safe_load(handle)
    return config['provisioner']['inventory']['group_vars']['all']


class Tree(object):
    """The deploy tree at ``deploy_to`` on one host, read once (see SNAPSHOT)."""

    def __init__(self, host, scenario):
        self.host = host
        self.deploy_to = scenario['deploy_to']
        self.hostname = host.backend.get_hostname()
        key = (self.hostname, self.deploy_to)
        if key not in _SNAPSHOTS:
            watch_log = posixpath.join(scenario.get('capstan_watch_dir', '/nonexistent'), 'events.jsonl')
            _SNAPSHOTS[key] = json.loads(host.check_output('python3 -c %s %s %s', SNAPSHOT, self.deploy_to, watch_log))
        self.entries = _SNAPSHOTS[key]['entries']
        self.watch_log = _SNAPSHOTS[key]['extra']

    def __repr__(self):
        return 'Tree(%s:%s)' % (self.hostname, self.deploy_to)

    def path(self, *parts):
        return posixpath.join(self.deploy_to, *parts)

    def entry(self, *parts):
        """What the listing says of a path under deploy_to (symlinks not followed), or None."""
        return self.entries.get(posixpath.join(*parts) if parts else '.')

    def resolve(self, *parts):
        """The relative path under deploy_to that a path leads to, following symlinks inside deploy_to."""
        done, todo = [], list(posixpath.join(*parts).split('/'))
        while todo:
            done.append(todo.pop(0))
            entry = self.entry(*done)
            if entry is not None and entry['type'] == 'link':
                target = posixpath.normpath(posixpath.join(self.path(*done[:-1]), entry['target']))
                assert target.startswith(self.deploy_to + '/'), (self, parts, target)
                todo = target[len(self.deploy_to) + 1:].split('/') + todo
                done = []
        return posixpath.join(*done)

    def read(self, *parts):
        entry = self.entry(self.resolve(*parts))
        assert entry is not None and 'text' in entry, (self, parts)
        return entry['text']

    def readlink(self, *parts):
        """The target of the symlink ``parts`` (symlinks among its parent directories followed)."""
        parent = self.resolve(*parts[:-1]) if len(parts) > 1 else ''
        entry = self.entry(posixpath.join(parent, parts[-1]) if parent else parts[-1])
        assert entry is not None and entry['type'] == 'link', (self, parts, entry)
        return entry['target']

    def listdir(self, *parts):
        prefix = posixpath.join(*parts) + '/' if parts else ''
        return sorted(path[len(prefix):] for path in self.entries
                      if path.startswith(prefix) and '/' not in path[len(prefix):])

    def current(self):
        """The release current points to; current must be a symlink to <deploy_to>/releases/<name>."""
        target = self.readlink('current')
        assert posixpath.dirname(target) == self.path('releases'), (self, target)
        name = posixpath.basename(target)
        assert NAME.match(name), (self, target)
        return name

    def releases(self):
        return self.listdir('releases')

    def version(self, name):
        """The example app's version a release holds (its public/VERSION)."""
        return self.read('releases', name, 'public', 'VERSION').strip()

    def versions(self):
        """{release name: version} of every release."""
        return dict((name, self.version(name)) for name in self.releases())

    def log(self):
        """revisions.log as a list of ('deploy', name, match) / ('rollback', name, match)."""
        entries = []
        for line in self.read('revisions.log').splitlines():
            deployed, rolled_back = DEPLOYED.match(line), ROLLED_BACK.match(line)
            assert deployed or rolled_back, 'not a line Capistrano writes: %r (%s)' % (line, self)
            match = deployed or rolled_back
            entries.append(('deploy' if deployed else 'rollback', match.group('name'), match))
        return entries

    def archives(self):
        """{archive file name: (kind, release name)} of the archives in deploy_to."""
        found = {}
        for entry in self.listdir():
            match = ARCHIVE.match(entry)
            if match:
                found[entry] = (match.group('kind'), match.group('name'))
        return found

    def archived(self, archive, member):
        """The text of file ``member`` inside archive ``archive`` (stripped of its last newline)."""
        members = self.entry(archive)['members']
        assert member in members, (self, archive, sorted(members))
        return members[member].rstrip('\n')

    def watch(self):
        """The events current_watch.py recorded on this host (shared/tasks/watch.yml started it)."""
        assert self.watch_log is not None, '%s: current_watch.py left no log' % self
        return [json.loads(line) for line in self.watch_log.splitlines()]


@pytest.fixture
def tree(host, scenario):
    return Tree(host, scenario)


@pytest.fixture(scope='session')
def fleet(pytestconfig, scenario):
    """The trees of every host of the scenario, in host name order."""
    hosts = testinfra.get_hosts([pytestconfig.option.hosts], connection=pytestconfig.option.connection,
                                ansible_inventory=pytestconfig.option.ansible_inventory)
    trees = sorted((Tree(host, scenario) for host in hosts), key=lambda t: t.hostname)
    assert trees, 'the scenario has no hosts'
    return trees


def check_tree(tree):
    """What is true of every deploy tree after any deploy or rollback, finished or failed."""
    current = tree.current()
    releases = tree.releases()
    assert current in releases, (tree, current, releases)
    assert all(NAME.match(name) for name in releases), (tree, releases)

    # The deploy lock is released; no temporary name of a switch or an archive is left.
    assert tree.entry('.capstan', 'lock') is None, '%s: the deploy lock is still held: %s' % (
        tree, tree.read('.capstan', 'lock'))
    leftovers = [entry for entry in tree.listdir() if entry.startswith('.') and entry != '.capstan']
    assert leftovers == [], (tree, leftovers)

    # Every release is complete, a real directory owned by the deploying user, and links the
    # shared paths with absolute links, as Capistrano does.
    for name in releases:
        release = tree.entry('releases', name)
        assert release['type'] == 'dir', (tree, name, release)
        assert (release['user'], release['group'], release['mode']) == ('root', 'root', 0o755), (tree, name, release)
        assert tree.read('releases', name, 'REVISION').strip(), (tree, name)
        assert tree.read('releases', name, 'REVISION_TIME').strip().isdigit(), (tree, name)
        for linked in ('log', 'config/app.yml'):
            assert tree.readlink('releases', name, linked) == tree.path('shared', linked), (tree, name, linked)

    # shared/ holds what the releases link to, as the operator left it.
    assert tree.entry('shared', 'log')['type'] == 'dir', tree
    config = tree.entry('shared', 'config', 'app.yml')
    assert (config['type'], config['user'], config['mode']) == ('file', 'root', 0o640), (tree, config)

    # revisions.log: only Capistrano's two kinds of line, by the deploying user; deploys in name
    # order, each naming the revision its release holds.
    log = tree.log()
    assert log, tree
    assert all(match.group('user') == 'root' for _kind, _name, match in log), (tree, log)
    deployed = [name for kind, name, _match in log if kind == 'deploy']
    assert deployed == sorted(set(deployed)), (tree, deployed)
    for kind, name, match in log:
        if kind == 'deploy' and name in releases:
            assert match.group('sha') == tree.read('releases', name, 'REVISION').strip(), (tree, name)
    assert tree.entry('revisions.log')['mode'] == 0o644, tree

    # Archives: only of releases that are gone, private to their owner, holding the release.
    for archive, (_kind, name) in tree.archives().items():
        assert name not in releases, (tree, archive)
        info = tree.entry(archive)
        assert (info['user'], info['mode']) == ('root', 0o600), (tree, archive, info['user'], oct(info['mode']))
        assert tree.archived(archive, '%s/REVISION' % name), (tree, archive)
    return current


def check_watch(tree, releases):
    """current_watch.py saw current switch to exactly ``releases``, in order, each complete, and
    never a moment without current: no unlink or rename of current away, no current made in
    place over one that was there, no event lost. (The very first current of a tree may be made
    in place: before it there was nothing to miss.)"""
    events = tree.watch()
    assert events[0]['event'] == 'watching' and events[0]['deploy_to'] == tree.deploy_to, (tree, events[0])
    changes = events[1:]
    first_made = bool(changes) and events[0]['target'] is None and changes[0]['event'] == 'created'
    wrong = [event for index, event in enumerate(changes)
             if event['event'] != 'switch' and not (index == 0 and first_made)]
    assert wrong == [], '%s: current was not always there: %s' % (tree, wrong)
    assert [event['target'] for event in events[1:]] == [tree.path('releases', name) for name in releases], tree
    assert all(event['complete'] for event in events[1:]), (tree, events)


def restarts(tree):
    """The releases the example app was restarted on (its log/restarts.log, in shared/log)."""
    return [line.split()[2] for line in tree.read('shared', 'log', 'restarts.log').splitlines()]
