"""hook_files: every task file deploy_hooks names is found, or named in a sentence, before anything changes."""

from __future__ import annotations

import os

import pytest

from ansible.errors import AnsibleFilterError

from ansible_collections.capstan.release.plugins.filter.hook_files import resolve_hook_files


def test_absolute_and_relative_paths_resolve_in_search_order(tmp_path):
    first, second = tmp_path / 'playbooks', tmp_path / 'cwd'
    for directory in (first, second):
        (directory / 'hooks').mkdir(parents=True)
    (first / 'hooks' / 'migrate.yml').write_text('[]\n')
    (second / 'hooks' / 'migrate.yml').write_text('[]\n')
    (second / 'hooks' / 'notify.yml').write_text('[]\n')
    absolute = tmp_path / 'abs.yml'
    absolute.write_text('[]\n')

    result = resolve_hook_files(
        {'after_updated': 'hooks/migrate.yml', 'failed': ['hooks/notify.yml', str(absolute)]}, [str(first), str(second)])
    assert result == {'files': {'after_updated': [str(first / 'hooks' / 'migrate.yml')],
                                'failed': [str(second / 'hooks' / 'notify.yml'), str(absolute)]},
                      'problems': []}


def test_missing_files_and_bad_values_are_each_one_sentence(tmp_path):
    result = resolve_hook_files({'before_publishing': ['gone.yml', '/nowhere/x.yml'], 'failed': [3], 'after_updated': ''},
                                [str(tmp_path)])
    assert result['problems'] == [
        "deploy_hooks.after_updated must be a task file path or a list of them, got ''",
        'deploy_hooks.before_publishing names gone.yml, which is in none of %s, %s' % (tmp_path, os.getcwd()),
        'deploy_hooks.before_publishing names /nowhere/x.yml, which is not a file',
        'deploy_hooks.failed must be a task file path or a list of them, got 3',
    ]
    assert result['files'] == {'after_updated': [], 'before_publishing': [], 'failed': []}


def test_a_directory_is_not_a_task_file(tmp_path):
    (tmp_path / 'hooks').mkdir()
    assert resolve_hook_files({'failed': 'hooks'}, [str(tmp_path)])['problems'] == [
        'deploy_hooks.failed names hooks, which is in none of %s, %s' % (tmp_path, os.getcwd())]


def test_not_a_mapping_is_refused():
    with pytest.raises(AnsibleFilterError, match='deploy_hooks must be a mapping'):
        resolve_hook_files(['x.yml'])


def test_the_current_directory_comes_last(tmp_path, monkeypatch):
    (tmp_path / 'hooks').mkdir()
    (tmp_path / 'hooks' / 'x.yml').write_text('[]\n')
    monkeypatch.chdir(tmp_path)
    assert resolve_hook_files({'failed': 'hooks/x.yml'}, ['/nonexistent'])['files'] == {
        'failed': [str(tmp_path / 'hooks' / 'x.yml')]}
