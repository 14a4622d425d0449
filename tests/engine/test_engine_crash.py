"""Exactly once under crashes and lost answers, with PATCHes sent inside ``$batch``.

* The simulator faults and holds the PATCH parts of a ``$batch`` as it does direct
  PATCHes: 503/504 as the part's status; a lost answer (or a reset) loses the
  whole batch's answer after applying the parts; a hold applies the part and
  holds the whole batch's answer.
* The engine's fault and hold tests again, with the default batch size (20).
* The real daemon (``mmsd run`` in a subprocess) against an in-process simulator:
  a wave of triggers through the admin API's Unix socket, ``kill -9`` at least ten
  times during the wave (at least three while the simulator holds a PATCH it has
  applied), a restart after each, until every migration is ``Succeeded``; then,
  from the simulator: one PATCH per migrated event and no attendee message beyond
  what those PATCHes send. Again with 10 % injected faults, lost answers included.
"""

from __future__ import annotations

import asyncio
import json
import os
import random
import signal
import subprocess
import sys
import time
from collections import Counter
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp
import httpx
import pytest
from engine_checks import assert_exactly_once, message_delta, patch_delta, trigger
from engine_testkit import NOW, TENANT, Harness

from mmsd.domain.model import MigrationState
from mmsd.sim.faults import FaultKind
from mmsd.sim.server import SimConfig, Simulator

JSON = dict[str, Any]


# ------------------------------------------------------------------ the simulator's $batch


@pytest.fixture
async def bare_sim() -> AsyncIterator[Simulator]:
    """A small simulator without auth, for raw ``$batch`` requests."""
    async with Simulator(
        SimConfig(users=6, meetings=4, seed=3, now=NOW, latency_ms=1, auth=False)
    ) as sim:
        yield sim


def _organizer_events(sim: Simulator, count: int) -> tuple[str, list[str]]:
    """An ordinary user and ``count`` of the events they organize."""
    for user in sim.state.users:
        if user.kind != "ordinary":
            continue
        events = [
            e.id
            for e in sim.state.mailbox_events(user.id).values()
            if e.data.get("isOrganizer") and e.data.get("type") == "singleInstance"
        ]
        if len(events) >= count:
            return user.id, events[:count]
    raise AssertionError("no ordinary user with enough single meetings")


def _fault_patches_only(sim: Simulator, kind: FaultKind) -> None:
    """Every PATCH draws ``kind``; every other request (the ``$batch`` POST itself) none."""
    plan = sim.faults
    real = plan.decide
    plan.set_rates({kind: 1.0})

    def decide(method: str, path: str, attempt: int | None = None) -> FaultKind | None:
        return real(method, path, attempt) if method.upper() == "PATCH" else None

    plan.decide = decide  # type: ignore[method-assign]


def _patch_batch(user: str, events: list[str]) -> JSON:
    return {
        "requests": [
            {
                "id": str(i),
                "method": "PATCH",
                "url": f"/users/{user}/events/{event}",
                "headers": {"Content-Type": "application/json"},
                "body": {"body": {"contentType": "text", "content": f"changed {i}"}},
            }
            for i, event in enumerate(events)
        ]
    }


async def test_batch_parts_get_status_faults(bare_sim: Simulator) -> None:
    sim = bare_sim
    user, events = _organizer_events(sim, 2)
    async with httpx.AsyncClient(base_url=sim.graph_base_url) as http:
        _fault_patches_only(sim, FaultKind.HTTP_503)
        answer = await http.post("/$batch", json=_patch_batch(user, events))
        assert answer.status_code == 200
        parts = answer.json()["responses"]
        assert sorted(p["status"] for p in parts) == [503, 503]
        assert all(p["headers"].get("Retry-After") == "1" for p in parts)
        _fault_patches_only(sim, FaultKind.HTTP_504)
        answer = await http.post("/$batch", json=_patch_batch(user, events))
        assert sorted(p["status"] for p in answer.json()["responses"]) == [504, 504]
    assert sum(sim.counters.patches.values()) == 0, "a faulted part was applied"
    assert sim.faults.injected()["http503"] >= 2


async def test_a_lost_part_answer_loses_the_whole_batch_after_applying(
    bare_sim: Simulator,
) -> None:
    sim = bare_sim
    user, events = _organizer_events(sim, 3)
    # every PATCH part is applied and loses its answer, and with it the whole batch
    _fault_patches_only(sim, FaultKind.LOST_PATCH_ANSWER)
    async with httpx.AsyncClient(base_url=sim.graph_base_url) as http:
        with pytest.raises(httpx.RemoteProtocolError):
            await http.post("/$batch", json=_patch_batch(user, events))
        sim.faults.set_rates({})
        # the connection pool recovers: the next batch is answered
        answer = await http.post(
            "/$batch",
            json={
                "requests": [
                    {"id": "1", "method": "GET", "url": f"/users/{user}/events/{events[0]}"}
                ]
            },
        )
        assert answer.status_code == 200
        body = answer.json()["responses"][0]["body"]["body"]["content"]
    assert dict(sim.counters.patches) == dict.fromkeys(events, 1)  # every part applied once
    assert "changed 0" in body
    assert sim.faults.injected()["lostPatchAnswer"] == 3


