"""Events over the simulator's Graph: list, filter, select, paging, POST, PATCH, If-Match, messages."""

from __future__ import annotations

import json
from typing import Any

import aiohttp
from sim_server_helpers import (
    UNICODE_BODY,
    control_url,
    messages,
    new_meeting,
    post_event,
)

from mmsd.sim.model import SimUser
from mmsd.sim.server import Simulator


async def test_post_keeps_body_byte_for_byte(sim: Simulator, http: aiohttp.ClientSession) -> None:
    organizer = sim.state.users[0]
    body = json.dumps(new_meeting([]), ensure_ascii=False).encode()
    async with http.post(
        f"{sim.graph_base_url}/users/{organizer.id}/events",
        data=body,
        headers={"Content-Type": "application/json"},
    ) as r:
        assert r.status == 201
        raw = await r.read()
    created = json.loads(raw)
    assert created["body"]["content"] == UNICODE_BODY
    assert (
        UNICODE_BODY.encode() in raw or json.dumps(UNICODE_BODY, ensure_ascii=False).encode() in raw
    )
    async with http.get(f"{sim.graph_base_url}/users/{organizer.id}/events/{created['id']}") as r:
        again = await r.json()
    assert again["body"]["content"] == UNICODE_BODY
    assert again["@odata.etag"] == f'W/"{again["changeKey"]}"'
    assert again["organizer"]["emailAddress"]["address"] == organizer.mail


async def test_invitations_and_attendee_copies(sim: Simulator, http: aiohttp.ClientSession) -> None:
    organizer, *atts = sim.state.users[:4]
    before = {u.id: len(await messages(sim, http, u)) for u in atts}
    created = await post_event(sim, http, organizer, new_meeting(atts, subject="Invite me"))
    for user in atts:
        msgs = await messages(sim, http, user)
        assert len(msgs) == before[user.id] + 1
        assert msgs[-1]["@odata.type"] == "#microsoft.graph.eventMessageRequest"
        assert msgs[-1]["subject"] == "Invite me"
        assert msgs[-1]["meetingRequestType"] == "newMeetingRequest"
        copies = [
            e
            for e in sim.state.mailbox_events(user.id).values()
            if e.data["iCalUId"] == created["iCalUId"]
        ]
        assert len(copies) == 1 and copies[0].data["isOrganizer"] is False


async def test_body_patch_sends_one_update_per_attendee(
    sim: Simulator, http: aiohttp.ClientSession
) -> None:
    organizer, *atts = sim.state.users[:4]
    created = await post_event(sim, http, organizer, new_meeting(atts))
    before = {u.id: len(await messages(sim, http, u)) for u in atts}
    new_body = {"contentType": "html", "content": UNICODE_BODY.replace("Hello", "Hallo")}
    async with http.patch(
        f"{sim.graph_base_url}/users/{organizer.id}/events/{created['id']}",
        json={"body": new_body},
        headers={"If-Match": created["@odata.etag"]},
    ) as r:
        assert r.status == 200
        patched = await r.json()
    assert patched["body"]["content"] == new_body["content"]
    assert patched["changeKey"] != created["changeKey"]
    for user in atts:
        msgs = await messages(sim, http, user)
        assert len(msgs) == before[user.id] + 1
        assert msgs[-1]["meetingRequestType"] == "fullUpdate"
        assert msgs[-1]["subject"] == created["subject"]
    # Even a PATCH that changes nothing sends one update each.
    async with http.patch(
        f"{sim.graph_base_url}/users/{organizer.id}/events/{created['id']}",
        json={"subject": created["subject"]},
    ) as r:
        assert r.status == 200
    for user in atts:
        assert len(await messages(sim, http, user)) == before[user.id] + 2
    assert sim.counters.patches[created["id"]] == 2


async def test_stale_if_match_is_412_and_changes_nothing(
    sim: Simulator, http: aiohttp.ClientSession
) -> None:
    organizer, *atts = sim.state.users[:3]
    created = await post_event(sim, http, organizer, new_meeting(atts))
    url = f"{sim.graph_base_url}/users/{organizer.id}/events/{created['id']}"
    async with http.patch(url, json={"subject": "v2"}) as r:
        assert r.status == 200
    before = {u.id: len(await messages(sim, http, u)) for u in atts}
    async with http.patch(
        url, json={"subject": "v3"}, headers={"If-Match": created["@odata.etag"]}
    ) as r:
        assert r.status == 412
        assert (await r.json())["error"]["code"] == "ErrorIrresolvableConflict"
    async with http.get(url) as r:
        now = await r.json()
    assert now["subject"] == "v2"
    assert {u.id: len(await messages(sim, http, u)) for u in atts} == before


