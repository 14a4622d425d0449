"""Event JSON: every default Graph v1.0 property, ETags, previews, body conversion, SDK parsing."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from kiota_serialization_json.json_parse_node import JsonParseNode
from msgraph.generated.models.event import Event

from mmsd.sim.eventjson import (
    body_as,
    body_preview,
    graph_datetime_tz,
    html_to_text,
    new_event,
    parse_graph_datetime,
    touch_event,
)
from mmsd.sim.model import CopyKind, TenantState

NOW = datetime(2030, 1, 1, 9, 0, tzinfo=UTC)
DEFAULT_KEYS = [
    "@odata.etag", "id", "createdDateTime", "lastModifiedDateTime", "changeKey", "categories",
    "transactionId", "originalStartTimeZone", "originalEndTimeZone", "iCalUId",
    "reminderMinutesBeforeStart", "isReminderOn", "hasAttachments", "subject", "bodyPreview",
    "importance", "sensitivity", "isAllDay", "isCancelled", "isOrganizer", "responseRequested",
    "seriesMasterId", "showAs", "type", "webLink", "onlineMeetingUrl", "isOnlineMeeting",
    "onlineMeetingProvider", "allowNewTimeProposals", "isDraft", "hideAttendees", "recurrence",
    "responseStatus", "body", "start", "end", "location", "locations", "attendees", "organizer",
    "onlineMeeting",
]  # fmt: skip


def unexpected_keys(obj: Any, path: str = "$") -> list[str]:
    """Every non-``@odata.*`` key any parsed model left in ``additional_data``, with its path."""
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


def parse_event(data: dict[str, Any]) -> Event:
    """The JSON as msgraph-sdk's Event, through the wire (a JSON text)."""
    return JsonParseNode(json.loads(json.dumps(data))).get_object_value(Event)


def _state() -> TenantState:
    return TenantState(tenant_id="t", domain="contoso-sim.example", seed=5)


def _fields(**extra: Any) -> dict[str, Any]:
    start = NOW + timedelta(days=3)
    fields: dict[str, Any] = {
        "subject": "Planung 🗓️ 会议 <draft>",
        "body": {
            "contentType": "html",
            "content": "<html><head><style>p{}</style></head><body><div>Hallo &amp; שלום 👋</div>"
            '<a href="https://example.org/x?a=1&amp;b=2">Link</a><br>二行目</body></html>',
        },
        "start": graph_datetime_tz(start),
        "end": graph_datetime_tz(start + timedelta(hours=1)),
        "attendees": [
            {
                "type": "required",
                "status": {"response": "none", "time": "0001-01-01T00:00:00Z"},
                "emailAddress": {"name": "Zoë", "address": "zoe@fabrikam-sim.example"},
            }
        ],
        "organizer": {"emailAddress": {"name": "王伟", "address": "wei.wang@contoso-sim.example"}},
        "isOnlineMeeting": True,
        "onlineMeetingProvider": "teamsForBusiness",
        "onlineMeeting": {
            "joinUrl": "https://teams.microsoft.com/l/meetup-join/x",
            "conferenceId": "123",
        },
    }
    fields.update(extra)
    return fields


def test_every_default_property_in_graph_order() -> None:
    event = new_event(
        _state(), "mbx", _fields(), copy=CopyKind.ORGANIZER, organizer_id="mbx", now=NOW
    )
    data = event.data
    assert list(data) == DEFAULT_KEYS
    assert data["@odata.etag"] == f'W/"{data["changeKey"]}"'
    assert data["isOrganizer"] is True and data["responseStatus"]["response"] == "organizer"
    assert data["type"] == "singleInstance" and "originalStart" not in data
    assert data["subject"] == "Planung 🗓️ 会议 <draft>"
    assert data["bodyPreview"] == "Hallo & שלום 👋 Link<https://example.org/x?a=1&b=2> 二行目"
    assert data["webLink"].startswith("https://outlook.office365.com/owa/?itemid=")
    assert data["lastModifiedDateTime"] == data["createdDateTime"] == "2030-01-01T09:00:00.0000000Z"
    assert "occurrenceId" not in data and "uid" not in data
    assert event.id == data["id"] and event.mailbox_id == "mbx"


def test_parses_into_sdk_event_with_nothing_unknown() -> None:
    for copy in CopyKind:
        data = new_event(_state(), "m", _fields(), copy=copy, organizer_id="m", now=NOW).data
        event = parse_event(data)
        assert unexpected_keys(event) == []
        assert event.i_cal_u_id == data["iCalUId"]
        assert event.is_organizer is (copy is not CopyKind.ATTENDEE)
        assert (
            event.online_meeting is not None
            and event.online_meeting.join_url == data["onlineMeeting"]["joinUrl"]
        )
        assert event.body is not None and event.body.content == data["body"]["content"]


