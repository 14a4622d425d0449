"""The real daemon, started the way the unit starts it, against the Graph simulator.

``mmsd run`` gets a notify socket and ``$WATCHDOG_USEC`` as under ``Type=notify``:
it must send ``READY=1``, watchdog pings, ``STATUS=`` lines, ``STOPPING=1`` on
``SIGTERM`` and exit 0 within ``TimeoutStopSec`` with nothing lost — ``SIGTERM`` lands
while migrations are in progress (the simulator answers in ~80 ms, users organize
many meetings), and after a restart the simulator's own counters show every meeting
PATCHed at most once and the PATCHes matching the records. ``SIGHUP`` lands while
migrations are in progress too, and a new ``max_user_actors`` shows in behaviour. Its
stdout is JSON lines without e-mail addresses. A real Prometheus scrapes its metrics
listener: every dashboard query returns data, and ``MmsdMigrationFailed`` fires when
the simulator's on-premises mailbox user fails.
"""

from __future__ import annotations

import asyncio
import json
import os
import re
import select
import signal
import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from ops_testkit import ALERTS, DASHBOARD, SYSTEMD, panel_queries, substitute, tool

DEADLINE_S = 30.0
WATCHDOG_USEC = 400_000
#: A simulator slow enough that migrations are seen in progress: ~80 ms per request.
LOADED = {"meetings": 30, "latency_ms": 80}
TIMEOUT_STOP_S = int(
    re.search(r"^TimeoutStopSec=(\d+)s$", (SYSTEMD / "mmsd.service").read_text(), re.M).group(1)  # type: ignore[union-attr]
)
EMAIL = re.compile(r"[\w.+-]+@[\w-]+\.[\w.-]+")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture
def sim(tmp_path: Path, request: pytest.FixtureRequest) -> Iterator[dict[str, Any]]:
    """``mmsd sim`` on loopback; yields its announcement plus ``control`` (its /_sim URL).

    Parametrize indirectly with ``{"meetings": M, "latency_ms": L}`` to change the load.
    """
    knobs = {"meetings": 2, "latency_ms": None, **getattr(request, "param", {})}
    latency = [] if knobs["latency_ms"] is None else ["--latency-ms", str(knobs["latency_ms"])]
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "mmsd",
            "sim",
            "--port",
            "0",
            "--users",
            "6",
            "--meetings",
            str(knobs["meetings"]),
            "--seed",
            "7",
            *latency,
        ],
        stdout=subprocess.PIPE,
        stderr=(tmp_path / "sim.log").open("w"),
        text=True,
    )
    try:
        assert process.stdout is not None
        ready, _, _ = select.select([process.stdout], [], [], DEADLINE_S)
        assert ready, "the simulator did not announce itself"
        info: dict[str, Any] = json.loads(process.stdout.readline())
        info["control"] = info["graphBaseUrl"].removesuffix("/v1.0") + "/_sim"
        yield info
    finally:
        process.terminate()
        process.wait(10)


class Daemon:
    """One ``mmsd run`` process with a notify socket, as systemd would start it."""

    def __init__(self, tmp_path: Path, sim: dict[str, Any]) -> None:
        self.dir = tmp_path
        (tmp_path / "secret").write_text(sim["clientSecret"])
        (tmp_path / "state").mkdir(exist_ok=True)
        self.admin_socket = tmp_path / "admin.sock"
        self.config = tmp_path / "mmsd.toml"
        self.config.write_text(
            f'state_dir = "{tmp_path / "state"}"\n'
            f'admin_socket = "{self.admin_socket}"\n'
            f"admin_socket_group = {json.dumps(_my_group())}\n"
            'metrics_listen = "127.0.0.1:0"\n'
            "coalesce_seconds = 0.2\n"
            "[tenants.contoso]\n"
            f'tenant_id = "{sim["tenantId"]}"\n'
            f'client_id = "{sim["clientId"]}"\n'
            f'graph_base_url = "{sim["graphBaseUrl"]}"\n'
            f'authority = "{sim["authority"]}"\n'
            f'ca_file = "{sim["caFile"]}"\n'
            f'client_secret_file = "{tmp_path / "secret"}"\n'
        )
        self.notify = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.notify.bind(str(tmp_path / "notify.sock"))
        self.notify.setblocking(False)
        self.process: subprocess.Popen[bytes] | None = None
        self.runs = 0

    def start(self) -> None:
        self.runs += 1
        self.stdout = self.dir / f"daemon-{self.runs}.out"
        env = {
            **os.environ,
            "NOTIFY_SOCKET": str(self.dir / "notify.sock"),
            "WATCHDOG_USEC": str(WATCHDOG_USEC),
        }
        self.process = subprocess.Popen(
            [sys.executable, "-m", "mmsd", "run", "--config", str(self.config)],
            env=env,
            stdout=self.stdout.open("wb"),
            stderr=(self.dir / f"daemon-{self.runs}.err").open("wb"),
        )

    async def message(self, wanted: str) -> str:
        """Await the next datagram that starts with ``wanted``."""
        loop = asyncio.get_running_loop()
        async with asyncio.timeout(DEADLINE_S):
            while True:
                data = (await loop.sock_recv(self.notify, 4096)).decode()
                if data.startswith(wanted):
                    return data

    def lines(self) -> list[dict[str, Any]]:
        return [json.loads(line) for line in self.stdout.read_text().splitlines()]

    def metrics_url(self) -> str:
        for line in self.lines():
            match = re.search(r"metrics listener on (http://\S+)", line["message"])
            if match:
                return match.group(1)
        raise AssertionError("the daemon did not log its metrics listener")

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.kill()
            self.process.wait()
        self.notify.close()


