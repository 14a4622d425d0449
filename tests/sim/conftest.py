"""Fixtures for the simulator's server tests: an in-process simulator and clients for it.

- ``sim``: a started :class:`~mmsd.sim.server.Simulator` (20 users x 10 meetings, seed 1,
  clock at 2030-01-01, latency 0, auth on).
- ``token``: a bearer token obtained from the simulator's authority with azure-identity.
- ``http``: an aiohttp session sending that token (plain Graph calls).
- ``graph``: an msgraph-sdk ``GraphServiceClient`` with azure-identity's async
  ``ClientSecretCredential`` and kiota's RetryHandler removed (tests count 429s).
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from sim_server_helpers import credential, fetch_token, graph_client, make_config

from mmsd.sim.server import Simulator


@pytest.fixture
async def sim(tmp_path: Path) -> AsyncIterator[Simulator]:
    """A started simulator with the default test configuration."""
    async with Simulator(make_config(tmp_path)) as simulator:
        yield simulator


@pytest.fixture
async def token(sim: Simulator) -> str:
    """A valid bearer token for ``sim``."""
    return await fetch_token(sim)


@pytest.fixture
async def http(sim: Simulator, token: str) -> AsyncIterator[aiohttp.ClientSession]:
    """An aiohttp session that sends the token on every request."""
    async with aiohttp.ClientSession(headers={"Authorization": f"Bearer {token}"}) as session:
        yield session


@pytest.fixture
async def graph(sim: Simulator) -> AsyncIterator[Any]:
    """A GraphServiceClient authenticated with the simulator's printed credentials."""
    cred = credential(sim)
    async with cred:
        yield graph_client(sim, cred)
