"""Graph's Outlook routes: events, calendarView, instances, messages.

Choices where Graph is vague (also in the README):
- A mailbox on premises answers ``404 MailboxNotEnabledForRESTAPI`` ("REST API is not
  yet supported for this mailbox.") on every calendar and mail route.
- ``isOnlineMeeting``, ``onlineMeetingProvider`` and ``onlineMeeting`` are fixed once
  an event is an online meeting: a PATCH that tries to change them succeeds but leaves
  them as they were (Graph ignores them silently); every other property applies.
- ``If-Match`` is honoured on PATCH: anything but ``*`` or the current ``@odata.etag``
  (``W/"<changeKey>"``, or the bare change key) answers ``412 ErrorIrresolvableConflict``
  and changes nothing.
- A property the SDK's Event model lacks answers ``400 RequestBodyRead``; read-only
  properties (``id``, ``changeKey``, ``iCalUId``, ...) are ignored.
- ``Prefer: outlook.timezone`` is honoured for ``start``/``end`` of events (and
  ``startDateTime``/``endDateTime`` of event messages) on every read and on the answers
  of POST and PATCH, with ``Preference-Applied``: ``UTC``, any IANA name the system's
  zone database knows, and the Windows names of :data:`WINDOWS_ZONES`. Another name is
  not applied (UTC, no ``Preference-Applied``): Graph's answer to an unknown zone is
  unconfirmed. Times in the request (``$filter``, POST/PATCH bodies) are taken as UTC;
  the stored ``originalStartTimeZone``/``originalEndTimeZone`` do not change.
- Occurrences (from ``calendarView``/``instances``) are computed, not stored, but can be
  read and patched by their ID as in Graph: a GET answers the computed occurrence; a
  PATCH turns it into a stored exception of its series with the same ID (then updates
  go to the attendees as for any PATCH). An occurrence ID whose occurrence an exception
  already replaces (a moved or cancelled one) answers 404 ``ErrorItemNotFound``.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, tzinfo
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from mmsd.sim.delivery import NEW, UPDATE, Mailer
from mmsd.sim.graph_http import (
    JSON_CONTENT_TYPE,
    GraphError,
    GraphRequest,
    GraphResponse,
    Resource,
    Router,
    SimContext,
    json_bytes,
    not_found_item,
    ok,
    page_size,
    parse_int,
    parse_select,
    project,
)
from mmsd.sim.model import JSON, CopyKind, SimEvent, SimUser

EVENT_PROPERTIES = frozenset(
    "allowNewTimeProposals attachments attendees body bodyPreview calendar "
    "cancelledOccurrences end exceptionOccurrences extensions hasAttachments hideAttendees "
    "iCalUId importance instances isAllDay isCancelled isDraft isOnlineMeeting isOrganizer "
    "isReminderOn location locations multiValueExtendedProperties onlineMeeting "
    "onlineMeetingProvider onlineMeetingUrl organizer originalEndTimeZone originalStart "
    "originalStartTimeZone recurrence reminderMinutesBeforeStart responseRequested "
    "responseStatus sensitivity seriesMasterId showAs singleValueExtendedProperties start "
    "subject transactionId type webLink categories changeKey createdDateTime "
    "lastModifiedDateTime id".split()
)
WRITABLE = frozenset(
    "allowNewTimeProposals attendees body end hideAttendees importance isAllDay "
    "isReminderOn location locations recurrence reminderMinutesBeforeStart responseRequested "
    "sensitivity showAs start subject categories transactionId".split()
)
ONLINE_FIXED = ("isOnlineMeeting", "onlineMeetingProvider", "onlineMeeting")
EVENT_ALWAYS = ("@odata.etag", "id")
MAX_PAGE = 1000

Predicate = Callable[[JSON], bool]


def _naive(text: str) -> datetime:
    """A Graph dateTime (``2030-01-01T10:00:00.0000000``, maybe with ``Z``) as naive UTC."""
    try:
        return datetime.fromisoformat(text.strip()[:19])
    except ValueError as exc:
        raise GraphError(
            400, "ErrorInvalidParameter", f"The value '{text}' is not a valid DateTime."
        ) from exc


_CLAUSE = re.compile(r"^\s*(?P<prop>[\w/]+)\s+(?P<op>eq|ne|ge|gt|le|lt)\s+(?P<value>.+?)\s*$", re.I)
_OPS: dict[str, Callable[[Any, Any], bool]] = {
    "eq": lambda a, b: a == b,
    "ne": lambda a, b: a != b,
    "ge": lambda a, b: a >= b,
    "gt": lambda a, b: a > b,
    "le": lambda a, b: a <= b,
    "lt": lambda a, b: a < b,
}


def _event_time(key: str, e: JSON) -> datetime:
    return _naive(str((e.get(key) or {}).get("dateTime") or "0001-01-01T00:00:00"))


def _flag(name: str, e: JSON) -> bool:
    return bool(e.get(name))


def _text(name: str, e: JSON) -> str:
    return str(e.get(name))


def _pred(getter: Callable[[JSON], Any], op: Callable[[Any, Any], bool], value: Any) -> Predicate:
    def check(e: JSON) -> bool:
        return op(getter(e), value)

    return check


@functools.lru_cache(maxsize=256)
def parse_event_filter(text: str) -> tuple[Predicate, ...]:
    """Compile an events ``$filter`` (clauses joined by ``and``) into predicates."""
    preds: list[Predicate] = []
    for clause in re.split(r"\s+and\s+", text.strip(), flags=re.I):
        m = _CLAUSE.match(clause)
        if m is None:
            raise GraphError(
                400, "BadRequest", "Invalid filter clause: the query contains invalid nodes."
            )
        prop, op, raw = m["prop"], _OPS[m["op"].lower()], m["value"]
        low = prop.lower()
        if low in ("start/datetime", "end/datetime"):
            key = "start" if low.startswith("start") else "end"
            preds.append(_pred(functools.partial(_event_time, key), op, _naive(raw.strip("'"))))
        elif low in ("isorganizer", "isallday", "iscancelled"):
            name = {"isorganizer": "isOrganizer", "isallday": "isAllDay"}.get(low, "isCancelled")
            if raw.lower() not in ("true", "false"):
                raise GraphError(400, "BadRequest", f"Invalid value '{raw}' for {prop}.")
            preds.append(_pred(functools.partial(_flag, name), op, raw.lower() == "true"))
        elif low in ("type", "subject", "showas", "importance", "sensitivity"):
            name = {"showas": "showAs"}.get(low, low)
            preds.append(_pred(functools.partial(_text, name), op, raw.strip("'")))
        else:
            raise GraphError(
                400,
                "ErrorInvalidProperty",
                f"The property '{prop}' does not support filtering.",
            )
    return tuple(preds)


def body_preference(req: GraphRequest) -> str | None:
    """``Prefer: outlook.body-content-type`` as ``"text"``/``"html"``, or None."""
    value = req.prefer().get("outlook.body-content-type")
    if value is None:
        return None
    value = value.lower()
    if value not in ("text", "html"):
        return None
    return value


@dataclass(frozen=True)
class OutlookZone:
    """A ``Prefer: outlook.timezone`` the simulator honours: the name as asked, and its zone."""

    name: str
    zone: tzinfo


# Windows time-zone names (as Outlook uses them) for the zones the generated tenant's
# people live in; IANA names work directly. Anything else is not applied.
WINDOWS_ZONES = {
    "UTC": "UTC",
    "Pacific Standard Time": "America/Los_Angeles",
    "Mountain Standard Time": "America/Denver",
    "Central Standard Time": "America/Chicago",
    "Eastern Standard Time": "America/New_York",
    "GMT Standard Time": "Europe/London",
    "W. Europe Standard Time": "Europe/Berlin",
    "Romance Standard Time": "Europe/Paris",
    "Israel Standard Time": "Asia/Jerusalem",
    "Arabian Standard Time": "Asia/Dubai",
    "India Standard Time": "Asia/Kolkata",
    "China Standard Time": "Asia/Shanghai",
    "Tokyo Standard Time": "Asia/Tokyo",
    "AUS Eastern Standard Time": "Australia/Sydney",
}


@functools.lru_cache(maxsize=64)
def _zone(name: str) -> OutlookZone | None:
    if name.upper() == "UTC":
        return OutlookZone(name, UTC)
    key = WINDOWS_ZONES.get(name, name)
    if "/" not in key and key != "UTC":
        return None
    try:
        return OutlookZone(name, ZoneInfo(key))
    except (ZoneInfoNotFoundError, ValueError):
        return None


def timezone_preference(req: GraphRequest) -> OutlookZone | None:
    """``Prefer: outlook.timezone``: a Windows or IANA zone name, or None (answer in UTC)."""
    value = req.prefer().get("outlook.timezone")
    if not value:
        return None
    return _zone(value.strip())


def _in_zone(value: Any, zone: OutlookZone) -> Any:
    """A ``dateTimeTimeZone`` moved to ``zone`` (other values as they are)."""
    if not isinstance(value, dict) or "dateTime" not in value:
        return value
    from mmsd.sim.eventjson import parse_graph_datetime

    local = parse_graph_datetime(value).astimezone(zone.zone).replace(tzinfo=None)
    return {"dateTime": local.isoformat(timespec="microseconds") + "0", "timeZone": zone.name}


_ZONED = ("start", "end", "startDateTime", "endDateTime")


def render_item(
    data: JSON, select: list[str] | None, body_type: str | None, zone: OutlookZone | None = None
) -> JSON:
    """An event or message as answered: ``$select`` applied, body and times converted when asked."""
    out = project(data, select, EVENT_ALWAYS)
    if select is not None and "onlineMeeting" in out and "isOnlineMeeting" not in select:
        out["onlineMeeting"] = None  # Graph returns it only with isOnlineMeeting selected
    body = out.get("body")
    if body_type and isinstance(body, dict):
        current = str(body.get("contentType") or "html").lower()
        if current != body_type:
            from mmsd.sim.eventjson import body_as

            if out is data:
                out = dict(data)
            out["body"] = {
                **body,
                "contentType": body_type,
                "content": body_as(str(body.get("content") or ""), current, body_type),
            }
    if zone is not None:
        if out is data:
            out = dict(data)
        for key in _ZONED:
            if key in out:
                out[key] = _in_zone(out[key], zone)
    return out


def _pref_header(body_type: str | None, zone: OutlookZone | None = None) -> dict[str, str] | None:
    applied = []
    if body_type is not None:
        applied.append(f'outlook.body-content-type="{body_type}"')
    if zone is not None:
        applied.append(f'outlook.timezone="{zone.name}"')
    if not applied:
        return None
    return {"Preference-Applied": ", ".join(applied)}


def paged(
    ctx: SimContext,
    req: GraphRequest,
    items: list[JSON],
    default: int,
    context: str,
    render: Callable[[JSON], JSON],
    headers: dict[str, str] | None = None,
) -> GraphResponse:
    """One page of ``items`` by ``$skip`` and page size, with ``@odata.nextLink``."""
    size = page_size(req, default, MAX_PAGE)
    skip = parse_int(req, "$skip", 0, 10**9)
    page = items[skip : skip + size]
    body: JSON = {"@odata.context": context, "value": [render(x) for x in page]}
    if skip + size < len(items):
        body["@odata.nextLink"] = ctx.next_link(req, skip=str(skip + size), top=str(size))
    return ok(body, headers=headers)


def _ctx_url(user: SimUser, what: str) -> str:
    return f"https://graph.microsoft.com/v1.0/$metadata#users('{user.id}')/{what}"


def _sort(items: list[JSON], orderby: str | None) -> list[JSON]:
    if not orderby:
        return items
    field, _, direction = orderby.strip().partition(" ")
    reverse = direction.strip().lower() == "desc"
    low = field.lower()
    if low in ("start/datetime", "end/datetime"):
        key = "start" if low.startswith("start") else "end"
        return sorted(
            items, key=lambda e: str((e.get(key) or {}).get("dateTime") or ""), reverse=reverse
        )
    if low in ("subject", "lastmodifieddatetime", "createddatetime"):
        name = {"lastmodifieddatetime": "lastModifiedDateTime"}.get(
            low, "createdDateTime" if low == "createddatetime" else "subject"
        )
        return sorted(items, key=lambda e: str(e.get(name) or ""), reverse=reverse)
    raise GraphError(400, "BadRequest", f"The $orderby expression '{orderby}' is not supported.")


async def list_events(ctx: SimContext, req: GraphRequest, params: dict[str, str]) -> GraphResponse:
    """``GET /users/{id}/events``: single instances and series masters."""
    user = ctx.require_mailbox(params["user"])
    filt = req.query.get("$filter")
    preds = parse_event_filter(filt) if filt else ()
    items = [
        e.data
        for e in ctx.state.mailbox_events(user.id).values()
        if e.data.get("type") in ("singleInstance", "seriesMaster")
        and all(p(e.data) for p in preds)
    ]
    items = _sort(items, req.query.get("$orderby"))
    select, body_type = parse_select(req), body_preference(req)
    zone = timezone_preference(req)
    return paged(
        ctx,
        req,
        items,
        10,
        _ctx_url(user, "events"),
        lambda d: render_item(d, select, body_type, zone),
        _pref_header(body_type, zone),
    )


def _window(req: GraphRequest) -> tuple[datetime, datetime]:
    start = req.query.get("startDateTime") or req.query.get("startdatetime")
    end = req.query.get("endDateTime") or req.query.get("enddatetime")
    if not start or not end:
        raise GraphError(
            400,
            "ErrorInvalidParameter",
            "This request requires a time window specified by the query string parameters "
            "StartDateTime and EndDateTime.",
        )
    from mmsd.clock import parse_rfc3339

    try:
        return parse_rfc3339(start), parse_rfc3339(end)
    except ValueError as exc:
        raise GraphError(400, "ErrorInvalidParameter", "Invalid time window.") from exc


def _exceptions_by_master(box: dict[str, SimEvent]) -> dict[str, list[SimEvent]]:
    out: dict[str, list[SimEvent]] = {}
    for e in box.values():
        if e.data.get("type") == "exception":
            out.setdefault(str(e.data.get("seriesMasterId")), []).append(e)
    return out


def _start_key(e: JSON) -> str:
    return str((e.get("start") or {}).get("dateTime") or "")


def _overlaps(e: JSON, lo: datetime, hi: datetime) -> bool:
    s = _naive(str((e.get("start") or {}).get("dateTime") or "0001-01-01T00:00:00"))
    f = _naive(str((e.get("end") or {}).get("dateTime") or "0001-01-01T00:00:00"))
    return s < hi and f > lo


async def calendar_view(
    ctx: SimContext, req: GraphRequest, params: dict[str, str]
) -> GraphResponse:
    """``GET /users/{id}/calendarView``: occurrences, exceptions and single instances."""
    from mmsd.sim.recurrence import expand_series

    user = ctx.require_mailbox(params["user"])
    start, end = _window(req)
    lo, hi = start.replace(tzinfo=None), end.replace(tzinfo=None)
    box = ctx.state.mailbox_events(user.id)
    exceptions = _exceptions_by_master(box)
    items: list[JSON] = []
    for e in box.values():
        kind = e.data.get("type")
        if kind == "singleInstance":
            if _overlaps(e.data, lo, hi):
                items.append(e.data)
        elif kind == "seriesMaster":
            items.extend(expand_series(e, exceptions.get(e.id, []), start, end))
    items.sort(key=_start_key)
    filt = req.query.get("$filter")
    if filt:
        preds = parse_event_filter(filt)
        items = [d for d in items if all(p(d) for p in preds)]
    select, body_type = parse_select(req), body_preference(req)
    zone = timezone_preference(req)
    return paged(
        ctx,
        req,
        items,
        10,
        _ctx_url(user, "calendarView"),
        lambda d: render_item(d, select, body_type, zone),
        _pref_header(body_type, zone),
    )


def _event(ctx: SimContext, user: SimUser, event_id: str) -> SimEvent:
    found = ctx.state.mailbox_events(user.id).get(event_id)
    if found is None:
        raise not_found_item()
    return found


def _occurrence(ctx: SimContext, user: SimUser, event_id: str) -> tuple[SimEvent, JSON]:
    """The series master and the computed occurrence an occurrence ID names (else 404).

    An occurrence ID is valid while the series produces an occurrence at its original
    start and no exception replaces it (a cancelled or moved occurrence is gone).
    """
    from mmsd.sim.eventjson import parse_graph_datetime
    from mmsd.sim.recurrence import occurrence_json, occurrence_starts, split_occurrence_id

    parts = split_occurrence_id(event_id)
    box = ctx.state.mailbox_events(user.id)
    master = box.get(parts[0]) if parts is not None else None
    if parts is None or master is None or master.data.get("type") != "seriesMaster":
        raise not_found_item()
    original = parts[1]
    for exc in _exceptions_by_master(box).get(master.id, []):
        if (
            exc.data.get("originalStart")
            and parse_graph_datetime({"dateTime": str(exc.data["originalStart"])}) == original
        ):
            raise not_found_item()
    for start in occurrence_starts(master.data):
        if start >= original:
            if start != original:
                break
            data = master.data
            duration = parse_graph_datetime(data["end"]) - parse_graph_datetime(data["start"])
            return master, occurrence_json(data, original, duration)
    raise not_found_item()


def _event_or_occurrence(ctx: SimContext, user: SimUser, event_id: str) -> SimEvent:
    """A stored event, or an unstored view of the occurrence ``event_id`` names."""
    found = ctx.state.mailbox_events(user.id).get(event_id)
    if found is not None:
        return found
    master, data = _occurrence(ctx, user, event_id)
    return SimEvent(master.mailbox_id, data, master.copy, master.organizer_id)


def _materialize_exception(ctx: SimContext, user: SimUser, event_id: str) -> SimEvent:
    """Turn the occurrence ``event_id`` into a stored exception with the same ID (for a PATCH)."""
    master, data = _occurrence(ctx, user, event_id)
    data["type"] = "exception"
    event = SimEvent(master.mailbox_id, data, master.copy, master.organizer_id)
    ctx.state.mailbox_events(user.id)[event.id] = event
    return event


async def instances(ctx: SimContext, req: GraphRequest, params: dict[str, str]) -> GraphResponse:
    """``GET /users/{id}/events/{id}/instances``: a series' occurrences and exceptions."""
    from mmsd.sim.recurrence import expand_series

    user = ctx.require_mailbox(params["user"])
    master = _event(ctx, user, params["event"])
    start, end = _window(req)
    items: list[JSON] = []
    if master.data.get("type") == "seriesMaster":
        exceptions = _exceptions_by_master(ctx.state.mailbox_events(user.id))
        items = expand_series(master, exceptions.get(master.id, []), start, end)
        items.sort(key=_start_key)
    select, body_type = parse_select(req), body_preference(req)
    zone = timezone_preference(req)
    return paged(
        ctx,
        req,
        items,
        10,
        _ctx_url(user, f"events('{master.id}')/instances"),
        lambda d: render_item(d, select, body_type, zone),
        _pref_header(body_type, zone),
    )


