"""A user's migration end to end: every future meeting PATCHed once, one update per attendee."""

from __future__ import annotations

from engine_checks import (
    expected_updates,
    message_delta,
    patch_delta,
    trigger,
    updated_events,
)
from engine_testkit import TENANT, Harness

from mmsd.domain.model import MeetingOutcome, MigrationState, SkipReason


async def test_user_move_updates_each_future_meeting_once(harness: Harness) -> None:
    h = harness
    user = (await h.users("ordinary"))[0]["id"]
    before = await h.counters()
    engine = await h.start()
    await engine.submit_trigger(TENANT, trigger(h, {"type": "userMovedToOnline", "identity": user}))
    record = await h.wait_state(user, MigrationState.SUCCEEDED, MigrationState.FAILED)
    assert record.state is MigrationState.SUCCEEDED, record.last_message
    assert record.retry_count == 0
    after = await h.counters()

    updated = await updated_events(h, user)
    assert updated, "an ordinary user has future meetings with blocks"
    assert record.succeeded_meeting == len(updated)
    assert record.total_meeting == record.succeeded_meeting + record.skipped_meeting
    patches = patch_delta(before, after)
    assert set(patches) == updated
    assert set(patches.values()) == {1}
    expected = await expected_updates(h, user, updated)
    assert message_delta(before, after) == expected
    assert record.invites_update >= sum(expected.values())


async def test_series_exceptions_and_past_meetings(harness: Harness) -> None:
    h = harness
    user = (await h.users("ordinary"))[0]["id"]
    engine = await h.start()
    await engine.submit_trigger(TENANT, trigger(h, {"type": "userMovedToOnline", "identity": user}))
    record = await h.wait_state(user, MigrationState.SUCCEEDED, MigrationState.FAILED)
    assert record.state is MigrationState.SUCCEEDED, record.last_message
    stored = {e["data"]["id"]: e["data"] for e in (await h.get(f"/events/{user}"))["value"]}
    updated = await updated_events(h, user)
    kinds = {stored[e]["type"] for e in updated}
    assert "seriesMaster" in kinds
    now = h.sim.clock.now().isoformat()
    for event_id in updated:
        event = stored[event_id]
        if event["type"] == "singleInstance":
            assert event["start"]["dateTime"] > now[:19]
    # an ended series and past single meetings are not touched
    for event_id, event in stored.items():
        rng = (event.get("recurrence") or {}).get("range") or {}
        if event.get("type") == "seriesMaster" and rng.get("type") == "endDate":
            if rng["endDate"] < now[:10]:
                assert event_id not in updated


async def test_delegate_copies_are_skipped_not_organizer(harness: Harness) -> None:
    h = harness
    delegate = (await h.users("delegate"))[0]["id"]
    engine = await h.start()
    await engine.submit_trigger(
        TENANT, trigger(h, {"type": "userMovedToOnline", "identity": delegate})
    )
    record = await h.wait_state(delegate, MigrationState.SUCCEEDED, MigrationState.FAILED)
    assert record.state is MigrationState.SUCCEEDED, record.last_message
    assert h.store is not None
    history = await h.store.history(TENANT, delegate)
    reasons = {t.reason for t in history if t.outcome is MeetingOutcome.SKIPPED}
    assert str(SkipReason.NOT_ORGANIZER) in reasons
    # the boss's meetings in the delegate's mailbox were never PATCHed
    stored = (await h.get(f"/events/{delegate}"))["value"]
    for item in stored:
        if item["copy"] == "delegate":
            assert item["patchCount"] == 0
