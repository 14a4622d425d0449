"""Series expansion: patterns, ranges, windows, exceptions, cancelled occurrences, occurrence IDs."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import Any

from kiota_serialization_json.json_parse_node import JsonParseNode
from msgraph.generated.models.event import Event

from mmsd.sim.eventjson import graph_datetime_tz, new_event, parse_graph_datetime
from mmsd.sim.model import CopyKind, SimEvent, TenantState
from mmsd.sim.recurrence import (
    expand_series,
    occurrence_id,
    occurrence_starts,
    series_end,
    series_instances,
    split_occurrence_id,
)

NOW = datetime(2030, 1, 1, tzinfo=UTC)


def _series(
    state: TenantState, start: datetime, pattern: dict[str, Any], rng: dict[str, Any]
) -> SimEvent:
    recurrence = {
        "pattern": {"interval": 1, "firstDayOfWeek": "sunday", "index": "first", **pattern},
        "range": {"recurrenceTimeZone": "UTC", "startDate": start.date().isoformat(), **rng},
    }
    fields = {
        "type": "seriesMaster",
        "subject": "Jour fixe ☕ 定例",
        "body": {"contentType": "text", "content": "Serie 🔁"},
        "start": graph_datetime_tz(start),
        "end": graph_datetime_tz(start + timedelta(minutes=30)),
        "recurrence": recurrence,
    }
    return new_event(state, "m", fields, copy=CopyKind.ORGANIZER, organizer_id="m", now=NOW)


def _exception(
    state: TenantState, master: SimEvent, original: datetime, moved: datetime, **extra: Any
) -> SimEvent:
    fields = {
        "type": "exception",
        "seriesMasterId": master.id,
        "originalStart": original.strftime("%Y-%m-%dT%H:%M:%SZ"),
        "subject": "moved",
        "body": {"contentType": "text", "content": "eigener Text ✂"},
        "start": graph_datetime_tz(moved),
        "end": graph_datetime_tz(moved + timedelta(minutes=30)),
        **extra,
    }
    return new_event(state, "m", fields, copy=CopyKind.ORGANIZER, organizer_id="m", now=NOW)


def _starts(items: list[dict[str, Any]]) -> list[datetime]:
    return [parse_graph_datetime(i["start"]) for i in items]


def at(day: int, hour: int = 10, month: int = 1) -> datetime:
    return datetime(2030, month, day, hour, tzinfo=UTC)


def test_daily_numbered() -> None:
    master = _series(
        TenantState("t", "d", 1),
        at(1),
        {"type": "daily", "interval": 2},
        {"type": "numbered", "numberOfOccurrences": 4},
    )
    items = expand_series(master, [], at(1, 0), at(1, 0, month=3))
    assert _starts(items) == [at(1), at(3), at(5), at(7)]
    assert series_end(master) == at(7) + timedelta(minutes=30)


def test_weekly_days_with_end_date_inclusive() -> None:
    # 2030-01-07 is a Monday.
    master = _series(
        TenantState("t", "d", 1),
        at(7),
        {"type": "weekly", "daysOfWeek": ["monday", "wednesday"]},
        {"type": "endDate", "endDate": "2030-01-21"},
    )
    items = expand_series(master, [], at(1), at(1, month=3))
    assert _starts(items) == [at(7), at(9), at(14), at(16), at(21)]
    assert series_end(master) == at(21) + timedelta(minutes=30)


def test_biweekly_with_first_day_of_week() -> None:
    master = _series(
        TenantState("t", "d", 1),
        at(7),
        {"type": "weekly", "interval": 2, "daysOfWeek": ["monday", "friday"]},
        {"type": "noEnd"},
    )
    items = expand_series(master, [], at(1), at(31))
    assert _starts(items) == [at(7), at(11), at(21), at(25)]
    assert series_end(master) is None


def test_absolute_monthly_clamps_to_month_end() -> None:
    master = _series(
        TenantState("t", "d", 1),
        at(31),
        {"type": "absoluteMonthly", "dayOfMonth": 31},
        {"type": "numbered", "numberOfOccurrences": 3},
    )
    assert _starts(expand_series(master, [], at(1), at(1, month=6))) == [
        at(31),
        at(28, month=2),
        at(31, month=3),
    ]


def test_relative_monthly_last_friday() -> None:
    master = _series(
        TenantState("t", "d", 1),
        at(25),
        {"type": "relativeMonthly", "daysOfWeek": ["friday"], "index": "last"},
        {"type": "numbered", "numberOfOccurrences": 3},
    )
    assert _starts(expand_series(master, [], at(1), at(1, month=12))) == [
        at(25),
        at(22, month=2),
        at(29, month=3),
    ]


def test_window_uses_overlap_and_half_open_end() -> None:
    master = _series(TenantState("t", "d", 1), at(1), {"type": "daily"}, {"type": "noEnd"})
    # The 10:00-10:30 occurrence of day 3 overlaps a window starting 10:15; day 5's starts at the window end.
    items = expand_series(master, [], at(3) + timedelta(minutes=15), at(5))
    assert _starts(items) == [at(3), at(4)]


def test_occurrence_json_shape() -> None:
    state = TenantState("t", "d", 1)
    master = _series(state, at(1), {"type": "daily"}, {"type": "noEnd"})
    occ = expand_series(master, [], at(2), at(3))[0]
    assert occ["type"] == "occurrence" and occ["seriesMasterId"] == master.id
    assert occ["id"] == occurrence_id(master.id, at(2)) != master.id
    assert split_occurrence_id(occ["id"]) == (master.id, at(2))
    assert occ["originalStart"] == "2030-01-02T10:00:00Z" and occ["recurrence"] is None
    assert occ["subject"] == "Jour fixe ☕ 定例" and occ["iCalUId"] != master.data["iCalUId"]
    expected_keys = list(master.data)
    expected_keys.insert(expected_keys.index("recurrence"), "originalStart")
    assert list(occ) == expected_keys
    parsed = JsonParseNode(json.loads(json.dumps(occ))).get_object_value(Event)
    assert parsed.original_start == at(2) and not [
        k for k in parsed.additional_data if not k.startswith("@odata.")
    ]
    occ["body"]["content"] = "changed"
    assert master.data["body"]["content"] == "Serie 🔁"  # fresh copies
    assert expand_series(master, [], at(2), at(3))[0]["id"] == occ["id"]  # deterministic


def test_exceptions_replace_and_cancelled_are_omitted() -> None:
    state = TenantState("t", "d", 1)
    master = _series(
        state, at(1), {"type": "daily"}, {"type": "numbered", "numberOfOccurrences": 5}
    )
    moved = _exception(state, master, at(2), at(2, 15))
    cancelled = _exception(state, master, at(4), at(4), isCancelled=True)
    items = expand_series(master, [moved, cancelled], at(1), at(10))
    assert _starts(items) == [at(1), at(2, 15), at(3), at(5)]
    assert items[1]["id"] == moved.id and items[1]["body"]["content"] == "eigener Text ✂"
    assert [i["type"] for i in items] == ["occurrence", "exception", "occurrence", "occurrence"]
    # an exception moved out of the window disappears with its occurrence
    assert _starts(expand_series(master, [moved], at(2), at(2, 12))) == []
    assert series_instances(master, [moved, cancelled], at(1), at(10)) == items


def test_split_occurrence_id_refuses_other_ids() -> None:
    assert split_occurrence_id("AAMkA_abc") is None
    assert split_occurrence_id("plain") is None


def test_occurrence_starts_is_lazy_for_no_end() -> None:
    master = _series(TenantState("t", "d", 1), at(1), {"type": "daily"}, {"type": "noEnd"})
    gen = occurrence_starts(master.data)
    assert [next(gen) for _ in range(3)] == [at(1), at(2), at(3)]