async def test_a_hold_on_a_part_holds_the_whole_batch_answer(bare_sim: Simulator) -> None:
    sim = bare_sim
    user, events = _organizer_events(sim, 3)
    hold = sim.faults.hold_next_patch(events[1])
    async with httpx.AsyncClient(base_url=sim.graph_base_url, timeout=30) as http:
        answer = asyncio.create_task(http.post("/$batch", json=_patch_batch(user, events)))
        held = await asyncio.wait_for(sim.faults.wait_held(hold), 10)
        assert held.held_event_id == events[1]
        assert sim.counters.patches[events[1]] == 1  # applied, then held
        assert not answer.done()
        assert sim.faults.release(hold)
        response = await asyncio.wait_for(answer, 10)
    assert response.status_code == 200
    assert dict(sim.counters.patches) == dict.fromkeys(events, 1)
    assert sorted(p["status"] for p in response.json()["responses"]) == [200, 200, 200]


# ------------------------------------------------------------------ the engine, default batch


async def test_faults_with_default_batches_all_succeed_exactly_once(harness: Harness) -> None:
    h = harness
    users = [u["id"] for u in await h.users() if u["kind"] in ("ordinary", "sfbUser")][:6]
    before = await h.counters()
    rates = {"http503": 0.06, "http504": 0.02, "reset": 0.02, "lostPatchAnswer": 0.1}
    await h.send("PUT", "/faults", {"rates": rates})
    engine = await h.start()  # patch_batch_size: the default, 20
    assert engine is not None
    for user in users:
        await engine.submit_trigger(
            TENANT, trigger(h, {"type": "userMovedToOnline", "identity": user})
        )
    for user in users:
        record = await h.wait_state(
            user, MigrationState.SUCCEEDED, MigrationState.FAILED, within=120
        )
        assert record.state is MigrationState.SUCCEEDED, record.last_message
    await h.send("PUT", "/faults", {"rates": {}})
    after = await h.counters()
    assert after["faultsInjected"]["lostPatchAnswer"] > 0
    assert after["requests"].get("POST $batch", 0) > 0
    await assert_exactly_once(h, users, before, after)


async def test_abrupt_stop_while_a_batch_is_held_resumes_exactly_once(harness: Harness) -> None:
    h = harness
    user = (await h.users("ordinary"))[2]["id"]
    before = await h.counters()
    engine = await h.start()
    hold = await h.send("POST", "/holds", {"eventId": None})
    await engine.submit_trigger(TENANT, trigger(h, {"type": "userMovedToOnline", "identity": user}))
    await h.send("POST", "/holds/wait", {"holdId": hold["holdId"]})
    await engine.abort()
    await h.send("POST", "/holds/release", {})
    assert h.store is not None
    recovery = await h.store.recovery(TENANT)
    assert len(recovery.open_intents) > 1, "the whole batch's intents are open"
    h.engine = None
    await h.store.close()
    h.store = None
    await h.start()
    record = await h.wait_state(user, MigrationState.SUCCEEDED, MigrationState.FAILED)
    assert record.state is MigrationState.SUCCEEDED, record.last_message
    await assert_exactly_once(h, [user], before, await h.counters())


# ------------------------------------------------------------------ the real daemon, kill -9

WAVE_KINDS = ("ordinary", "sfbUser", "thirdPartyAcp", "delegate", "delegateBoss", "largeMeetings")
START_DEADLINE_S = 30.0


def _group() -> str:
    import grp

    return grp.getgrgid(os.getgid()).gr_name


