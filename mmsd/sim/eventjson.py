"""Graph v1.0 event JSON: every default property, change keys, ETags and body conversion.

``new_event`` turns a partial event (what a client POSTs, or what the generator
decides) into the full JSON Graph returns by default, in Graph's property
order, with nothing that the pinned msgraph-sdk's ``Event`` model lacks (no
``occurrenceId``, no ``uid``). ``touch_event`` is what every change does to an
event's version: a new change key, ETag and ``lastModifiedDateTime``.
"""

from __future__ import annotations

import base64
import functools
import html
import re
from datetime import UTC, datetime
from typing import Any
from urllib.parse import quote

from mmsd.sim.model import JSON, CopyKind, SimEvent, TenantState

ICAL_PREFIX = "040000008200E00074C5B7101A82E008"
NULL_TIME = "0001-01-01T00:00:00Z"
PREVIEW_CHARS = 255

# The default properties of an event, in the order Graph v1.0 writes them.
_DEFAULTS_ORDER = (
    "@odata.etag",
    "id",
    "createdDateTime",
    "lastModifiedDateTime",
    "changeKey",
    "categories",
    "transactionId",
    "originalStartTimeZone",
    "originalEndTimeZone",
    "iCalUId",
    "reminderMinutesBeforeStart",
    "isReminderOn",
    "hasAttachments",
    "subject",
    "bodyPreview",
    "importance",
    "sensitivity",
    "isAllDay",
    "isCancelled",
    "isOrganizer",
    "responseRequested",
    "seriesMasterId",
    "showAs",
    "type",
    "webLink",
    "onlineMeetingUrl",
    "isOnlineMeeting",
    "onlineMeetingProvider",
    "allowNewTimeProposals",
    "isDraft",
    "hideAttendees",
    "originalStart",
    "recurrence",
    "responseStatus",
    "body",
    "start",
    "end",
    "location",
    "locations",
    "attendees",
    "organizer",
    "onlineMeeting",
)
_ONLY_FOR_SERIES_MEMBERS = "originalStart"  # present only on occurrences and exceptions


def _utc_naive_iso(dt: datetime) -> str:
    """``YYYY-MM-DDTHH:MM:SS.ffffff0`` of ``dt`` in UTC (Graph's seven fractional digits)."""
    return dt.astimezone(UTC).replace(tzinfo=None).isoformat(timespec="microseconds") + "0"


def graph_time(dt: datetime) -> str:
    """An instant as Graph writes ``createdDateTime``: UTC with seven fractional digits."""
    return _utc_naive_iso(dt) + "Z"


def graph_datetime_tz(dt: datetime) -> JSON:
    """A ``dateTimeTimeZone`` in UTC, as Graph answers without ``Prefer: outlook.timezone``."""
    return {"dateTime": _utc_naive_iso(dt), "timeZone": "UTC"}


def parse_graph_datetime(value: JSON) -> datetime:
    """The aware UTC instant of a ``dateTimeTimeZone`` (only UTC is understood)."""
    text = str(value["dateTime"])
    if "." in text:
        head, frac = text.split(".", 1)
        text = head + "." + frac.rstrip("Z")[:6].ljust(6, "0")
    dt = datetime.fromisoformat(text.rstrip("Z"))
    return dt.replace(tzinfo=UTC) if dt.tzinfo is None else dt.astimezone(UTC)


def new_change_key(state: TenantState, event_id: str) -> str:
    """A fresh, deterministic change key (base64 of 20 bytes, like Exchange's)."""
    raw = bytes.fromhex(state.make_id("changeKey", event_id, state.next_serial(), length=40))
    return base64.b64encode(raw).decode()


def new_event_id(state: TenantState, mailbox_id: str) -> str:
    """A fresh, deterministic Graph-looking event ID (URL-safe, ``AAMkA…`` like Exchange's)."""
    raw = bytes.fromhex(state.make_id("event", mailbox_id, state.next_serial(), length=64))
    return "AAMkA" + base64.urlsafe_b64encode(raw).decode()


def new_ical_uid(state: TenantState, *parts: object) -> str:
    """A fresh iCalUId in Outlook's global-object-ID shape (hex, ``0400000082…``)."""
    return (
        ICAL_PREFIX + "00000000" + "0" * 16 + "10000000" + state.make_id("ical", *parts)
    ).upper()


_URL_SAFE_ID = re.compile(r"[A-Za-z0-9_=-]*")


def web_link(event_id: str) -> str:
    """The Outlook on the web link Graph puts in ``webLink``."""
    item = (
        event_id.replace("=", "%3D")
        if _URL_SAFE_ID.fullmatch(event_id)
        else quote(event_id, safe="")
    )
    return f"https://outlook.office365.com/owa/?itemid={item}&exvsurl=1&path=/calendar/item"