async def get_event(ctx: SimContext, req: GraphRequest, params: dict[str, str]) -> GraphResponse:
    """``GET /users/{id}/events/{id}``."""
    user = ctx.require_mailbox(params["user"])
    event = _event_or_occurrence(ctx, user, params["event"])
    select, body_type = parse_select(req), body_preference(req)
    zone = timezone_preference(req)
    if (
        select is None
        and body_type is None
        and zone is None
        and event.data.get("type") != "occurrence"
    ):
        # The common case: serialize an event once per version (its ETag), not per GET.
        etag = str(event.data.get("@odata.etag"))
        cached = ctx.entity_cache.get(event.id)
        if cached is None or cached[0] != etag:
            raw = json_bytes({"@odata.context": _ctx_url(user, "events/$entity"), **event.data})
            cached = ctx.cache_entity(event.id, etag, raw)
        return GraphResponse(200, cached[1], {"Content-Type": JSON_CONTENT_TYPE})
    body = {
        "@odata.context": _ctx_url(user, "events/$entity"),
        **render_item(event.data, select, body_type, zone),
    }
    return ok(body, headers=_pref_header(body_type, zone))


def _check_fields(ctx: SimContext, fields: JSON) -> JSON:
    """Reject properties Event lacks; keep the writable ones (and the online-meeting trio)."""
    out: JSON = {}
    for key, value in fields.items():
        if key.startswith("@odata."):
            continue
        if key not in EVENT_PROPERTIES:
            raise GraphError(
                400,
                "RequestBodyRead",
                f"The property '{key}' does not exist on type 'microsoft.graph.event'. "
                "Make sure to only use property names that are defined by the type or mark "
                "the type as open type.",
            )
        if key in WRITABLE or key in ONLINE_FIXED:
            out[key] = value
    attendees = out.get("attendees")
    if attendees is not None:
        if not isinstance(attendees, list):
            raise GraphError(400, "RequestBodyRead", "Cannot read 'attendees': not an array.")
        if len(attendees) > ctx.limits.attendees_per_event:
            raise GraphError(
                400,
                "ErrorExceededMaxRecipientLimit",
                "The recipient set contains more than the maximum allowed recipients.",
            )
    body = out.get("body")
    if body is not None and not (isinstance(body, dict) and isinstance(body.get("content"), str)):
        raise GraphError(400, "RequestBodyRead", "Cannot read 'body': an itemBody is expected.")
    return out


