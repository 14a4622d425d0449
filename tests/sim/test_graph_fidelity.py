"""Graph fidelity the simulator promises beyond the basics: occurrences by ID, trigger bodies,
delta paging, time zones, dial-in labels, every limit at its scope and every fault, seen
through real clients (aiohttp and msgraph-sdk with azure-identity)."""

from __future__ import annotations

import asyncio
import json
import time
import urllib.parse
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import aiohttp
import httpx
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.x509.oid import NameOID
from kiota_abstractions.api_error import APIError
from sim_server_helpers import (
    GRAPH_SCOPE,
    attendee,
    control_url,
    graph_client,
    messages,
    new_meeting,
    post_event,
)

from mmsd.sim.generator import NUMBER_LABELS, UserKind
from mmsd.sim.graph_http import GraphRequest, dispatch
from mmsd.sim.model import CopyKind, SimEvent, SimUser
from mmsd.sim.server import Simulator

TRIGGER_CONFERENCING_KEYS = {
    "audioConferencingProvider",
    "sipAddress",
    "meetUrlBase",
    "conferenceId",
    "tollNumbers",
    "tollFreeNumbers",
    "dialInUrl",
}


def ordinary(sim: Simulator, n: int) -> SimUser:
    """The n-th ordinary user (Exchange Online, Audio Conferencing, provider microsoft)."""
    return [u for u in sim.state.users if u.kind == UserKind.ORDINARY][n]


def ongoing_master(sim: Simulator) -> tuple[SimUser, SimEvent]:
    """An organizer's series master that still has future occurrences and in-tenant attendees."""
    for user in sim.state.users:
        if user.kind != UserKind.ORDINARY:
            continue
        for event in sim.state.mailbox_events(user.id).values():
            data = event.data
            if (
                event.copy is CopyKind.ORGANIZER
                and data["type"] == "seriesMaster"
                and data["recurrence"]["range"]["type"] == "noEnd"
                and any(sim.state.user_by_address(a) for a in _addresses(data))
            ):
                return user, event
    raise AssertionError("the generated tenant has an ongoing series")


def _addresses(data: dict[str, Any]) -> list[str]:
    return [a["emailAddress"]["address"] for a in data["attendees"]]


# --- occurrences by ID ---------------------------------------------------------------


async def test_occurrence_read_and_patched_by_id_becomes_an_exception(
    sim: Simulator, http: aiohttp.ClientSession
) -> None:
    user, master = ongoing_master(sim)
    base = f"{sim.graph_base_url}/users/{user.id}"
    window = {"startDateTime": "2030-01-02T00:00:00Z", "endDateTime": "2030-04-01T00:00:00Z"}
    async with http.get(f"{base}/events/{master.id}/instances", params=window) as r:
        occurrences = [i for i in (await r.json())["value"] if i["type"] == "occurrence"]
    occ = occurrences[0]
    async with http.get(f"{base}/events/{occ['id']}") as r:
        assert r.status == 200
        read = await r.json()
    assert read["id"] == occ["id"] and read["type"] == "occurrence"
    assert read["seriesMasterId"] == master.id and read["start"] == occ["start"]

    invitees = [sim.state.user_by_address(a) for a in _addresses(master.data)]
    in_tenant = [u for u in invitees if u is not None and u.mailbox == "exchangeOnline"]
    before = {u.id: len(await messages(sim, http, u)) for u in in_tenant}
    body = {"contentType": "html", "content": "<p>Only this week: 🚀 room 4</p>"}
    async with http.patch(
        f"{base}/events/{occ['id']}", json={"body": body}, headers={"If-Match": read["@odata.etag"]}
    ) as r:
        assert r.status == 200, await r.text()
        patched = await r.json()
    assert patched["id"] == occ["id"] and patched["type"] == "exception"
    assert patched["body"] == body and patched["originalStart"] == read["originalStart"]
    assert patched["changeKey"] != read["changeKey"]
    stored = sim.state.mailbox_events(user.id)[occ["id"]]
    assert stored.data["type"] == "exception" and stored.data["seriesMasterId"] == master.id
    for u in in_tenant:
        assert len(await messages(sim, http, u)) == before[u.id] + 1
    async with http.get(f"{base}/events/{master.id}/instances", params=window) as r:
        again = {i["id"]: i for i in (await r.json())["value"]}
    assert again[occ["id"]]["type"] == "exception"
    assert again[occ["id"]]["body"] == body
    assert master.data["body"] != body  # the series keeps its own body


