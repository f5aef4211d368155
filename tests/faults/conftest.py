"""Fixtures of the fault-injection suite: one test bed of three hosts per pytest-xdist worker.

Worker gw0 uses bed 4, gw1 bed 5, gw2 bed 6 (CAPSTAN_BED_ID); without xdist, bed 4. Never the
default bed, whatever CAPSTAN_BED_ID said before. CAPSTAN_FAULTS_BEDS (e.g. "7,8") names other
beds, to run a second session beside one in progress.
"""

from __future__ import annotations

import os
import shutil

import pytest

BEDS = tuple(os.environ.get('CAPSTAN_FAULTS_BEDS', '4,5,6').split(','))
_WORKER = os.environ.get('PYTEST_XDIST_WORKER', 'gw0')
if not _WORKER.startswith('gw') or int(_WORKER[2:]) >= len(BEDS):
    raise pytest.UsageError('tests/faults has %d beds (%s): run it with -n %d or fewer' % (len(BEDS), ', '.join(BEDS), len(BEDS)))
os.environ['CAPSTAN_BED_ID'] = BEDS[int(_WORKER[2:])]
# The integration suite's conftest, in a session that collects both suites, leaves a bed chosen here as it is.
os.environ['CAPSTAN_BED_PINNED'] = '1'

# harness reads CAPSTAN_BED_ID when imported, so it comes after the line above; the integration helpers'
# asserts report their operands, as the tests' own do.
pytest.register_assert_rewrite('ansible_collections.capstan.release.tests.integration.helpers',
                               'ansible_collections.capstan.release.tests.integration.faults')
import harness  # noqa: E402  pylint: disable=wrong-import-position
from ansible_collections.capstan.release.tests.integration.helpers import CONTROL_DIR, Fleet  # noqa: E402  pylint: disable=wrong-import-position

# Each case's hook markers, hook files and app sources: under /var/tmp, which the hosts share with
# the controller.
TOP = os.path.join('/var/tmp', 'capstan-faults-%s' % os.environ['CAPSTAN_BED_ID'])


@pytest.fixture(scope='session')
def fleet():
    """This worker's bed: three hosts over real SSH, removed after the session."""
    inventory = harness.bed.up(harness.HOSTS)
    try:
        yield Fleet(inventory, harness.HOSTS)
    finally:
        harness.bed.down()
        shutil.rmtree(TOP, ignore_errors=True)
        shutil.rmtree(CONTROL_DIR, ignore_errors=True)


@pytest.fixture(scope='session')
def baseline(fleet, tmp_path_factory):
    """v1, v2, v3 deployed on every host, saved to be put back before each case."""
    base = harness.Baseline(fleet, tmp_path_factory.mktemp('sources'))
    base.build()
    return base


@pytest.fixture
def case(fleet, baseline, tmp_path):
    """A case on the baseline tree, its hosts fault-free; its faults are taken away after it."""
    harness.bed.up(harness.HOSTS)       # heals cuts, removes latency: every case starts clean
    harness.quiesce(fleet)
    baseline.restore()
    os.makedirs(TOP, exist_ok=True)
    workdir = os.path.join(TOP, tmp_path.name)
    shutil.rmtree(workdir, ignore_errors=True)
    os.makedirs(workdir)
    one = harness.Case(fleet, baseline, workdir)
    try:
        yield one
    finally:
        harness.bed.up(harness.HOSTS)
        harness.quiesce(fleet)
        for cleanup in reversed(one.cleanups):
            cleanup()
        shutil.rmtree(workdir, ignore_errors=True)
