"""Expanding a series master's ``recurrence`` into occurrences, as calendarView shows them.

Patterns: ``daily``, ``weekly`` (``daysOfWeek``, ``firstDayOfWeek``),
``absoluteMonthly``, ``relativeMonthly``, ``absoluteYearly``,
``relativeYearly``; ranges ``endDate`` (inclusive), ``noEnd``, ``numbered``.
Times are taken in UTC (the simulator stores every event in UTC; the
``recurrenceTimeZone`` is not applied, so there is no DST shift).

An occurrence is the master's JSON with ``type: "occurrence"``, its own ID
(``occurrence_id``: the master's ID plus the original start, so it can be
parsed back with ``split_occurrence_id``), ``seriesMasterId``, ``start``/``end``
and ``originalStart``. An exception event replaces the occurrence whose
``originalStart`` it carries; a cancelled exception (``isCancelled`` true)
removes it.
"""

from __future__ import annotations

import calendar
from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta
from typing import Any

from mmsd.sim.eventjson import graph_datetime_tz, parse_graph_datetime, web_link
from mmsd.sim.model import JSON, SimEvent

WEEKDAYS = ("monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday")
_INDEX = {"first": 0, "second": 1, "third": 2, "fourth": 3, "last": -1}
_MAX_STEPS = 200_000  # a guard against patterns that never match a day
_OCC_FORMAT = "%Y%m%dT%H%M%SZ"


def occurrence_id(master_id: str, original_start: datetime) -> str:
    """The deterministic ID of the occurrence of ``master_id`` that starts at ``original_start``."""
    return f"{master_id}_{original_start.astimezone(UTC).strftime(_OCC_FORMAT)}"


def split_occurrence_id(event_id: str) -> tuple[str, datetime] | None:
    """``(master_id, original_start)`` of an ID made by ``occurrence_id``, else None."""
    master_id, sep, stamp = event_id.rpartition("_")
    if not sep or len(stamp) != 16 or not master_id:
        return None
    try:
        when = datetime.strptime(stamp, _OCC_FORMAT).replace(tzinfo=UTC)
    except ValueError:
        return None
    return master_id, when


def graph_instant(dt: datetime) -> str:
    """An ``Edm.DateTimeOffset`` as Graph writes ``originalStart``: ``2024-05-01T10:00:00Z``."""
    return dt.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def occurrence_ical_uid(master_ical_uid: str, original_start: datetime) -> str:
    """An occurrence's iCalUId: the master's with the occurrence date in bytes 16-19, as Outlook does."""
    d = original_start.astimezone(UTC)
    stamp = f"{d.year:04X}{d.month:02X}{d.day:02X}"
    if len(master_ical_uid) < 40:
        return master_ical_uid + stamp
    return master_ical_uid[:32] + stamp + master_ical_uid[40:]


def _add_months(year: int, month: int, n: int) -> tuple[int, int]:
    index = year * 12 + (month - 1) + n
    return index // 12, index % 12 + 1


def _relative_day(year: int, month: int, days: list[int], index: str) -> date | None:
    """The ``index`` (first…last) day of the month whose weekday is in ``days``."""
    matching = [
        date(year, month, d)
        for d in range(1, calendar.monthrange(year, month)[1] + 1)
        if date(year, month, d).weekday() in days
    ]
    if not matching:
        return None
    i = _INDEX.get(index, 0)
    return matching[i] if i < len(matching) else matching[-1]


def _pattern_dates(pattern: JSON, first: date) -> Iterator[date]:
    """Every date the pattern produces on or after ``first``, in order, without end."""
    kind = pattern.get("type", "daily")
    interval = max(int(pattern.get("interval") or 1), 1)
    days = [
        WEEKDAYS.index(d.lower()) for d in pattern.get("daysOfWeek") or [] if d.lower() in WEEKDAYS
    ]
    index = str(pattern.get("index") or "first")
    if kind == "daily":
        for step in range(_MAX_STEPS):
            yield first + timedelta(days=step * interval)
    elif kind == "weekly":
        if not days:
            days = [first.weekday()]
        fdw = WEEKDAYS.index(str(pattern.get("firstDayOfWeek") or "sunday").lower())
        week = first - timedelta(days=(first.weekday() - fdw) % 7)
        for _ in range(_MAX_STEPS):
            for offset in range(7):
                day = week + timedelta(days=offset)
                if day >= first and day.weekday() in days:
                    yield day
            week += timedelta(weeks=interval)
    elif kind in ("absoluteMonthly", "relativeMonthly", "absoluteYearly", "relativeYearly"):
        yearly = kind.endswith("Yearly")
        step_months = interval * 12 if yearly else interval
        year = first.year
        month = int(pattern.get("month") or first.month) if yearly else first.month
        if yearly and month < first.month:
            year += 1
        for _ in range(_MAX_STEPS):
            if kind.startswith("absolute"):
                dom = int(pattern.get("dayOfMonth") or first.day)
                candidate: date | None = date(
                    year, month, min(dom, calendar.monthrange(year, month)[1])
                )
            else:
                candidate = _relative_day(year, month, days or [first.weekday()], index)
            if candidate is not None and candidate >= first:
                yield candidate
            year, month = _add_months(year, month, step_months)
    else:
        raise ValueError(f"unsupported recurrence pattern {kind!r}")


