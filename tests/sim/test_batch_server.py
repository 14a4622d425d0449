"""JSON batching on the simulator: limits, dependsOn, per-request throttling, Outlook parallelism."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import aiohttp
from sim_server_helpers import fetch_token, make_config

from mmsd.sim.server import Simulator


async def batch(
    sim: Simulator, http: aiohttp.ClientSession, requests: Any
) -> tuple[int, dict[str, Any]]:
    """POST a batch; (status, JSON)."""
    async with http.post(f"{sim.graph_base_url}/$batch", json={"requests": requests}) as r:
        return r.status, await r.json()


async def test_batch_answers_each_request(sim: Simulator, http: aiohttp.ClientSession) -> None:
    user = sim.state.users[0]
    status, body = await batch(
        sim,
        http,
        [
            {"id": "1", "method": "GET", "url": f"/users/{user.id}"},
            {"id": "2", "method": "GET", "url": f"/users/{user.id}/events?$top=2"},
            {"id": "3", "method": "GET", "url": "/users/nobody@x.example"},
            {
                "id": "4",
                "method": "POST",
                "url": f"/users/{user.id}/events",
                "headers": {"Content-Type": "application/json"},
                "body": {"subject": "from batch ✓"},
            },
        ],
    )
    assert status == 200
    by_id = {r["id"]: r for r in body["responses"]}
    assert by_id["1"]["status"] == 200 and by_id["1"]["body"]["id"] == user.id
    assert by_id["2"]["status"] == 200 and len(by_id["2"]["body"]["value"]) == 2
    assert by_id["3"]["status"] == 404
    assert by_id["4"]["status"] == 201 and by_id["4"]["body"]["subject"] == "from batch ✓"


async def test_malformed_batches_are_400(sim: Simulator, http: aiohttp.ClientSession) -> None:
    get = {"method": "GET", "url": "/users"}
    bad: list[Any] = [
        [{"id": str(i), **get} for i in range(21)],  # more than 20
        [{"id": "1", **get}, {"id": "1", **get}],  # duplicate ids
        [{"id": "1", "method": "GET", "url": "https://graph.microsoft.com/v1.0/users"}],
        [{"id": "1", "method": "POST", "url": "/users/x/events", "body": {}}],  # no Content-Type
        [{"id": "1", **get, "dependsOn": ["9"]}],
        "nope",
    ]
    for requests in bad:
        status, body = await batch(sim, http, requests)
        assert status == 400, requests
        assert body["error"]["code"] == "BadRequest"


async def test_depends_on_failure_is_424(sim: Simulator, http: aiohttp.ClientSession) -> None:
    status, body = await batch(
        sim,
        http,
        [
            {"id": "a", "method": "GET", "url": "/users/nobody@x.example"},
            {"id": "b", "method": "GET", "url": "/users", "dependsOn": ["a"]},
            {"id": "c", "method": "GET", "url": "/users"},
        ],
    )
    assert status == 200
    by_id = {r["id"]: r["status"] for r in body["responses"]}
    assert by_id == {"a": 404, "b": 424, "c": 200}


async def test_outlook_requests_of_a_batch_run_four_at_a_time(tmp_path: Path) -> None:
    # 8 requests to one mailbox, each held 400 ms: four at a time take two rounds
    # (>= 0.8 s, measured 0.93 s); two at a time would take 1.6 s, one at a time 3.2 s,
    # all at once 0.4 s.
    async with Simulator(make_config(tmp_path, latency_ms=400.0)) as sim:
        token = await fetch_token(sim)
        user = sim.state.users[0]
        requests = [
            {"id": str(i), "method": "GET", "url": f"/users/{user.id}/events?$top=1"}
            for i in range(8)
        ]
        async with aiohttp.ClientSession(headers={"Authorization": f"Bearer {token}"}) as http:
            started = time.perf_counter()
            status, body = await batch(sim, http, requests)
            elapsed = time.perf_counter() - started
        assert status == 200
        assert sorted(r["status"] for r in body["responses"]) == [200] * 8
        assert sim.throttler.counters()["mailboxConcurrency"] == 0
        assert 0.8 <= elapsed < 1.2, elapsed


async def test_each_batch_request_is_throttled(sim: Simulator, http: aiohttp.ClientSession) -> None:
    async with http.patch(
        f"{sim.graph_base_url.removesuffix('/v1.0')}/_sim/limits",
        json={"outlook_requests": 3, "outlook_window_s": 600},
    ) as r:
        assert r.status == 200
    user = sim.state.users[0]
    requests = [
        {"id": str(i), "method": "GET", "url": f"/users/{user.id}/events"} for i in range(5)
    ]
    status, body = await batch(sim, http, requests)
    assert status == 200
    statuses = sorted(r["status"] for r in body["responses"])
    assert statuses == [200, 200, 200, 429, 429]
    throttled = [r for r in body["responses"] if r["status"] == 429]
    assert all(r["headers"]["Retry-After"].isdigit() for r in throttled)
