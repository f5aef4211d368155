"""fleet: v1-v3 deployed in prepare and dated oldest-looks-newest, then v4 deployed keeping 2
releases (twice: the second run changed nothing), on every test-bed host over SSH."""

from __future__ import annotations

import hashlib
import os

from conftest import check_tree, check_watch


def deployed(tree):
    return [name for kind, name, _match in tree.log() if kind == 'deploy']


def test_the_tree_is_sound(tree):
    check_tree(tree)


def test_every_host_runs_v4_from_one_release_name(fleet):
    names = [tree.current() for tree in fleet]
    assert len(set(names)) == 1, names
    assert [tree.version(names[0]) for tree in fleet] == ['v4'] * len(fleet)
    assert [deployed(tree) for tree in fleet] == [deployed(fleet[0])] * len(fleet)


def test_four_deploys_were_recorded_and_the_idempotent_run_added_none(tree):
    names = deployed(tree)
    assert len(names) == 4, names
    assert names[-1] == tree.current()
    assert [kind for kind, _name, _match in tree.log()] == ['deploy'] * 4


def test_the_two_newest_releases_by_name_are_kept_though_the_oldest_look_newest(tree):
    names = deployed(tree)
    assert tree.releases() == names[-2:]
    assert tree.versions() == {names[2]: 'v3', names[3]: 'v4'}
    # prepare dated v3's release before v2's and v2's before v1's: by time, v1 and v2 were the newest.
    assert tree.entry('releases', names[2])['mtime'] == 1000000000 + 86400
    assert tree.archives() == {}


def test_the_live_release_holds_the_app_as_deployed(tree):
    source = os.path.join(os.environ['MOLECULE_EPHEMERAL_DIRECTORY'], 'src', 'v4')
    expected = {}
    for directory, _dirs, files in os.walk(source):
        for name in files:
            path = os.path.join(directory, name)
            with open(path, 'rb') as handle:
                expected[os.path.relpath(path, source)] = (hashlib.sha256(handle.read()).hexdigest(),
                                                           os.stat(path).st_mode & 0o7777)
    release = 'releases/%s/' % tree.current()
    found = dict((path[len(release):], (entry['sha256'], entry['mode'])) for path, entry in tree.entries.items()
                 if path.startswith(release) and entry['type'] == 'file')
    assert found.pop('REVISION') and found.pop('REVISION_TIME')
    assert found == expected


def test_the_shared_paths_are_linked_into_the_live_release(tree):
    assert tree.readlink('current', 'log') == tree.path('shared', 'log')
    assert tree.readlink('current', 'config', 'app.yml') == tree.path('shared', 'config', 'app.yml')
    assert tree.read('current', 'config', 'app.yml') == 'greeting: hello from %s\n' % tree.hostname
    shown = tree.host.check_output('%s show', tree.path('current', 'app.sh'))
    assert shown.splitlines() == ['release: %s' % tree.current(),
                                  'revision: %s' % tree.read('current', 'REVISION').strip(),
                                  'greeting: hello from %s' % tree.hostname]


def test_the_deploy_published_handler_restarted_the_app_once_per_release(tree):
    expected = ['restarted release %s (revision %s)' % (name, match.group('sha'))
                for kind, name, match in tree.log() if kind == 'deploy']
    assert tree.read('shared', 'log', 'restarts.log').splitlines() == expected


def test_current_was_never_missing_and_only_ever_switched_to_complete_releases(tree):
    check_watch(tree, deployed(tree))
