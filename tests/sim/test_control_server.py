"""The ``/_sim/`` control surface: users, clock, counters, limits, faults, holds, bounds, certificates."""

from __future__ import annotations

import asyncio
from typing import Any

import aiohttp
import pytest
from sim_server_helpers import control_url

from mmsd.sim.server import Simulator


async def first_event(sim: Simulator, user_id: str) -> dict[str, Any]:
    """A stored organizer event of a user."""
    for e in sim.state.mailbox_events(user_id).values():
        if e.data["isOrganizer"] and e.data["type"] in ("singleInstance", "seriesMaster"):
            return e.data
    raise AssertionError("no organizer event")


async def test_users_and_conferencing(sim: Simulator, http: aiohttp.ClientSession) -> None:
    async with http.get(f"{control_url(sim)}/users") as r:
        users = (await r.json())["value"]
    assert [u["id"] for u in users] == [u.id for u in sim.state.users]
    assert [u["kind"] for u in users[:4]] == ["ordinary"] * 4
    assert all(u["mailbox"] == "exchangeOnline" and u["audioConferencing"] for u in users[:4])
    user = sim.state.users[0]
    url = f"{control_url(sim)}/users/{user.id}/conferencing"
    async with http.put(url, json={"tollNumbers": ["+1 555 0000"], "dialInEnabled": False}) as r:
        assert r.status == 200
    async with http.get(url) as r:
        prof = await r.json()
    assert prof["tollNumbers"] == ["+1 555 0000"] and prof["dialInEnabled"] is False
    async with http.put(url, json={"nope": 1}) as r:
        assert r.status == 400
    async with http.post(
        f"{control_url(sim)}/users/{user.id}/acp-provider", json={"provider": "thirdParty"}
    ) as r:
        assert user.conferencing.audio_conferencing_provider == "thirdParty"
    async with http.post(
        f"{control_url(sim)}/users/{user.id}/acp-provider", json={"provider": "microsoft"}
    ) as r:
        assert (await r.json())["trigger"]["type"] == "acpProviderSwitchedToMicrosoft"
    async with http.post(f"{control_url(sim)}/users/{user.id}/bridge-number/unassign") as r:
        change = await r.json()
    assert change["trigger"]["type"] == "bridgeNumberUnassigned"
    assert change["trigger"]["conferencing"]["tollNumbers"] == []
    async with http.get(f"{control_url(sim)}/users/nobody") as r:
        assert r.status == 404


async def test_clock_and_counters(sim: Simulator, http: aiohttp.ClientSession) -> None:
    async with http.get(f"{control_url(sim)}/clock") as r:
        before = await r.json()
    assert before["now"].startswith("2030-01-01T00:0")
    async with http.post(f"{control_url(sim)}/clock/advance", json={"seconds": 3600}) as r:
        after = await r.json()
    assert after["now"].startswith("2030-01-01T01:0")
    async with http.post(f"{control_url(sim)}/clock/advance", json={"seconds": -1}) as r:
        assert r.status == 400
    user = sim.state.users[0]
    for _ in range(3):
        async with http.get(f"{sim.graph_base_url}/users/{user.id}/events") as r:
            assert r.status == 200
    async with http.get(f"{control_url(sim)}/counters") as r:
        counters = await r.json()
    assert counters["requests"]["GET events"] == 3
    assert set(counters["throttled"]) >= {"mailboxConcurrency", "teamsTenant", "application"}
    assert "onlineMeetingsCreated" in counters and "messagesByMailbox" in counters


async def test_events_raw_state(sim: Simulator, http: aiohttp.ClientSession) -> None:
    user = sim.state.users[0]
    async with http.get(f"{control_url(sim)}/events/{user.id}") as r:
        items = (await r.json())["value"]
    assert len(items) == len(sim.state.mailbox_events(user.id))
    assert {i["copy"] for i in items} <= {"organizer", "attendee", "delegate"}


async def test_limits_knob(sim: Simulator, http: aiohttp.ClientSession) -> None:
    async with http.get(f"{control_url(sim)}/limits") as r:
        assert (await r.json())["outlook_concurrency"] == 4
    async with http.put(f"{control_url(sim)}/limits", json={"outlook_requests": 2}) as r:
        assert r.status == 200
    assert sim.throttler.profile.outlook_requests == 2
    user = sim.state.users[0]
    statuses = []
    for _ in range(3):
        async with http.get(f"{sim.graph_base_url}/users/{user.id}/events") as r:
            statuses.append(r.status)
            if r.status == 429:
                assert r.headers["Retry-After"].isdigit()
    assert statuses == [200, 200, 429]
    async with http.put(f"{control_url(sim)}/limits", json={"outlook_requests": "x"}) as r:
        assert r.status == 400


