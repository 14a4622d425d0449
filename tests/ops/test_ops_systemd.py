"""sd_notify against a real AF_UNIX datagram socket: readiness, status, watchdog, stop."""

from __future__ import annotations

import asyncio
import os
import socket
from collections.abc import Iterator
from pathlib import Path

import pytest

from mmsd.systemd import Notifier, notify_address, run_watchdog, watchdog_interval


@pytest.fixture
def listener(tmp_path: Path) -> Iterator[tuple[socket.socket, dict[str, str]]]:
    """A bound datagram socket standing in for systemd, and the env that names it."""
    path = tmp_path / "notify.sock"
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    sock.bind(str(path))
    sock.setblocking(False)
    yield sock, {"NOTIFY_SOCKET": str(path)}
    sock.close()


def received(sock: socket.socket) -> list[str]:
    """Every datagram waiting on ``sock``, without blocking."""
    out = []
    while True:
        try:
            out.append(sock.recv(4096).decode())
        except BlockingIOError:
            return out


async def next_datagram(sock: socket.socket) -> str:
    """Await the next datagram on ``sock`` (at most 5 s)."""
    loop = asyncio.get_running_loop()
    data = await asyncio.wait_for(loop.sock_recv(sock, 4096), 5.0)
    return data.decode()


def test_messages(listener: tuple[socket.socket, dict[str, str]]) -> None:
    sock, env = listener
    notifier = Notifier(env)
    assert notifier.enabled
    assert notifier.ready("2 tenants,\n 0 migrations")
    assert notifier.status("draining")
    assert notifier.watchdog()
    assert notifier.reloading("reloading configuration")
    assert notifier.stopping()
    ready, status, ping, reloading, stopping = received(sock)
    assert ready == "READY=1\nSTATUS=2 tenants, 0 migrations"
    assert status == "STATUS=draining"
    assert ping == "WATCHDOG=1"
    first, usec, text = reloading.split("\n")
    assert first == "RELOADING=1" and text == "STATUS=reloading configuration"
    assert usec.startswith("MONOTONIC_USEC=") and int(usec.split("=")[1]) > 0
    assert stopping == "STOPPING=1"


def test_abstract_socket() -> None:
    name = f"mmsd-test-{os.getpid()}-{id(object())}"
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    sock.bind("\0" + name)
    sock.setblocking(False)
    try:
        env = {"NOTIFY_SOCKET": "@" + name}
        assert notify_address(env) == "\0" + name
        assert Notifier(env).ready()
        assert received(sock) == ["READY=1"]
    finally:
        sock.close()


def test_outside_systemd_nothing_is_sent() -> None:
    notifier = Notifier({})
    assert not notifier.enabled
    assert not notifier.ready()
    assert notify_address({"NOTIFY_SOCKET": "vsock:2:1234"}) is None


def test_a_vanished_socket_is_reported_not_raised(tmp_path: Path) -> None:
    assert not Notifier({"NOTIFY_SOCKET": str(tmp_path / "gone.sock")}).ready()


def test_watchdog_interval() -> None:
    assert watchdog_interval({}) is None
    assert watchdog_interval({"WATCHDOG_USEC": "30000000"}) == 15.0
    assert watchdog_interval({"WATCHDOG_USEC": "0"}) is None
    assert watchdog_interval({"WATCHDOG_USEC": "x"}) is None
    env = {"WATCHDOG_USEC": "2000000", "WATCHDOG_PID": "4242"}
    assert watchdog_interval(env, pid=4242) == 1.0
    assert watchdog_interval(env, pid=4243) is None  # meant for another process


async def test_watchdog_pings_at_half_the_interval(
    listener: tuple[socket.socket, dict[str, str]],
) -> None:
    sock, env = listener
    env = {**env, "WATCHDOG_USEC": "40000", "WATCHDOG_PID": str(os.getpid())}
    assert watchdog_interval(env) == 0.02
    loop = asyncio.get_running_loop()
    task = asyncio.create_task(run_watchdog(Notifier(env), lambda: True, env=env))
    try:
        started = loop.time()
        pings = [await next_datagram(sock) for _ in range(4)]
        elapsed = loop.time() - started
    finally:
        task.cancel()
    assert pings == ["WATCHDOG=1"] * 4
    assert elapsed >= 0.05  # three intervals of 0.02 s between four pings, less slack


async def test_watchdog_withholds_pings_while_unhealthy(
    listener: tuple[socket.socket, dict[str, str]],
) -> None:
    sock, env = listener
    state = {"healthy": True, "raise": False}
    slept: asyncio.Queue[float] = asyncio.Queue()  # the watchdog finished a turn
    go: asyncio.Queue[None] = asyncio.Queue()  # the test lets it take the next one

    async def lockstep_sleep(seconds: float) -> None:
        await slept.put(seconds)
        await go.get()

    def check() -> bool:
        if state["raise"]:
            raise RuntimeError("supervisor state unreadable")
        return state["healthy"]

    async def turn() -> list[str]:
        assert await asyncio.wait_for(slept.get(), 5) == 1.0
        return received(sock)

    task = asyncio.create_task(
        run_watchdog(Notifier(env), check, interval=1.0, env=env, sleep=lockstep_sleep)
    )
    try:
        assert await turn() == ["WATCHDOG=1"]
        state["healthy"] = False
        await go.put(None)
        assert await turn() == []
        await go.put(None)
        assert await turn() == []
        state["healthy"] = True
        state["raise"] = True
        await go.put(None)
        assert await turn() == []  # a failing check counts as unhealthy
        state["raise"] = False
        await go.put(None)
        assert await turn() == ["WATCHDOG=1"]
    finally:
        task.cancel()


async def test_no_watchdog_returns_at_once(
    listener: tuple[socket.socket, dict[str, str]],
) -> None:
    _, env = listener
    await asyncio.wait_for(run_watchdog(Notifier(env), lambda: True, env=env), 1)
    await asyncio.wait_for(run_watchdog(Notifier({}), lambda: True, interval=0.01, env={}), 1)
