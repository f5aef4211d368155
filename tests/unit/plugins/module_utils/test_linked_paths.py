"""What shared/ holds is never lost, and deploy_to is judged after normalising: _releases and _steps rules."""

from __future__ import annotations

import datetime
import os

import pytest

from hypothesis import given, strategies as st

from ansible_collections.capstan.release.plugins.module_utils import _fsops
from ansible_collections.capstan.release.plugins.module_utils import _releases
from ansible_collections.capstan.release.plugins.module_utils import _steps
from ansible_collections.capstan.release.plugins.module_utils._errors import CapstanError
from ansible_collections.capstan.release.tests.unit.helpers import listing, read, release_path, write

R1 = '20261121221401'

# Short paths over few names, so that overlaps (same, inside) come up often.
paths = st.lists(st.sampled_from(['a', 'b', 'ab', 'a.b']), min_size=1, max_size=3).map('/'.join)


def refusal(function, *args, **kwargs):
    with pytest.raises(CapstanError) as error:
        function(*args, **kwargs)
    assert '\n' not in str(error.value)
    return str(error.value)


# check_linked


def test_check_linked_returns_both_lists():
    assert _releases.check_linked(['log', 'tmp/pids', 'public/uploads'], ['config/database.yml', '.env']) == (
        ['log', 'tmp/pids', 'public/uploads'], ['config/database.yml', '.env'])


def test_check_linked_none_is_empty():
    assert _releases.check_linked(None, None) == ([], [])


@pytest.mark.parametrize('dirs, files, message', [
    (['log', 'log'], [], "linked_dirs overlap: 'log' and 'log'"),
    (['public', 'public/uploads'], [], "linked_dirs overlap: 'public' and 'public/uploads'"),
    (['public/uploads', 'public'], [], "linked_dirs overlap: 'public/uploads' and 'public'"),
    ([], ['.env', '.env'], "linked_files overlap: '.env' and '.env'"),
    (['config'], ['config/database.yml'], "linked_dirs and linked_files overlap: 'config' and 'config/database.yml'"),
    (['config/app.yml'], ['config/app.yml'], "linked_dirs and linked_files overlap: 'config/app.yml' and 'config/app.yml'"),
])
def test_check_linked_refuses_paths_that_overlap(dirs, files, message):
    assert refusal(_releases.check_linked, dirs, files).startswith(message + '; ')


@pytest.mark.parametrize('dirs', [['public', 'public_html'], ['log', 'logs/old'], ['a/b', 'a/bc'], ['config/a', 'config/b']])
def test_check_linked_a_common_prefix_is_no_overlap(dirs):
    assert _releases.check_linked(dirs, []) == (dirs, [])


def test_check_linked_names_the_role_variables_when_asked():
    message = refusal(_releases.check_linked, ['config'], ['config/x'], names=('deploy_linked_dirs', 'deploy_linked_files'))
    assert message.startswith('deploy_linked_dirs and deploy_linked_files overlap')


@pytest.mark.parametrize('dirs, files, start', [
    ('log', [], 'linked_dirs must be a list of paths relative to the release'),
    ([], {'a': 1}, 'linked_files must be a list of paths relative to the release'),
    (['../shared'], [], 'linked_dirs entries must be plain relative paths'),
    ([], ['/etc/passwd'], 'linked_files entries must be relative to the release'),
])
def test_check_linked_refuses_what_is_no_list_of_relative_paths(dirs, files, start):
    assert refusal(_releases.check_linked, dirs, files).startswith(start)


def overlapping(entries):
    parts = [tuple(entry.split('/')) for entry in entries]
    return any(a[:len(b)] == b or b[:len(a)] == a for index, a in enumerate(parts) for b in parts[index + 1:])


@given(st.lists(paths, max_size=4), st.lists(paths, max_size=4))
def test_check_linked_refuses_exactly_the_overlapping_pairs(dirs, files):
    if overlapping(dirs + files):
        with pytest.raises(CapstanError):
            _releases.check_linked(dirs, files)
    else:
        assert _releases.check_linked(dirs, files) == (dirs, files)


# deploy_to and Tree


@pytest.mark.parametrize('deploy_to, normal', [
    ('/srv/app', '/srv/app'), ('/srv/app/', '/srv/app'), ('//srv//app', '/srv/app'), ('/srv/./app/.', '/srv/app'),
    ('/srv/x/../app', '/srv/app'), ('/../srv/app', '/srv/app'),
])
def test_normalise_deploy_to(deploy_to, normal):
    assert _releases.normalise_deploy_to(deploy_to) == normal


