"""Fixtures for the engine tests (the harness lives in ``engine_testkit``)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from engine_testkit import NOW, Harness

from mmsd.sim.server import SimConfig, Simulator


@pytest.fixture
def sim_config() -> SimConfig:
    """The simulated tenant; tests override it with ``@pytest.mark.parametrize`` when needed."""
    return SimConfig(users=14, meetings=6, seed=11, now=NOW, latency_ms=2)


@pytest.fixture
async def harness(tmp_path: Path, sim_config: SimConfig) -> AsyncIterator[Harness]:
    """A running simulator and an open store; call ``harness.start()`` for the engine."""
    async with Simulator(sim_config) as sim:
        h = Harness(sim, tmp_path)
        try:
            yield h
        finally:
            await h.close()
