"""_hooks: every hook file is found, parsed and shape-checked on the controller before anything changes; hook_list."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from ansible.parsing.dataloader import DataLoader

from ansible_collections.capstan.release.plugins.filter.hook_files import hook_list
from ansible_collections.capstan.release.plugins.plugin_utils import _hooks
from ansible_collections.capstan.release.tests.unit.helpers import refusal, write

COLLECTIONS = os.path.abspath(os.path.join(os.path.dirname(__file__), '..', '..', '..', '..', '.collections'))

# The tasks are parsed as ansible-playbook parses them: with its collection loader, in a process of their own
# (setting the loader up in the test process would change how every later test imports the collection).
CONTROLLER = r'''
import json, sys
from ansible.plugins.loader import init_plugin_loader
init_plugin_loader([sys.argv[1]])
from ansible.parsing.dataloader import DataLoader
from ansible.playbook.play import Play
from ansible_collections.capstan.release.plugins.plugin_utils import _hooks
from ansible_collections.capstan.release.plugins.module_utils._errors import CapstanError
loader = DataLoader()
play = Play.load({'hosts': 'localhost', 'gather_facts': False}, loader=loader)
try:
    print(json.dumps({'files': _hooks.load(json.loads(sys.argv[2]), [sys.argv[3]], loader, play)}))
except CapstanError as error:
    print(json.dumps({'error': str(error)}))
'''

DEBUG = '- name: Say hi\n  ansible.builtin.debug:\n    msg: hi\n'


def hook(folder, name, text):
    path = os.path.join(str(folder), name)
    write(path, text)
    return path


def load(hooks, folder):
    return _hooks.load(hooks, [str(folder)], DataLoader())


def load_with_play(hooks, folder):
    done = subprocess.run([sys.executable, '-c', CONTROLLER, COLLECTIONS, json.dumps(hooks), str(folder)],
                          stdout=subprocess.PIPE, stderr=subprocess.PIPE, universal_newlines=True,
                          env=dict(os.environ, PYTHONPATH=COLLECTIONS), check=False)
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout.strip().splitlines()[-1])


# load: finding and shape


def test_load_returns_every_file_by_point(tmp_path):
    migrate = hook(tmp_path, 'hooks/migrate.yml', DEBUG)
    notify = hook(tmp_path, 'hooks/notify.yml', DEBUG)
    assert load({'after_updated': 'hooks/migrate.yml', 'failed': ['hooks/notify.yml', migrate]}, tmp_path) == {
        'after_updated': [migrate], 'failed': [notify, migrate]}


def test_an_empty_hook_file_is_no_tasks(tmp_path):
    empty = hook(tmp_path, 'empty.yml', '')
    assert load({'after_published': 'empty.yml'}, tmp_path) == {'after_published': [empty]}


def test_unknown_hook_points_are_refused_before_any_file_is_read(tmp_path):
    assert refusal(load, {'after_deploy': 'missing.yml'}, tmp_path).startswith('deploy_hooks has unknown keys after_deploy; ')


def test_a_missing_file_is_refused_naming_the_point_and_where_it_was_looked_for(tmp_path):
    assert refusal(load, {'before_publishing': 'hooks/gone.yml'}, tmp_path) == (
        'deploy_hooks.before_publishing names hooks/gone.yml, which is in none of %s, %s' % (tmp_path, os.getcwd()))


def test_a_file_that_is_no_yaml_is_refused_in_one_line(tmp_path):
    path = hook(tmp_path, 'broken.yml', '- name: [unclosed\n  debug: {}\n')
    assert refusal(load, {'after_updated': 'broken.yml'}, tmp_path).startswith(
        'deploy_hooks.after_updated names %s, which is not valid YAML: ' % path)


@pytest.mark.parametrize('text, kind', [
    ('name: migrate\nansible.builtin.command: rake db:migrate\n', 'a mapping'),
    ('just words\n', 'a str'),
    ('- rake db:migrate\n', 'a list whose entries are not all tasks (mappings)'),
])
def test_a_file_that_is_no_task_list_is_refused(tmp_path, text, kind):
    path = hook(tmp_path, 'hook.yml', text)
    assert refusal(load, {'after_updated': 'hook.yml'}, tmp_path) == (
        'deploy_hooks.after_updated names %s, which is %s, not a list of tasks' % (path, kind))


def test_the_first_refusal_of_several_points_is_the_one_reported(tmp_path):
    hook(tmp_path, 'ok.yml', DEBUG)
    bad = hook(tmp_path, 'bad.yml', '{}\n')
    assert refusal(load, {'failed': 'bad.yml', 'after_updated': 'ok.yml'}, tmp_path).startswith(
        'deploy_hooks.failed names %s, which is a mapping' % bad)


# load with a play: the tasks parsed as Ansible will include them


def test_with_a_play_good_tasks_pass(tmp_path):
    path = hook(tmp_path, 'ok.yml', DEBUG + '- ansible.builtin.command: "true"\n  when: deploy_mode == "deploy"\n'
                                            '- capstan.release.release_info:\n    deploy_to: /srv/app\n')
    assert load_with_play({'after_updated': 'ok.yml'}, tmp_path) == {'files': {'after_updated': [path]}}


def test_with_a_play_an_unknown_module_is_refused(tmp_path):
    path = hook(tmp_path, 'typo.yml', '- name: Migrate\n  ansible.builtin.comand: rake db:migrate\n')
    result = load_with_play({'after_updated': 'typo.yml'}, tmp_path)
    assert result['error'].startswith('deploy_hooks.after_updated names %s, which Ansible cannot load as tasks: '
                                      "couldn't resolve module/action 'ansible.builtin.comand'" % path)


def test_with_a_play_a_bad_keyword_is_refused(tmp_path):
    hook(tmp_path, 'kw.yml', DEBUG + '  notfiy: restart\n')
    assert 'which Ansible cannot load as tasks: ' in load_with_play({'failed': 'kw.yml'}, tmp_path)['error']


def test_with_a_play_a_malformed_block_is_refused(tmp_path):
    hook(tmp_path, 'block.yml', '- block:\n    - ansible.builtin.debug: {msg: x}\n  rescue: 3\n')
    result = load_with_play({'failed': 'block.yml'}, tmp_path)
    assert result['error'].startswith('deploy_hooks.failed names ') and '\n' not in result['error']


# hook_list (the filter the roles include hooks with)


def test_hook_list_is_the_files_of_the_points_in_the_order_given(tmp_path):
    one, two, three = (hook(tmp_path, name, DEBUG) for name in ('one.yml', 'two.yml', 'three.yml'))
    hooks = {'after_updated': ['two.yml', 'one.yml'], 'before_updated': 'three.yml', 'failed': 'one.yml'}
    assert hook_list(['before_updated', 'after_updated'], hooks, [str(tmp_path)]) == [
        {'point': 'before_updated', 'file': three}, {'point': 'after_updated', 'file': two},
        {'point': 'after_updated', 'file': one}]


def test_hook_list_of_points_without_hooks_is_empty(tmp_path):
    assert hook_list(['before_publishing'], {'failed': 'x.yml'}, [str(tmp_path)]) == []
    assert hook_list(['failed'], None) == [] and hook_list(None, {'failed': 'x.yml'}) == []


def test_hook_list_paths_are_absolute(tmp_path, monkeypatch):
    hook(tmp_path, 'hooks/x.yml', DEBUG)
    monkeypatch.chdir(str(tmp_path))
    [entry] = hook_list(['failed'], {'failed': 'hooks/x.yml'})
    assert os.path.isabs(entry['file']) and entry['file'] == os.path.join(str(tmp_path), 'hooks', 'x.yml')