async def test_unknown_occurrence_ids_are_404(sim: Simulator, http: aiohttp.ClientSession) -> None:
    user, master = ongoing_master(sim)
    base = f"{sim.graph_base_url}/users/{user.id}/events"
    for bogus in (f"{master.id}_20300102T030405Z", f"{master.id}_nonsense", "x_20300101T000000Z"):
        async with http.get(f"{base}/{bogus}") as r:
            assert r.status == 404
            assert (await r.json())["error"]["code"] == "ErrorItemNotFound"
        async with http.patch(f"{base}/{bogus}", json={"subject": "x"}) as r:
            assert r.status == 404
    assert bogus not in sim.state.mailbox_events(user.id)


# --- /_sim/ admin changes and their trigger bodies --------------------------------------


async def test_every_admin_change_answers_a_spec_trigger_body(
    sim: Simulator, http: aiohttp.ClientSession
) -> None:
    user = ordinary(sim, 0)
    ctl = f"{control_url(sim)}/users/{user.id}"
    changes: list[tuple[str, dict[str, Any], str | None]] = [
        ("license", {"assigned": False}, "audioConferencingLicenseRemoved"),
        ("license", {"assigned": True}, "audioConferencingLicenseAssigned"),
        ("dial-in", {"enabled": False}, "dialInConferencingDisabled"),
        ("dial-in", {"enabled": True}, "dialInConferencingEnabled"),
        ("conference-id/reset", {}, "conferenceIdReset"),
        ("bridge", {}, "bridgeChanged"),
        ("bridge-number/unassign", {}, "bridgeNumberUnassigned"),
        ("acp-provider", {"provider": "thirdParty"}, None),
        ("acp-provider", {"provider": "microsoft"}, "acpProviderSwitchedToMicrosoft"),
        ("mailbox", {"location": "onPremises"}, "userMovedToOnPremises"),
        ("mailbox", {"location": "exchangeOnline"}, "userMovedToOnline"),
    ]
    for path, body, expected in changes:
        async with http.post(f"{ctl}/{path}", json=body) as r:
            assert r.status == 200, (path, await r.text())
            answer = await r.json()
        trigger = answer["trigger"]
        if expected is None:
            assert trigger is None, path
            continue
        assert set(trigger) == {"type", "identity", "conferencing"}, path
        assert trigger["type"] == expected and trigger["identity"] == user.id
        assert set(trigger["conferencing"]) == TRIGGER_CONFERENCING_KEYS, path
        assert "" not in trigger["conferencing"].values(), path
    assert answer["user"]["conferencing"]["audioConferencingProvider"] == "microsoft"


# --- users/delta page size ---------------------------------------------------------------


async def _pages(http: aiohttp.ClientSession, url: str, **headers: str) -> tuple[list[int], str]:
    sizes: list[int] = []
    while True:
        async with http.get(url, headers=headers) as r:
            assert r.status == 200
            page = await r.json()
        sizes.append(len(page["value"]))
        if "@odata.nextLink" in page:
            url = page["@odata.nextLink"]
            continue
        return sizes, page["@odata.deltaLink"]


async def test_delta_honours_top_and_maxpagesize(
    sim: Simulator, http: aiohttp.ClientSession
) -> None:
    sizes, _ = await _pages(http, f"{sim.graph_base_url}/users/delta?$top=7&$select=id")
    assert sizes == [7, 7, 6]
    sizes, link = await _pages(
        http, f"{sim.graph_base_url}/users/delta()?$select=id", Prefer="odata.maxpagesize=5"
    )
    assert sizes == [5, 5, 5, 5]
    sizes, _ = await _pages(http, f"{sim.graph_base_url}/users/delta")
    assert sizes == [20]  # default page of 200
    for user in sim.state.users[:3]:
        async with http.post(
            f"{control_url(sim)}/users/{user.id}/license", json={"assigned": False}
        ) as r:
            assert r.status == 200
    sizes, _ = await _pages(http, link, Prefer="odata.maxpagesize=2")
    assert sizes == [2, 1]