class DaemonProcess:
    """``mmsd run`` in a subprocess against the in-process simulator; READY=1 by notify socket."""

    def __init__(self, tmp: Path, sim: Simulator) -> None:
        self.dir = tmp
        state = tmp / "state"
        state.mkdir(parents=True, exist_ok=True)
        secret = tmp / "daemon-secret"
        secret.write_text(sim.client_secret)
        self.state_dir = state
        self.socket = tmp / "admin.sock"
        self.config = tmp / "mmsd.toml"
        self.config.write_text(
            f"state_dir = {json.dumps(str(state))}\n"
            f"admin_socket = {json.dumps(str(self.socket))}\n"
            f"admin_socket_group = {json.dumps(_group())}\n"
            'metrics_listen = "127.0.0.1:0"\n'
            # Long enough that an sfbUser's two triggers (posted one after the other,
            # slower on a loaded machine) always coalesce into one migration: with two,
            # each migration rightly sends its own update.
            "coalesce_seconds = 1.0\n"
            f"retry_delays_seconds = {json.dumps([0.2] * 9)}\n"
            "[tenants.contoso]\n"
            f"tenant_id = {json.dumps(sim.tenant_id)}\n"
            f"client_id = {json.dumps(sim.client_id)}\n"
            f"graph_base_url = {json.dumps(sim.graph_base_url)}\n"
            f"authority = {json.dumps(sim.authority)}\n"
            f"ca_file = {json.dumps(str(sim.ca_file))}\n"
            f"client_secret_file = {json.dumps(str(secret))}\n"
            # Teams lookups paced at 10/s and batches of 5: the wave lasts long
            # enough for ten kills, and kills land between and inside batches.
            "[tenants.contoso.limits]\n"
            "teams_requests = 10\n"
            "batch_max_requests = 5\n"
        )
        self.process: asyncio.subprocess.Process | None = None
        self.starts = 0
        self.kills = 0

    async def start(self) -> None:
        """Start the daemon and wait for its ``READY=1``."""
        import socket

        self.starts += 1
        notify_path = self.dir / f"notify-{self.starts}.sock"
        notify = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        notify.bind(str(notify_path))
        notify.setblocking(False)
        env = {**os.environ, "NOTIFY_SOCKET": str(notify_path)}
        env.pop("WATCHDOG_USEC", None)
        try:
            with (self.dir / f"daemon-{self.starts}.log").open("wb") as log:
                self.process = await asyncio.create_subprocess_exec(
                    sys.executable,
                    "-m",
                    "mmsd",
                    "run",
                    "--config",
                    str(self.config),
                    env=env,
                    stdout=log,
                    stderr=subprocess.STDOUT,
                )
            loop = asyncio.get_running_loop()
            async with asyncio.timeout(START_DEADLINE_S):
                while True:
                    data = (await loop.sock_recv(notify, 4096)).decode()
                    if "READY=1" in data.splitlines():
                        return
        finally:
            notify.close()
            notify_path.unlink(missing_ok=True)

    async def kill(self) -> None:
        """``kill -9`` and reap."""
        assert self.process is not None
        os.kill(self.process.pid, signal.SIGKILL)
        await self.process.wait()
        self.process = None
        self.kills += 1

    async def stop(self) -> None:
        """SIGTERM (a drain) and reap; SIGKILL when it does not stop."""
        if self.process is None:
            return
        if self.process.returncode is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                await asyncio.wait_for(self.process.wait(), 20)
            except TimeoutError:
                self.process.kill()
                await self.process.wait()
        self.process = None

    async def request(self, method: str, path: str, body: JSON | None = None) -> Any:
        """One admin API call over the Unix socket."""
        connector = aiohttp.UnixConnector(path=str(self.socket))
        async with aiohttp.ClientSession(connector=connector) as session:
            async with session.request(method, "http://mmsd" + path, json=body) as response:
                assert response.status < 300, (response.status, await response.text())
                return await response.json()

    async def summary(self) -> dict[str, int]:
        """Users per state (the summary route)."""
        data = await self.request("GET", f"/v1/tenants/{TENANT}/migrations/summary")
        return {item["state"]: item["userCount"] for item in data["value"]}


@pytest.fixture
async def live_sim(tmp_path: Path) -> AsyncIterator[Simulator]:
    """A simulator on the real clock (the daemon keeps real time), larger than the engine tests'."""
    config = SimConfig(users=40, meetings=6, seed=21, latency_ms=5, work_dir=tmp_path / "sim")
    async with Simulator(config) as sim:
        yield sim


async def _wave(daemon: DaemonProcess, sim: Simulator) -> list[str]:
    """Post the wave's triggers through the admin API; the users it migrates."""
    users = [u for u in sim.state.users if u.kind in WAVE_KINDS]
    for user in users:
        await daemon.request(
            "POST",
            f"/v1/tenants/{TENANT}/triggers",
            {"type": "userMovedToOnline", "identity": user.id},
        )
        if user.kind == "sfbUser":  # coalesces with the move: All -> Teams, createOrGet
            await daemon.request(
                "POST",
                f"/v1/tenants/{TENANT}/triggers",
                {
                    "type": "teamsUpgradePolicyGranted",
                    "scope": "user",
                    "mode": "TeamsOnly",
                    "identity": user.id,
                },
            )
    return [u.id for u in users]


