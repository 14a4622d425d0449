"""Fixtures for the admin API tests: the simulator, the real Store and Engine, the listeners.

Order matters once: records written by ``seeded`` must be in the store before
the engine starts (a running engine would race the seed's own claim), so the
``service`` fixture resolves ``seeded`` first whenever a test asks for it.
"""

from __future__ import annotations

import grp
import os
import shutil
import tempfile
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from pathlib import Path

import aiohttp
import pytest
from admin_testkit import TOKEN, new_ids, running_engine, seed, sim_config

from mmsd.admin import AdminListeners, start_admin_listeners
from mmsd.clock import SimulatedClock
from mmsd.config import Config
from mmsd.engine.service import Engine
from mmsd.sim.server import Simulator
from mmsd.store import Store


@pytest.fixture
def short_dir() -> Iterator[Path]:
    """A short directory for Unix sockets (their paths are limited to 108 bytes)."""
    path = Path(tempfile.mkdtemp(prefix="mmsd-adm-", dir="/tmp"))
    yield path
    shutil.rmtree(path, ignore_errors=True)


@pytest.fixture
async def sim(tmp_path: Path) -> AsyncIterator[Simulator]:
    """The Graph simulator (azure-identity auth over its loopback HTTPS authority)."""
    async with Simulator(sim_config()) as running:
        yield running


@pytest.fixture
def clock(sim: Simulator) -> SimulatedClock:
    """The simulator's clock, which the store, the engine and the API all read."""
    return sim.clock


@pytest.fixture
def db_path(tmp_path: Path) -> Path:
    return tmp_path / "state" / "mmsd.sqlite3"


@pytest.fixture
async def store(db_path: Path, clock: SimulatedClock) -> AsyncIterator[Store]:
    ids = new_ids()
    opened = await Store.open(db_path, clock=clock, new_id=lambda: next(ids))
    yield opened
    await opened.close()


@pytest.fixture
async def seeded(store: Store, clock: SimulatedClock) -> dict[str, str]:
    """Alice Succeeded, Bob Pending (held), one ignored trigger; their correlation IDs."""
    return await seed(store, clock)


@pytest.fixture
async def service(
    request: pytest.FixtureRequest, sim: Simulator, store: Store, tmp_path: Path
) -> AsyncIterator[Engine]:
    """The real engine against the simulator (started after ``seeded`` if the test seeds)."""
    if "seeded" in request.fixturenames:
        request.getfixturevalue("seeded")
    async with running_engine(sim, store, tmp_path) as engine:
        yield engine


@pytest.fixture
def token_file(tmp_path: Path) -> Path:
    path = tmp_path / "admin.token"
    path.write_bytes(TOKEN + b"\n")
    path.chmod(0o600)
    return path


def own_group() -> str:
    """A group this process may give files to: its primary group."""
    return grp.getgrgid(os.getgid()).gr_name


@dataclass
class Daemon:
    """The admin API as the daemon runs it: Unix socket plus TCP listener."""

    listeners: AdminListeners
    socket: Path
    url: str
    ready: list[bool]

    def unix_session(self) -> aiohttp.ClientSession:
        return aiohttp.ClientSession(
            base_url="http://localhost", connector=aiohttp.UnixConnector(path=str(self.socket))
        )


@pytest.fixture
async def daemon(
    short_dir: Path, token_file: Path, service: Engine, store: Store, clock: SimulatedClock
) -> AsyncIterator[Daemon]:
    ready = [True]
    config = Config(
        state_dir=short_dir,
        admin_socket=short_dir / "admin.sock",
        admin_socket_group=own_group(),
        admin_listen="127.0.0.1:0",
        admin_token_file=token_file,
    )
    listeners = await start_admin_listeners(
        config, service, store, clock=clock, readiness=lambda: ready[0]
    )
    assert listeners.url is not None
    yield Daemon(listeners, config.admin_socket, listeners.url, ready)
    await listeners.close()


@pytest.fixture
async def api(daemon: Daemon) -> AsyncIterator[aiohttp.ClientSession]:
    """A client session on the daemon's Unix socket."""
    async with daemon.unix_session() as session:
        yield session
