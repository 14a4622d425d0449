"""Online meetings over the simulator's Graph: createOrGet, POST, list by JoinWebUrl, live dial-in."""

from __future__ import annotations

import urllib.parse
from typing import Any

import aiohttp
from sim_server_helpers import control_url

from mmsd.sim.server import Simulator


async def create_or_get(
    sim: Simulator, http: aiohttp.ClientSession, user_id: str, external_id: str | None
) -> tuple[int, dict[str, Any]]:
    """POST createOrGet and return (status, JSON)."""
    body: dict[str, Any] = {"subject": "Migrated"}
    if external_id is not None:
        body["externalId"] = external_id
    async with http.post(
        f"{sim.graph_base_url}/users/{user_id}/onlineMeetings/createOrGet", json=body
    ) as r:
        return r.status, await r.json()


async def test_create_or_get_twice(sim: Simulator, http: aiohttp.ClientSession) -> None:
    user = sim.state.users[0]
    s1, first = await create_or_get(sim, http, user.id, "evt-1:corr-1")
    s2, second = await create_or_get(sim, http, user.id, "evt-1:corr-1")
    assert (s1, s2) == (201, 200)
    assert first["id"] == second["id"]
    assert first["joinWebUrl"] == second["joinWebUrl"]
    assert first["joinWebUrl"].startswith("https://teams.microsoft.com/l/meetup-join/")
    assert first["joinMeetingIdSettings"]["joinMeetingId"].isdigit()
    assert first["joinMeetingIdSettings"]["passcode"]
    assert first["joinInformation"]["contentType"] == "html"
    html = urllib.parse.unquote(first["joinInformation"]["content"].removeprefix("data:text/html,"))
    assert first["joinWebUrl"].split("?")[0] in html or "meetup-join" in html
    assert sim.counters.online_meetings_created == 1
    s3, _ = await create_or_get(sim, http, user.id, None)
    assert s3 == 400


async def test_post_and_filter_by_join_url(sim: Simulator, http: aiohttp.ClientSession) -> None:
    user = sim.state.users[1]
    async with http.post(
        f"{sim.graph_base_url}/users/{user.id}/onlineMeetings",
        json={"startDateTime": "2030-03-01T10:00:00Z", "endDateTime": "2030-03-01T11:00:00Z"},
    ) as r:
        assert r.status == 201
        made = await r.json()
    assert made["startDateTime"].startswith("2030-03-01T10:00:00")
    async with http.get(
        f"{sim.graph_base_url}/users/{user.id}/onlineMeetings",
        params={"$filter": f"JoinWebUrl eq '{made['joinWebUrl']}'"},
    ) as r:
        assert r.status == 200
        found = (await r.json())["value"]
    assert [m["id"] for m in found] == [made["id"]]
    assert "joinInformation" in found[0]
    async with http.get(  # $select, as Graph documents the OData parameters there
        f"{sim.graph_base_url}/users/{user.id}/onlineMeetings",
        params={
            "$filter": f"JoinWebUrl eq '{made['joinWebUrl']}'",
            "$select": "joinWebUrl,audioConferencing",
        },
    ) as r:
        assert r.status == 200
        (selected,) = (await r.json())["value"]
    assert set(selected) == {"id", "joinWebUrl", "audioConferencing"}
    async with http.get(
        f"{sim.graph_base_url}/users/{user.id}/onlineMeetings/{made['id']}",
        params={"$select": "joinMeetingIdSettings"},
    ) as r:
        assert r.status == 200
        one = await r.json()
    assert set(one) - {"@odata.context"} == {"id", "joinMeetingIdSettings"}
    async with http.get(f"{sim.graph_base_url}/users/{user.id}/onlineMeetings") as r:
        assert r.status == 400


async def test_audio_conferencing_follows_admin_changes(
    sim: Simulator, http: aiohttp.ClientSession
) -> None:
    user = sim.state.users[0]
    _, meeting = await create_or_get(sim, http, user.id, "x-1")
    audio = meeting["audioConferencing"]
    assert audio["conferenceId"] == user.conferencing.conference_id
    assert audio["tollNumbers"] == user.conferencing.toll_numbers
    async with http.post(f"{control_url(sim)}/users/{user.id}/bridge", json={}) as r:
        change = await r.json()
    assert change["trigger"]["type"] == "bridgeChanged"
    assert set(change["trigger"]["conferencing"]) == {
        "audioConferencingProvider",
        "sipAddress",
        "meetUrlBase",
        "conferenceId",
        "tollNumbers",
        "tollFreeNumbers",
        "dialInUrl",
    }
    _, again = await create_or_get(sim, http, user.id, "x-1")
    assert (
        again["audioConferencing"]["tollNumbers"]
        == change["trigger"]["conferencing"]["tollNumbers"]
    )
    assert again["audioConferencing"]["tollNumbers"] != audio["tollNumbers"]
    assert again["joinInformation"] != meeting["joinInformation"]
    async with http.post(f"{control_url(sim)}/users/{user.id}/conference-id/reset") as r:
        new_id = (await r.json())["trigger"]["conferencing"]["conferenceId"]
    assert new_id != audio["conferenceId"]
    _, again = await create_or_get(sim, http, user.id, "x-1")
    assert again["audioConferencing"]["conferenceId"] == new_id
    async with http.post(
        f"{control_url(sim)}/users/{user.id}/dial-in", json={"enabled": False}
    ) as r:
        assert (await r.json())["trigger"]["type"] == "dialInConferencingDisabled"
    _, again = await create_or_get(sim, http, user.id, "x-1")
    assert again["audioConferencing"] is None


async def test_teams_rate_limit(sim: Simulator, http: aiohttp.ClientSession) -> None:
    async with http.patch(f"{control_url(sim)}/limits", json={"teams_requests": 3}) as r:
        assert r.status == 200
    user = sim.state.users[0]
    statuses = [(await create_or_get(sim, http, user.id, f"e-{i}"))[0] for i in range(5)]
    assert statuses == [201, 201, 201, 429, 429]
    assert sim.throttler.counters()["teamsTenant"] == 2
