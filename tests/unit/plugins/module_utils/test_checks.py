"""_checks: the input rules of the roles, each a normalised value or one sentence naming the variable."""

from __future__ import annotations

import pytest

from hypothesis import given, strategies as st

from ansible_collections.capstan.release.plugins.module_utils import _checks
from ansible_collections.capstan.release.plugins.module_utils._content import archive_source
from ansible_collections.capstan.release.plugins.module_utils._content import git_source
from ansible_collections.capstan.release.tests.unit.helpers import refusal


# boolean


@pytest.mark.parametrize('value, expected', [
    (True, True), (False, False), (1, True), (0, False), ('true', True), ('Yes', True), (' on ', True), ('1', True),
    ('y', True), ('false', False), ('NO', False), ('off', False), ('0', False), ('n', False), ('', False),
])
def test_boolean_reads_what_ansible_reads(value, expected):
    assert _checks.boolean(value, 'deploy_break_lock') is expected


@pytest.mark.parametrize('value', [2, -1, 'maybe', 'truthy', None, 1.0, [], {}])
def test_boolean_refuses_anything_else_naming_the_variable(value):
    assert refusal(_checks.boolean, value, 'deploy_break_lock') == 'deploy_break_lock must be true or false, got %r' % (value,)


# whole


@pytest.mark.parametrize('value, expected', [(0, 0), (5, 5), ('7', 7), (' 12 ', 12), ('0', 0)])
def test_whole_accepts_numbers_and_digit_strings(value, expected):
    assert _checks.whole(value, 'deploy_keep_archives') == expected


@pytest.mark.parametrize('value', [True, False, -1, '-1', '1.5', 1.5, '', 'five', None, '1e3', [1]])
def test_whole_refuses_what_is_no_whole_number(value):
    assert refusal(_checks.whole, value, 'deploy_lock_ttl').startswith('deploy_lock_ttl must be a whole number of at least 0, got ')


def test_whole_refuses_below_the_least_naming_the_least_and_the_unit():
    assert refusal(_checks.whole, 0, 'deploy_confirm_timeout', 1, ' of seconds') == (
        'deploy_confirm_timeout must be a whole number of seconds of at least 1, got 0')


@given(st.integers(min_value=0, max_value=10 ** 12))
def test_whole_reads_a_number_and_its_digits_alike(number):
    assert _checks.whole(number, 'x') == _checks.whole(str(number), 'x') == number


# text


def test_text_none_is_empty_when_allowed():
    assert _checks.text(None, 'deploy_branch') == ''


@pytest.mark.parametrize('value', ['a\nb', 3, ['x'], {'a': 1}])
def test_text_refuses_what_is_no_single_line(value):
    assert refusal(_checks.text, value, 'deploy_branch').startswith('deploy_branch must be a single line of text, got ')


@pytest.mark.parametrize('value', [None, '', '   '])
def test_text_refuses_empty_when_not_allowed(value):
    assert refusal(_checks.text, value, 'x', allow_empty=False).startswith('x must be a non-empty single line of text')


# release_name


@pytest.mark.parametrize('value', [None, ''])
def test_release_name_empty_means_none(value):
    assert _checks.release_name(value, 'deploy_release_name') == ''


def test_release_name_from_a_yaml_integer_is_its_14_digits():
    assert _checks.release_name(20261121221404, 'deploy_release_name') == '20261121221404'
    assert _checks.release_name(10101000000, 'rollback_release') == '00010101000000'


@pytest.mark.parametrize('value', ['20261301000000', '2026112122140', '../20261121221404', True, -1, 2.5, ['x']])
def test_release_name_refuses_what_is_no_utc_time_naming_the_variable(value):
    assert refusal(_checks.release_name, value, 'rollback_release').startswith(
        'rollback_release must be a release name: 14 digits of a valid UTC time')


# health


def test_health_defaults_pass():
    assert _checks.health('', 200, 0, 2, '') == ('', 200, 0, 2, '')