# --- Prefer: outlook.timezone ------------------------------------------------------------


@pytest.mark.parametrize(
    ("zone", "start", "applied"),
    [
        ("Pacific Standard Time", "2030-02-03T02:00:00.0000000", True),
        ("W. Europe Standard Time", "2030-02-03T11:00:00.0000000", True),
        ("Asia/Tokyo", "2030-02-03T19:00:00.0000000", True),
        ("UTC", "2030-02-03T10:00:00.0000000", True),
        ("Mars/Olympus_Mons", "2030-02-03T10:00:00.0000000", False),
    ],
)
async def test_outlook_timezone_preference(
    sim: Simulator, http: aiohttp.ClientSession, zone: str, start: str, applied: bool
) -> None:
    organizer = ordinary(sim, 0)
    created = await post_event(sim, http, organizer, new_meeting([]))
    url = f"{sim.graph_base_url}/users/{organizer.id}/events/{created['id']}"
    prefer = {"Prefer": f'outlook.timezone="{zone}"'}
    async with http.get(url, headers=prefer) as r:
        event = await r.json()
        header = r.headers.get("Preference-Applied")
    assert event["start"] == {"dateTime": start, "timeZone": zone if applied else "UTC"}
    assert header == (f'outlook.timezone="{zone}"' if applied else None)
    stored = sim.state.mailbox_events(organizer.id)[created["id"]].data
    assert stored["start"]["timeZone"] == "UTC"  # the answer is converted, not the event
    window = {"startDateTime": "2030-02-03T00:00:00Z", "endDateTime": "2030-02-04T00:00:00Z"}
    async with http.get(
        f"{sim.graph_base_url}/users/{organizer.id}/calendarView",
        params=window,
        headers={"Prefer": f'outlook.timezone="{zone}", outlook.body-content-type="text"'},
    ) as r:
        listed = {e["id"]: e for e in (await r.json())["value"]}
        assert "outlook.body-content-type" in r.headers["Preference-Applied"]
    assert listed[created["id"]]["start"]["dateTime"] == start
    async with http.patch(url, json={"subject": "tz"}, headers=prefer) as r:
        assert (await r.json())["start"]["dateTime"] == start


# --- dial-in labels ----------------------------------------------------------------------


async def test_join_information_labels_numbers_as_the_invitations_do(
    sim: Simulator, http: aiohttp.ClientSession
) -> None:
    user = ordinary(sim, 0)
    async with http.post(
        f"{sim.graph_base_url}/users/{user.id}/onlineMeetings", json={"subject": "labels"}
    ) as r:
        meeting = await r.json()
    html = urllib.parse.unquote(meeting["joinInformation"]["content"])
    labels = [NUMBER_LABELS[n] for n in user.conferencing.toll_numbers]
    assert labels and all(label in html for label in labels)
    assert "United States, City" not in html


# --- sending limits at their defaults ------------------------------------------------------


async def test_thirty_messages_a_minute_then_delivered_later_by_the_clock(
    sim: Simulator, http: aiohttp.ClientSession
) -> None:
    organizer, att = ordinary(sim, 0), ordinary(sim, 1)
    created = await post_event(sim, http, organizer, new_meeting([att]))  # message 1
    url = f"{sim.graph_base_url}/users/{organizer.id}/events/{created['id']}"
    base = len(await messages(sim, http, att))
    for i in range(30):  # messages 2..31
        async with http.patch(url, json={"subject": f"update {i}"}) as r:
            assert r.status == 200
    assert len(await messages(sim, http, att)) == base + 29
    async with http.get(f"{control_url(sim)}/counters") as r:
        assert (await r.json())["sending"]["pending"] == 1
    async with http.post(f"{control_url(sim)}/clock/advance", json={"seconds": 60}) as r:
        assert r.status == 200
    delivered = await messages(sim, http, att)
    assert len(delivered) == base + 30
    assert delivered[-1]["subject"] == "update 29"
    assert delivered[-1]["@odata.type"] == "#microsoft.graph.eventMessageRequest"


