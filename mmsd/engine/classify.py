"""Which of a user's events are meetings to migrate, and why the others are skipped (SPEC section 3).

Pure functions over Graph's raw event JSON (no typed models: the CPU budget is
about 1 ms per PATCHed meeting). A *meeting* is one event ID: a single instance
starting after now, a series master whose recurrence has not ended, or a
future exception of a series (it carries its own body).

Skip reasons are checked in the SPEC's order of precedence for an admin:
``notOrganizer`` (a delegate's copy also says ``isOrganizer: true``, so the
organizer's address is compared with the user's), ``notOnlineMeeting``, the
block problems of :func:`~mmsd.domain.blocks.find_block` (``noBlock``,
``ambiguousBlock``, ``damagedBlock``), ``sourceTypeFiltered`` (the block's kind
is not the migration's source) and ``tooManyAttendees`` (more than 250, the
organizer included).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from mmsd.domain.blocks import BlockKind, BlockProblem, ContentType, FoundBlock, find_block
from mmsd.domain.model import SkipReason, SourceMeetingType

JSON = dict[str, Any]

MAX_ATTENDEES = 250
"""More attendees than this (organizer included) and the meeting is skipped."""

SERIES_HORIZON = timedelta(days=366)
"""How far ahead exceptions of a series without an end (or a numbered one) are looked for."""

EVENT_FIELDS: tuple[str, ...] = (
    "id",
    "type",
    "subject",
    "start",
    "end",
    "recurrence",
    "isOrganizer",
    "organizer",
    "attendees",
    "isOnlineMeeting",
    "onlineMeetingProvider",
    "body",
    "seriesMasterId",
    "changeKey",
)
"""The ``$select`` of every event read: only what the migration needs."""


def parse_graph_time(value: Mapping[str, Any] | None) -> datetime | None:
    """A Graph ``{dateTime, timeZone}`` as an aware UTC datetime (None when absent or unreadable)."""
    if not value:
        return None
    text = value.get("dateTime")
    if not isinstance(text, str) or not text:
        return None
    head, dot, frac = text.partition(".")
    text = head + (dot + frac[:6] if dot else "")
    try:
        parsed = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        return None
    if parsed.tzinfo is None:
        zone = value.get("timeZone") or "UTC"
        try:
            tz = UTC if zone in ("UTC", "tzone://Microsoft/Utc") else ZoneInfo(str(zone))
        except (ZoneInfoNotFoundError, ValueError):
            tz = UTC
        parsed = parsed.replace(tzinfo=tz)
    return parsed.astimezone(UTC)


def _range_end(event: Mapping[str, Any]) -> date | str | None:
    """The series' last day, ``"open"`` when it has none or it is numbered, None if unreadable."""
    recurrence = event.get("recurrence") or {}
    rng = recurrence.get("range") or {}
    kind = rng.get("type")
    if kind == "endDate":
        try:
            return date.fromisoformat(str(rng.get("endDate")))
        except ValueError:
            return None
    return "open"


def series_window(event: Mapping[str, Any], now: datetime) -> tuple[datetime, datetime] | None:
    """The window to look for the series' future occurrences in; None when the series has ended."""
    end = _range_end(event)
    if isinstance(end, date):
        last = datetime(end.year, end.month, end.day, tzinfo=UTC) + timedelta(days=1)
        if last <= now:
            return None
        return now, min(last, now + SERIES_HORIZON)
    return now, now + SERIES_HORIZON


def needs_instances(event: Mapping[str, Any]) -> bool:
    """True when only the occurrences tell whether a series still runs (a numbered series)."""
    rng = ((event.get("recurrence") or {}).get("range")) or {}
    return rng.get("type") == "numbered"


def is_future_single(event: Mapping[str, Any], now: datetime) -> bool:
    """A single instance (or exception) that starts after now."""
    start = parse_graph_time(event.get("start"))
    return start is not None and start > now


def attendee_addresses(event: Mapping[str, Any]) -> list[str]:
    """Distinct attendee addresses, lower-cased (never logged)."""
    seen: dict[str, None] = {}
    for attendee in event.get("attendees") or ():
        address = ((attendee or {}).get("emailAddress") or {}).get("address")
        if isinstance(address, str) and address:
            seen.setdefault(address.lower(), None)
    return list(seen)


def organizer_address(event: Mapping[str, Any]) -> str | None:
    """The organizer's address, lower-cased."""
    address = ((event.get("organizer") or {}).get("emailAddress") or {}).get("address")
    return address.lower() if isinstance(address, str) and address else None


def body_of(event: Mapping[str, Any]) -> tuple[str, ContentType]:
    """The event's body content and its content type, as Graph stored it."""
    body = event.get("body") or {}
    content = body.get("content")
    try:
        ctype = ContentType.of(body.get("contentType") or "html")
    except ValueError:
        ctype = ContentType.HTML
    return (content if isinstance(content, str) else ""), ctype


@dataclass(frozen=True, slots=True)
class Eligible:
    """A meeting that passed every check: its block and what a PATCH of it sends."""

    block: FoundBlock
    body: str
    content_type: ContentType
    attendees: int  # distinct attendee addresses (the organizer not among them)


Classification = Eligible | SkipReason


def classify(
    event: Mapping[str, Any], user_addresses: Iterable[str], source: SourceMeetingType
) -> Classification:
    """Classify one meeting: :class:`Eligible`, or the first skip reason that applies."""
    organizer = organizer_address(event)
    mine = {a.lower() for a in user_addresses}
    if organizer is None or organizer not in mine:
        return SkipReason.NOT_ORGANIZER
    if not event.get("isOnlineMeeting"):
        return SkipReason.NOT_ONLINE_MEETING
    body, ctype = body_of(event)
    found = find_block(body, ctype)
    if isinstance(found, BlockProblem):
        return SkipReason(str(found.reason))
    if found.kind is BlockKind.SKYPE and source is SourceMeetingType.TEAMS:
        return SkipReason.SOURCE_TYPE_FILTERED
    if found.kind is BlockKind.TEAMS and source is SourceMeetingType.SFB:
        return SkipReason.SOURCE_TYPE_FILTERED
    addresses = [a for a in attendee_addresses(event) if a not in mine]
    if len(addresses) + 1 > MAX_ATTENDEES:
        return SkipReason.TOO_MANY_ATTENDEES
    return Eligible(found, body, ctype, len(addresses))
