"""default: v1 deployed (twice: the second run changed nothing), v2 deployed, rolled back to v1."""

from __future__ import annotations

from conftest import check_tree, restarts


def test_the_tree_is_sound(tree):
    check_tree(tree)


def test_current_is_v1_again_and_v2_was_archived_on_rollback(tree):
    current = tree.current()
    assert tree.version(current) == 'v1'
    assert tree.read('current', 'public', 'VERSION') == 'v1\n'
    assert tree.releases() == [current]
    (log_v1, log_v2, log_back) = tree.log()
    assert (log_v1[0], log_v1[1]) == ('deploy', current)
    assert log_v2[0] == 'deploy' and log_v2[1] > current
    assert (log_back[0], log_back[1]) == ('rollback', current)
    assert log_v1[2].group('branch') == 'main'
    assert tree.archives() == {'rolled-back-release-%s.tar.gz' % log_v2[1]: ('rolled-back', log_v2[1])}
    assert tree.archived('rolled-back-release-%s.tar.gz' % log_v2[1], '%s/public/VERSION' % log_v2[1]) == 'v2'


def test_the_app_was_restarted_on_each_switch_and_not_on_the_idempotent_run(tree):
    current = tree.current()
    (_log_v1, log_v2, _log_back) = tree.log()
    assert restarts(tree) == [current, log_v2[1], current]