def _etag_matches(header: str, event: SimEvent) -> bool:
    if header.strip() == "*":
        return True
    change_key = str(event.data.get("changeKey") or "")
    etag = str(event.data.get("@odata.etag") or "")
    for candidate in header.split(","):
        c = candidate.strip()
        if c in (etag, change_key):
            return True
        if c.startswith("W/"):
            c = c[2:]
        if c.strip('"') == change_key:
            return True
    return False


async def create_event(ctx: SimContext, req: GraphRequest, params: dict[str, str]) -> GraphResponse:
    """``POST /users/{id}/events``: 201; invitations to in-tenant attendees."""
    from mmsd.sim.eventjson import new_event

    user = ctx.require_mailbox(params["user"])
    fields = _check_fields(ctx, req.json_object())
    fields["organizer"] = {"emailAddress": {"name": user.display_name, "address": user.mail}}
    if fields.get("recurrence"):
        fields["type"] = "seriesMaster"
    event = new_event(
        ctx.state, user.id, fields, copy=CopyKind.ORGANIZER, organizer_id=user.id, now=ctx.now()
    )
    ctx.state.mailbox_events(user.id)[event.id] = event
    mailer(ctx).send_for_event(user, event, NEW)
    zone = timezone_preference(req)
    body = {
        "@odata.context": _ctx_url(user, "events/$entity"),
        **render_item(event.data, None, None, zone),
    }
    return ok(body, status=201, headers=_pref_header(None, zone))


