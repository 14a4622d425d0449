"""The generated tenant: determinism, user kinds, the meeting mix, SDK-parsable JSON, speed."""

from __future__ import annotations

import json
import re
import time
from collections import Counter
from datetime import UTC, datetime
from typing import Any
from urllib.parse import unquote

import pytest
from kiota_serialization_json.json_parse_node import JsonParseNode
from msgraph.generated.models.event import Event
from msgraph.generated.models.online_meeting import OnlineMeeting

from mmsd.sim.eventjson import parse_graph_datetime
from mmsd.sim.generator import LARGE_MEETING_MIN_ATTENDEES, UserKind, generate_tenant
from mmsd.sim.invites import _STRINGS
from mmsd.sim.model import (
    AUDIO_CONFERENCING_PLAN_ID,
    CopyKind,
    MailboxLocation,
    SimEvent,
    TenantState,
)
from mmsd.sim.recurrence import series_end

NOW = datetime(2030, 1, 1, 8, 0, tzinfo=UTC)


def dump(state: TenantState) -> str:
    """The whole state as canonical JSON text (what "byte for byte" compares)."""
    return json.dumps(
        {
            "tenant": [state.tenant_id, state.domain, state.seed],
            "users": [
                dict(
                    u.graph_json(),
                    kind=u.kind,
                    mailbox=str(u.mailbox),
                    conf=u.conferencing.to_json(),
                )
                for u in state.users
            ],
            "events": {
                box: [[e.copy, e.organizer_id, e.data] for e in events.values()]
                for box, events in state.events.items()
            },
            "onlineMeetings": state.online_meetings,
            "messages": state.messages,
        },
        ensure_ascii=False,
    )


@pytest.fixture(scope="module")
def tenant() -> TenantState:
    return generate_tenant(11, NOW, 20, 10)


def organizer_events(state: TenantState) -> list[SimEvent]:
    return [
        e for box in state.events.values() for e in box.values() if e.copy is CopyKind.ORGANIZER
    ]


def all_events(state: TenantState) -> list[SimEvent]:
    return [e for box in state.events.values() for e in box.values()]


def unexpected_keys(obj: Any, path: str = "$") -> list[str]:
    """Every non-``@odata.*`` key a parsed model left in ``additional_data``, recursively."""
    found: list[str] = []
    if isinstance(obj, list):
        for i, item in enumerate(obj):
            found += unexpected_keys(item, f"{path}[{i}]")
        return found
    extra = getattr(obj, "additional_data", None)
    if extra is None:
        return found
    found += [f"{path}.{k}" for k in extra if not k.startswith("@odata.")]
    for name, value in vars(obj).items():
        if name != "additional_data" and (
            isinstance(value, list) or hasattr(value, "additional_data")
        ):
            found += unexpected_keys(value, f"{path}.{name}")
    return found


def block_kinds(content: str) -> list[str]:
    """Which of the simulator's block layouts a body holds (by their fixed wording, any language)."""
    kinds = []
    for s in _STRINGS.values():
        if s.join_now in content:
            kinds.append("teamsMeetInviteBlock")
        if s.click_to_join in content:
            kinds.append("teams2023")
        if s.classic_join in content:
            kinds.append("teamsClassic")
        if f"[!OC([{s.lcid}])!]" in content:
            kinds.append("skype")
    return kinds


def rule_count(content: str) -> int:
    return len(re.findall(r"(?<!_)_{80}(?!_)", content)) + len(
        re.findall(r"(?<!\.)\.{137}(?!\.)", content)
    )


def test_same_arguments_same_bytes() -> None:
    a = dump(generate_tenant(3, NOW, 14, 6))
    b = dump(generate_tenant(3, NOW, 14, 6))
    assert a == b
    assert dump(generate_tenant(4, NOW, 14, 6)) != a


def test_first_four_users_are_ordinary(tenant: TenantState) -> None:
    for user in tenant.users[:4]:
        assert user.kind == UserKind.ORDINARY
        assert user.mailbox is MailboxLocation.EXCHANGE_ONLINE
        assert user.conferencing.audio_conferencing_provider == "microsoft"
        assert user.conferencing.dial_in_enabled and user.conferencing.conference_id
        plan = [p for p in user.assigned_plans if p["servicePlanId"] == AUDIO_CONFERENCING_PLAN_ID]
        assert plan and plan[0]["capabilityStatus"] == "Enabled"
        assert all(
            AUDIO_CONFERENCING_PLAN_ID not in lic["disabledPlans"] for lic in user.assigned_licenses
        )
        assert any(e.copy is CopyKind.ORGANIZER for e in tenant.events[user.id].values())
    assert [u.preferred_language[:2] for u in tenant.users[:4]] == ["en", "de", "zh", "ja"]


