"""Readable output for ``mmsctl``: plain tables, and the per-tenant progress of ``watch``.

Everything here works on the admin API's JSON (dicts), so what a human reads
is exactly what ``--json`` would print, rearranged.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from mmsd.clock import parse_rfc3339

WINDOW = timedelta(hours=12)
"""The migration window a wave should finish in (SPEC section 6's 12 hours)."""

STATES = ("Pending", "InProgress", "Succeeded", "Failed")
_BAR_CHARS = {"Succeeded": "#", "Failed": "x", "InProgress": ">", "Pending": "."}


def _cell(value: object) -> str:
    if value is None:
        return "-"
    if isinstance(value, bool):
        return "true" if value else "false"
    text = str(value)
    if len(text) >= 20 and text[4:5] == "-" and text[10:11] == "T" and text.endswith("Z"):
        text = text[:19] + "Z"  # an RFC 3339 time: drop the milliseconds
    return text.replace("\n", " ")


def table(headers: Sequence[str], rows: Sequence[Sequence[object]]) -> str:
    """A left-aligned text table with a header line; ``-`` for missing values."""
    cells = [[_cell(v) for v in row] for row in rows]
    widths = [len(h) for h in headers]
    for row in cells:
        widths = [max(w, len(c)) for w, c in zip(widths, row, strict=True)]
    lines = ["  ".join(h.ljust(w) for h, w in zip(headers, widths, strict=True)).rstrip()]
    lines += [
        "  ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)).rstrip() for row in cells
    ]
    return "\n".join(lines)


def key_values(data: Mapping[str, Any]) -> str:
    """``key: value`` lines, keys aligned."""
    width = max((len(k) for k in data), default=0)
    return "\n".join(f"{k.ljust(width)}  {_cell(v)}" for k, v in data.items())


def summary_table(value: Sequence[Mapping[str, Any]]) -> str:
    """``status --summary``."""
    return table(["STATE", "USERS"], [[r["state"], r["userCount"]] for r in value])


def status_table(value: Sequence[Mapping[str, Any]]) -> str:
    """``status``: one line per user (the latest record)."""
    rows = [
        [
            r.get("userPrincipalName") or r["userId"],
            r["state"],
            r["migrationType"],
            r["totalMeeting"],
            r["succeededMeeting"],
            r["failedMeeting"],
            r["skippedMeeting"],
            r["invitesUpdate"],
            r["retryCount"],
            r["modifiedDate"],
            r["correlationId"],
            r.get("lastMessage"),
        ]
        for r in value
    ]
    headers = [
        "USER",
        "STATE",
        "TYPE",
        "TOTAL",
        "OK",
        "FAILED",
        "SKIPPED",
        "INVITES",
        "RETRIES",
        "MODIFIED",
        "CORRELATION ID",
        "LAST MESSAGE",
    ]
    return table(headers, rows)


def history_table(value: Sequence[Mapping[str, Any]]) -> str:
    """``history``: one line per meeting."""
    rows = [
        [
            r["start"],
            r["outcome"],
            r.get("reason"),
            r["eventId"],
            r.get("newJoinUrl"),
            r["correlationId"],
            r.get("subject"),
        ]
        for r in value
    ]
    headers = [
        "START",
        "OUTCOME",
        "REASON",
        "EVENT ID",
        "NEW JOIN LINK",
        "CORRELATION ID",
        "SUBJECT",
    ]
    return table(headers, rows)


def triggers_table(value: Sequence[Mapping[str, Any]]) -> str:
    """``triggers``: each trigger and what became of it."""
    rows = [
        [
            r["receivedAt"],
            r["type"],
            r.get("identity"),
            r["fate"],
            r.get("reason"),
            r.get("correlationId"),
            r["triggerId"],
        ]
        for r in value
    ]
    headers = ["RECEIVED", "TYPE", "IDENTITY", "FATE", "REASON", "CORRELATION ID", "TRIGGER ID"]
    return table(headers, rows)


def preview_text(preview: Mapping[str, Any], *, blocks: bool = False) -> str:
    """``preview``: the user, then one line per meeting; with ``blocks`` the old and new blocks."""
    head = key_values(
        {
            "user": preview.get("userPrincipalName") or preview["userId"],
            "source": preview["sourceMeetingType"],
            "target": preview["targetMeetingType"],
            "meetings": len(preview["value"]),
        }
    )
    rows = [
        [m["start"], m["classification"], m["eventId"], m.get("oldJoinUrl"), m.get("newJoinUrl")]
        for m in preview["value"]
    ]
    out = [
        head,
        "",
        table(["START", "CLASSIFICATION", "EVENT ID", "OLD JOIN LINK", "NEW JOIN LINK"], rows),
    ]
    if blocks:
        for m in preview["value"]:
            out += [
                "",
                f"== {m['eventId']} ({m['classification']})",
                "-- old block:",
                m.get("oldBlock") or "(none)",
                "-- new block:",
                m.get("newBlock") or "(none)",
            ]
    return "\n".join(out)


# ------------------------------------------------------------------- progress


@dataclass(frozen=True)
class Sample:
    """One look at a tenant: the daemon's time and meetings processed so far."""

    at: datetime
    processed: int


@dataclass(frozen=True)
class Progress:
    """A tenant's progress for ``watch``: users per state, rate, ETA against the window."""

    tenant: str
    users: dict[str, int]
    meetings_done: int
    meetings_left: int
    meetings_per_second: float
    eta: timedelta | None  # None when nothing is left to do or no rate is known yet
    window_left: timedelta | None  # time until wave start + 12 h; None when no wave
    sample: Sample

    @property
    def late(self) -> bool:
        """True when the ETA falls after the 12-hour window closes."""
        return self.eta is not None and self.window_left is not None and self.eta > self.window_left


def _processed(r: Mapping[str, Any]) -> int:
    return int(r["succeededMeeting"]) + int(r["failedMeeting"]) + int(r["skippedMeeting"])


def progress(
    tenant: str,
    summary: Sequence[Mapping[str, Any]],
    records: Sequence[Mapping[str, Any]],
    now: datetime,
    previous: Sample | None = None,
) -> Progress:
    """Compute a tenant's progress from its summary and latest status records.

    The *wave* is every record still open plus those finished within the last
    12 hours; it starts at the oldest ``createDate`` among them. Meetings per
    second come from the change since ``previous`` when there is one, else the
    wave's average since it started. Pending users whose meetings are not
    counted yet are assumed to have the wave's average number of meetings.
    """
    users = {s: 0 for s in STATES}
    for row in summary:
        users[str(row["state"])] = int(row["userCount"])
    open_states = ("Pending", "InProgress")
    wave = [
        r
        for r in records
        if r["state"] in open_states or parse_rfc3339(r["modifiedDate"]) >= now - WINDOW
    ]
    done = sum(_processed(r) for r in wave)
    counted = [int(r["totalMeeting"]) for r in wave if int(r["totalMeeting"]) > 0]
    average = sum(counted) / len(counted) if counted else 0.0
    left = 0.0
    for r in wave:
        if r["state"] not in open_states:
            continue
        total = int(r["totalMeeting"])
        left += max(total - _processed(r), 0) if total > 0 else average
    sample = Sample(now, done)
    start = min((parse_rfc3339(r["createDate"]) for r in wave), default=None)
    rate = 0.0
    if previous is not None and now > previous.at and done >= previous.processed:
        rate = (done - previous.processed) / (now - previous.at).total_seconds()
    elif start is not None and now > start:
        rate = done / (now - start).total_seconds()
    remaining = round(left)
    eta = timedelta(seconds=remaining / rate) if remaining and rate > 0 else None
    if remaining == 0:
        eta = timedelta(0) if wave else None
    window_left = start + WINDOW - now if start is not None else None
    return Progress(tenant, users, done, remaining, rate, eta, window_left, sample)


def _duration(value: timedelta | None) -> str:
    if value is None:
        return "--:--:--"
    seconds = int(value.total_seconds())
    sign = "-" if seconds < 0 else ""
    seconds = abs(seconds)
    return f"{sign}{seconds // 3600:02d}:{seconds % 3600 // 60:02d}:{seconds % 60:02d}"


def progress_bar(users: Mapping[str, int], width: int = 40) -> str:
    """A bar of ``width`` cells: ``#`` succeeded, ``x`` failed, ``>`` in progress, ``.`` pending."""
    total = sum(users.values())
    if total == 0:
        return "[" + " " * width + "]"
    cells = ""
    used = 0
    acc = 0
    for state in ("Succeeded", "Failed", "InProgress", "Pending"):
        acc += users.get(state, 0)
        upto = round(acc * width / total)
        cells += _BAR_CHARS[state] * (upto - used)
        used = upto
    return "[" + cells + "]"


def progress_text(p: Progress, width: int = 40) -> str:
    """Two lines for one tenant: the bar with users per state, then rate and ETA vs the window."""
    total = sum(p.users.values())
    finished = p.users["Succeeded"] + p.users["Failed"]
    percent = 100.0 * finished / total if total else 0.0
    states = "  ".join(f"{s} {p.users[s]}" for s in STATES)
    verdict = "LATE" if p.late else "on time"
    if p.eta is None or p.window_left is None:
        verdict = "-"
    return (
        f"{p.tenant}  {progress_bar(p.users, width)} {percent:5.1f}%  {states}\n"
        f"  meetings done {p.meetings_done}, left ~{p.meetings_left}, "
        f"{p.meetings_per_second:.2f}/s  ETA {_duration(p.eta)}  "
        f"window left {_duration(p.window_left)}  {verdict}"
    )
