"""rollback, after converge: v1-v4 deployed under fixed names, then rolled back to v3 by name
(twice: the second run changed nothing)."""

from __future__ import annotations

from conftest import check_tree, check_watch, restarts


def test_the_tree_is_sound(tree):
    check_tree(tree)


def test_every_host_runs_the_named_release(fleet, scenario):
    assert [tree.current() for tree in fleet] == [scenario['capstan_releases']['v3']] * len(fleet)
    assert [tree.read('current', 'public', 'VERSION') for tree in fleet] == ['v3\n'] * len(fleet)


def test_the_release_rolled_back_from_was_archived_and_removed(tree, scenario):
    names = scenario['capstan_releases']
    assert tree.releases() == [names['v1'], names['v2'], names['v3']]
    archive = 'rolled-back-release-%s.tar.gz' % names['v4']
    assert tree.archives() == {archive: ('rolled-back', names['v4'])}
    assert tree.archived(archive, '%s/public/VERSION' % names['v4']) == 'v4'


def test_revisions_log_has_the_deploys_and_one_rollback(tree, scenario):
    names = scenario['capstan_releases']
    log = [(kind, name) for kind, name, _match in tree.log()]
    assert log == [('deploy', names[v]) for v in ('v1', 'v2', 'v3', 'v4')] + [('rollback', names['v3'])]
    assert tree.read('revisions.log').splitlines()[-1] == 'root rolled back to release %s' % names['v3']


def test_the_app_was_restarted_on_the_named_release_once(tree, scenario):
    names = scenario['capstan_releases']
    assert restarts(tree) == [names[v] for v in ('v1', 'v2', 'v3', 'v4', 'v3')]


def test_current_was_never_missing(tree, scenario):
    names = scenario['capstan_releases']
    check_watch(tree, [names[v] for v in ('v1', 'v2', 'v3', 'v4', 'v3')])
