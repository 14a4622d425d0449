"""Meeting transactions: intent before PATCH, at most one PATCH per meeting, recovery after a crash."""

from __future__ import annotations

import sqlite3
from datetime import UTC, datetime
from pathlib import Path

import pytest
from store_clock import FakeClock

from mmsd.domain.model import (
    MeetingOutcome,
    MeetingTransaction,
    MigrationState,
    PatchState,
    Trigger,
    TriggerFate,
    TriggerType,
)
from mmsd.domain.model import SourceMeetingType as S
from mmsd.domain.model import TargetMeetingType as T
from mmsd.store import InvalidTransition, Store, UnknownMigration

TENANT = "contoso"
START = datetime(2026, 4, 1, 15, 0, tzinfo=UTC)


async def _running(store: Store) -> str:
    await store.enqueue_migration(TENANT, "u", None, S.SFB, T.TEAMS, "r")
    [record] = await store.claim_runnable(TENANT)
    return record.correlation_id


async def test_intent_is_committed_before_it_is_granted(store: Store, db_path: Path) -> None:
    cid = await _running(store)
    granted = await store.record_intent(
        cid,
        "evt-1",
        block_digest="sha256:new",
        new_join_url="https://teams.example/new",
        old_join_url="https://meet.example/old",
        subject="Weekly",
        start=START,
    )
    assert granted
    with sqlite3.connect(db_path) as conn:  # a second connection sees it: it is on disk
        rows = list(
            conn.execute(
                "SELECT event_id, patch_state, block_digest, attempts FROM meeting_transactions"
            )
        )
    assert rows == [("evt-1", "intent", "sha256:new", 1)]
    [open_intent] = await store.pending_intents(cid)
    assert open_intent.intent_recorded and open_intent.start == START
    assert open_intent.outcome is MeetingOutcome.PENDING
    assert open_intent.old_join_url == "https://meet.example/old"


async def test_no_second_patch_once_confirmed(store: Store) -> None:
    cid = await _running(store)
    assert await store.record_intent(cid, "evt-1", block_digest="d")
    # While the first intent is unresolved, no new PATCH may be sent.
    assert not await store.record_intent(cid, "evt-1", block_digest="d")
    done = await store.mark_patched(cid, "evt-1", invites=4, new_join_url="https://t/new")
    assert done.patched and done.outcome is MeetingOutcome.UPDATED and done.invites == 4
    assert not await store.record_intent(cid, "evt-1", block_digest="d")
    # A later, confused outcome cannot unmake the update.
    after = await store.record_meeting(
        MeetingTransaction(cid, "evt-1", MeetingOutcome.FAILED, reason="oops")
    )
    assert after.outcome is MeetingOutcome.UPDATED and after.reason is None
    with pytest.raises(InvalidTransition):
        await store.mark_patched(cid, "evt-1", invites=4)
    with pytest.raises(InvalidTransition):
        await store.clear_intent(cid, "evt-1")
    assert await store.pending_intents(cid) == []


async def test_lost_answer_then_read_back(store: Store) -> None:
    cid = await _running(store)
    assert await store.record_intent(cid, "applied", block_digest="d1")
    assert await store.record_intent(cid, "not-applied", block_digest="d2")
    await store.mark_unknown(cid, "applied", message="timeout")
    await store.mark_unknown(cid, "not-applied", message="connection reset")
    unknown = {t.event_id: t for t in await store.pending_intents(cid)}
    assert {t.patch_state for t in unknown.values()} == {PatchState.UNKNOWN}
    assert unknown["applied"].reason == "timeout"

    # Read-back recognised the new block on one, the old block on the other.
    await store.mark_patched(cid, "applied", invites=2)
    cleared = await store.clear_intent(cid, "not-applied")
    assert cleared.patch_state is PatchState.NONE and cleared.outcome is MeetingOutcome.PENDING
    assert await store.record_intent(cid, "not-applied", block_digest="d2")
    [again] = await store.pending_intents(cid)
    assert again.attempts == 2


async def test_definite_failure_clears_the_intent(store: Store) -> None:
    cid = await _running(store)
    assert await store.record_intent(cid, "evt", block_digest="d")
    failed = await store.clear_intent(cid, "evt", outcome=MeetingOutcome.FAILED, reason="403")
    assert failed.outcome is MeetingOutcome.FAILED and failed.reason == "403"
    with pytest.raises(InvalidTransition):
        await store.clear_intent(cid, "evt", outcome=MeetingOutcome.UPDATED)
    record = await store.get_migration(cid)
    assert record is not None and record.failed_meeting == 1


async def test_unknown_migration_and_event(store: Store) -> None:
    with pytest.raises(UnknownMigration):
        await store.record_intent("nope", "evt", block_digest="d")
    cid = await _running(store)
    with pytest.raises(Exception, match="no transaction"):
        await store.mark_patched(cid, "never-intended", invites=1)


async def test_history_per_user_and_correlation(store: Store, clock: FakeClock) -> None:
    await store.remember_user(TENANT, "u", "alice@contoso.example")
    first = await _running(store)
    await store.record_meeting(
        MeetingTransaction(
            first, "evt-b", MeetingOutcome.SKIPPED, subject="B", start=START, reason="noBlock"
        )
    )
    await store.record_meeting(
        MeetingTransaction(first, "evt-a", MeetingOutcome.SKIPPED, subject="A", start=START)
    )
    await store.finish(first, MigrationState.SUCCEEDED, None)
    clock.advance(days=1)
    await store.enqueue_migration(TENANT, "u", None, S.ALL, T.CURRENT, "r")
    [second] = await store.claim_runnable(TENANT)
    assert await store.record_intent(second.correlation_id, "evt-a", block_digest="d")
    await store.mark_patched(second.correlation_id, "evt-a", invites=1)

    history = await store.history(TENANT, "Alice@contoso.example")
    assert [(t.correlation_id, t.event_id) for t in history] == [
        (first, "evt-a"),
        (first, "evt-b"),
        (second.correlation_id, "evt-a"),
    ]
    only = await store.history(TENANT, "u", correlation_id=second.correlation_id)
    assert [t.outcome for t in only] == [MeetingOutcome.UPDATED]
    assert only[0].to_json()["eventId"] == "evt-a"
    assert await store.history(TENANT, "someone-else") == []


async def test_recovery_after_restart(db_path: Path, clock: FakeClock) -> None:
    store = await Store.open(db_path, clock=clock)
    cid = await _running(store)
    assert await store.record_intent(cid, "in-flight", block_digest="d")
    assert await store.record_intent(cid, "done", block_digest="d")
    await store.mark_patched(cid, "done", invites=1)
    await store.record_trigger(
        Trigger("t-undecided", TENANT, TriggerType.BRIDGE_CHANGED, "u", clock.now())
    )
    await store.record_trigger(
        Trigger(
            "t-decided",
            TENANT,
            TriggerType.BRIDGE_CHANGED,
            "u",
            clock.now(),
            fate=TriggerFate.MIGRATED,
            correlation_id=cid,
        )
    )
    await store.close()  # stands in for a crash: everything above was committed

    store = await Store.open(db_path, clock=clock)
    recovery = await store.recovery()
    assert [r.correlation_id for r in recovery.in_progress] == [cid]
    assert [(t.correlation_id, t.event_id) for t in recovery.open_intents] == [(cid, "in-flight")]
    assert [t.id for t in recovery.undecided_triggers] == ["t-undecided"]
    assert (await store.recovery("other-tenant")).in_progress == []
    await store.close()