def test_every_kind_is_present_with_its_traits(tenant: TenantState) -> None:
    kinds = Counter(u.kind for u in tenant.users)
    assert set(kinds) == {str(k) for k in UserKind}
    assert kinds[UserKind.ORDINARY] >= 8
    by_kind = {u.kind: u for u in reversed(tenant.users)}
    assert by_kind[UserKind.ON_PREMISES_MAILBOX].mailbox is MailboxLocation.ON_PREMISES
    assert (
        by_kind[UserKind.THIRD_PARTY_ACP].conferencing.audio_conferencing_provider == "thirdParty"
    )
    no_ac = by_kind[UserKind.NO_AUDIO_CONFERENCING]
    assert all(p["servicePlanId"] != AUDIO_CONFERENCING_PLAN_ID for p in no_ac.assigned_plans)
    disabled = by_kind[UserKind.AUDIO_CONFERENCING_DISABLED_PLAN]
    assert any(
        AUDIO_CONFERENCING_PLAN_ID in lic["disabledPlans"] for lic in disabled.assigned_licenses
    )
    sfb = by_kind[UserKind.SFB_USER]
    assert {
        e.data["onlineMeetingProvider"]
        for e in tenant.events[sfb.id].values()
        if e.data["isOnlineMeeting"] and e.copy is CopyKind.ORGANIZER
    } == {"skypeForBusiness"}
    upns = [u.user_principal_name for u in tenant.users]
    assert len(set(upns)) == len(upns) and all(u.endswith("@contoso-sim.example") for u in upns)
    assert len({u.id for u in tenant.users}) == len(tenant.users)


def test_block_formats_languages_and_body_types(tenant: TenantState) -> None:
    seen: set[tuple[str, str]] = set()
    for e in organizer_events(tenant):
        for kind in block_kinds(e.data["body"]["content"]):
            seen.add((kind, e.data["body"]["contentType"]))
    assert seen == {
        (k, f)
        for k in ("teamsClassic", "teams2023", "teamsMeetInviteBlock", "skype")
        for f in ("html", "text")
    }
    bodies = "".join(e.data["body"]["content"] for e in organizer_events(tenant))
    for phrase in (
        "Microsoft Teams-Besprechung",
        "Microsoft Teams 会议",
        "Microsoft Teams 会議",
        "Microsoft Teams meeting",
    ):
        assert phrase in bodies


def test_meeting_mix(tenant: TenantState) -> None:
    events = organizer_events(tenant)
    singles = [e for e in events if e.data["type"] == "singleInstance"]
    starts = [parse_graph_datetime(e.data["start"]) for e in singles]
    assert any(s > NOW for s in starts) and any(s < NOW for s in starts)
    masters = [e for e in events if e.data["type"] == "seriesMaster"]
    ends = [series_end(m) for m in masters]
    assert (
        None in ends
        and any(x is not None and x < NOW for x in ends)
        and any(x is not None and x > NOW for x in ends)
    )
    assert {m.data["recurrence"]["range"]["type"] for m in masters} == {
        "noEnd",
        "endDate",
        "numbered",
    }
    exceptions = [e for e in events if e.data["type"] == "exception"]
    assert exceptions
    by_id = {e.id: e for e in events}
    for exc in exceptions:
        master = by_id[exc.data["seriesMasterId"]]
        assert parse_graph_datetime(exc.data["start"]) > NOW
        assert exc.data["body"]["content"] != master.data["body"]["content"]
        assert exc.data["originalStart"] and exc.mailbox_id == master.mailbox_id
    pasted = [
        e
        for e in events
        if not e.data["isOnlineMeeting"] and block_kinds(e.data["body"]["content"])
    ]
    assert pasted and all(
        e.data["onlineMeetingProvider"] == "unknown" and e.data["onlineMeeting"] is None
        for e in pasted
    )
    assert any(
        e.data["isOnlineMeeting"] and rule_count(e.data["body"]["content"]) == 0 for e in events
    )  # block removed
    assert any(
        not e.data["isOnlineMeeting"] and rule_count(e.data["body"]["content"]) == 0 for e in events
    )
    assert any(rule_count(e.data["body"]["content"]) == 4 for e in events)  # two blocks
    assert any(rule_count(e.data["body"]["content"]) == 1 for e in events)  # damaged
    large = [e for e in events if len(e.data["attendees"]) + 1 > 250]
    assert large and all(len(e.data["attendees"]) >= LARGE_MEETING_MIN_ATTENDEES for e in large)
    assert all(
        sum(
            a["emailAddress"]["address"].endswith("contoso-sim.example")
            for a in e.data["attendees"]
        )
        < 5
        for e in large
    )
    providers = Counter(e.data["onlineMeetingProvider"] for e in events)
    assert set(providers) == {"teamsForBusiness", "skypeForBusiness", "unknown"}


