"""Secure by default: socket mode and group, TCP only with a token file, 401 without the token.

The listeners in process, serving the real engine; ``test_admin_daemon`` repeats the
checks against the ``mmsd run`` process.
"""

from __future__ import annotations

import logging
import os
import socket
import stat
from pathlib import Path

import aiohttp
import pytest
from admin_testkit import TENANT, TOKEN
from conftest import Daemon, own_group

from mmsd.admin import ListenerError, read_token_file, start_admin_listeners
from mmsd.admin.listeners import bind_unix_socket
from mmsd.clock import SimulatedClock
from mmsd.config import Config
from mmsd.engine.service import Engine
from mmsd.store import Store


async def test_socket_has_mode_0660_and_the_configured_group(daemon: Daemon) -> None:
    info = daemon.socket.stat()
    assert stat.S_ISSOCK(info.st_mode)
    assert stat.S_IMODE(info.st_mode) == 0o660
    import grp

    assert info.st_gid == grp.getgrnam(own_group()).gr_gid
    # no temporary file is left next to it
    assert sorted(p.name for p in daemon.socket.parent.iterdir()) == ["admin.sock"]


def test_missing_group_is_skipped_with_a_warning(
    short_dir: Path, caplog: pytest.LogCaptureFixture
) -> None:
    path = short_dir / "a.sock"
    with caplog.at_level(logging.WARNING, logger="mmsd.admin"):
        sock = bind_unix_socket(path, "no-such-group-mmsd-test")
    try:
        assert stat.S_IMODE(path.stat().st_mode) == 0o660
        assert path.stat().st_gid == os.getegid()
        assert any("does not exist" in r.getMessage() for r in caplog.records)
    finally:
        sock.close()


def test_stale_socket_is_replaced_and_live_one_refused(short_dir: Path) -> None:
    path = short_dir / "a.sock"
    stale = socket.socket(socket.AF_UNIX)
    stale.bind(str(path))
    stale.close()  # the file stays, nobody listens: a killed daemon's leftover
    live = bind_unix_socket(path, None)
    try:
        with pytest.raises(ListenerError, match="another process is listening"):
            bind_unix_socket(path, None)
    finally:
        live.close()
    path.unlink()
    path.write_text("not a socket")
    with pytest.raises(ListenerError, match="not a socket"):
        bind_unix_socket(path, None)


def _config(short_dir: Path, token_file: Path | None) -> Config:
    return Config(
        state_dir=short_dir,
        admin_socket=short_dir / "admin.sock",
        admin_socket_group=None,
        admin_listen="127.0.0.1:0",
        admin_token_file=token_file,
    )


@pytest.mark.parametrize(
    ("content", "mode", "message"),
    [
        (None, 0o600, "cannot read"),
        (b"", 0o600, "at least 16 bytes"),
        (b"short", 0o600, "at least 16 bytes"),
        (TOKEN, 0o644, "readable by everyone"),
        (b"has a space in it 0123456789", 0o600, "must not contain spaces"),
    ],
)
async def test_tcp_refuses_to_start_without_a_good_token_file(
    short_dir: Path,
    tmp_path: Path,
    service: Engine,
    store: Store,
    clock: SimulatedClock,
    content: bytes | None,
    mode: int,
    message: str,
) -> None:
    token_file = tmp_path / "token"
    if content is not None:
        token_file.write_bytes(content)
        token_file.chmod(mode)
    with pytest.raises(ListenerError, match=message):
        await start_admin_listeners(
            _config(short_dir, token_file), service, store, clock=clock, readiness=lambda: True
        )
    assert not (short_dir / "admin.sock").exists()  # nothing was opened


async def test_tcp_without_token_file_is_refused(
    short_dir: Path, service: Engine, store: Store, clock: SimulatedClock
) -> None:
    with pytest.raises(ListenerError, match="needs admin_token_file"):
        await start_admin_listeners(
            _config(short_dir, None), service, store, clock=clock, readiness=lambda: True
        )
    assert not (short_dir / "admin.sock").exists()
    with pytest.raises(ListenerError, match="needs admin_token_file"):
        read_token_file(None)


async def test_socket_only_when_no_tcp_is_configured(
    short_dir: Path, service: Engine, store: Store, clock: SimulatedClock
) -> None:
    config = Config(state_dir=short_dir, admin_socket=short_dir / "admin.sock")
    listeners = await start_admin_listeners(
        config, service, store, clock=clock, readiness=lambda: True
    )
    try:
        assert listeners.url is None
        assert (short_dir / "admin.sock").exists()
    finally:
        await listeners.close()
    assert not (short_dir / "admin.sock").exists()  # close removes the socket file


@pytest.mark.parametrize(
    ("headers", "message"),
    [
        ({}, "a bearer token is required"),
        ({"Authorization": "Bearer wrong-token-0123456789"}, "not valid"),
        ({"Authorization": "Basic " + TOKEN.decode()}, "a bearer token is required"),
        ({"Authorization": "Bearer " + TOKEN.decode() + "x"}, "not valid"),
        ({"Authorization": "Bearer " + TOKEN.decode()[:-1]}, "not valid"),
        ({"Authorization": "Bearer"}, "a bearer token is required"),
    ],
)
async def test_tcp_rejects_missing_and_wrong_tokens(
    daemon: Daemon, headers: dict[str, str], message: str
) -> None:
    async with aiohttp.ClientSession(base_url=daemon.url) as tcp:
        for method, path in [
            ("GET", f"/v1/tenants/{TENANT}/migrations/summary"),
            ("GET", "/v1/openapi.json"),
            ("PATCH", f"/v1/tenants/{TENANT}/configuration"),
            ("GET", "/v1/no-such-route"),
        ]:
            async with tcp.request(
                method, path, headers=headers, json={"meetingMigrationEnabled": False}
            ) as r:
                assert r.status == 401, path
                assert r.headers["WWW-Authenticate"].startswith("Bearer")
                body = await r.json()
                assert body["error"]["code"] == "unauthorized"
                assert message in body["error"]["message"]
                assert TOKEN.decode() not in await r.text()


async def test_tcp_accepts_the_token_and_serves_health_without_it(
    daemon: Daemon, store: Store
) -> None:
    auth = {"Authorization": "Bearer " + TOKEN.decode()}
    async with aiohttp.ClientSession(base_url=daemon.url) as tcp:
        async with tcp.get(f"/v1/tenants/{TENANT}/migrations/summary", headers=auth) as r:
            assert r.status == 200
        async with tcp.patch(
            f"/v1/tenants/{TENANT}/configuration",
            headers=auth,
            json={"meetingMigrationEnabled": False},
        ) as r:
            assert r.status == 200
        for path in ("/healthz", "/readyz"):
            async with tcp.get(path) as r:
                assert r.status == 200, path
    assert (await store.get_switches(TENANT)).meeting_migration_enabled is False


async def test_unix_socket_needs_no_token(api: aiohttp.ClientSession) -> None:
    async with api.get(f"/v1/tenants/{TENANT}/configuration") as r:
        assert r.status == 200