async def test_online_meeting_fields_are_fixed(sim: Simulator, http: aiohttp.ClientSession) -> None:
    organizer = sim.state.users[0]
    body = new_meeting([]) | {
        "isOnlineMeeting": True,
        "onlineMeetingProvider": "teamsForBusiness",
    }
    created = await post_event(sim, http, organizer, body)
    async with http.patch(
        f"{sim.graph_base_url}/users/{organizer.id}/events/{created['id']}",
        json={
            "isOnlineMeeting": False,
            "onlineMeetingProvider": "skypeForBusiness",
            "subject": "s",
        },
    ) as r:
        assert r.status == 200
        patched = await r.json()
    assert patched["isOnlineMeeting"] is True
    assert patched["onlineMeetingProvider"] == "teamsForBusiness"
    assert patched["subject"] == "s"


async def test_unknown_property_is_400(sim: Simulator, http: aiohttp.ClientSession) -> None:
    organizer = sim.state.users[0]
    async with http.post(
        f"{sim.graph_base_url}/users/{organizer.id}/events", json={"subject": "x", "bogus": 1}
    ) as r:
        assert r.status == 400
        assert (await r.json())["error"]["code"] == "RequestBodyRead"


async def test_list_filter_select_and_paging(sim: Simulator, http: aiohttp.ClientSession) -> None:
    user = sim.state.users[0]
    stored = [
        e.data
        for e in sim.state.mailbox_events(user.id).values()
        if e.data["type"] in ("singleInstance", "seriesMaster")
    ]
    got: list[dict[str, Any]] = []
    url: str | None = f"{sim.graph_base_url}/users/{user.id}/events?$top=3"
    while url:
        async with http.get(url) as r:
            assert r.status == 200
            page = await r.json()
        assert len(page["value"]) <= 3
        got += page["value"]
        url = page.get("@odata.nextLink")
    assert [e["id"] for e in got] == [e["id"] for e in stored]

    flt = "start/dateTime ge '2030-01-01T00:00:00Z' and isOrganizer eq true"
    async with http.get(
        f"{sim.graph_base_url}/users/{user.id}/events",
        params={"$filter": flt, "$select": "subject,start,isOrganizer", "$top": "100"},
        headers={"Prefer": 'odata.maxpagesize=50, outlook.body-content-type="text"'},
    ) as r:
        page = await r.json()
    expected = [
        e["id"]
        for e in stored
        if e["isOrganizer"] and e["start"]["dateTime"][:19] >= "2030-01-01T00:00:00"
    ]
    assert [e["id"] for e in page["value"]] == expected
    assert all(
        set(e) <= {"@odata.etag", "id", "subject", "start", "isOrganizer"} for e in page["value"]
    )

    async with http.get(
        f"{sim.graph_base_url}/users/{user.id}/events",
        params={"$filter": "isOnlineMeeting eq true"},
    ) as r:
        assert r.status == 400
        assert (await r.json())["error"]["code"] == "ErrorInvalidProperty"

    async with http.get(
        f"{sim.graph_base_url}/users/{user.id}/events",
        params={"$select": "onlineMeeting", "$top": "50"},
    ) as r:
        page = await r.json()
    assert all(e.get("onlineMeeting") is None for e in page["value"])


async def test_body_content_type_preference(sim: Simulator, http: aiohttp.ClientSession) -> None:
    organizer = sim.state.users[0]
    created = await post_event(sim, http, organizer, new_meeting([]))
    async with http.get(
        f"{sim.graph_base_url}/users/{organizer.id}/events/{created['id']}",
        headers={"Prefer": 'outlook.body-content-type="text"'},
    ) as r:
        assert r.headers["Preference-Applied"] == 'outlook.body-content-type="text"'
        text = (await r.json())["body"]
    assert text["contentType"] == "text"
    assert (
        "<b>" not in text["content"]
        and "会議の件" in text["content"]
        and "<kept>" in text["content"]
    )


