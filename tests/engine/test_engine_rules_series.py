"""Series: the master and its future exception are updated once each; the past is not touched.

SPEC section 3, step 1: single instances after now, series masters whose
recurrence has not ended, and future exceptions carrying their own body — each
one event ID, PATCHed once. Past occurrences, past exceptions, past single
meetings and ended series are not touched.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from engine_checks import expected_updates, message_delta, patch_delta, trigger, updated_events
from engine_testkit import TENANT, Harness

from mmsd.domain.model import MigrationState
from mmsd.sim.model import CopyKind, SimEvent
from mmsd.sim.recurrence import occurrence_id, occurrence_json, occurrence_starts

PAST_NOTE = "Past exception with its own body"


def _start(event: dict[str, Any]) -> datetime:
    return datetime.fromisoformat(event["start"]["dateTime"][:19]).replace(tzinfo=UTC)


def _add_past_exception(h: Harness, user: str, master: SimEvent) -> str:
    """Turn the series' first (past) occurrence into an exception with its own body."""
    data = master.data
    duration = _start({"start": data["end"]}) - _start(data)
    original = next(occurrence_starts(data))
    assert original + duration < h.sim.clock.now(), "the first occurrence is in the past"
    exc = occurrence_json(data, original, duration)
    exc["type"] = "exception"
    exc["body"] = {
        "contentType": data["body"]["contentType"],
        "content": f"{PAST_NOTE}\r\n" + data["body"]["content"],
    }
    box = h.sim.state.mailbox_events(user)
    box[exc["id"]] = SimEvent(master.mailbox_id, exc, CopyKind.ORGANIZER, user)
    return str(exc["id"])


async def test_future_exception_updated_past_occurrences_untouched(harness: Harness) -> None:
    h = harness
    user = (await h.users("ordinary"))[0]["id"]
    now = h.sim.clock.now()
    box = h.sim.state.mailbox_events(user)
    organizer = {i: e for i, e in box.items() if e.copy is CopyKind.ORGANIZER}
    masters = [
        e
        for e in organizer.values()
        if e.data.get("type") == "seriesMaster"
        and (e.data["recurrence"]["range"]["type"] == "noEnd")
    ]
    assert masters, "an ongoing series"
    master = masters[0]
    future_exceptions = [
        i
        for i, e in organizer.items()
        if e.data.get("seriesMasterId") == master.id and _start(e.data) > now
    ]
    assert len(future_exceptions) == 1, "the generator gives the series a future exception"
    past_exception = _add_past_exception(h, user, master)
    past_single = [
        i
        for i, e in organizer.items()
        if e.data.get("type") == "singleInstance" and _start(e.data) < now
    ]
    ended = [
        i
        for i, e in organizer.items()
        if e.data.get("type") == "seriesMaster"
        and e.data["recurrence"]["range"]["type"] == "endDate"
        and e.data["recurrence"]["range"]["endDate"] < now.date().isoformat()
    ]
    assert past_single and ended
    # occurrence IDs of the series, past and future (none has its own event)
    occurrences = {
        occurrence_id(master.id, s)
        for s in occurrence_starts(master.data)
        if s < now + timedelta(days=60)
    }
    known_ids = set(organizer) | {past_exception}
    before = await h.counters()

    engine = await h.start()
    await engine.submit_trigger(TENANT, trigger(h, {"type": "userMovedToOnline", "identity": user}))
    record = await h.wait_state(user, MigrationState.SUCCEEDED, MigrationState.FAILED)
    assert record.state is MigrationState.SUCCEEDED, record.last_message
    after = await h.counters()
    patches = patch_delta(before, after)
    updated = await updated_events(h, user)

    # the master and its future exception: each its own event, PATCHed once
    assert patches[master.id] == 1
    (future_exception,) = future_exceptions
    assert patches[future_exception] == 1
    assert future_exception in updated
    # nothing in the past: no past exception, no occurrence, no past single, no ended series
    assert past_exception not in patches
    assert PAST_NOTE in box[past_exception].data["body"]["content"]
    assert box[past_exception].patch_count == 0
    assert not occurrences & set(patches), "an occurrence was PATCHed on its own"
    assert not set(past_single) & set(patches)
    assert not set(ended) & set(patches)
    assert set(patches) <= known_ids, "a PATCH made an exception out of an occurrence"
    assert set(patches) == updated and set(patches.values()) == {1}
    assert message_delta(before, after) == await expected_updates(h, user, updated)