def test_health_reads_digit_strings():
    assert _checks.health('https://app.example.com/up', '204', '3', '1', 'true') == (
        'https://app.example.com/up', 204, 3, 1, 'true')


@pytest.mark.parametrize('url', ['ftp://x/up', 'localhost/up', 'http://', 'https:///up', 'http:// space'])
def test_health_url_must_be_http_naming_deploy_health_url(url):
    assert refusal(_checks.health, url, 200, 0, 2, '').startswith('deploy_health_url must be an http:// or https:// URL')


@pytest.mark.parametrize('status', [99, 600, '700', 'ok'])
def test_health_status_must_be_an_http_status(status):
    assert refusal(_checks.health, '', status, 0, 2, '').startswith('deploy_health_status must be ')


@pytest.mark.parametrize('args, variable', [
    (('', 200, -1, 2, ''), 'deploy_health_retries'), (('', 200, 0, 'x', ''), 'deploy_health_delay'),
    (('', 200, 0, 2, 'a\nb'), 'deploy_health_command'),
])
def test_health_refusals_name_their_variable(args, variable):
    assert refusal(_checks.health, *args).startswith(variable + ' must be')


# hooks


def test_hooks_none_is_no_hooks():
    assert _checks.hooks(None) == {}


def test_hooks_every_point_becomes_a_list():
    assert _checks.hooks({'after_updated': 'hooks/migrate.yml', 'failed': ['a.yml', 'b.yml'], 'before_reverted': []}) == {
        'after_updated': ['hooks/migrate.yml'], 'before_reverted': [], 'failed': ['a.yml', 'b.yml']}


def test_hooks_every_stage_has_a_before_and_an_after_point():
    for stage in _checks.STAGES:
        assert _checks.hooks({'before_' + stage: 'x.yml', 'after_' + stage: 'y.yml'})


def test_hooks_refuses_what_is_no_mapping():
    assert refusal(_checks.hooks, ['migrate.yml']) == (
        "deploy_hooks must be a mapping of hook points to task files, got ['migrate.yml']")


def test_hooks_refuses_unknown_points_listing_them_and_what_is_allowed():
    message = refusal(_checks.hooks, {'after_update': 'x.yml', 'on_failure': 'y.yml', 'failed': 'z.yml'})
    assert message.startswith('deploy_hooks has unknown keys after_update, on_failure; allowed are before_<stage> and '
                              'after_<stage> for starting, started, ')
    assert message.endswith(', and failed')


@pytest.mark.parametrize('value', ['', '  ', 3, None, ['ok.yml', ''], [['nested.yml']]])
def test_hooks_refuses_a_point_that_names_no_path(value):
    assert refusal(_checks.hooks, {'after_updated': value}).startswith(
        'deploy_hooks.after_updated must be a task file path or a list of them')


# hook_tasks


def test_hook_tasks_empty_file_is_no_tasks():
    assert _checks.hook_tasks(None, 'failed', '/h.yml') == []


def test_hook_tasks_a_list_of_tasks_passes():
    tasks = [{'name': 'x', 'ansible.builtin.debug': {'msg': 'hi'}}]
    assert _checks.hook_tasks(tasks, 'after_updated', '/h.yml') is tasks


@pytest.mark.parametrize('data, kind', [
    ({'name': 'x', 'debug': {}}, 'a mapping'), ('just text', 'a str'), (3, 'a number'),
    (['debug: msg=hi'], 'a list whose entries are not all tasks (mappings)'),
    ([{}], 'a list whose entries are not all tasks (mappings)'),
])
def test_hook_tasks_refuses_what_is_no_task_list_naming_point_and_file(data, kind):
    assert refusal(_checks.hook_tasks, data, 'after_updated', '/srv/hooks/m.yml') == (
        'deploy_hooks.after_updated names /srv/hooks/m.yml, which is %s, not a list of tasks' % kind)


# strategy


def test_strategy_copy_needs_a_source():
    assert _checks.strategy('copy', './build', '', '', '') == 'copy'
    assert refusal(_checks.strategy, 'copy', '', '', '', '').startswith('deploy_src must be a directory or a tarball')