@pytest.mark.parametrize('deploy_to', ['/', '//', '///', '/.', '/srv/..', '/srv/x/../..', '/srv/app/../../..'])
def test_normalise_deploy_to_refuses_what_is_root_once_normalised(deploy_to):
    assert refusal(_releases.normalise_deploy_to, deploy_to, 'deploy_to') == (
        'deploy_to must be a directory below /, got %r, which is / once normalised' % deploy_to)


@pytest.mark.parametrize('deploy_to', ['srv/app', '', None, 3, '/srv/a\0pp'])
def test_normalise_deploy_to_refuses_what_is_not_absolute(deploy_to):
    assert refusal(_releases.normalise_deploy_to, deploy_to).startswith('deploy_to must be an absolute path, got ')


def test_tree_uses_the_normalised_deploy_to():
    tree = _releases.Tree('/srv//app/./current/..')
    assert (tree.deploy_to, tree.releases, tree.shared) == ('/srv/app', '/srv/app/releases', '/srv/app/shared')


def test_tree_refuses_a_deploy_to_that_resolves_to_root_through_a_symlink(tmp_path):
    os.symlink('/', str(tmp_path / 'root'))
    for deploy_to in (str(tmp_path / 'root'), str(tmp_path / 'root') + '/', str(tmp_path / 'root' / 'x' / '..')):
        assert refusal(_releases.Tree, deploy_to).endswith('which resolves to /')


def test_tree_on_the_controller_names_paths_without_looking_but_still_refuses_root(tmp_path):
    os.symlink('/', str(tmp_path / 'root'))
    assert _releases.Tree(str(tmp_path / 'root'), resolve=False).releases == str(tmp_path / 'root' / 'releases')
    assert refusal(_releases.Tree, '/srv/..', resolve=False).endswith('which is / once normalised')


def test_tree_accepts_a_symlinked_deploy_to_below_root(tmp_path):
    os.makedirs(str(tmp_path / 'real'))
    os.symlink(str(tmp_path / 'real'), str(tmp_path / 'app'))
    assert _releases.Tree(str(tmp_path / 'app')).deploy_to == str(tmp_path / 'app')


# release names


@given(st.datetimes(min_value=datetime.datetime(1000, 1, 1), max_value=datetime.datetime(9999, 12, 31, 23, 59, 59)))
def test_every_utc_second_is_a_release_name(moment):
    assert _releases.is_release_name(moment.strftime('%Y%m%d%H%M%S'))


@given(st.text(alphabet='0123456789', min_size=14, max_size=14))
def test_a_14_digit_name_is_a_release_exactly_when_it_is_a_valid_time(name):
    try:
        datetime.datetime.strptime(name, '%Y%m%d%H%M%S')
        valid = True
    except ValueError:
        valid = False
    assert _releases.is_release_name(name) is valid


@given(st.lists(st.datetimes(min_value=datetime.datetime(2000, 1, 1), max_value=datetime.datetime(9999, 12, 31, 23, 59, 58)),
                max_size=5),
       st.datetimes(min_value=datetime.datetime(2000, 1, 1), max_value=datetime.datetime(2100, 1, 1)))
def test_next_release_name_is_a_release_name_newer_than_every_existing_one(existing, now):
    names = [moment.strftime('%Y%m%d%H%M%S') for moment in existing]
    name = _releases.next_release_name(names, now=now.replace(tzinfo=datetime.timezone.utc))
    assert _releases.is_release_name(name)
    assert all(name > other for other in names)


def test_next_release_name_after_99991231235959_is_one_sentence_naming_it():
    message = refusal(_releases.next_release_name, ['20261121221401', '99991231235959'])
    assert message == ('no release name after 99991231235959 fits in 14 digits, and a new release must be newer than every '
                       'existing one: move release 99991231235959 out of releases/ (it is dated in the year 9999)')


# linking shared paths into a release (_steps._make_link through finish_release)


def shared_file(deploy_to, rel, text):
    write(os.path.join(deploy_to, 'shared', rel), text)