async def update_event(ctx: SimContext, req: GraphRequest, params: dict[str, str]) -> GraphResponse:
    """``PATCH /users/{id}/events/{id}``: 200; updates to every in-tenant attendee."""
    from mmsd.sim.eventjson import touch_event

    user = ctx.require_mailbox(params["user"])
    event = _event_or_occurrence(ctx, user, params["event"])
    if_match = req.header("If-Match")
    fields = _check_fields(ctx, req.json_object())
    if if_match is not None and not _etag_matches(if_match, event):
        raise GraphError(
            412,
            "ErrorIrresolvableConflict",
            "The change key passed in the request does not match the current change key "
            "of the item.",
        )
    if event.data.get("type") == "occurrence":
        # Updating one occurrence makes it an exception of its series, keeping its ID.
        event = _materialize_exception(ctx, user, event.id)
    data = event.data
    online = bool(data.get("isOnlineMeeting"))
    for key, value in fields.items():
        if key in ONLINE_FIXED:
            if online or key == "onlineMeeting":
                continue  # fixed once set: ignored, as Graph does
            data[key] = value
            continue
        data[key] = value
    touch_event(ctx.state, event, ctx.now())
    event.patch_count += 1
    ctx.counters.patches[event.id] += 1
    if data.get("isOrganizer") and event.copy is not CopyKind.ATTENDEE:
        mailer(ctx).send_for_event(user, event, UPDATE)
    zone = timezone_preference(req)
    body_out = {
        "@odata.context": _ctx_url(user, "events/$entity"),
        **render_item(data, None, None, zone),
    }
    response = ok(body_out, headers=_pref_header(None, zone))
    response.hold_event_id = event.id
    return response