def start_prometheus(
    binary: str, tmp_path: Path, target: str
) -> tuple[subprocess.Popen[bytes], str]:
    """Prometheus scraping ``target`` as job mmsd and evaluating alerts.yml; and its URL."""
    config = {
        "global": {"scrape_interval": "500ms", "evaluation_interval": "500ms"},
        "rule_files": [str(ALERTS)],
        "scrape_configs": [{"job_name": "mmsd", "static_configs": [{"targets": [target]}]}],
    }
    (tmp_path / "prometheus.yml").write_text(json.dumps(config))
    port = free_port()
    process = subprocess.Popen(
        [
            binary,
            f"--config.file={tmp_path / 'prometheus.yml'}",
            f"--storage.tsdb.path={tmp_path / 'tsdb'}",
            f"--web.listen-address=127.0.0.1:{port}",
        ],
        stdout=(tmp_path / "prometheus.log").open("wb"),
        stderr=subprocess.STDOUT,
    )
    return process, f"http://127.0.0.1:{port}"


def _my_group() -> str:
    import grp

    return grp.getgrgid(os.getgid()).gr_name


@pytest.fixture
def daemon(tmp_path: Path, sim: dict[str, Any]) -> Iterator[Daemon]:
    d = Daemon(tmp_path, sim)
    try:
        yield d
    finally:
        d.stop()


async def sim_users(http: aiohttp.ClientSession, sim: dict[str, Any]) -> list[dict[str, Any]]:
    async with http.get(f"{sim['control']}/users") as resp:
        users: list[dict[str, Any]] = (await resp.json())["value"]
    return users


def admin(daemon: Daemon) -> aiohttp.ClientSession:
    return aiohttp.ClientSession(connector=aiohttp.UnixConnector(path=str(daemon.admin_socket)))


async def summary(daemon: Daemon) -> dict[str, int]:
    """Users per state, from the daemon's admin API."""
    async with admin(daemon) as api:
        async with api.get("http://mmsd/v1/tenants/contoso/migrations/summary") as resp:
            assert resp.status == 200, await resp.text()
            return {s["state"]: s["userCount"] for s in (await resp.json())["value"]}


async def records(daemon: Daemon) -> dict[str, dict[str, Any]]:
    """Each user's latest status record, by user ID."""
    async with admin(daemon) as api:
        async with api.get("http://mmsd/v1/tenants/contoso/migrations") as resp:
            return {r["userId"]: r for r in (await resp.json())["value"]}


async def counters(sim: dict[str, Any]) -> dict[str, Any]:
    """The simulator's ``/_sim/counters``."""
    async with aiohttp.ClientSession() as http, http.get(f"{sim['control']}/counters") as r:
        found: dict[str, Any] = await r.json()
        return found


async def start_all(daemon: Daemon, users: list[dict[str, Any]]) -> None:
    """Start-CsExMeetingMigration for each user."""
    async with admin(daemon) as api:
        for user in users:
            async with api.post(
                "http://mmsd/v1/tenants/contoso/migrations", json={"identity": user["id"]}
            ) as resp:
                assert resp.status == 202, await resp.text()


async def until(check: Any, what: str, every: float = 0.05) -> Any:
    """Poll ``check`` until it returns something truthy (the daemon reports to no one)."""
    async with asyncio.timeout(DEADLINE_S):
        while True:
            found = await check()
            if found:
                return found
            await asyncio.sleep(every)


