"""A real Prometheus scrapes mmsd's metrics listener: every dashboard query returns data,
and the alert rules evaluate — ``MmsdMigrationFailed`` fires once a migration fails.

The listener here serves a :class:`Metrics` fed through its observer protocols (the
engine's and the Graph client's), so every series can be driven to a known value
quickly; ``test_ops_daemon.py`` does the same against the real ``mmsd run`` daemon.
Prometheus scrapes and evaluates every 0.5 s; the test polls its HTTP API.
"""

from __future__ import annotations

import asyncio
import json
import socket
import subprocess
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from ops_testkit import ALERTS, DASHBOARD, panel_queries, substitute, tool

from mmsd.actors import KindStats, SystemStats
from mmsd.domain.model import MigrationState
from mmsd.graph.client import RequestEvent
from mmsd.metrics import Metrics, MetricsServer
from mmsd.store import QueueMetrics

DEADLINE_S = 30.0


class Queue:
    """A fixed queue snapshot for every tenant."""

    async def queue_metrics(self, tenant: str) -> QueueMetrics:
        return QueueMetrics(
            users_by_state={
                MigrationState.PENDING: 4,
                MigrationState.IN_PROGRESS: 1,
                MigrationState.SUCCEEDED: 3,
                MigrationState.FAILED: 0,
            },
            oldest_pending_seconds=12.0,
            oldest_in_progress_seconds=30.0,
            pending_waiting_for_quota=1,
            pending_total=4,
        )


class Actors:
    """Two kinds of actors."""

    def stats(self) -> SystemStats:
        return SystemStats(
            kinds={"tenant": KindStats(live=1), "user": KindStats(live=3, mailbox_depth=2)},
            tasks=4,
        )


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def feed(metrics: Metrics) -> None:
    """Some of everything, through the observer protocols."""
    metrics.trigger_decided("contoso", "bridgeChanged", "migrated")
    metrics.trigger_decided("contoso", "sipAddressChanged", "ignored")
    metrics.migration_started("contoso", 90.0)
    metrics.migration_finished("contoso", "Succeeded", 700.0)
    metrics.meeting_outcome("contoso", "updated", None)
    metrics.meeting_outcome("contoso", "skipped", "noBlock")
    metrics.invites_sent("contoso", 5)
    for _ in range(40):  # 1 throttled in 41: under the 5 % alert
        metrics.on_request(RequestEvent("contoso", "get_event", 200, "2xx", 0.05, False, None, 1))
    metrics.on_request(RequestEvent("contoso", "patch_event", 429, "4xx", 0.2, True, 3.0, 1))


@pytest.fixture
async def listener() -> AsyncIterator[tuple[Metrics, MetricsServer]]:
    metrics = Metrics(["contoso", "fabrikam"], store=Queue(), actors=Actors())
    await metrics.refresh()
    server = MetricsServer(metrics, "127.0.0.1:0", ready=lambda: True)
    await server.start()
    try:
        yield metrics, server
    finally:
        await server.stop()


@pytest.fixture
def prometheus(tmp_path: Path, listener: tuple[Metrics, MetricsServer]) -> Iterator[str]:
    """A Prometheus scraping the listener and evaluating alerts.yml; yields its URL."""
    binary = tool("prometheus")
    _, server = listener
    config = {
        "global": {"scrape_interval": "500ms", "evaluation_interval": "500ms"},
        "rule_files": [str(ALERTS)],
        "scrape_configs": [
            {
                "job_name": "mmsd",
                "static_configs": [{"targets": [f"127.0.0.1:{server.port}"]}],
            }
        ],
    }
    (tmp_path / "prometheus.yml").write_text(json.dumps(config))
    port = free_port()
    log = (tmp_path / "prometheus.log").open("w")
    process = subprocess.Popen(
        [
            binary,
            f"--config.file={tmp_path / 'prometheus.yml'}",
            f"--storage.tsdb.path={tmp_path / 'data'}",
            f"--web.listen-address=127.0.0.1:{port}",
        ],
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        yield url
    finally:
        process.terminate()
        try:
            process.wait(10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        log.close()


async def until(check: Any, what: str) -> Any:
    """Poll the async ``check`` until it returns something truthy, or fail after a deadline."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + DEADLINE_S
    while True:
        result = await check()
        if result:
            return result
        if loop.time() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        await asyncio.sleep(0.2)


async def query(http: aiohttp.ClientSession, url: str, expr: str) -> list[Any]:
    async with http.get(f"{url}/api/v1/query", params={"query": expr}) as resp:
        body = await resp.json()
    assert body["status"] == "success", (expr, body)
    result: list[Any] = body["data"]["result"]
    return result


async def test_dashboard_queries_return_data_and_failed_alert_fires(
    listener: tuple[Metrics, MetricsServer], prometheus: str
) -> None:
    metrics, _ = listener
    feed(metrics)
    async with aiohttp.ClientSession() as http:

        async def up() -> bool:
            try:
                async with http.get(f"{prometheus}/-/ready") as resp:
                    if resp.status != 200:
                        return False
            except aiohttp.ClientError:
                return False
            # Rates need two samples inside the 1m window.
            found = await query(http, prometheus, 'count_over_time(up{job="mmsd"}[1m])')
            return bool(found) and float(found[0]["value"][1]) >= 3

        await until(up, "Prometheus to scrape mmsd three times")
        assert float((await query(http, prometheus, 'up{job="mmsd"}'))[0]["value"][1]) == 1

        # More traffic between scrapes, so that rates are not all zero.
        feed(metrics)
        dashboard = json.loads(DASHBOARD.read_text(encoding="utf-8"))
        empty = []
        for title, ref, expr in panel_queries(dashboard):
            if not await query(http, prometheus, substitute(expr)):
                empty.append(f"{title} [{ref}]: {expr}")
        assert not empty, "queries without data:\n" + "\n".join(empty)

        async def alerts() -> list[dict[str, Any]]:
            async with http.get(f"{prometheus}/api/v1/alerts") as resp:
                body = await resp.json()
            found: list[dict[str, Any]] = body["data"]["alerts"]
            return found

        async def rules_loaded() -> bool:
            async with http.get(f"{prometheus}/api/v1/rules") as resp:
                body = await resp.json()
            groups = body["data"]["groups"]
            return bool(groups) and all(r["health"] == "ok" for r in groups[0]["rules"])

        await until(rules_loaded, "the alert rules to be evaluated without errors")
        assert not [a for a in await alerts() if a["labels"]["alertname"] == "MmsdMigrationFailed"]

        metrics.migration_finished("contoso", "Failed", 5000.0)

        async def failed_firing() -> list[dict[str, Any]]:
            return [
                a
                for a in await alerts()
                if a["labels"]["alertname"] == "MmsdMigrationFailed" and a["state"] == "firing"
            ]

        (alert,) = await until(failed_firing, "MmsdMigrationFailed to fire")
        assert alert["labels"]["tenant"] == "contoso"
        assert alert["labels"]["severity"] == "warning"
        assert alert["annotations"]["runbook_url"].endswith("#runbook-mmsdmigrationfailed")
        assert "tenant contoso ended Failed" in alert["annotations"]["description"]
        # Nothing else fires on a healthy daemon.
        others = {a["labels"]["alertname"] for a in await alerts() if a["state"] == "firing"}
        assert others == {"MmsdMigrationFailed"}