def _message_list(ctx: SimContext, user: SimUser) -> list[JSON]:
    ctx.deliver_due()
    return list(reversed(ctx.state.messages.get(user.id, [])))


async def list_messages(
    ctx: SimContext, req: GraphRequest, params: dict[str, str]
) -> GraphResponse:
    """``GET /users/{id}/messages`` (and ``/mailFolders/inbox/messages``), newest first."""
    user = ctx.require_mailbox(params["user"])
    items = _message_list(ctx, user)
    select, body_type = parse_select(req), body_preference(req)
    zone = timezone_preference(req)
    return paged(
        ctx,
        req,
        items,
        10,
        _ctx_url(user, "messages"),
        lambda d: render_item(d, select, body_type, zone),
        _pref_header(body_type, zone),
    )


async def get_message(ctx: SimContext, req: GraphRequest, params: dict[str, str]) -> GraphResponse:
    """``GET /users/{id}/messages/{id}``."""
    user = ctx.require_mailbox(params["user"])
    for msg in _message_list(ctx, user):
        if msg.get("id") == params["message"]:
            select, body_type = parse_select(req), body_preference(req)
            zone = timezone_preference(req)
            body = {
                "@odata.context": _ctx_url(user, "messages/$entity"),
                **render_item(msg, select, body_type, zone),
            }
            return ok(body, headers=_pref_header(body_type, zone))
    raise not_found_item()


def mailer(ctx: SimContext) -> Mailer:
    """The context's :class:`Mailer` (one per simulator, made on first use)."""
    if ctx.mailer is None:
        ctx.mailer = Mailer(ctx)
    return ctx.mailer


def add_event_routes(router: Router) -> None:
    """Register the Outlook routes."""
    o = Resource.OUTLOOK
    router.add("GET", "/users/{user}/events", list_events, "events", o)
    router.add("POST", "/users/{user}/events", create_event, "events", o)
    router.add("GET", "/users/{user}/calendarView", calendar_view, "calendarView", o)
    router.add("GET", "/users/{user}/calendar/calendarView", calendar_view, "calendarView", o)
    router.add("GET", "/users/{user}/events/{event}/instances", instances, "instances", o)
    router.add("GET", "/users/{user}/events/{event}", get_event, "events/{id}", o)
    router.add("PATCH", "/users/{user}/events/{event}", update_event, "events/{id}", o)
    router.add("GET", "/users/{user}/messages", list_messages, "messages", o)
    router.add("GET", "/users/{user}/mailFolders/inbox/messages", list_messages, "messages", o)
    router.add("GET", "/users/{user}/messages/{message}", get_message, "messages/{id}", o)
