"""failures, after the first side effect: v1 live, then v2 failed before publishing on one host."""

from __future__ import annotations

from conftest import check_tree, check_watch, restarts


def test_the_tree_is_sound(tree):
    check_tree(tree)


def test_no_host_published_the_failed_release(fleet):
    names = [tree.current() for tree in fleet]
    assert len(set(names)) == 1, names
    assert [tree.version(name) for tree, name in zip(fleet, names)] == ['v1'] * len(fleet)
    assert [tree.releases() for tree in fleet] == [names[:1]] * len(fleet)


def test_the_failed_release_was_archived_under_one_name_everywhere(fleet):
    archives = [tree.archives() for tree in fleet]
    assert archives == [archives[0]] * len(fleet), archives
    ((archive, (kind, name)),) = archives[0].items()
    assert kind == 'failed' and name > fleet[0].current(), archives
    assert [tree.archived(archive, '%s/public/VERSION' % name) for tree in fleet] == ['v2'] * len(fleet)


def test_only_the_deploy_of_v1_was_logged_and_the_app_never_restarted_on_v2(tree):
    assert [(kind, name) for kind, name, _match in tree.log()] == [('deploy', tree.current())]
    assert restarts(tree) == [tree.current()]


def test_current_never_moved_after_v1(tree):
    check_watch(tree, [tree.current()])
