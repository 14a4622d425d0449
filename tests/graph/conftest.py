"""Fixtures for the Graph client tests."""

from __future__ import annotations

import pytest
from graph_testkit import ManualClock, RecordingSleep


@pytest.fixture
def clock() -> ManualClock:
    """A fresh manual clock."""
    return ManualClock()


@pytest.fixture
def sleep(clock: ManualClock) -> RecordingSleep:
    """A recording sleep bound to the manual clock."""
    return RecordingSleep(clock)