_HEAD = re.compile(r"<(head|style|script|title)\b[^>]*>.*?</\1\s*>", re.IGNORECASE | re.DOTALL)
_COMMENT = re.compile(r"<!--.*?-->", re.DOTALL)
_ANCHOR = re.compile(r"<a\b([^>]*)>(.*?)</a\s*>", re.IGNORECASE | re.DOTALL)
_HREF = re.compile(r"""\bhref\s*=\s*(?:"([^"]*)"|'([^']*)'|([^\s>]+))""", re.IGNORECASE)
_BREAK = re.compile(r"<br\s*/?>|</(?:div|p|li|tr|h[1-6]|table)\s*>", re.IGNORECASE)
_TAG = re.compile(r"<[^>]*>")
_BLANKS = re.compile(r"[ \t\f\v\u00a0]+")
_MANY_NEWLINES = re.compile(r"\n{3,}")
_WHITESPACE = re.compile(r"\s+")


def _anchor_to_text(m: re.Match[str]) -> str:
    """``<a href=U>T</a>`` as Outlook's text conversion writes it: ``T<U>``."""
    href = _HREF.search(m.group(1))
    url = next((g for g in href.groups() if g is not None), "") if href else ""
    inner = m.group(2)
    if not url or url.startswith("#"):
        return inner
    return f"{inner}<{html.unescape(url)}>"


def html_to_text(content: str) -> str:
    """Plain text of an HTML body: head dropped, blocks to lines, links as ``text<url>``."""
    s = _COMMENT.sub("", _HEAD.sub("", content))
    s = s.replace("\r\n", "\n").replace("\n", "")
    s = _ANCHOR.sub(_anchor_to_text, s)
    s = _BREAK.sub("\n", s)
    # Angle-bracketed URLs from anchors must survive tag stripping: protect them.
    s = re.sub(r"<(https?:|tel:|mailto:)", "\x00\\1", s)
    s = _TAG.sub("", s)
    s = html.unescape(s.replace("\x00", "&lt;"))
    s = _BLANKS.sub(" ", s)
    lines = [line.strip() for line in s.split("\n")]
    text = _MANY_NEWLINES.sub("\n\n", "\n".join(lines)).strip("\n")
    return text.replace("\n", "\r\n")


def text_to_html(content: str) -> str:
    """An HTML body holding plain text, as Exchange converts it (escaped, lines as ``<br>``)."""
    body = "<br>\r\n".join(html.escape(line, quote=False) for line in content.splitlines())
    return (
        "<html>\r\n<head>\r\n"
        '<meta http-equiv="Content-Type" content="text/html; charset=utf-8">\r\n'
        "</head>\r\n<body>\r\n"
        f'<div style="font-family:Calibri,sans-serif;font-size:11pt">{body}</div>\r\n'
        "</body>\r\n</html>\r\n"
    )


def body_as(content: str, from_type: str, to_type: str) -> str:
    """``content`` converted between ``html`` and ``text`` (for ``Prefer: outlook.body-content-type``)."""
    src, dst = from_type.lower(), to_type.lower()
    if src == dst:
        return content
    if src == "html" and dst == "text":
        return html_to_text(content)
    if src == "text" and dst == "html":
        return text_to_html(content)
    raise ValueError(f"cannot convert body from {from_type!r} to {to_type!r}")


_BODY_OPEN = re.compile(r"<body\b[^>]*>", re.IGNORECASE)
_SAFE_CUT = re.compile(r"</div\s*>|<br\s*/?>", re.IGNORECASE)
_OPEN_A = re.compile(r"<a\b", re.IGNORECASE)
_CLOSE_A = re.compile(r"</a\s*>", re.IGNORECASE)
_RISKY = re.compile(r"<!--|<(?:head|style|script|title)\b", re.IGNORECASE)
_PREFIX_CHARS = 2048


def _collapse(text: str) -> str:
    return _WHITESPACE.sub(" ", text).strip()


def _html_preview(content: str) -> str:
    """The HTML body's preview, converting only a prefix when that gives the same answer.

    A prefix cut just after a ``</div>`` or ``<br>`` with every ``<a>`` closed,
    and no comment, head or script in it, converts to a prefix of the whole
    body's text; when that prefix already holds more than the preview, it is
    the preview.
    """
    opened = _BODY_OPEN.search(content)
    if opened is not None and len(content) - opened.end() > 2 * _PREFIX_CHARS:
        start = opened.end()
        cut = None
        for m in _SAFE_CUT.finditer(content, start + _PREFIX_CHARS, start + 2 * _PREFIX_CHARS):
            cut = m.end()
            break
        if cut is not None:
            prefix = content[start:cut]
            balanced = len(_OPEN_A.findall(prefix)) == len(_CLOSE_A.findall(prefix))
            if balanced and not _RISKY.search(prefix):
                text = _collapse(html_to_text(prefix))
                if len(text) > PREVIEW_CHARS + 16:
                    return text[:PREVIEW_CHARS]
    return _collapse(html_to_text(content))[:PREVIEW_CHARS]


@functools.lru_cache(maxsize=2048)
def body_preview(content: str, content_type: str) -> str:
    """``bodyPreview``: the body as text, whitespace collapsed, first 255 characters."""
    if content_type.lower() == "html":
        return _html_preview(content)
    return _collapse(content)[:PREVIEW_CHARS]


