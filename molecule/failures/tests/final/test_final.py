"""failures, at the end: v1 live; v2 failed before publishing on one host, v3 after publishing."""

from __future__ import annotations

from conftest import check_tree, check_watch, restarts


def failed(tree):
    """{version: release name} of the failed releases, read from their archives."""
    found = {}
    for archive, (kind, name) in tree.archives().items():
        assert kind == 'failed', (tree, archive)
        found[tree.archived(archive, '%s/public/VERSION' % name)] = name
    return found


def test_the_tree_is_sound(tree):
    check_tree(tree)


def test_every_host_is_back_on_v1_and_only_v1_is_left(fleet):
    names = [tree.current() for tree in fleet]
    assert len(set(names)) == 1, names
    assert [tree.read('current', 'public', 'VERSION') for tree in fleet] == ['v1\n'] * len(fleet)
    assert [tree.releases() for tree in fleet] == [names[:1]] * len(fleet)


def test_both_failed_releases_were_archived_under_the_same_names_everywhere(fleet):
    archives = [failed(tree) for tree in fleet]
    assert archives == [archives[0]] * len(fleet), archives
    assert sorted(archives[0]) == ['v2', 'v3'], archives
    assert fleet[0].current() < archives[0]['v2'] < archives[0]['v3'], archives


def test_revisions_log_has_the_deploy_and_the_switch_back(tree):
    current = tree.current()
    assert [(kind, name) for kind, name, _match in tree.log()] == [('deploy', current), ('rollback', current)]
    assert tree.read('revisions.log').splitlines()[-1] == 'root rolled back to release %s' % current


def test_the_app_was_restarted_on_v3_when_it_went_live_and_on_v1_when_it_came_back(tree):
    assert restarts(tree) == [tree.current(), failed(tree)['v3'], tree.current()]


def test_current_switched_to_v3_and_straight_back_and_was_never_missing(tree):
    check_watch(tree, [tree.current(), failed(tree)['v3'], tree.current()])
