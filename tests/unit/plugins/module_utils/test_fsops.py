"""_fsops: the filesystem primitives and their guarantees, on real files."""

from __future__ import annotations

import errno
import os
import stat
import tarfile
import threading

import pytest

from ansible_collections.capstan.release.plugins.module_utils import _fsops
from ansible_collections.capstan.release.plugins.module_utils._errors import CapstanError
from ansible_collections.capstan.release.tests.unit.helpers import read, refusal, write

R1 = '20261121221401'


@pytest.fixture
def umask0():
    """No umask, so a mode that is right is right because the code asked for it."""
    old = os.umask(0)
    yield
    os.umask(old)


# replace_symlink


def test_replace_symlink_creates_and_replaces(tmp_path):
    link = str(tmp_path / 'current')
    _fsops.replace_symlink(link, '/srv/app/releases/1')
    assert os.readlink(link) == '/srv/app/releases/1'
    _fsops.replace_symlink(link, '/srv/app/releases/2')
    assert os.readlink(link) == '/srv/app/releases/2'
    assert os.listdir(str(tmp_path)) == ['current']


def test_replace_symlink_never_leaves_a_moment_without_the_link(tmp_path):
    a, b = str(tmp_path / 'a'), str(tmp_path / 'b')
    os.mkdir(a)
    os.mkdir(b)
    link = str(tmp_path / 'current')
    _fsops.replace_symlink(link, a)
    seen, missing = set(), []
    done = threading.Event()

    def reader():
        while not done.is_set():
            try:
                seen.add(os.readlink(link))
            except FileNotFoundError:
                missing.append(1)

    thread = threading.Thread(target=reader)
    thread.start()
    try:
        for i in range(500):
            _fsops.replace_symlink(link, b if i % 2 == 0 else a)
    finally:
        done.set()
        thread.join()
    assert missing == []
    assert seen <= {a, b}
    assert os.readlink(link) == a
    assert sorted(os.listdir(str(tmp_path))) == ['a', 'b', 'current']


def test_replace_symlink_refuses_to_replace_a_directory_and_cleans_up(tmp_path):
    os.mkdir(str(tmp_path / 'current'))
    with pytest.raises(OSError):
        _fsops.replace_symlink(str(tmp_path / 'current'), '/x')
    assert os.path.isdir(str(tmp_path / 'current')) and not os.path.islink(str(tmp_path / 'current'))
    assert os.listdir(str(tmp_path)) == ['current']


# writes


def test_write_file_atomic_writes_content_and_mode(tmp_path, umask0):
    path = str(tmp_path / 'REVISION')
    _fsops.write_file_atomic(path, 'abc\n')
    assert read(path) == 'abc\n'
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o644
    _fsops.write_file_atomic(path, b'def\n', mode=0o600)
    assert read(path) == 'def\n'
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600
    assert os.listdir(str(tmp_path)) == ['REVISION']


def test_create_file_exclusive_never_overwrites(tmp_path):
    path = str(tmp_path / 'lock')
    assert _fsops.create_file_exclusive(path, 'first\n') is True
    assert _fsops.create_file_exclusive(path, 'second\n') is False
    assert read(path) == 'first\n'
    assert os.listdir(str(tmp_path)) == ['lock']


def test_append_line_ends_every_line_once(tmp_path):
    path = str(tmp_path / 'revisions.log')
    _fsops.append_line(path, 'one')
    _fsops.append_line(path, 'two\n')
    assert read(path) == 'one\ntwo\n'


def test_append_line_after_a_torn_last_line_starts_its_own_line(tmp_path):
    log = str(tmp_path / 'revisions.log')
    write(log, 'Branch main (at abc) deployed as release 20261121221404 by alice\nBranch ma')
    _fsops.append_line(log, 'alice rolled back to release 20261121221404')
    assert read(log).splitlines()[-1] == 'alice rolled back to release 20261121221404'


def test_read_text_default_when_missing(tmp_path):
    assert _fsops.read_text(str(tmp_path / 'nothing')) is None
    assert _fsops.read_text(str(tmp_path / 'nothing' / 'below'), default='') == ''
    write(tmp_path / 'f', 'x')
    assert _fsops.read_text(str(tmp_path / 'f' / 'below'), default='d') == 'd'


# archive_dir


