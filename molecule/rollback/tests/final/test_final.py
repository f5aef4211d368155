"""rollback, at the end: after the named rollback to v3, a rollback naming no release went to
the release before current by name (v2), though prepare dated v1's release as the newer."""

from __future__ import annotations

from conftest import check_tree, check_watch, restarts


def test_the_tree_is_sound(tree):
    check_tree(tree)


def test_every_host_went_back_to_the_release_before_by_name(fleet, scenario):
    names = scenario['capstan_releases']
    assert [tree.current() for tree in fleet] == [names['v2']] * len(fleet)
    assert [tree.read('current', 'public', 'VERSION') for tree in fleet] == ['v2\n'] * len(fleet)
    # By time, v1's release is the newer of the two: only the names say v2 comes before v3.
    for tree in fleet:
        assert tree.entry('releases', names['v1'])['mtime'] > tree.entry('releases', names['v2'])['mtime']


def test_each_release_rolled_back_from_was_archived_and_removed(tree, scenario):
    names = scenario['capstan_releases']
    assert tree.releases() == [names['v1'], names['v2']]
    assert tree.archives() == {'rolled-back-release-%s.tar.gz' % names[v]: ('rolled-back', names[v]) for v in ('v3', 'v4')}
    assert tree.archived('rolled-back-release-%s.tar.gz' % names['v3'], '%s/public/VERSION' % names['v3']) == 'v3'


def test_revisions_log_has_the_deploys_and_both_rollbacks(tree, scenario):
    names = scenario['capstan_releases']
    log = [(kind, name) for kind, name, _match in tree.log()]
    assert log == [('deploy', names[v]) for v in ('v1', 'v2', 'v3', 'v4')] + [
        ('rollback', names['v3']), ('rollback', names['v2'])]


def test_the_app_was_restarted_after_each_switch(tree, scenario):
    names = scenario['capstan_releases']
    assert restarts(tree) == [names[v] for v in ('v1', 'v2', 'v3', 'v4', 'v3', 'v2')]


def test_current_was_never_missing(tree, scenario):
    names = scenario['capstan_releases']
    check_watch(tree, [names[v] for v in ('v1', 'v2', 'v3', 'v4', 'v3', 'v2')])