async def test_ten_thousand_recipients_a_day_then_ndr_554(
    sim: Simulator, http: aiohttp.ClientSession
) -> None:
    organizer, att = ordinary(sim, 0), ordinary(sim, 1)
    body = new_meeting([att])
    body["attendees"] = [attendee(att)] + [
        {"type": "required", "emailAddress": {"name": f"E{i}", "address": f"e{i}@fabrikam.example"}}
        for i in range(499)
    ]  # 500 recipients a message
    created = await post_event(sim, http, organizer, body)
    url = f"{sim.graph_base_url}/users/{organizer.id}/events/{created['id']}"
    for minute in range(19):  # 20 messages x 500 = 10,000 recipients
        async with http.patch(url, json={"subject": f"u{minute}"}) as r:
            assert r.status == 200
    base = len(await messages(sim, http, att))
    own = len(await messages(sim, http, organizer))
    async with http.patch(url, json={"subject": "one too many"}) as r:
        assert r.status == 200  # the PATCH succeeds; the message bounces
    assert len(await messages(sim, http, att)) == base
    ndrs = (await messages(sim, http, organizer))[own:]
    assert len(ndrs) == 1
    assert "554 5.2.0" in ndrs[0]["body"]["content"]
    assert "SubmissionQuotaExceededException" in ndrs[0]["body"]["content"]
    async with http.post(f"{control_url(sim)}/clock/advance", json={"seconds": 86_400}) as r:
        assert r.status == 200
    async with http.patch(url, json={"subject": "next day"}) as r:
        assert r.status == 200
    assert len(await messages(sim, http, att)) == base + 1


# --- Outlook upload, Teams rate, online meetings per user ---------------------------------


async def test_upload_limit_per_mailbox(sim: Simulator, http: aiohttp.ClientSession) -> None:
    async with http.patch(
        f"{control_url(sim)}/limits", json={"outlook_upload_bytes": 100_000}
    ) as r:
        assert r.status == 200
    a, b = ordinary(sim, 0), ordinary(sim, 1)
    big = new_meeting([])
    big["body"] = {"contentType": "text", "content": "x" * 60_000}
    await post_event(sim, http, a, big)
    async with http.post(f"{sim.graph_base_url}/users/{a.id}/events", json=big) as r:
        assert r.status == 429
        assert r.headers["Retry-After"].isdigit()
    await post_event(sim, http, b, big)  # another mailbox has its own budget
    huge = dict(big, body={"contentType": "text", "content": "x" * 120_000})
    async with http.post(f"{sim.graph_base_url}/users/{b.id}/events", json=huge) as r:
        assert r.status == 413


async def test_teams_thirty_requests_a_second_per_tenant(
    sim: Simulator, http: aiohttp.ClientSession
) -> None:
    users = [ordinary(sim, i) for i in range(3)]

    async def create(i: int) -> int:
        url = f"{sim.graph_base_url}/users/{users[i % 3].id}/onlineMeetings"
        async with http.post(url, json={"subject": f"m{i}"}) as r:
            return r.status

    t0 = time.monotonic()
    statuses = await asyncio.gather(*(create(i) for i in range(40)))
    assert time.monotonic() - t0 < 1.0, "the burst must fit inside one window"
    assert sorted(statuses) == [201] * 30 + [429] * 10


async def test_two_thousand_online_meetings_per_user_per_month(sim: Simulator, graph: Any) -> None:
    from msgraph.generated.models.online_meeting import OnlineMeeting

    sim.set_limits(replace(sim.ctx.limits, teams_requests=1_000_000))
    user, other = ordinary(sim, 0), ordinary(sim, 1)
    for i in range(2_000):  # the generated meetings count toward no limit
        req = GraphRequest("POST", f"/users/{user.id}/onlineMeetings", {}, {}, b'{"subject":"m"}')
        assert (await dispatch(sim.ctx, sim.router, req)).status == 201, i
    meetings = graph.users.by_user_id(user.id).online_meetings
    with pytest.raises(APIError) as raised:
        await meetings.post(OnlineMeeting(subject="one too many"))
    assert raised.value.response_status_code == 429
    created = await graph.users.by_user_id(other.id).online_meetings.post(OnlineMeeting())
    assert created.join_web_url
    sim.clock.advance(timedelta(days=30).total_seconds())
    again = await meetings.post(OnlineMeeting(subject="next month"))
    assert again.id


