"""Fixtures for tests over real SSH: the test bed's hosts, one bed per pytest-xdist worker.

The helpers the tests share (the ansible runners, Fleet, what a run said) are in helpers.py.
"""

from __future__ import annotations

import os

import pytest

# With pytest-xdist (make integration runs files on two workers), each worker has a bed of its
# own: worker N uses bed CAPSTAN_BED_ID+N (the default bed, then 1, 2, ... when it is not set).
# The fault suite picks its workers' beds itself (CAPSTAN_BED_PINNED): they are not moved again.
_WORKER = os.environ.get('PYTEST_XDIST_WORKER', '')
if _WORKER.startswith('gw') and not os.environ.get('CAPSTAN_BED_PINNED'):
    _BASE = int(os.environ.get('CAPSTAN_BED_ID') or 0)
    _ID = _BASE + int(_WORKER[2:])
    if _ID > 9:
        raise RuntimeError('no test bed left for xdist worker %s (CAPSTAN_BED_ID %d + %s > 9)' % (_WORKER, _BASE, _WORKER[2:]))
    os.environ['CAPSTAN_BED_ID'] = str(_ID) if _ID else ''

# The helpers' asserts report their operands, as the tests' own do; helpers imports the bed module, after the lines above.
pytest.register_assert_rewrite('ansible_collections.capstan.release.tests.integration.helpers',
                               'ansible_collections.capstan.release.tests.integration.faults')
from ansible_collections.capstan.release.tests.integration.helpers import HOSTS, Fleet, bed  # noqa: E402  pylint: disable=wrong-import-position


@pytest.fixture(scope='session')
def fleet():
    """Three test-bed hosts over real SSH, started for the session and removed after it."""
    inventory = bed.up(HOSTS)
    try:
        yield Fleet(inventory, HOSTS)
    finally:
        bed.down()


@pytest.fixture
def deploy_to(request):
    """A deploy_to of this test's own under /srv (private to each host)."""
    return '/srv/%s' % request.node.name.replace('[', '-').replace(']', '')