async def test_calendar_view_and_instances(sim: Simulator, http: aiohttp.ClientSession) -> None:
    masters = [
        (u, e)
        for u in sim.state.users
        for e in sim.state.mailbox_events(u.id).values()
        if e.data["type"] == "seriesMaster" and e.data["isOrganizer"]
    ]
    assert masters, "the generated tenant has series"
    user, master = masters[0]
    window = {"startDateTime": "2029-06-01T00:00:00Z", "endDateTime": "2031-01-01T00:00:00Z"}
    async with http.get(
        f"{sim.graph_base_url}/users/{user.id}/events/{master.id}/instances",
        params=window | {"$top": "1000"},
    ) as r:
        assert r.status == 200
        inst = (await r.json())["value"]
    assert inst and all(i.get("seriesMasterId") == master.id for i in inst)
    assert {i["type"] for i in inst} <= {"occurrence", "exception"}
    async with http.get(
        f"{sim.graph_base_url}/users/{user.id}/calendarView", params=window | {"$top": "1000"}
    ) as r:
        view = (await r.json())["value"]
    ids = {v["id"] for v in view}
    assert {i["id"] for i in inst} <= ids
    assert all(v["type"] != "seriesMaster" for v in view)
    async with http.get(f"{sim.graph_base_url}/users/{user.id}/calendarView") as r:
        assert r.status == 400


async def test_messages_listed_newest_first(sim: Simulator, http: aiohttp.ClientSession) -> None:
    organizer, att = sim.state.users[0], sim.state.users[1]
    await post_event(sim, http, organizer, new_meeting([att], subject="first"))
    await post_event(sim, http, organizer, new_meeting([att], subject="second"))
    for path in ("messages", "mailFolders/inbox/messages"):
        async with http.get(f"{sim.graph_base_url}/users/{att.id}/{path}?$top=2") as r:
            page = await r.json()
        assert [m["subject"] for m in page["value"]] == ["second", "first"]
        msg_id = page["value"][0]["id"]
    async with http.get(f"{sim.graph_base_url}/users/{att.id}/messages/{msg_id}") as r:
        assert (await r.json())["subject"] == "second"


async def test_sending_limits_delay_and_bounce(sim: Simulator, http: aiohttp.ClientSession) -> None:
    organizer, att = sim.state.users[0], sim.state.users[1]
    async with http.patch(
        f"{control_url(sim)}/limits", json={"send_messages": 2, "send_recipients": 6}
    ) as r:
        assert r.status == 200
    created = await post_event(sim, http, organizer, new_meeting([att]))  # 2 recipients
    base = len(await messages(sim, http, att))
    url = f"{sim.graph_base_url}/users/{organizer.id}/events/{created['id']}"
    for _ in range(2):
        async with http.patch(url, json={"subject": "again"}) as r:
            assert r.status == 200
    # 3 messages within a minute with a limit of 2: the third waits for the clock.
    assert len(await messages(sim, http, att)) == base + 1
    async with http.post(f"{control_url(sim)}/clock/advance", json={"seconds": 61}) as r:
        assert r.status == 200
    assert len(await messages(sim, http, att)) == base + 2
    # 6 recipients a day: the fourth message bounces with a non-delivery report.
    async with http.patch(url, json={"subject": "again"}) as r:
        assert r.status == 200
    assert len(await messages(sim, http, att)) == base + 2
    ndr = (await messages(sim, http, organizer))[-1]
    assert ndr["subject"].startswith("Undeliverable")
    assert (
        "554 5.2.0 STOREDRV.Submission.Exception:SubmissionQuotaExceededException"
        in ndr["body"]["content"]
    )


async def test_series_master_patch_updates_per_exception(
    sim: Simulator, http: aiohttp.ClientSession
) -> None:
    found = None
    for user in sim.state.users:
        box = sim.state.mailbox_events(user.id)
        for e in box.values():
            if e.data["type"] != "seriesMaster" or e.copy != "organizer":
                continue
            exceptions = [
                x
                for x in box.values()
                if x.data.get("seriesMasterId") == e.id and x.data["type"] == "exception"
            ]
            atts = [
                sim.state.user_by_address(a["emailAddress"]["address"]) for a in e.data["attendees"]
            ]
            inside = [
                a
                for a in atts
                if a is not None and a.mailbox == "exchangeOnline" and a.id != user.id
            ]
            if exceptions and inside:
                found = (user, e, exceptions, inside)
                break
        if found:
            break
    assert found is not None, "the generated tenant has a series with exceptions and attendees"
    user, master, exceptions, inside = found

    def listed(event: dict[str, Any], who: SimUser) -> bool:
        return any(
            a["emailAddress"]["address"].lower() == who.mail.lower() for a in event["attendees"]
        )

    before = {a.id: len(await messages(sim, http, a)) for a in inside}
    async with http.patch(
        f"{sim.graph_base_url}/users/{user.id}/events/{master.id}", json={"subject": "series v2"}
    ) as r:
        assert r.status == 200
    for a in inside:
        expected = 1 + sum(listed(x.data, a) for x in exceptions)
        assert len(await messages(sim, http, a)) - before[a.id] == expected
    assert sim.counters.patches[master.id] == 1
