"""The simulator's Graph server: auth, users, errors, on-premises mailboxes, latency throttling."""

from __future__ import annotations

import asyncio
from pathlib import Path

import aiohttp
from sim_server_helpers import control_url, fetch_token, make_config

from mmsd.sim.server import Simulator


async def test_users_listed_and_paged(sim: Simulator, http: aiohttp.ClientSession) -> None:
    async with http.get(f"{sim.graph_base_url}/users") as r:
        assert r.status == 200
        body = await r.json()
    assert len(body["value"]) == 20
    assert "@odata.nextLink" not in body
    seen: list[str] = []
    url: str | None = f"{sim.graph_base_url}/users?$top=6&$select=id,userPrincipalName"
    while url:
        async with http.get(url) as r:
            page = await r.json()
        assert all(set(u) == {"id", "userPrincipalName"} for u in page["value"])
        seen += [u["id"] for u in page["value"]]
        url = page.get("@odata.nextLink")
    assert seen == [u["id"] for u in body["value"]]


async def test_user_by_id_and_upn(sim: Simulator, http: aiohttp.ClientSession) -> None:
    user = sim.state.users[2]
    async with http.get(f"{sim.graph_base_url}/users/{user.user_principal_name.upper()}") as r:
        assert r.status == 200
        assert (await r.json())["id"] == user.id
    async with http.get(f"{sim.graph_base_url}/users/nobody@nowhere.example") as r:
        assert r.status == 404
        err = (await r.json())["error"]
    assert err["code"] == "Request_ResourceNotFound"
    assert set(err["innerError"]) == {"date", "request-id", "client-request-id"}


async def test_no_or_bad_token_is_401(sim: Simulator) -> None:
    async with aiohttp.ClientSession() as s:
        for headers in ({}, {"Authorization": "Bearer garbage"}, {"Authorization": "Basic x"}):
            async with s.get(f"{sim.graph_base_url}/users", headers=headers) as r:
                assert r.status == 401
                assert (await r.json())["error"]["code"] == "InvalidAuthenticationToken"


async def test_token_from_printed_credentials_works(sim: Simulator) -> None:
    token = await fetch_token(sim)
    async with (
        aiohttp.ClientSession() as s,
        s.get(f"{sim.graph_base_url}/users", headers={"Authorization": f"Bearer {token}"}) as r,
    ):
        assert r.status == 200


async def test_sdk_lists_users(graph: object, sim: Simulator) -> None:
    result = await graph.users.get()  # type: ignore[attr-defined]
    assert [u.id for u in result.value] == [u.id for u in sim.state.users]


async def test_unknown_event_and_route(sim: Simulator, http: aiohttp.ClientSession) -> None:
    user = sim.state.users[0]
    async with http.get(f"{sim.graph_base_url}/users/{user.id}/events/AAMkNOPE") as r:
        assert r.status == 404
        assert (await r.json())["error"]["code"] == "ErrorItemNotFound"
    async with http.get(f"{sim.graph_base_url}/nothingHere") as r:
        assert r.status == 400


async def test_on_premises_mailbox(sim: Simulator, http: aiohttp.ClientSession) -> None:
    user = sim.state.users[1]
    async with http.post(
        f"{control_url(sim)}/users/{user.id}/mailbox", json={"location": "onPremises"}
    ) as r:
        assert r.status == 200
        assert (await r.json())["trigger"]["type"] == "userMovedToOnPremises"
    for path in (
        "events",
        "messages",
        "calendarView?startDateTime=2030-01-01&endDateTime=2030-02-01",
    ):
        async with http.get(f"{sim.graph_base_url}/users/{user.id}/{path}") as r:
            assert r.status == 404
            err = (await r.json())["error"]
            assert err["code"] == "MailboxNotEnabledForRESTAPI"
            assert err["message"] == "REST API is not yet supported for this mailbox."
    async with http.post(
        f"{control_url(sim)}/users/{user.id}/mailbox", json={"location": "exchangeOnline"}
    ) as r:
        assert (await r.json())["trigger"]["type"] == "userMovedToOnline"
    async with http.get(f"{sim.graph_base_url}/users/{user.id}/events") as r:
        assert r.status == 200


async def test_latency_holds_mailbox_concurrency_slot(tmp_path: Path) -> None:
    async with Simulator(make_config(tmp_path, latency_ms=400.0)) as sim:
        token = await fetch_token(sim)
        a, b = sim.state.users[0], sim.state.users[1]
        async with aiohttp.ClientSession(headers={"Authorization": f"Bearer {token}"}) as s:

            async def get(user_id: str) -> tuple[int, str | None, str]:
                async with s.get(f"{sim.graph_base_url}/users/{user_id}/events") as r:
                    body = await r.json()
                    code = body.get("error", {}).get("code", "")
                    return r.status, r.headers.get("Retry-After"), code

            results = await asyncio.gather(*(get(a.id) for _ in range(8)), get(b.id))
        mine, other = results[:8], results[8]
        assert sorted(status for status, _, _ in mine) == [200] * 4 + [429] * 4
        for status, retry_after, code in mine:
            if status == 429:
                assert code == "ApplicationThrottled"
                assert retry_after is not None and retry_after.isdigit()
        assert other[0] == 200
        assert sim.throttler.counters()["mailboxConcurrency"] == 4


async def test_no_auth_mode_accepts_calls_without_token(tmp_path: Path) -> None:
    async with (
        Simulator(make_config(tmp_path, auth=False)) as sim,
        aiohttp.ClientSession() as s,
        s.get(f"{sim.graph_base_url}/users?$top=1") as r,
    ):
        assert r.status == 200
        assert len((await r.json())["value"]) == 1