def test_strategy_unknown_is_refused():
    assert refusal(_checks.strategy, 'rsync', '', '', '', '') == "deploy_strategy must be copy, git or archive, got 'rsync'"


@pytest.mark.parametrize('repo_url', ['', '  ', None])
def test_strategy_git_needs_a_repository_url(repo_url):
    assert refusal(_checks.strategy, 'git', '', repo_url, '', '').startswith('deploy_repo_url is required for deploy_strategy=git')


@pytest.mark.parametrize('repo_url', ['--upload-pack=touch /tmp/x', 'https://x/a.git\nb', 3])
def test_strategy_git_refuses_what_is_no_repository_url(repo_url):
    # The rule the hosts' git_source applies, with the same sentence.
    assert refusal(_checks.strategy, 'git', '', repo_url, '', '') == refusal(git_source.check_repo_url, repo_url)
    assert refusal(_checks.strategy, 'git', '', repo_url, '', '').startswith('deploy_repo_url must be the URL of a git repository')


@pytest.mark.parametrize('version', ['main', 'v1.2.3', 'release/2026', '3f786850e387550fdab836ed7e6dc881de23001b', ''])
def test_strategy_git_accepts_branches_tags_and_shas(version):
    assert _checks.strategy('git', '', 'https://git.example.com/app.git', version, '') == 'git'


@pytest.mark.parametrize('version', ['-x', '--output=/etc/passwd', 'main..evil', 'a b', 'a\tb', 'main\x01', 'v1\x1b[0m'])
def test_strategy_git_refuses_a_version_that_is_an_option_a_range_or_spaced(version):
    assert refusal(_checks.strategy, 'git', '', 'https://git.example.com/app.git', version, '').startswith(
        'deploy_version must be a branch, tag or commit sha')


@pytest.mark.parametrize('src', ['https://files.example.com/app.tgz', 'HTTP://x/a.tgz', 'file:///srv/app.tgz', '/srv/app.tgz'])
def test_strategy_archive_accepts_urls_and_host_paths(src):
    assert _checks.strategy('archive', src, '', '', 'sha256:' + 'ab' * 32) == 'archive'


@pytest.mark.parametrize('src', ['app.tgz', 'ftp://x/app.tgz', ''])
def test_strategy_archive_refuses_other_sources(src):
    assert refusal(_checks.strategy, 'archive', src, '', '', '').startswith(
        'deploy_src must be an http(s):// or file:// URL or an absolute path on the hosts')


@pytest.mark.parametrize('src', ['app.tgz', 'ftp://x/app.tgz', 'file://relative/app.tgz'])
def test_strategy_archive_source_is_the_hosts_rule(src):
    assert refusal(_checks.strategy, 'archive', src, '', '', '') == refusal(archive_source.archive_location, src)


@pytest.mark.parametrize('checksum', ['abcdef', 'sha256:xyz', 'crc32:abcd'])
def test_strategy_archive_checksum_is_the_hosts_rule(checksum):
    assert refusal(_checks.strategy, 'archive', '/srv/app.tgz', '', '', checksum) == refusal(archive_source.parse_checksum, checksum)


@pytest.mark.parametrize('version', ['-x', 'main..evil', 'a b', 'main\x01'])
def test_strategy_git_version_is_the_hosts_rule(version):
    assert refusal(_checks.strategy, 'git', '', 'https://git.example.com/app.git', version, '') == \
        refusal(git_source.check_version, version)


@pytest.mark.parametrize('checksum', ['abcdef', 'sha256:', 'sha256:xyz', 'crc32:abcd', 'sha256:ab cd'])
def test_strategy_archive_checksum_is_algorithm_colon_hex(checksum):
    assert refusal(_checks.strategy, 'archive', '/srv/app.tgz', '', '', checksum).startswith(
        'deploy_src_checksum must be <algorithm>:<hex digest>')


# common, deploy, rollback