def test_copies_share_ical_uid_not_id(tenant: TenantState) -> None:
    by_ical: dict[str, list[SimEvent]] = {}
    for e in all_events(tenant):
        by_ical.setdefault(e.data["iCalUId"], []).append(e)
    users = {u.id: u for u in tenant.users}
    attendee_copies = delegate_copies = 0
    for copies in by_ical.values():
        organizer = [c for c in copies if c.copy is CopyKind.ORGANIZER]
        assert len(organizer) == 1
        org = organizer[0]
        assert len({c.id for c in copies}) == len(copies)
        for c in copies:
            assert c.organizer_id == org.mailbox_id
            assert c.data["organizer"] == org.data["organizer"]
            if c.copy is CopyKind.ATTENDEE:
                attendee_copies += 1
                assert c.data["isOrganizer"] is False and c.mailbox_id != org.mailbox_id
                address = users[c.mailbox_id].mail
                assert address in [a["emailAddress"]["address"] for a in org.data["attendees"]]
            elif c.copy is CopyKind.DELEGATE:
                delegate_copies += 1
                assert c.data["isOrganizer"] is True
                assert users[c.mailbox_id].kind == UserKind.DELEGATE
                assert users[org.mailbox_id].kind == UserKind.DELEGATE_BOSS
                assert c.data["organizer"]["emailAddress"]["address"] == users[org.mailbox_id].mail
    assert attendee_copies > 50 and delegate_copies >= 10


def test_every_event_parses_into_the_sdk_model(tenant: TenantState) -> None:
    for e in all_events(tenant):
        parsed = JsonParseNode(json.loads(json.dumps(e.data))).get_object_value(Event)
        assert unexpected_keys(parsed) == [], e.data["type"]
        assert parsed.id == e.id and parsed.change_key == e.data["changeKey"]


def test_online_meetings_match_bodies_and_parse(tenant: TenantState) -> None:
    events = organizer_events(tenant)
    join_urls = {
        e.data["onlineMeeting"]["joinUrl"]
        for e in events
        if e.data["onlineMeetingProvider"] == "teamsForBusiness"
    }
    records = [m for meetings in tenant.online_meetings.values() for m in meetings.values()]
    assert len(records) >= 100
    for user_id, meetings in tenant.online_meetings.items():
        for n, (om_id, m) in enumerate(meetings.items()):
            if n < 2:  # kiota parses an onlineMeeting in ~40 ms: two per user, all from one builder
                parsed = JsonParseNode(json.loads(json.dumps(m))).get_object_value(OnlineMeeting)
                assert unexpected_keys(parsed) == []
                assert parsed.id == om_id
            assert (
                m["id"] == om_id
                and m["participants"]["organizer"]["identity"]["user"]["id"] == user_id
            )
            assert m["joinWebUrl"] in join_urls
            settings = m["joinMeetingIdSettings"]
            assert settings["joinMeetingId"].isdigit() and settings["passcode"]
            info = unquote(m["joinInformation"]["content"].removeprefix("data:text/html,"))
            assert m["joinWebUrl"].replace("&", "&amp;") in info and settings["passcode"] in info
            assert "meet_invite_block.action.join_link" in info
    for e in events:
        if (
            e.data["onlineMeetingProvider"] == "teamsForBusiness"
            and rule_count(e.data["body"]["content"]) >= 2
        ):
            body = e.data["body"]["content"]
            url = e.data["onlineMeeting"]["joinUrl"]
            assert url in body or url.replace("&", "&amp;") in body


def test_unicode_is_preserved(tenant: TenantState) -> None:
    text = "".join(e.data["body"]["content"] + e.data["subject"] for e in organizer_events(tenant))
    for sample in ("👋", "🙏", "会议", "皆さん", "مرحبا", "שלום", "Grüße", "𝔘𝔫𝔦𝔠𝔬𝔡𝔢"):
        assert sample in text
    assert "ï ¿ ½" not in text and "\ufffd" not in text


def test_a_thousand_users_is_fast() -> None:
    t0 = time.perf_counter()
    state = generate_tenant(5, NOW, 1000, 10)
    elapsed = time.perf_counter() - t0
    assert len(state.users) == 1000
    assert (
        sum(
            1
            for e in all_events(state)
            if e.copy is CopyKind.ORGANIZER and e.data["type"] != "exception"
        )
        == 10_000
    )
    assert elapsed < 20.0, elapsed  # ~3-6 s on a shared 2-core machine


def test_join_information_templates_give_the_directly_encoded_block() -> None:
    from urllib.parse import quote

    from mmsd.sim.generator import _MeetingFactory
    from mmsd.sim.invites import InviteKind, render_invite

    state = generate_tenant(2, NOW, 16, 0)
    templates: dict[tuple[object, ...], str] = {}
    checked = 0
    for index, user in enumerate(state.users):
        factory = _MeetingFactory(state, NOW, user, index, {}, templates)
        for slot in range(2):  # the second call per organizer comes from the template
            details, _ = factory._teams_details(slot)
            direct = render_invite(
                InviteKind.TEAMS_MEET_INVITE_BLOCK, "html", factory.lang, details
            )
            assert factory._join_information(details) == "data:text/html," + quote(direct, safe="")
            checked += details.conference_id is not None
    assert checked >= 8 and len(templates) < len(state.users)