async def _until_all_succeeded(daemon: DaemonProcess, users: int, within: float) -> dict[str, int]:
    """Poll the summary route until every user of the wave is Succeeded (or time runs out)."""
    deadline = time.monotonic() + within
    while True:
        summary = await daemon.summary()
        if summary.get("Succeeded", 0) == users or time.monotonic() > deadline:
            return summary
        await asyncio.sleep(0.2)


async def _kill_loop(
    daemon: DaemonProcess, sim: Simulator, *, kills: int, held_at: set[int], seed: int
) -> tuple[int, list[str]]:
    """Start, post the wave, and kill -9 ``kills`` times; ``held_at``: kills made while a PATCH is held.

    Returns the number of kills made while the simulator held an applied PATCH, and
    the wave's users.
    """
    rng = random.Random(seed)
    held_kills = 0
    await daemon.start()
    users = await _wave(daemon, sim)
    for i in range(kills):
        if i in held_at:
            hold = sim.faults.hold_next_patch(None)
            try:
                held = await asyncio.wait_for(sim.faults.wait_held(hold), 30)
            except TimeoutError:
                raise AssertionError(
                    f"kill {i}: no PATCH came to hold; the wave ended early"
                ) from None
            assert sim.counters.patches[held.held_event_id or ""] >= 1  # applied, answer held
            await daemon.kill()
            held_kills += 1
            sim.faults.release(hold)
        else:
            # the kill instant is the seeded input: anywhere from recovery to mid-batch
            await asyncio.sleep(rng.uniform(0.05, 0.8))
            summary = await daemon.summary()
            assert summary.get("Succeeded", 0) < len(users), f"kill {i}: the wave is over"
            await daemon.kill()
        await daemon.start()
    return held_kills, users


async def _check_once(
    tmp: Path, sim: Simulator, daemon: DaemonProcess, users: list[str], before: JSON
) -> None:
    """From the simulator: one PATCH per migrated event, no attendee message beyond them."""
    h = Harness(sim, tmp)
    try:
        after = await h.counters()
        patches = patch_delta(before, after)
        assert patches, "the wave PATCHed nothing"
        assert set(patches.values()) == {1}, {e: n for e, n in patches.items() if n != 1}
        from engine_checks import expected_updates

        expected: Counter[str] = Counter()
        for user in users:
            mine = {e["data"]["id"] for e in (await h.get(f"/events/{user}"))["value"]}
            expected.update(await expected_updates(h, user, mine & set(patches)))
        assert message_delta(before, after) == +expected
        # and the daemon's store agrees: every event it recorded as updated, PATCHed once
        from mmsd.store import Store, database_path

        h.store = await Store.open(database_path(daemon.state_dir), clock=sim.clock)
        await assert_exactly_once(h, users, before, after)
    finally:
        await h.close()


async def test_kill_9_during_a_wave_patches_each_meeting_once(
    tmp_path: Path, live_sim: Simulator
) -> None:
    sim = live_sim
    daemon = DaemonProcess(tmp_path / "daemon", sim)
    h = Harness(sim, tmp_path)
    before = await h.counters()
    await h.close()
    started = time.monotonic()
    try:
        held, users = await _kill_loop(daemon, sim, kills=10, held_at={0, 2, 4}, seed=5)
        summary = await _until_all_succeeded(daemon, len(users), 60)
        assert summary.get("Succeeded") == len(users), summary
    finally:
        await daemon.stop()
    seconds = time.monotonic() - started
    assert daemon.kills == 10 and held == 3
    await _check_once(tmp_path, sim, daemon, users, before)
    print(f"kill -9 x{daemon.kills} ({held} held), {daemon.starts} starts, {seconds:.1f} s")


async def test_kill_9_with_ten_percent_faults_patches_each_meeting_once(
    tmp_path: Path, live_sim: Simulator
) -> None:
    sim = live_sim
    sim.faults.set_rates(
        {
            FaultKind.HTTP_503: 0.04,
            FaultKind.HTTP_504: 0.02,
            FaultKind.RESET: 0.01,
            FaultKind.LOST_PATCH_ANSWER: 0.03,
        }
    )
    daemon = DaemonProcess(tmp_path / "daemon", sim)
    h = Harness(sim, tmp_path)
    before = await h.counters()
    await h.close()
    started = time.monotonic()
    try:
        held, users = await _kill_loop(daemon, sim, kills=4, held_at={0, 2}, seed=9)
        summary = await _until_all_succeeded(daemon, len(users), 90)
        assert summary.get("Succeeded") == len(users), summary
    finally:
        await daemon.stop()
        sim.faults.set_rates({})
    seconds = time.monotonic() - started
    injected = sim.faults.injected()
    assert injected["lostPatchAnswer"] > 0 and injected["http503"] > 0
    await _check_once(tmp_path, sim, daemon, users, before)
    print(f"faults {injected}; kill -9 x{daemon.kills} ({held} held), {seconds:.1f} s")
