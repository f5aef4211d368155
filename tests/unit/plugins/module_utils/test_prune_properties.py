"""Properties of the prune rules, on real trees built per example (hypothesis)."""

from __future__ import annotations

import contextlib
import datetime
import json
import os
import shutil
import tempfile

from hypothesis import given, settings, strategies as st

from ansible_collections.capstan.release.plugins.module_utils import _journal
from ansible_collections.capstan.release.plugins.module_utils import _releases

EPOCH = datetime.datetime(2026, 1, 1)
STATES = ('successful', 'unfinished', 'finished', 'failed', 'unknown')
EVENTS = {'successful': 'succeeded', 'unfinished': 'created', 'finished': 'finished', 'failed': 'failed'}

names = st.integers(min_value=0, max_value=400 * 86400).map(
    lambda seconds: (EPOCH + datetime.timedelta(seconds=seconds)).strftime('%Y%m%d%H%M%S'))


@st.composite
def trees(draw):
    """A tree: release name -> (state, mtime), which one is current, keep, exclude."""
    release_names = sorted(draw(st.sets(names, min_size=1, max_size=10)))
    releases = {name: (draw(st.sampled_from(STATES)), draw(st.integers(min_value=10 ** 9, max_value=2 * 10 ** 9)))
                for name in release_names}
    current = draw(st.one_of(st.none(), st.sampled_from(release_names)))
    keep = draw(st.integers(min_value=1, max_value=12))
    exclude = draw(st.lists(st.sampled_from(release_names), max_size=2, unique=True))
    return releases, current, keep, exclude


@contextlib.contextmanager
def built(releases, current):
    """The tree on disk, releases recorded in the journal the way the steps record them."""
    root = tempfile.mkdtemp(prefix='capstan-prop-')
    try:
        tree = _releases.Tree(os.path.join(root, 'app'))
        os.makedirs(tree.state_dir)
        events = []
        for name, (state, _mtime) in releases.items():
            os.makedirs(tree.release_path(name))
            if state != 'unknown':
                events.append(json.dumps({'time': _journal.utc_stamp(), 'event': EVENTS[state], 'release': name}))
        with open(tree.journal, 'w') as journal:  # what append_event writes, without an fsync a line
            journal.write(''.join(line + '\n' for line in events))
        if current:
            os.symlink(tree.release_path(current), tree.current)
        for name, (_state, mtime) in releases.items():
            os.utime(tree.release_path(name), (mtime, mtime))
        yield tree
    finally:
        shutil.rmtree(root)


def effective_states(releases, current):
    """The states the model must see: a release without a journal entry that is current went live."""
    states = {name: state for name, (state, _mtime) in releases.items()}
    if current is not None and states[current] == 'unknown':
        states[current] = 'successful'
    return states


def expected_kept(successful, current, keep):
    """The successful releases the rule keeps, from names alone: newest ``keep``, current among them."""
    newest = successful[-keep:]
    if current in successful and current not in newest:
        newest = ([current] + successful[-(keep - 1):]) if keep > 1 else [current]
    return set(newest)


@settings(max_examples=100, deadline=None)
@given(trees())
def test_prune_plan_properties(example):
    releases, current, keep, exclude = example
    with built(releases, current) as tree:
        snapshot = _releases.Snapshot(tree)
        states = effective_states(releases, current)
        assert snapshot.states == states
        assert snapshot.current == current

        plan = _releases.prune_plan(snapshot, keep, exclude)
        removed = [name for name, _reason in plan]
        successful = sorted(name for name, state in states.items() if state == 'successful')

        assert current not in removed
        assert not set(removed) & set(exclude)
        assert removed == sorted(removed), 'oldest first'
        assert len(set(removed)) == len(removed)
        for name, reason in plan:
            assert reason == ('old' if states[name] == 'successful' else states[name])

        # every leftover goes, unless protected
        leftovers = set(name for name, state in states.items() if state != 'successful')
        assert leftovers - set(removed) == leftovers & (set(exclude) | {current})

        # the kept successful ones: the newest by name (current among them), plus excluded ones
        survivors = set(successful) - set(removed)
        kept = expected_kept(successful, current, keep)
        assert survivors == kept | (set(exclude) & set(successful))
        if not exclude:
            assert len(survivors) == min(keep, len(successful))
        if current in successful:
            assert current in survivors


@settings(max_examples=50, deadline=None)
@given(trees(), st.randoms(use_true_random=False))
def test_prune_plan_ignores_mtimes(example, rng):
    releases, current, keep, exclude = example
    with built(releases, current) as tree:
        first = _releases.prune_plan(_releases.Snapshot(tree), keep, exclude)
        for name in releases:
            stamp = rng.randint(10 ** 9, 2 * 10 ** 9)
            os.utime(tree.release_path(name), (stamp, stamp))
        assert _releases.prune_plan(_releases.Snapshot(tree), keep, exclude) == first


@settings(max_examples=50, deadline=None)
@given(trees(), st.data())
def test_a_leaving_release_is_never_planned_and_never_kept(example, data):
    releases, current, keep, _exclude = example
    candidates = sorted(name for name in releases if name != current)
    if not candidates:
        return
    leaving = data.draw(st.sampled_from(candidates))
    with built(releases, current) as tree:
        snapshot = _releases.Snapshot(tree)
        states = effective_states(releases, current)
        plan = _releases.prune_plan(snapshot, keep, leaving=[leaving])
        removed = set(name for name, _reason in plan)
        assert leaving not in removed
        successful = sorted(name for name, state in states.items() if state == 'successful' and name != leaving)
        assert set(successful) - removed == expected_kept(successful, current, keep)


@settings(max_examples=50, deadline=None)
@given(st.lists(st.tuples(st.sampled_from(['failed', 'rolled_back']), names), max_size=8, unique_by=lambda e: e[1]),
       st.integers(min_value=0, max_value=10),
       st.lists(st.integers(min_value=10 ** 9, max_value=2 * 10 ** 9), min_size=8, max_size=8))
def test_archives_plan_keeps_the_newest_by_release_name(archives, keep_archives, mtimes):
    root = tempfile.mkdtemp(prefix='capstan-prop-')
    try:
        tree = _releases.Tree(os.path.join(root, 'app'))
        os.makedirs(tree.deploy_to)
        files = []
        for (kind, name), mtime in zip(archives, mtimes):
            path = tree.archive_path(name, kind)
            open(path, 'w').close()
            os.utime(path, (mtime, mtime))
            files.append((name, os.path.basename(path)))
        gone = _releases.archives_plan(_releases.Snapshot(tree), keep_archives)
        by_name = [entry for _name, entry in sorted(files)]
        assert gone == by_name[:max(len(by_name) - keep_archives, 0)]
    finally:
        shutil.rmtree(root)