def test_deploy_defaults_are_normalised():
    checked = _checks.deploy({'deploy_to': '/srv//app/./', 'deploy_src': './build'})
    assert checked['deploy_to'] == '/srv/app'
    assert (checked['deploy_keep_releases'], checked['deploy_keep_archives'], checked['deploy_lock_ttl']) == (5, 5, 3600)
    assert (checked['deploy_break_lock'], checked['deploy_auto_rollback'], checked['deploy_confirm']) == (False, True, False)
    assert (checked['deploy_linked_dirs'], checked['deploy_linked_files'], checked['deploy_hooks']) == ([], [], {})
    assert checked['deploy_strategy'] == 'copy' and checked['deploy_release_name'] == ''
    assert (checked['deploy_health_status'], checked['deploy_free_space_margin_mb']) == (200, 64)


def test_deploy_reads_extra_vars_strings():
    checked = _checks.deploy({'deploy_to': '/srv/app', 'deploy_src': 'b', 'deploy_keep_releases': '3',
                              'deploy_break_lock': 'true', 'deploy_release_name': '20261121221404'})
    assert (checked['deploy_keep_releases'], checked['deploy_break_lock'], checked['deploy_release_name']) == (
        3, True, '20261121221404')


@pytest.mark.parametrize('deploy_to', ['/', '/srv/app/../..', '//', '/./', 'srv/app', '', None])
def test_deploy_to_is_judged_after_normalising(deploy_to):
    assert refusal(_checks.deploy, {'deploy_to': deploy_to, 'deploy_src': 'b'}).startswith('deploy_to must be ')


@pytest.mark.parametrize('inputs, variable', [
    ({'deploy_keep_releases': 0}, 'deploy_keep_releases'),
    ({'deploy_keep_archives': -1}, 'deploy_keep_archives'),
    ({'deploy_break_lock': 'perhaps'}, 'deploy_break_lock'),
    ({'deploy_lock_ttl': 'soon'}, 'deploy_lock_ttl'),
    ({'deploy_hooks': {'after_deploy': 'x.yml'}}, 'deploy_hooks'),
    ({'deploy_health_url': 'up'}, 'deploy_health_url'),
    ({'deploy_strategy': 'svn'}, 'deploy_strategy'),
    ({'deploy_release_name': 'latest'}, 'deploy_release_name'),
    ({'deploy_auto_rollback': 'sometimes'}, 'deploy_auto_rollback'),
    ({'deploy_confirm_timeout': 0}, 'deploy_confirm_timeout'),
    ({'deploy_free_space_margin_mb': -5}, 'deploy_free_space_margin_mb'),
    ({'deploy_migrate_current': 'x'}, 'deploy_migrate_current'),
    ({'deploy_branch': 'a\nb'}, 'deploy_branch'),
    ({'deploy_linked_dirs': 'log'}, 'deploy_linked_dirs'),
    ({'deploy_linked_files': ['/etc/passwd']}, 'deploy_linked_files'),
])
def test_deploy_refusals_name_the_role_variable(inputs, variable):
    assert refusal(_checks.deploy, dict({'deploy_to': '/srv/app', 'deploy_src': 'b'}, **inputs)).startswith(variable)


def test_deploy_refuses_overlapping_linked_paths_naming_both_variables():
    message = refusal(_checks.deploy, {'deploy_to': '/srv/app', 'deploy_src': 'b', 'deploy_linked_dirs': ['config'],
                                       'deploy_linked_files': ['config/database.yml']})
    assert message.startswith("deploy_linked_dirs and deploy_linked_files overlap: 'config' and 'config/database.yml'")


def test_rollback_reads_the_common_inputs_and_the_target():
    checked = _checks.rollback({'deploy_to': '/srv/app/', 'rollback_release': 20261121221404, 'deploy_keep_releases': '2'})
    assert (checked['deploy_to'], checked['rollback_release'], checked['deploy_keep_releases']) == (
        '/srv/app', '20261121221404', 2)
    assert 'deploy_strategy' not in checked


def test_rollback_refuses_a_target_that_is_no_release_name():
    assert refusal(_checks.rollback, {'deploy_to': '/srv/app', 'rollback_release': 'yesterday'}).startswith('rollback_release')