async def test_fault_knobs(sim: Simulator, http: aiohttp.ClientSession) -> None:
    user = sim.state.users[0]
    url = f"{sim.graph_base_url}/users/{user.id}/events"
    async with http.put(f"{control_url(sim)}/faults", json={"rates": {"http503": 1.0}}) as r:
        assert r.status == 200
    async with http.get(url) as r:
        assert r.status == 503
    async with http.put(f"{control_url(sim)}/faults", json={"rates": {"http504": 1.0}}) as r:
        assert r.status == 200
    async with http.get(url) as r:
        assert r.status == 504
    async with http.put(f"{control_url(sim)}/faults", json={"rates": {"reset": 1.0}}) as r:
        assert r.status == 200
    with pytest.raises(aiohttp.ClientError):
        async with http.get(url) as r:
            await r.read()
    async with http.put(
        f"{control_url(sim)}/faults", json={"rates": {"timeout": 1.0}, "timeoutSeconds": 0.05}
    ) as r:
        assert r.status == 200
    with pytest.raises(aiohttp.ClientError):
        async with http.get(url) as r:
            await r.read()
    async with http.put(f"{control_url(sim)}/faults", json={"rates": {"nope": 1.0}}) as r:
        assert r.status == 400
    async with http.put(f"{control_url(sim)}/faults", json={"rates": {}}) as r:
        assert (await r.json())["injected"]["http503"] == 1
    async with http.get(url) as r:
        assert r.status == 200


async def test_lost_patch_answer_applies_the_patch(
    sim: Simulator, http: aiohttp.ClientSession
) -> None:
    user = sim.state.users[0]
    event = await first_event(sim, user.id)
    async with http.put(
        f"{control_url(sim)}/faults", json={"rates": {"lostPatchAnswer": 1.0}}
    ) as r:
        assert r.status == 200
    url = f"{sim.graph_base_url}/users/{user.id}/events/{event['id']}"
    with pytest.raises(aiohttp.ClientError):
        async with http.patch(url, json={"subject": "applied"}) as r:
            await r.read()
    assert sim.state.mailbox_events(user.id)[event["id"]].data["subject"] == "applied"
    async with http.get(url) as r:  # GETs are not affected by lostPatchAnswer
        assert r.status == 200


async def test_hold_after_patch(sim: Simulator, http: aiohttp.ClientSession) -> None:
    user = sim.state.users[0]
    event = await first_event(sim, user.id)
    async with http.post(f"{control_url(sim)}/holds", json={"eventId": event["id"]}) as r:
        hold_id = (await r.json())["holdId"]
    url = f"{sim.graph_base_url}/users/{user.id}/events/{event['id']}"

    async def patch() -> int:
        async with http.patch(url, json={"subject": "held"}) as r:
            return r.status

    task = asyncio.create_task(patch())
    async with http.post(f"{control_url(sim)}/holds/wait", json={"holdId": hold_id}) as r:
        held = await r.json()
    assert held["heldEventId"] == event["id"]
    assert sim.state.mailbox_events(user.id)[event["id"]].data["subject"] == "held"
    assert not task.done()
    async with http.get(f"{control_url(sim)}/holds") as r:
        assert [h["holdId"] for h in (await r.json())["value"]] == [hold_id]
    async with http.post(f"{control_url(sim)}/holds/release", json={"holdId": hold_id}) as r:
        assert r.status == 200
    assert await task == 200


async def test_bounds(sim: Simulator, http: aiohttp.ClientSession) -> None:
    wave = {"mailboxes": {"u1": {"outlookRequests": 9}}, "otherRequests": 0}
    async with http.post(
        f"{control_url(sim)}/bounds", json={"wave": wave, "latencySeconds": 1.0}
    ) as r:
        assert r.status == 200
        bound = await r.json()
    assert bound["seconds"] == pytest.approx(3.0)  # 9 requests, 4 at a time, 1 s each
    async with http.post(f"{control_url(sim)}/bounds", json={"wave": {"bogus": 1}}) as r:
        assert r.status == 400


async def test_certificate_registration(sim: Simulator, http: aiohttp.ClientSession) -> None:
    cert_pem, _key = sim.authority_server.make_client_certificate()
    async with http.post(f"{control_url(sim)}/certificates", json={"pem": cert_pem.decode()}) as r:
        assert r.status == 201
        assert (await r.json())["thumbprint"]
    async with http.post(f"{control_url(sim)}/certificates", json={"pem": "garbage"}) as r:
        assert r.status == 400
