"""``mmsd sim`` as a process: one ready line on stdout, deterministic tenant, clean stop on SIGTERM."""

from __future__ import annotations

import asyncio
import json
import signal
import sys
from pathlib import Path

import aiohttp
import pytest

from mmsd.sim.cli import config_from_args

ARGS = ["--port", "0", "--users", "20", "--meetings", "10", "--seed", "1"]
ARGS += ["--now", "2030-01-01T00:00:00Z", "--latency-ms", "0"]
READY_KEYS = {"graphBaseUrl", "authority", "tenantId", "clientId", "clientSecret", "caFile"}


async def start(tmp: Path) -> tuple[asyncio.subprocess.Process, dict[str, str]]:
    """Start ``mmsd sim`` and read its ready line."""
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "mmsd",
        "sim",
        *ARGS,
        "--work-dir",
        str(tmp),
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.DEVNULL,
    )
    assert proc.stdout is not None
    line = await asyncio.wait_for(proc.stdout.readline(), 60)
    ready = json.loads(line)
    return proc, ready


async def token(ready: dict[str, str]) -> str:
    """A token from the process's authority with its printed credentials."""
    from azure.identity.aio import ClientSecretCredential

    cred = ClientSecretCredential(
        ready["tenantId"],
        ready["clientId"],
        ready["clientSecret"],
        authority=ready["authority"],
        disable_instance_discovery=True,
        connection_verify=ready["caFile"],
    )
    async with cred:
        return str((await cred.get_token("https://graph.microsoft.com/.default")).token)


async def snapshot(ready: dict[str, str]) -> list[bytes]:
    """The raw bytes of GET /users and of every mailbox's events."""
    base = ready["graphBaseUrl"]
    control = base.removesuffix("/v1.0") + "/_sim"
    out: list[bytes] = []
    headers = {"Authorization": f"Bearer {await token(ready)}"}
    async with aiohttp.ClientSession(headers=headers) as s:
        async with s.get(f"{base}/users") as r:
            assert r.status == 200
            raw = await r.read()
            out.append(raw)
        async with aiohttp.ClientSession() as bare, bare.get(f"{base}/users") as r:
            assert r.status == 401
        users = json.loads(raw)["value"]
        assert len(users) == 20
        for user in users:
            async with s.get(f"{control}/events/{user['id']}") as r:
                out.append(await r.read())
    return out


async def stop(proc: asyncio.subprocess.Process) -> bytes:
    """SIGTERM the process; the rest of its stdout."""
    proc.send_signal(signal.SIGTERM)
    assert proc.stdout is not None
    rest = await asyncio.wait_for(proc.stdout.read(), 30)
    assert await asyncio.wait_for(proc.wait(), 30) == 0
    return rest


async def test_two_processes_serve_the_same_tenant(tmp_path: Path) -> None:
    (p1, r1), (p2, r2) = await asyncio.gather(start(tmp_path / "a"), start(tmp_path / "b"))
    try:
        assert set(r1) == READY_KEYS
        assert r1["authority"].startswith("https://127.0.0.1:") and r1["authority"].count("/") == 2
        assert r1["graphBaseUrl"].startswith("http://127.0.0.1:")
        assert r1["graphBaseUrl"].endswith("/v1.0")
        assert r1["caFile"].endswith("ca.pem")
        s1, s2 = await asyncio.gather(snapshot(r1), snapshot(r2))
        assert s1 == s2
        assert r1["tenantId"] == r2["tenantId"]
    finally:
        rest1 = await stop(p1)
        rest2 = await stop(p2)
    assert rest1 == b"" and rest2 == b""


def test_arguments() -> None:
    cfg = config_from_args([*ARGS, "--no-auth"])
    assert cfg.users == 20 and cfg.seed == 1 and cfg.latency_ms == 0.0
    assert cfg.now is not None and cfg.now.year == 2030
    assert cfg.auth is False
    with pytest.raises(SystemExit):
        config_from_args(["--now", "not-a-date"])
    with pytest.raises(SystemExit):
        config_from_args(["--limits", "/nonexistent/limits.json"])