async def all_succeeded(daemon: Daemon, users: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """Wait until every user's migration finished; each must have Succeeded."""

    async def done() -> dict[str, dict[str, Any]] | None:
        latest = await records(daemon)
        states = {u["id"]: latest.get(u["id"], {}).get("state") for u in users}
        assert "Failed" not in states.values(), states
        return latest if all(state == "Succeeded" for state in states.values()) else None

    found: dict[str, dict[str, Any]] = await until(done, "every migration to succeed", 0.1)
    return found


@pytest.mark.parametrize("sim", [LOADED], indirect=True)
async def test_ready_watchdog_and_clean_stop_under_load(
    daemon: Daemon, sim: dict[str, Any]
) -> None:
    daemon.start()
    assert (await daemon.message("READY=1")).startswith("READY=1\nSTATUS=serving 1 tenant(s)")
    for _ in range(2):
        await daemon.message("WATCHDOG=1")

    async with aiohttp.ClientSession() as http:
        async with http.get(f"{daemon.metrics_url()}/metrics") as resp:
            assert resp.status == 200
            text = await resp.text()
        assert 'mmsd_migration_users{state="Pending",tenant="contoso"}' in text
        assert re.search(r'^mmsd_actors\{kind="\w+"\} \d', text, re.M), "no live actors"
        async with http.get(f"{daemon.metrics_url()}/readyz") as resp:
            assert resp.status == 200
        users = [u for u in await sim_users(http, sim) if u["kind"] == "ordinary"]
    assert len(users) == 4

    await start_all(daemon, users)

    # SIGTERM lands mid-migration: users in progress and some of their meetings updated.
    async def mid_migration() -> bool:
        patched = sum((await counters(sim))["patchesByEvent"].values())
        return (await summary(daemon)).get("InProgress", 0) >= 1 and patched > 0

    await until(mid_migration, "migrations in progress with meetings updated")
    at_sigterm = await summary(daemon)
    assert at_sigterm["InProgress"] >= 1, at_sigterm

    assert daemon.process is not None
    loop = asyncio.get_running_loop()
    started = loop.time()
    daemon.process.send_signal(signal.SIGTERM)
    await daemon.message("STOPPING=1")
    code = await asyncio.wait_for(asyncio.to_thread(daemon.process.wait), TIMEOUT_STOP_S)
    assert code == 0
    assert loop.time() - started < TIMEOUT_STOP_S

    lines = daemon.lines()  # every line is one JSON object
    assert lines and all({"time", "level", "logger", "message"} <= set(line) for line in lines)
    assert not EMAIL.search(daemon.stdout.read_text()), "an e-mail address reached the log"
    errors = [line["message"] for line in lines if line["level"] in ("error", "critical")]
    assert errors == [], "a clean stop logged errors"

    # Nothing lost, nothing twice: after a restart every migration finishes, no meeting
    # got a second PATCH, and the PATCHes the simulator applied are the meetings the
    # records say were updated (less those found already current, which needed none).
    daemon.start()
    await daemon.message("READY=1")
    latest = await all_succeeded(daemon, users)
    patches = (await counters(sim))["patchesByEvent"]
    assert patches and max(patches.values()) == 1, patches
    already_current = 0
    async with admin(daemon) as api:
        for user in users:
            async with api.get(
                f"http://mmsd/v1/tenants/contoso/migrations/{user['id']}/history"
            ) as resp:
                history = (await resp.json())["value"]
            already_current += sum(1 for h in history if h["reason"] == "alreadyCurrent")
            assert {h["correlationId"] for h in history} == {latest[user["id"]]["correlationId"]}
    succeeded = sum(latest[u["id"]]["succeededMeeting"] for u in users)
    assert sum(patches.values()) == succeeded - already_current, (succeeded, already_current)
    assert succeeded >= len(users) * 10  # the load was real

    # STATUS= follows the queue (refreshed with the metrics, every 5 s).
    async with asyncio.timeout(DEADLINE_S):
        while True:
            status = (await daemon.message("STATUS=")).strip()
            assert re.fullmatch(
                r"STATUS=serving 1 tenant\(s\): \d+ in progress, \d+ pending, "
                r"\d+ succeeded, \d+ failed",
                status,
            ), status
            if status.endswith("0 in progress, 0 pending, 4 succeeded, 0 failed"):
                break


async def test_prometheus_scrapes_the_daemon_and_failed_alert_fires(
    daemon: Daemon, sim: dict[str, Any], tmp_path: Path
) -> None:
    binary = tool("prometheus")
    daemon.start()
    await daemon.message("READY=1")
    target = daemon.metrics_url().removeprefix("http://")
    prometheus, url = start_prometheus(binary, tmp_path, target)
    try:
        async with aiohttp.ClientSession() as http:

            async def query(expr: str) -> list[Any]:
                async with http.get(f"{url}/api/v1/query", params={"query": expr}) as resp:
                    body = await resp.json()
                assert body["status"] == "success", (expr, body)
                result: list[Any] = body["data"]["result"]
                return result

            async def poll(check: Any, what: str) -> Any:
                async with asyncio.timeout(DEADLINE_S):
                    while True:
                        try:
                            found = await check()
                        except aiohttp.ClientError:
                            found = None
                        if found:
                            return found
                        await asyncio.sleep(0.2)

            async def scraped() -> bool:
                found = await query('count_over_time(up{job="mmsd"}[1m])')
                return bool(found) and float(found[0]["value"][1]) >= 3

            await poll(scraped, "three scrapes")
            dashboard = json.loads(DASHBOARD.read_text(encoding="utf-8"))
            empty = [
                f"{title} [{ref}]"
                for title, ref, expr in panel_queries(dashboard)
                if not await query(substitute(expr))
            ]
            assert not empty, f"dashboard queries without data: {empty}"

            onprem = next(u for u in await sim_users(http, sim) if u["kind"] == "onPremisesMailbox")
            async with admin(daemon) as api:
                async with api.post(
                    "http://mmsd/v1/tenants/contoso/migrations", json={"identity": onprem["id"]}
                ) as resp:
                    assert resp.status == 202, await resp.text()

            async def firing() -> list[dict[str, Any]]:
                async with http.get(f"{url}/api/v1/alerts") as resp:
                    alerts = (await resp.json())["data"]["alerts"]
                return [
                    a
                    for a in alerts
                    if a["labels"]["alertname"] == "MmsdMigrationFailed" and a["state"] == "firing"
                ]

            (alert,) = await poll(firing, "MmsdMigrationFailed to fire")
            assert alert["labels"]["tenant"] == "contoso"
    finally:
        prometheus.terminate()
        prometheus.wait(10)


async def _tenants(daemon: Daemon) -> list[str]:
    async with admin(daemon) as api, api.get("http://mmsd/v1/tenants") as resp:
        return [t["name"] for t in (await resp.json())["value"]]


async def _reload(daemon: Daemon, config: str) -> None:
    """Write ``config`` and send SIGHUP; return once the daemon says it is ready again."""
    assert daemon.process is not None
    daemon.config.write_text(config)
    daemon.process.send_signal(signal.SIGHUP)
    await daemon.message("RELOADING=1")
    await daemon.message("READY=1")


@pytest.mark.parametrize("sim", [LOADED], indirect=True)
async def test_sighup_adds_and_removes_tenants_and_changes_limits_without_losing_work(
    daemon: Daemon, sim: dict[str, Any]
) -> None:
    # One user actor at a time to begin with: one user InProgress, the others Pending.
    daemon.config.write_text("max_user_actors = 1\n" + daemon.config.read_text())
    daemon.start()
    await daemon.message("READY=1")
    original = daemon.config.read_text()
    async with aiohttp.ClientSession() as http:
        users = [u for u in await sim_users(http, sim) if u["kind"] == "ordinary"]
    await start_all(daemon, users)  # work in flight across the reloads

    async def one_running_others_waiting() -> dict[str, int] | None:
        counts = await summary(daemon)
        assert counts.get("InProgress", 0) <= 1, counts  # the cap holds
        return counts if counts.get("InProgress") == 1 and counts["Pending"] >= 2 else None

    at_reload = await until(one_running_others_waiting, "one migration in progress")
    assert at_reload["InProgress"] == 1 and at_reload["Pending"] >= 2

    second = original.split("[tenants.contoso]")[1]
    limits = "[tenants.contoso.limits]\noutlook_concurrency = 2\n"
    raised = original.replace("max_user_actors = 1\n", "max_user_actors = 4\n")
    await _reload(daemon, raised + limits + "[tenants.fabrikam]" + second)
    assert await _tenants(daemon) == ["contoso", "fabrikam"]
    messages = [line["message"] for line in daemon.lines()]
    assert "configuration reloaded" in messages
    assert "tenant limits or credentials changed: new Graph client" in messages
    assert "max_user_actors changed to 4: applied to every tenant" in messages

    # The new cap shows in behaviour: several users in progress at once (1 was the cap).
    async def several_running() -> bool:
        return (await summary(daemon)).get("InProgress", 0) >= 2

    await until(several_running, "more than one migration in progress after the reload")

    await _reload(daemon, raised + limits)
    assert await _tenants(daemon) == ["contoso"]
    async with admin(daemon) as api, api.get("http://mmsd/v1/tenants/fabrikam/configuration") as r:
        assert r.status == 404

    # A broken file is refused and the running configuration kept.
    await _reload(daemon, raised + "[tenants.contoso.limits]\nbogus = 1\n")
    assert await _tenants(daemon) == ["contoso"]
    assert any(
        line["level"] == "error" and "reload refused" in line["message"] for line in daemon.lines()
    )

    # Nothing in flight was lost: every migration posted before the reloads finishes.
    await all_succeeded(daemon, users)
    assert max((await counters(sim))["patchesByEvent"].values()) == 1
    assert daemon.process is not None and daemon.process.poll() is None
