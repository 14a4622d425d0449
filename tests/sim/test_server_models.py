"""Every JSON the simulator serves parses into msgraph-sdk's models with only ``@odata.*`` left over."""

from __future__ import annotations

import dataclasses
from typing import Any

import aiohttp
from kiota_serialization_json.json_parse_node import JsonParseNode
from msgraph.generated.models.event import Event
from msgraph.generated.models.event_message_request import EventMessageRequest
from msgraph.generated.models.message import Message
from msgraph.generated.models.online_meeting import OnlineMeeting
from msgraph.generated.models.user import User
from sim_server_helpers import attendee, control_url, new_meeting, post_event

from mmsd.sim.server import Simulator


def leftovers(obj: Any, path: str = "$") -> list[str]:
    """Every ``additional_data`` key that is not an ``@odata.*`` annotation, with its path."""
    out: list[str] = []
    if isinstance(obj, list):
        for i, item in enumerate(obj):
            out += leftovers(item, f"{path}[{i}]")
        return out
    if not dataclasses.is_dataclass(obj):
        return out
    extra = getattr(obj, "additional_data", None) or {}
    out += [f"{path}.{k}" for k in extra if not k.startswith("@odata.")]
    for f in dataclasses.fields(obj):
        if f.name in ("additional_data", "backing_store", "odata_type"):
            continue
        out += leftovers(getattr(obj, f.name, None), f"{path}.{f.name}")
    return out


def parse(data: dict[str, Any], factory: Any) -> Any:
    """Deserialize one JSON object with kiota's JSON parse node."""
    return JsonParseNode(data).get_object_value(factory)


async def get_json(http: aiohttp.ClientSession, url: str, **params: str) -> Any:
    """GET and decode JSON (asserting 200)."""
    async with http.get(url, params=params) as r:
        assert r.status == 200, await r.text()
        return await r.json()


async def test_users_parse(sim: Simulator, http: aiohttp.ClientSession) -> None:
    users = (await get_json(http, f"{sim.graph_base_url}/users"))["value"]
    for data in users:
        user = parse(data, User)
        assert user.id == data["id"]
        assert leftovers(user) == []
    delta = (await get_json(http, f"{sim.graph_base_url}/users/delta"))["value"]
    assert all(leftovers(parse(d, User)) == [] for d in delta)


async def test_events_parse(sim: Simulator, http: aiohttp.ClientSession) -> None:
    seen_types: set[str] = set()
    window = {"startDateTime": "2029-01-01T00:00:00Z", "endDateTime": "2031-01-01T00:00:00Z"}
    for user in sim.state.users[:8]:  # the rest: test_event_by_id_and_instances_parse
        base = f"{sim.graph_base_url}/users/{user.id}"
        if user.mailbox != "exchangeOnline":
            continue
        items = (await get_json(http, f"{base}/events", **{"$top": "1000"}))["value"]
        items += (await get_json(http, f"{base}/calendarView", **window, **{"$top": "1000"}))[
            "value"
        ]
        for data in items:
            event = parse(data, Event)
            assert leftovers(event) == [], data["id"]
            seen_types.add(data["type"])
    assert {"singleInstance", "seriesMaster", "occurrence"} <= seen_types


async def test_event_by_id_and_instances_parse(sim: Simulator, http: aiohttp.ClientSession) -> None:
    window = {"startDateTime": "2029-01-01T00:00:00Z", "endDateTime": "2031-01-01T00:00:00Z"}
    by_id = masters = instances = 0
    for user in sim.state.users[8:]:  # the first 8: test_events_parse
        if user.mailbox != "exchangeOnline":
            continue
        base = f"{sim.graph_base_url}/users/{user.id}"
        for event in list(sim.state.mailbox_events(user.id).values())[:3]:
            data = await get_json(http, f"{base}/events/{event.id}")
            assert data["id"] == event.id
            assert leftovers(parse(data, Event)) == [], event.id
            by_id += 1
            if data["type"] != "seriesMaster" or masters >= 3:
                continue
            masters += 1
            url = f"{base}/events/{event.id}/instances"
            for inst in (await get_json(http, url, **window, **{"$top": "1000"}))["value"]:
                assert leftovers(parse(inst, Event)) == [], inst["id"]
                instances += 1
    assert by_id >= 20 and masters >= 1 and instances >= 1


