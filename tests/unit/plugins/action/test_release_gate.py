"""The go/no-go decision of the release_gate action: only the expected word, typed in time, is a go."""

from __future__ import annotations

import pytest

from ansible_collections.capstan.release.plugins.action.release_gate import decide


def test_the_expected_word_in_time_is_a_go():
    assert decide('yes', 'yes', 3.2, 300) == (True, 'go: confirmed after 3 seconds')
    assert decide('  yes \n', 'yes', 0, 300)[0] is True


@pytest.mark.parametrize('answer, waited, reason', [
    ('no', 1, "no-go: the answer was 'no', not 'yes'"),
    ('YES', 1, "no-go: the answer was 'YES', not 'yes'"),
    ('y', 1, "no-go: the answer was 'y', not 'yes'"),
    ('', 1, "no-go: the answer was '', not 'yes'"),
    ('yes', 300, 'no-go: no answer within 300 seconds'),
    ('', 301, 'no-go: no answer within 300 seconds'),
    (None, 0, 'no-go: no one can answer, the controller has no terminal (stdin is not interactive)'),
])
def test_anything_else_is_a_no_go(answer, waited, reason):
    assert decide(answer, 'yes', waited, 300) == (False, reason)


def test_another_expected_word():
    assert decide('ship it', 'ship it', 1, 10)[0] is True
    assert decide('yes', 'ship it', 1, 10)[0] is False