def occurrence_starts(master: JSON) -> Iterator[datetime]:
    """The original start of every occurrence of the series ``master`` (Graph JSON), in order."""
    recurrence = master.get("recurrence") or {}
    pattern = recurrence.get("pattern") or {}
    rng = recurrence.get("range") or {}
    master_start = parse_graph_datetime(master["start"])
    first = date.fromisoformat(rng["startDate"]) if rng.get("startDate") else master_start.date()
    kind = rng.get("type", "noEnd")
    end_date = (
        date.fromisoformat(rng["endDate"]) if kind == "endDate" and rng.get("endDate") else None
    )
    count = int(rng.get("numberOfOccurrences") or 0) if kind == "numbered" else None
    produced = 0
    for day in _pattern_dates(pattern, first):
        if end_date is not None and day > end_date:
            return
        if count is not None and produced >= count:
            return
        produced += 1
        yield datetime.combine(day, master_start.timetz())


def series_end(master: SimEvent) -> datetime | None:
    """When the series' last occurrence ends; None for a series without end."""
    data = master.data
    rng = (data.get("recurrence") or {}).get("range") or {}
    if rng.get("type", "noEnd") not in ("endDate", "numbered"):
        return None
    duration = parse_graph_datetime(data["end"]) - parse_graph_datetime(data["start"])
    last: datetime | None = None
    for last in occurrence_starts(data):  # noqa: B007 - we want the last one
        pass
    if last is None:
        return parse_graph_datetime(data["end"])
    return last + duration


def _clone(value: Any) -> Any:
    """A deep copy of JSON-shaped data (dicts, lists, scalars)."""
    if isinstance(value, dict):
        return {k: _clone(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_clone(v) for v in value]
    return value


def occurrence_json(master: JSON, original_start: datetime, duration: timedelta) -> JSON:
    """One occurrence of ``master``: its properties with the occurrence's own ID, type and times."""
    occ_id = occurrence_id(str(master["id"]), original_start)
    out: JSON = {}
    for key, value in master.items():
        if key == "recurrence":
            out["originalStart"] = graph_instant(original_start)
            out["recurrence"] = None
        elif key == "id":
            out["id"] = occ_id
        elif key == "type":
            out["type"] = "occurrence"
        elif key == "seriesMasterId":
            out["seriesMasterId"] = master["id"]
        elif key == "webLink":
            out["webLink"] = web_link(occ_id)
        elif key == "iCalUId":
            out["iCalUId"] = occurrence_ical_uid(str(value), original_start)
        elif key == "start":
            out["start"] = graph_datetime_tz(original_start)
        elif key == "end":
            out["end"] = graph_datetime_tz(original_start + duration)
        elif key != "originalStart":
            out[key] = _clone(value)
    return out


def expand_series(
    master: SimEvent, exceptions: list[SimEvent], start: datetime, end: datetime
) -> list[JSON]:
    """Occurrences and exceptions of the series that overlap ``[start, end)``, ordered by start.

    An exception replaces the occurrence with its ``originalStart`` (and shows
    at its own, possibly moved, time); a cancelled exception removes it. The
    returned dicts are fresh copies, safe to modify.
    """
    data = master.data
    m_start = parse_graph_datetime(data["start"])
    duration = parse_graph_datetime(data["end"]) - m_start
    replaced: dict[datetime, SimEvent] = {}
    for exc in exceptions:
        original = exc.data.get("originalStart")
        if original:
            replaced[
                datetime.fromisoformat(str(original).replace("Z", "+00:00")).astimezone(UTC)
            ] = exc
    found: list[tuple[datetime, str, JSON]] = []
    for occ_start in occurrence_starts(data):
        if occ_start >= end:
            break
        if occ_start + duration <= start and duration > timedelta(0):
            continue
        if duration == timedelta(0) and occ_start < start:
            continue
        if occ_start in replaced:
            continue
        found.append(
            (
                occ_start,
                occurrence_id(master.id, occ_start),
                occurrence_json(data, occ_start, duration),
            )
        )
    for exc in exceptions:
        if exc.data.get("isCancelled"):
            continue
        e_start = parse_graph_datetime(exc.data["start"])
        e_end = parse_graph_datetime(exc.data["end"])
        if e_start < end and (e_end > start or (e_end == e_start and e_start >= start)):
            found.append((e_start, exc.id, _clone(exc.data)))
    found.sort(key=lambda item: (item[0], item[1]))
    return [item[2] for item in found]


def series_instances(
    master: SimEvent, exceptions: list[SimEvent], start: datetime, end: datetime
) -> list[JSON]:
    """What ``/events/{master}/instances`` answers: the same as ``expand_series``."""
    return expand_series(master, exceptions, start, end)