async def test_patch_answer_and_join_url_lookup_parse(
    sim: Simulator, http: aiohttp.ClientSession
) -> None:
    organizer, att = sim.state.users[0], sim.state.users[1]
    created = await post_event(sim, http, organizer, new_meeting([att]))
    assert leftovers(parse(created, Event)) == []
    url = f"{sim.graph_base_url}/users/{organizer.id}/events/{created['id']}"
    async with http.patch(url, json={"subject": "moved ✓", "body": created["body"]}) as r:
        assert r.status == 200
        answer = await r.json()
    assert answer["subject"] == "moved ✓"
    assert leftovers(parse(answer, Event)) == []

    teams = [
        (e.organizer_id, e.data["onlineMeeting"]["joinUrl"])
        for u in sim.state.users
        for e in sim.state.mailbox_events(u.id).values()
        if e.copy.value == "organizer"
        and (e.data.get("onlineMeeting") or {}).get("joinUrl", "").startswith("https://teams.")
    ]
    assert teams
    organizer_id, join_url = teams[0]
    found = (
        await get_json(
            http,
            f"{sim.graph_base_url}/users/{organizer_id}/onlineMeetings",
            **{"$filter": f"JoinWebUrl eq '{join_url}'"},
        )
    )["value"]
    assert len(found) == 1
    meeting = parse(found[0], OnlineMeeting)
    assert leftovers(meeting) == []
    assert meeting.join_web_url == join_url


async def test_ndr_message_parses(sim: Simulator, http: aiohttp.ClientSession) -> None:
    organizer, att = sim.state.users[0], sim.state.users[1]
    async with http.patch(f"{control_url(sim)}/limits", json={"send_recipients": 2}) as r:
        assert r.status == 200
    created = await post_event(sim, http, organizer, new_meeting([att]))  # 2 recipients
    url = f"{sim.graph_base_url}/users/{organizer.id}/events/{created['id']}"
    async with http.patch(url, json={"subject": "again"}) as r:
        assert r.status == 200
    msgs = (await get_json(http, f"{sim.graph_base_url}/users/{organizer.id}/messages"))["value"]
    ndrs = [m for m in msgs if str(m.get("subject", "")).startswith("Undeliverable")]
    assert len(ndrs) == 1
    ndr = parse(ndrs[0], Message)
    assert leftovers(ndr) == []
    assert ndr.body is not None and "554 5.2.0" in (ndr.body.content or "")


def test_leftovers_finds_unknown_keys_at_any_depth() -> None:
    data = {
        "id": "e1",
        "@odata.etag": 'W/"x"',
        "occurrenceId": "nope",
        "body": {"contentType": "text", "content": "", "extra": 1},
        "attendees": [{"type": "required", "emailAddress": {"address": "a@b", "odd": 2}}],
    }
    found = leftovers(parse(data, Event))
    assert sorted(k.rsplit(".", 1)[1] for k in found) == ["extra", "occurrenceId", "odd"]


async def test_messages_and_meetings_parse(sim: Simulator, http: aiohttp.ClientSession) -> None:
    organizer, att = sim.state.users[0], sim.state.users[1]
    body = new_meeting([att])
    created = await post_event(sim, http, organizer, body)
    async with http.patch(
        f"{sim.graph_base_url}/users/{organizer.id}/events/{created['id']}",
        json={"attendees": [attendee(att)]},
    ) as r:
        assert r.status == 200
    msgs = (await get_json(http, f"{sim.graph_base_url}/users/{att.id}/messages"))["value"]
    assert msgs
    for data in msgs:
        msg = parse(data, Message)
        assert leftovers(msg) == []
    assert isinstance(parse(msgs[0], Message), EventMessageRequest)

    async with http.post(
        f"{sim.graph_base_url}/users/{organizer.id}/onlineMeetings/createOrGet",
        json={"externalId": "m-1"},
    ) as r:
        meeting = await r.json()
    stored = (await get_json(http, f"{control_url(sim)}/online-meetings/{organizer.id}"))["value"]
    for data in [meeting, *stored]:
        parsed = parse(data, OnlineMeeting)
        assert leftovers(parsed) == []
    assert parse(meeting, OnlineMeeting).join_web_url == meeting["joinWebUrl"]