# --- faults, through msgraph-sdk ---------------------------------------------------------


async def _set_faults(http: aiohttp.ClientSession, sim: Simulator, **body: Any) -> None:
    async with http.put(f"{control_url(sim)}/faults", json=body) as r:
        assert r.status == 200, await r.text()


async def test_each_fault_seen_through_msgraph_sdk(
    sim: Simulator, http: aiohttp.ClientSession, graph: Any
) -> None:
    from msgraph.generated.models.event import Event

    user = ordinary(sim, 0)
    events = graph.users.by_user_id(user.id).events
    for kind, status in (("http503", 503), ("http504", 504)):
        await _set_faults(http, sim, rates={kind: 1.0})
        with pytest.raises(APIError) as raised:
            await events.get()
        assert raised.value.response_status_code == status
    await _set_faults(http, sim, rates={"reset": 1.0})
    with pytest.raises(httpx.TransportError):
        await events.get()
    await _set_faults(http, sim, rates={"timeout": 1.0}, timeoutSeconds=0.2)
    with pytest.raises(httpx.TransportError):
        await events.get()
    await _set_faults(http, sim, rates={"slow": 1.0}, slowSeconds=0.3)
    t0 = time.monotonic()
    page = await events.get()
    assert page.value and time.monotonic() - t0 >= 0.3
    target = page.value[0]
    await _set_faults(http, sim, rates={"lostPatchAnswer": 1.0})
    with pytest.raises(httpx.TransportError):
        await events.by_event_id(target.id).patch(Event(subject="applied, answer lost"))
    assert sim.state.mailbox_events(user.id)[target.id].data["subject"] == "applied, answer lost"
    await _set_faults(http, sim, rates={})
    async with http.get(f"{control_url(sim)}/counters") as r:
        injected = (await r.json())["faultsInjected"]
    assert {k: injected[k] for k in ("http503", "http504", "reset", "timeout", "slow")} == {
        "http503": 1,
        "http504": 1,
        "reset": 1,
        "timeout": 1,
        "slow": 1,
    }
    assert injected["lostPatchAnswer"] == 1


async def test_hold_after_an_applied_patch_through_msgraph_sdk(
    sim: Simulator, http: aiohttp.ClientSession, graph: Any
) -> None:
    from msgraph.generated.models.event import Event

    user = ordinary(sim, 0)
    target = next(iter(sim.state.mailbox_events(user.id).values()))
    async with http.post(f"{control_url(sim)}/holds", json={"eventId": target.id}) as r:
        hold = (await r.json())["holdId"]
    patch = asyncio.create_task(
        graph.users.by_user_id(user.id).events.by_event_id(target.id).patch(Event(subject="held"))
    )
    async with http.post(f"{control_url(sim)}/holds/wait", json={"holdId": hold}) as r:
        assert r.status == 200
    assert target.data["subject"] == "held" and not patch.done()  # applied, not answered
    async with http.post(f"{control_url(sim)}/holds/release", json={"holdId": hold}) as r:
        assert r.status == 200
    answered = await patch
    assert answered.subject == "held"


# --- CertificateCredential end to end -------------------------------------------------------


def _self_signed() -> tuple[bytes, bytes]:
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "mmsd test app")])
    now = datetime.now(UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - timedelta(minutes=5))
        .not_valid_after(now + timedelta(days=1))
        .sign(key, hashes.SHA256())
    )
    key_pem = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    return cert.public_bytes(serialization.Encoding.PEM), key_pem


