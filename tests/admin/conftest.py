"""Fixtures for the admin API tests: the real Store, a service double, and the real listeners."""

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
from admin_testkit import ALICE, BOB, CAROL, TENANT, TOKEN, FakeClock, RecordingService

from mmsd.admin import AdminListeners, start_admin_listeners
from mmsd.config import Config
from mmsd.store import Store


@pytest.fixture
def short_dir() -> Iterator[Path]:
    """A short directory for Unix sockets (their paths are limited to 108 bytes)."""
    path = Path(tempfile.mkdtemp(prefix="mmsd-adm-", dir="/tmp"))
    yield path
    shutil.rmtree(path, ignore_errors=True)


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


@pytest.fixture
def service(store: Store) -> RecordingService:
    """The engine's stand-in (replace with ``mmsd.engine.service.Engine`` when it lands)."""
    double = RecordingService(store, [TENANT])
    double.know(ALICE, BOB, CAROL)
    return double


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
    short_dir: Path, token_file: Path, service: RecordingService, store: Store, clock: FakeClock
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
