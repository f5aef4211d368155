"""Shared fixtures; the helpers the tests share are functions in helpers.py."""

from __future__ import annotations

import pytest


@pytest.fixture
def deploy_to(tmp_path):
    """An absolute deploy_to that does not exist yet."""
    return str(tmp_path / 'srv' / 'app')
