"""_journal: Capistrano's revisions.log lines byte for byte, and capstan's event journal."""

from __future__ import annotations

import json
import os
import re

import pytest

from ansible_collections.capstan.release.plugins.module_utils import _journal

A = '20261121221359'
B = '20261121221404'
CAPISTRANO_I18N = '/usr/lib/ruby/vendor_ruby/capistrano/i18n.rb'


def test_deploy_line_is_capistranos_byte_for_byte():
    line = _journal.deploy_line('main', '9f1c2d3e', A, 'alice')

    assert line == 'Branch main (at 9f1c2d3e) deployed as release 20261121221359 by alice'


def test_rollback_line_is_capistranos_byte_for_byte():
    assert _journal.rollback_line('alice', A) == 'alice rolled back to release 20261121221359'


@pytest.mark.skipif(not os.path.exists(CAPISTRANO_I18N), reason="Debian's capistrano package is not installed")
def test_lines_match_the_installed_capistrano_templates():
    with open(CAPISTRANO_I18N) as handle:
        source = handle.read()

    def template(key):
        return re.search(r'%s: "([^"]*)"' % key, source).group(1)

    fields = {'branch': 'main', 'sha': '9f1c2d3e', 'release': A, 'user': 'alice'}
    expected_deploy = re.sub(r'%\{(\w+)\}', lambda m: fields[m.group(1)], template('revision_log_message'))
    expected_rollback = re.sub(r'%\{(\w+)\}', lambda m: fields[m.group(1)], template('rollback_log_message'))
    assert _journal.deploy_line('main', '9f1c2d3e', A, 'alice') == expected_deploy
    assert _journal.rollback_line('alice', A) == expected_rollback


def test_parse_revisions_round_trips_and_ignores_other_lines():
    text = '\n'.join([
        _journal.deploy_line('main', '9f1c2d3e', A, 'alice'),
        'some note an operator added',
        '',
        'Branch feature/x (at 0123abcd) deployed as release %s by ci bot' % B,
        _journal.rollback_line('alice', A),
        'Branch main deployed as release %s' % B,
        'rolled back to release',
    ]) + '\n'

    assert _journal.parse_revisions(text) == [
        {'kind': 'deploy', 'branch': 'main', 'sha': '9f1c2d3e', 'release': A, 'user': 'alice'},
        {'kind': 'deploy', 'branch': 'feature/x', 'sha': '0123abcd', 'release': B, 'user': 'ci bot'},
        {'kind': 'rollback', 'user': 'alice', 'release': A},
    ]


def test_parse_revisions_of_nothing():
    assert _journal.parse_revisions('') == []
    assert _journal.parse_revisions(None) == []


def test_append_event_writes_one_json_line_without_empty_fields(tmp_path):
    journal = str(tmp_path / 'journal')

    record = _journal.append_event(journal, 'published', A, previous=None, mode='deploy')

    with open(journal, 'rb') as handle:
        data = handle.read()
    assert data.endswith(b'\n') and data.count(b'\n') == 1
    assert json.loads(data) == record
    assert 'previous' not in record and record['mode'] == 'deploy'
    assert re.match(r'^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$', record['time'])


def test_append_event_refuses_an_unknown_event(tmp_path):
    with pytest.raises(ValueError):
        _journal.append_event(str(tmp_path / 'journal'), 'exploded', A)
    assert not (tmp_path / 'journal').exists()


def test_read_events_skips_a_torn_last_line_and_foreign_lines(tmp_path):
    journal = str(tmp_path / 'journal')
    _journal.append_event(journal, 'created', A)
    _journal.append_event(journal, 'finished', A)
    with open(journal, 'ab') as handle:
        handle.write(b'[1, 2]\n{"event": "exploded", "release": "x"}\n{"event": "succeeded", "release": 2026}\n')
        handle.write(b'{"event": "succeeded", "rele')

    events = _journal.read_events(journal)

    assert [(e['event'], e['release']) for e in events] == [('created', A), ('finished', A)]


def test_an_event_after_a_torn_line_is_not_lost(tmp_path):
    journal = str(tmp_path / 'journal')
    _journal.append_event(journal, 'finished', A)
    with open(journal, 'ab') as handle:
        handle.write(b'{"event": "succeeded", "rele')

    _journal.append_event(journal, 'created', B)

    assert [(e['event'], e['release']) for e in _journal.read_events(journal)] == [('finished', A), ('created', B)]


def test_read_events_of_a_missing_journal(tmp_path):
    assert _journal.read_events(str(tmp_path / 'nope' / 'journal')) == []


def test_states_from_takes_the_last_state_event_of_each_release():
    events = [
        {'event': 'created', 'release': A},
        {'event': 'finished', 'release': A},
        {'event': 'succeeded', 'release': A},
        {'event': 'created', 'release': B},
        {'event': 'rolled_back', 'release': A},
        {'event': 'published', 'release': A},
        {'event': 'rollback', 'release': B},
    ]

    assert _journal.states_from(events) == {A: 'rolled_back', B: 'unfinished'}


def test_states_from_knows_every_state_event():
    assert {_journal.states_from([{'event': event, 'release': A}])[A] for event in _journal.STATE_EVENTS} == {
        'unfinished', 'finished', 'successful', 'failed', 'rolled_back', 'removing', 'removed'}
