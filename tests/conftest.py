"""Shared fixtures: the settings, and the real local stack for integration tests."""

from __future__ import annotations

import pytest

from zerocarbon.settings import Settings


@pytest.fixture(scope="session")
def settings() -> Settings:
    return Settings()