async def test_certificate_credential_end_to_end(sim: Simulator, tmp_path: Path) -> None:
    from azure.identity.aio import CertificateCredential

    cert_pem, key_pem = _self_signed()
    async with aiohttp.ClientSession() as s:  # /_sim/ needs no token
        async with s.post(f"{control_url(sim)}/certificates", json={"pem": cert_pem.decode()}) as r:
            assert r.status == 201
    pem_file = tmp_path / "app.pem"
    pem_file.write_bytes(cert_pem + key_pem)
    credential = CertificateCredential(
        sim.tenant_id,
        sim.client_id,
        certificate_path=str(pem_file),
        authority=sim.authority,
        disable_instance_discovery=True,
        connection_verify=str(sim.ca_file),
    )
    async with credential:
        graph = graph_client(sim, credential)
        users = await graph.users.get()
        token = await credential.get_token(GRAPH_SCOPE)
    assert [u.id for u in users.value] == [u.id for u in sim.state.users]
    claims = json.loads(_b64(token.token.split(".")[1]))
    assert claims["appidacr"] == "2"  # certificate, not secret


def _b64(part: str) -> bytes:
    import base64

    return base64.urlsafe_b64decode(part + "=" * (-len(part) % 4))


# --- delegate copies ----------------------------------------------------------------------


async def test_delegate_copy_is_organizer_of_someone_elses_meeting(
    sim: Simulator, http: aiohttp.ClientSession
) -> None:
    delegate = next(u for u in sim.state.users if u.kind == UserKind.DELEGATE)
    async with http.get(
        f"{sim.graph_base_url}/users/{delegate.id}/events",
        params={"$filter": "isOrganizer eq true", "$top": "100"},
    ) as r:
        mine = (await r.json())["value"]
    others = [e for e in mine if e["organizer"]["emailAddress"]["address"] != delegate.mail]
    assert others, "a delegate holds copies of the boss's meetings"
    boss_mail = others[0]["organizer"]["emailAddress"]["address"]
    boss = sim.state.user_by_address(boss_mail)
    assert boss is not None and boss.kind == UserKind.DELEGATE_BOSS
    assert all(e["isOrganizer"] for e in others)
    boss_ical = {e.data["iCalUId"] for e in sim.state.mailbox_events(boss.id).values()}
    assert {e["iCalUId"] for e in others} <= boss_ical


# --- Outlook request window and attendees per event, at their defaults ----------------------


async def test_ten_thousand_outlook_requests_per_ten_minutes_per_mailbox(
    sim: Simulator, http: aiohttp.ClientSession
) -> None:
    a, b = ordinary(sim, 0), ordinary(sim, 1)
    event_id = next(iter(sim.state.mailbox_events(a.id)))
    path = f"/users/{a.id}/events/{event_id}"
    for _ in range(10_000):
        assert (
            await dispatch(sim.ctx, sim.router, GraphRequest("GET", path, {}, {}))
        ).status == 200
    async with http.get(f"{sim.graph_base_url}{path}") as r:
        assert r.status == 429
        assert (await r.json())["error"]["code"] == "ApplicationThrottled"
        assert 590 <= int(r.headers["Retry-After"]) <= 600
    async with http.get(f"{sim.graph_base_url}/users/{b.id}/events") as r:
        assert r.status == 200  # another mailbox is not affected
    sim.clock.advance(600)
    async with http.get(f"{sim.graph_base_url}{path}") as r:
        assert r.status == 200


async def test_at_most_500_attendees_per_event(sim: Simulator, http: aiohttp.ClientSession) -> None:
    organizer = ordinary(sim, 0)
    body = new_meeting([])
    body["attendees"] = [
        {"type": "required", "emailAddress": {"name": f"E{i}", "address": f"e{i}@fabrikam.example"}}
        for i in range(501)
    ]
    async with http.post(f"{sim.graph_base_url}/users/{organizer.id}/events", json=body) as r:
        assert r.status == 400
        assert (await r.json())["error"]["code"] == "ErrorExceededMaxRecipientLimit"
    body["attendees"] = body["attendees"][:500]
    await post_event(sim, http, organizer, body)


async def test_trigger_conferencing_leaves_out_values_the_user_lacks(sim: Simulator) -> None:
    """A user without a conference ID gets no empty ``conferenceId`` in trigger bodies."""
    from mmsd.sim.control import trigger_profile

    user = ordinary(sim, 0)
    user.conferencing.conference_id = ""
    profile = trigger_profile(user)
    assert "conferenceId" not in profile
    assert set(profile) == TRIGGER_CONFERENCING_KEYS - {"conferenceId"}