def test_linking_through_a_symlink_into_shared_is_refused_and_shared_is_kept(deploy_to):
    shared_file(deploy_to, 'config/database.yml', 'db: prod\n')
    _steps.prepare_release(deploy_to, R1)
    # The content itself links config/ into shared/ (as Capistrano apps sometimes commit).
    os.symlink(os.path.join(deploy_to, 'shared', 'config'), release_path(deploy_to, R1, 'config'))
    before = listing(os.path.join(deploy_to, 'shared'))
    message = refusal(_steps.finish_release, deploy_to, R1, 'rev', linked_files=['config/database.yml'])
    assert message.startswith('cannot link config/database.yml: config leads through a symlink (to %s/shared/config)'
                              % os.path.realpath(deploy_to))
    assert listing(os.path.join(deploy_to, 'shared')) == before
    assert read(os.path.join(deploy_to, 'shared', 'config', 'database.yml')) == 'db: prod\n'


def test_linking_a_dir_through_a_symlink_into_shared_never_removes_shared_content(deploy_to):
    write(os.path.join(deploy_to, 'shared', 'public', 'uploads', 'photo.jpg'), 'jpg')
    _steps.prepare_release(deploy_to, R1)
    os.symlink(os.path.join(deploy_to, 'shared', 'public'), release_path(deploy_to, R1, 'public'))
    refusal(_steps.finish_release, deploy_to, R1, 'rev', linked_dirs=['public/uploads'])
    assert read(os.path.join(deploy_to, 'shared', 'public', 'uploads', 'photo.jpg')) == 'jpg'
    assert not os.path.islink(os.path.join(deploy_to, 'shared', 'public', 'uploads'))


def test_linking_replaces_a_symlink_the_content_has_without_touching_its_target(deploy_to):
    write(os.path.join(deploy_to, 'shared', 'log', 'production.log'), 'line\n')
    _steps.prepare_release(deploy_to, R1)
    os.symlink(os.path.join(deploy_to, 'shared', 'log'), release_path(deploy_to, R1, 'log'))
    _steps.finish_release(deploy_to, R1, 'rev', linked_dirs=['log'])
    assert os.readlink(release_path(deploy_to, R1, 'log')) == os.path.join(deploy_to, 'shared', 'log')
    assert read(os.path.join(deploy_to, 'shared', 'log', 'production.log')) == 'line\n'


def test_linking_replaces_a_real_dir_of_the_content(deploy_to):
    write(os.path.join(deploy_to, 'shared', 'log', 'production.log'), 'line\n')
    _steps.prepare_release(deploy_to, R1)
    write(release_path(deploy_to, R1, 'log', 'dev.log'), 'from the repo\n')
    _steps.finish_release(deploy_to, R1, 'rev', linked_dirs=['log'])
    assert os.path.islink(release_path(deploy_to, R1, 'log'))
    assert sorted(os.listdir(os.path.join(deploy_to, 'shared', 'log'))) == ['production.log']


def test_overlapping_linked_paths_are_refused_before_the_release_exists(deploy_to):
    shared_file(deploy_to, 'config/database.yml', 'db\n')
    message = refusal(_steps.finish_release, deploy_to, R1, 'rev', linked_dirs=['config'], linked_files=['config/database.yml'])
    assert message.startswith("linked_dirs and linked_files overlap: 'config' and 'config/database.yml'")
    assert not os.path.exists(release_path(deploy_to, R1))
    assert read(os.path.join(deploy_to, 'shared', 'config', 'database.yml')) == 'db\n'


# _fsops.remove_tree(keep=...)


def test_remove_tree_refuses_a_directory_whose_real_path_is_inside_keep(tmp_path):
    shared = tmp_path / 'shared'
    write(str(shared / 'public' / 'uploads' / 'photo.jpg'), 'jpg')
    release = tmp_path / 'releases' / R1
    release.mkdir(parents=True)
    os.symlink(str(shared / 'public'), str(release / 'public'))
    message = refusal(_fsops.remove_tree, str(release / 'public' / 'uploads'), str(release / 'public'), keep=str(shared))
    assert message.endswith('its real path is inside %s' % shared)
    assert read(str(shared / 'public' / 'uploads' / 'photo.jpg')) == 'jpg'


def test_remove_tree_with_keep_removes_a_release_that_links_into_keep(tmp_path):
    shared = tmp_path / 'shared'
    write(str(shared / 'log' / 'production.log'), 'line\n')
    release = tmp_path / 'releases' / R1
    release.mkdir(parents=True)
    os.symlink(str(shared / 'log'), str(release / 'log'))
    _fsops.remove_tree(str(release), str(tmp_path / 'releases'), keep=str(shared))
    assert not os.path.exists(str(release))
    assert read(str(shared / 'log' / 'production.log')) == 'line\n'
