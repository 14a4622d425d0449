"""``mmsctl`` rendering: tables, and the progress arithmetic of ``watch``."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from mmsd.admin import render

NOW = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)


def _rec(
    state: str, created: datetime, total: int, done: int, modified: datetime | None = None
) -> dict[str, Any]:
    return {
        "state": state,
        "createDate": created.strftime("%Y-%m-%dT%H:%M:%S.000Z"),
        "modifiedDate": (modified or created).strftime("%Y-%m-%dT%H:%M:%S.000Z"),
        "totalMeeting": total,
        "succeededMeeting": done,
        "failedMeeting": 0,
        "skippedMeeting": 0,
    }


def _summary(**counts: int) -> list[dict[str, Any]]:
    return [{"state": s, "userCount": counts.get(s, 0)} for s in render.STATES]


def test_table_aligns_and_marks_missing_values() -> None:
    text = render.table(["A", "LONG HEADER"], [["x", None], ["longer", "2026-03-01T09:00:00.123Z"]])
    assert text.splitlines() == [
        "A       LONG HEADER",
        "x       -",
        "longer  2026-03-01T09:00:00Z",
    ]


def test_progress_uses_the_wave_average_without_a_previous_sample() -> None:
    start = NOW - timedelta(hours=1)
    records = [
        _rec("Succeeded", start, 10, 10, NOW - timedelta(minutes=30)),
        _rec("InProgress", start, 10, 8),
        _rec("Pending", start, 0, 0),  # not listed yet: assumed the average (10)
        _rec("Succeeded", NOW - timedelta(days=2), 99, 99),  # an old wave: ignored
    ]
    p = render.progress("t", _summary(Pending=1, InProgress=1, Succeeded=2), records, NOW)
    assert p.meetings_done == 18
    assert p.meetings_left == 12
    assert abs(p.meetings_per_second - 18 / 3600) < 1e-9
    assert p.eta == timedelta(seconds=12 / (18 / 3600))
    assert p.window_left == timedelta(hours=11)
    assert not p.late


def test_progress_rate_from_previous_sample_and_late_verdict() -> None:
    start = NOW - timedelta(hours=11)
    records = [_rec("InProgress", start, 10_000, 1_000)]
    previous = render.Sample(NOW - timedelta(seconds=100), 900)
    p = render.progress("t", _summary(InProgress=1), records, NOW, previous)
    assert p.meetings_per_second == 1.0  # (1000 - 900) / 100 s
    assert p.eta == timedelta(seconds=9_000)
    assert p.window_left == timedelta(hours=1)
    assert p.late
    assert "LATE" in render.progress_text(p)


def test_progress_when_everything_is_done_or_nothing_happened() -> None:
    done = render.progress(
        "t", _summary(Succeeded=1), [_rec("Succeeded", NOW - timedelta(hours=1), 3, 3, NOW)], NOW
    )
    assert (done.meetings_left, done.eta) == (0, timedelta(0))
    empty = render.progress("t", _summary(), [], NOW)
    assert (empty.eta, empty.window_left, empty.meetings_per_second) == (None, None, 0.0)
    assert "--:--:--" in render.progress_text(empty)


def test_progress_bar_proportions() -> None:
    bar = render.progress_bar({"Succeeded": 2, "Failed": 1, "InProgress": 1, "Pending": 4}, 8)
    assert bar == "[##x>....]"
    assert render.progress_bar({}, 4) == "[    ]"