def test_attendee_copy_and_series_member_shapes() -> None:
    state = _state()
    attendee = new_event(
        state, "b", _fields(), copy=CopyKind.ATTENDEE, organizer_id="a", now=NOW
    ).data
    assert attendee["isOrganizer"] is False
    assert attendee["responseStatus"]["response"] == "notResponded"
    exception = new_event(
        state,
        "a",
        _fields(
            type="exception", seriesMasterId="M", originalStart="2030-01-04T09:00:00Z", iCalUId="X1"
        ),
        copy=CopyKind.ORGANIZER,
        organizer_id="a",
        now=NOW,
    ).data
    assert exception["originalStart"] == "2030-01-04T09:00:00Z"
    assert list(exception).index("originalStart") == list(exception).index("recurrence") - 1
    assert exception["iCalUId"] == "X1"
    assert unexpected_keys(parse_event(exception)) == []


def test_not_online_event_has_no_online_meeting() -> None:
    data = new_event(
        _state(), "a", _fields(isOnlineMeeting=False, onlineMeetingProvider="unknown"),
        copy=CopyKind.ORGANIZER, organizer_id="a", now=NOW,
    ).data  # fmt: skip
    assert data["onlineMeeting"] is None and data["isOnlineMeeting"] is False


def test_ids_are_deterministic_and_unique() -> None:
    a, b = _state(), _state()
    ids_a = [
        new_event(a, "m", _fields(), copy=CopyKind.ORGANIZER, organizer_id="m", now=NOW).id
        for _ in range(50)
    ]
    ids_b = [
        new_event(b, "m", _fields(), copy=CopyKind.ORGANIZER, organizer_id="m", now=NOW).id
        for _ in range(50)
    ]
    assert ids_a == ids_b
    assert len(set(ids_a)) == 50
    assert all(i.startswith("AAMkA") and "/" not in i and "+" not in i for i in ids_a)


def test_touch_event_changes_version_and_preview() -> None:
    state = _state()
    event = new_event(state, "m", _fields(), copy=CopyKind.ORGANIZER, organizer_id="m", now=NOW)
    old_key, old_etag = event.data["changeKey"], event.data["@odata.etag"]
    event.data["body"] = {"contentType": "text", "content": "neu  \r\n text ✨"}
    later = NOW + timedelta(minutes=5)
    touch_event(state, event, later)
    assert event.data["changeKey"] != old_key
    assert event.data["@odata.etag"] == f'W/"{event.data["changeKey"]}"' != old_etag
    assert event.data["lastModifiedDateTime"] == "2030-01-01T09:05:00.0000000Z"
    assert event.data["bodyPreview"] == "neu text ✨"


def test_body_preview_is_255_characters_of_text() -> None:
    long_html = (
        "<html><body>"
        + "".join(f"<div>Zeile {i} — ü 🎉</div>\r\n" for i in range(2000))
        + "</body></html>"
    )
    preview = body_preview(long_html, "html")
    assert len(preview) == 255
    assert preview == " ".join(html_to_text(long_html).split())[:255]
    assert body_preview("a\r\n\r\n  b", "text") == "a b"


def test_body_as_round_trips() -> None:
    html = '<html><head><title>t</title></head><body><p>1 &lt; 2 &amp; ✓</p><a href="https://x.example/?a=1&amp;b">go</a></body></html>'
    assert body_as(html, "html", "text") == "1 < 2 & ✓\r\ngo<https://x.example/?a=1&b>"
    assert body_as(html, "HTML", "html") is html
    back = body_as("Hallo <Welt> & ☃\r\nZeile 2", "text", "html")
    assert (
        back.startswith("<html>") and "Hallo &lt;Welt&gt; &amp; ☃<br>" in back and "Zeile 2" in back
    )
    with pytest.raises(ValueError):
        body_as("x", "text", "rtf")


def test_parse_graph_datetime_reads_seven_digits() -> None:
    dt = datetime(2030, 5, 6, 7, 8, 9, 123456, tzinfo=UTC)
    assert parse_graph_datetime(graph_datetime_tz(dt)) == dt
    assert parse_graph_datetime(
        {"dateTime": "2030-05-06T07:08:09", "timeZone": "UTC"}
    ) == dt.replace(microsecond=0)


def test_the_checker_sees_unknown_keys_also_nested() -> None:
    data = new_event(
        _state(), "m", _fields(), copy=CopyKind.ORGANIZER, organizer_id="m", now=NOW
    ).data
    bad = dict(data, occurrenceId="x", location=dict(data["location"], bogus=1))
    assert sorted(unexpected_keys(parse_event(bad))) == ["$.location.bogus", "$.occurrenceId"]