def _default_location() -> JSON:
    return {
        "displayName": "",
        "locationType": "default",
        "uniqueIdType": "unknown",
        "address": {},
        "coordinates": {},
    }


def new_event(
    state: TenantState,
    mailbox_id: str,
    fields: dict[str, Any],
    *,
    copy: CopyKind,
    organizer_id: str | None,
    now: datetime,
) -> SimEvent:
    """Build (but do not store) an event with every property Graph v1.0 returns by default.

    ``fields`` holds the Graph properties decided by the caller (subject, body,
    start, end, attendees, organizer, isOnlineMeeting, …); the event takes
    ownership of the values, which are not copied. ``id``, ``changeKey``,
    ``@odata.etag``, ``bodyPreview``, ``createdDateTime`` and
    ``lastModifiedDateTime`` are always the simulator's (an ``iCalUId`` or
    ``createdDateTime`` in ``fields`` is kept, so copies of one meeting share it).
    """
    event_id = new_event_id(state, mailbox_id)
    change_key = new_change_key(state, event_id)
    created = fields.get("createdDateTime") or graph_time(now)
    event_type = fields.get("type", "singleInstance")
    is_organizer = copy is not CopyKind.ATTENDEE
    body = fields.get("body") or {"contentType": "text", "content": ""}
    start = fields.get("start") or graph_datetime_tz(now)
    end = fields.get("end") or start
    online = bool(fields.get("isOnlineMeeting", False))
    provider = fields.get("onlineMeetingProvider", "unknown")
    if "responseStatus" in fields:
        response_status = fields["responseStatus"]
    elif is_organizer:
        response_status = {"response": "organizer", "time": NULL_TIME}
    else:
        response_status = {"response": "notResponded", "time": NULL_TIME}
    values: JSON = {
        "@odata.etag": f'W/"{change_key}"',
        "id": event_id,
        "createdDateTime": created,
        "lastModifiedDateTime": graph_time(now),
        "changeKey": change_key,
        "categories": fields.get("categories", []),
        "transactionId": fields.get("transactionId"),
        "originalStartTimeZone": fields.get("originalStartTimeZone", start.get("timeZone", "UTC")),
        "originalEndTimeZone": fields.get("originalEndTimeZone", end.get("timeZone", "UTC")),
        "iCalUId": fields.get("iCalUId") or new_ical_uid(state, "ical", event_id),
        "reminderMinutesBeforeStart": fields.get("reminderMinutesBeforeStart", 15),
        "isReminderOn": fields.get("isReminderOn", True),
        "hasAttachments": fields.get("hasAttachments", False),
        "subject": fields.get("subject", ""),
        "bodyPreview": body_preview(
            str(body.get("content", "")), str(body.get("contentType", "text"))
        ),
        "importance": fields.get("importance", "normal"),
        "sensitivity": fields.get("sensitivity", "normal"),
        "isAllDay": fields.get("isAllDay", False),
        "isCancelled": fields.get("isCancelled", False),
        "isOrganizer": is_organizer,
        "responseRequested": fields.get("responseRequested", True),
        "seriesMasterId": fields.get("seriesMasterId"),
        "showAs": fields.get("showAs", "busy" if is_organizer else "tentative"),
        "type": event_type,
        "webLink": web_link(event_id),
        "onlineMeetingUrl": fields.get("onlineMeetingUrl"),
        "isOnlineMeeting": online,
        "onlineMeetingProvider": provider,
        "allowNewTimeProposals": fields.get("allowNewTimeProposals", True),
        "isDraft": fields.get("isDraft", False),
        "hideAttendees": fields.get("hideAttendees", False),
        "originalStart": fields.get("originalStart"),
        "recurrence": fields.get("recurrence"),
        "responseStatus": response_status,
        "body": body,
        "start": start,
        "end": end,
        "location": fields.get("location") or _default_location(),
        "locations": fields.get("locations", []),
        "attendees": fields.get("attendees", []),
        "organizer": fields.get("organizer") or {"emailAddress": {"name": "", "address": ""}},
        "onlineMeeting": fields.get("onlineMeeting") if online else None,
    }
    if event_type not in ("occurrence", "exception"):
        del values[_ONLY_FOR_SERIES_MEMBERS]
    return SimEvent(mailbox_id=mailbox_id, data=values, copy=copy, organizer_id=organizer_id)


def touch_event(state: TenantState, event: SimEvent, now: datetime) -> None:
    """Record a change to ``event``: new change key and ETag, ``lastModifiedDateTime``, ``bodyPreview``."""
    data = event.data
    change_key = new_change_key(state, event.id)
    data["changeKey"] = change_key
    data["@odata.etag"] = f'W/"{change_key}"'
    data["lastModifiedDateTime"] = graph_time(now)
    body = data.get("body") or {}
    data["bodyPreview"] = body_preview(
        str(body.get("content", "")), str(body.get("contentType", "text"))
    )
