"""Fixtures for the store tests: a controllable clock and a store on a real SQLite file."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from store_clock import FakeClock

from mmsd.store import Store


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def db_path(tmp_path: Path) -> Path:
    return tmp_path / "state" / "mmsd.sqlite3"


@pytest.fixture
async def store(db_path: Path, clock: FakeClock) -> AsyncIterator[Store]:
    counter = iter(range(1, 10**9))
    opened = await Store.open(db_path, clock=clock, new_id=lambda: f"corr-{next(counter):04d}")
    yield opened
    await opened.close()