def _release_with_links(tmp_path):
    release = tmp_path / 'app' / 'releases' / '20261121221404'
    write(release / 'app' / 'main.py', 'print(1)\n')
    write(tmp_path / 'app' / 'shared' / 'config' / 'database.yml', 'secret\n')
    write(tmp_path / 'outside' / 'big' / 'data.bin', 'outside\n')
    os.makedirs(str(release / 'config'))
    os.symlink(str(tmp_path / 'app' / 'shared' / 'config' / 'database.yml'), str(release / 'config' / 'database.yml'))
    os.symlink(str(tmp_path / 'outside' / 'big'), str(release / 'big'))
    os.symlink('app/main.py', str(release / 'relative'))
    return release


def test_archive_dir_stores_symlinks_as_symlinks_mode_0600(tmp_path, umask0):
    release = _release_with_links(tmp_path)
    dest = str(tmp_path / 'app' / 'failed-release-20261121221404.tar.gz')
    _fsops.archive_dir(str(release), dest, '20261121221404')
    assert stat.S_IMODE(os.stat(dest).st_mode) == 0o600
    with tarfile.open(dest) as tar:
        members = {member.name: member for member in tar.getmembers()}
        assert tar.extractfile(members['20261121221404/app/main.py']).read() == b'print(1)\n'
    link = members['20261121221404/config/database.yml']
    assert link.issym() and link.linkname == str(tmp_path / 'app' / 'shared' / 'config' / 'database.yml')
    assert members['20261121221404/big'].issym()
    assert members['20261121221404/relative'].issym() and members['20261121221404/relative'].linkname == 'app/main.py'
    assert not any(name.startswith('20261121221404/big/') for name in members)
    assert all(name == '20261121221404' or name.startswith('20261121221404/') for name in members)
    assert sorted(os.listdir(str(tmp_path / 'app'))) == ['failed-release-20261121221404.tar.gz', 'releases', 'shared']
    # archiving changes nothing it read
    assert os.path.isdir(str(release / 'app'))
    assert read(tmp_path / 'outside' / 'big' / 'data.bin') == 'outside\n'


def test_archive_dir_compresses_as_gnu_tar_does_not_at_tarfiles_slowest_level(tmp_path):
    release = _release_with_links(tmp_path)
    dest = str(tmp_path / 'app' / 'failed-release-20261121221404.tar.gz')
    _fsops.archive_dir(str(release), dest, '20261121221404')
    with open(dest, 'rb') as handle:
        header = handle.read(10)
    # gzip's XFL byte: 2 for the slowest level (9), 4 for the fastest (1), 0 between (GNU tar's 6).
    assert header[:2] == b'\x1f\x8b' and header[8] == 0


def test_archive_dir_leaves_nothing_behind_on_failure(tmp_path):
    dest = str(tmp_path / 'failed-release-20261121221404.tar.gz')
    with pytest.raises(OSError):
        _fsops.archive_dir(str(tmp_path / 'missing'), dest, '20261121221404')
    assert os.listdir(str(tmp_path)) == []


# remove_tree and inside


def test_remove_tree_removes_a_release_without_following_its_links(tmp_path):
    release = _release_with_links(tmp_path)
    _fsops.remove_tree(str(release), str(tmp_path / 'app' / 'releases'))
    assert not os.path.lexists(str(release))
    assert read(tmp_path / 'app' / 'shared' / 'config' / 'database.yml') == 'secret\n'
    assert read(tmp_path / 'outside' / 'big' / 'data.bin') == 'outside\n'


def test_remove_tree_refuses_a_symlink(tmp_path):
    root = tmp_path / 'releases'
    write(tmp_path / 'outside' / 'sentinel', 'x')
    root.mkdir()
    os.symlink(str(tmp_path / 'outside'), str(root / '20261121221404'))
    with pytest.raises(CapstanError) as error:
        _fsops.remove_tree(str(root / '20261121221404'), str(root))
    assert 'refusing to delete' in str(error.value)
    assert os.path.islink(str(root / '20261121221404'))
    assert read(tmp_path / 'outside' / 'sentinel') == 'x'


@pytest.mark.parametrize('victim', ['outside', 'releases', 'releases/../outside', '.'])
def test_remove_tree_refuses_a_path_not_strictly_under_root(tmp_path, victim):
    (tmp_path / 'releases').mkdir()
    write(tmp_path / 'outside' / 'sentinel', 'x')
    with pytest.raises(CapstanError):
        _fsops.remove_tree(os.path.join(str(tmp_path), victim), str(tmp_path / 'releases'))
    assert read(tmp_path / 'outside' / 'sentinel') == 'x'
    assert os.path.isdir(str(tmp_path / 'releases'))


def test_remove_tree_refuses_a_path_under_a_symlinked_parent_leading_out(tmp_path):
    root = tmp_path / 'releases'
    root.mkdir()
    write(tmp_path / 'outside' / 'inner' / 'sentinel', 'x')
    os.symlink(str(tmp_path / 'outside'), str(root / 'escape'))
    with pytest.raises(CapstanError):
        _fsops.remove_tree(str(root / 'escape' / 'inner'), str(root))
    assert read(tmp_path / 'outside' / 'inner' / 'sentinel') == 'x'


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


def test_inside(tmp_path):
    root = str(tmp_path / 'releases')
    os.mkdir(root)
    assert _fsops.inside(os.path.join(root, 'a'), root)
    assert _fsops.inside(os.path.join(root, 'a', 'b'), root)
    assert not _fsops.inside(root, root)
    assert not _fsops.inside(str(tmp_path / 'releases-old' / 'a'), root)
    assert not _fsops.inside(os.path.join(root, '..', 'a'), root)


def test_is_real_dir(tmp_path):
    os.mkdir(str(tmp_path / 'd'))
    os.symlink(str(tmp_path / 'd'), str(tmp_path / 'l'))
    write(tmp_path / 'f')
    assert _fsops.is_real_dir(str(tmp_path / 'd'))
    assert not _fsops.is_real_dir(str(tmp_path / 'l'))
    assert not _fsops.is_real_dir(str(tmp_path / 'f'))
    assert not _fsops.is_real_dir(str(tmp_path / 'missing'))


def test_remove_file(tmp_path):
    write(tmp_path / 'f')
    assert _fsops.remove_file(str(tmp_path / 'f')) is True
    assert _fsops.remove_file(str(tmp_path / 'f')) is False


# out_of_space and temp_leftovers


@pytest.mark.parametrize('error, full', [
    (OSError(errno.ENOSPC, 'No space left on device'), True), (OSError(errno.EDQUOT, 'Disk quota exceeded'), True),
    (IOError(errno.ENOSPC, 'x'), True), (OSError(errno.EIO, 'I/O error'), False), (OSError('no errno'), False),
    (ValueError('x'), False), (None, False),
])
def test_out_of_space(error, full):
    assert _fsops.out_of_space(error) is full


def test_temp_leftovers_match_the_temp_names_this_module_makes(tmp_path):
    made = []
    for name in ('.current.swap-1', '.REVISION.tmp-22', '.lock.new-333', '.a.tar.gz.partial-4'):
        write(str(tmp_path / name), 'x')
        made.append(str(tmp_path / name))
    for name in ('.current.swap-', '.current.swap-1x', 'current.swap-1', '.current.copy-1', '..tmp-1'):
        write(str(tmp_path / name), 'x')
    assert _fsops.temp_leftovers(str(tmp_path)) == sorted(made)
    expected = [str(tmp_path / '.current.swap-1'), str(tmp_path / '.lock.new-333')]
    assert _fsops.temp_leftovers(str(tmp_path), ['current', 'lock']) == expected


def test_temp_leftovers_for_names_match_the_whole_name(tmp_path):
    for name in ('.current.swap-1', '.current-old.swap-2', '.lockfile.tmp-3', '.journal.bak.new-4'):
        write(str(tmp_path / name), 'x')
    assert _fsops.temp_leftovers(str(tmp_path), ['current', 'lock', 'journal']) == [str(tmp_path / '.current.swap-1')]


def test_temp_leftovers_of_a_missing_folder_are_none(tmp_path):
    assert _fsops.temp_leftovers(str(tmp_path / 'nowhere')) == []


def test_the_temp_names_of_replace_symlink_and_archive_dir_are_leftovers_by_their_own_rule(tmp_path):
    # What a crash in the middle of each would leave has the name temp_leftovers looks for.
    swap = _fsops._temp_name(str(tmp_path / 'current'), 'swap')
    partial = _fsops._temp_name(str(tmp_path / ('failed-release-%s.tar.gz' % R1)), 'partial')
    for path in (swap, partial):
        write(path, 'x')
    assert _fsops.temp_leftovers(str(tmp_path), [r'(failed|rolled-back)-release-[0-9]{14}\.tar\.gz', 'current']) == sorted(
        [swap, partial])
