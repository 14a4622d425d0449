"""Chunk methods: a chunk's intents, confirmations and outcomes in one transaction each."""

from __future__ import annotations

import sqlite3
from datetime import UTC, datetime
from pathlib import Path

import pytest

from mmsd.domain.model import MeetingOutcome, MeetingTransaction, PatchState
from mmsd.domain.model import SourceMeetingType as S
from mmsd.domain.model import TargetMeetingType as T
from mmsd.store import InvalidTransition, Store
from mmsd.store.store import PatchedMeeting, PatchIntent

TENANT = "contoso"
START = datetime(2026, 4, 1, 15, 0, tzinfo=UTC)


async def _running(store: Store) -> str:
    await store.enqueue_migration(TENANT, "u", None, S.SFB, T.TEAMS, "r")
    [record] = await store.claim_runnable(TENANT)
    return record.correlation_id


def _intent(event_id: str) -> PatchIntent:
    return PatchIntent(
        event_id,
        f"sha256:{event_id}",
        new_join_url="https://teams.example/new",
        old_join_url="https://meet.example/old",
        subject="Weekly",
        start=START,
    )


async def test_record_intents_commits_the_chunk_and_refuses_confirmed_ones(
    store: Store, db_path: Path
) -> None:
    cid = await _running(store)
    assert await store.record_intent(cid, "e0", block_digest="sha256:e0")
    await store.mark_patched(cid, "e0", invites=2)
    assert await store.record_intent(cid, "e1", block_digest="sha256:old")  # an open intent
    granted = await store.record_intents(cid, [_intent(e) for e in ("e0", "e1", "e2", "e3")])
    assert granted == {"e2", "e3"}  # confirmed and open intents are not granted again
    with sqlite3.connect(db_path) as conn:  # on disk: another connection sees it
        rows = dict(
            conn.execute(
                "SELECT event_id, patch_state || ':' || block_digest FROM meeting_transactions"
            )
        )
    assert rows == {
        "e0": "confirmed:sha256:e0",
        "e1": "intent:sha256:old",
        "e2": "intent:sha256:e2",
        "e3": "intent:sha256:e3",
    }
    intents = {t.event_id: t for t in await store.pending_intents(cid)}
    assert set(intents) == {"e1", "e2", "e3"}
    assert intents["e2"].start == START and intents["e2"].subject == "Weekly"
    assert intents["e2"].old_join_url == "https://meet.example/old"
    assert await store.record_intents(cid, []) == set()


async def test_mark_patched_many_confirms_and_counts_once(store: Store) -> None:
    cid = await _running(store)
    assert await store.record_intents(cid, [_intent(e) for e in ("a", "b", "c")]) == {"a", "b", "c"}
    await store.mark_unknown(cid, "c", message="lost")
    await store.mark_patched_many(
        cid, [PatchedMeeting("a", 3), PatchedMeeting("b", 1), PatchedMeeting("c", 2, "https://x")]
    )
    txns = {t.event_id: t for t in await store.meeting_transactions(cid)}
    assert all(t.patch_state is PatchState.CONFIRMED for t in txns.values())
    assert all(t.outcome is MeetingOutcome.UPDATED for t in txns.values())
    assert txns["c"].new_join_url == "https://x"
    record = await store.get_migration(cid)
    assert record is not None
    assert record.succeeded_meeting == 3 and record.invites_update == 6
    # Never twice: a confirmed meeting is refused again, and the whole chunk is rolled back.
    assert await store.record_intents(cid, [_intent("d")]) == {"d"}
    with pytest.raises(InvalidTransition):
        await store.mark_patched_many(cid, [PatchedMeeting("d", 1), PatchedMeeting("a", 1)])
    [open_intent] = await store.pending_intents(cid)
    assert open_intent.event_id == "d" and open_intent.patch_state is PatchState.INTENT


async def test_record_meetings_is_record_meeting_for_many(store: Store) -> None:
    cid = await _running(store)
    assert await store.record_intent(cid, "done", block_digest="sha256:d")
    await store.mark_patched(cid, "done", invites=1)
    await store.record_meetings(
        [
            MeetingTransaction(cid, "s1", MeetingOutcome.SKIPPED, reason="notOrganizer"),
            MeetingTransaction(cid, "f1", MeetingOutcome.FAILED, reason="boom", start=START),
            MeetingTransaction(cid, "done", MeetingOutcome.FAILED, reason="late"),
        ]
    )
    await store.record_meetings([])
    txns = {t.event_id: t for t in await store.meeting_transactions(cid)}
    assert txns["s1"].outcome is MeetingOutcome.SKIPPED and txns["s1"].reason == "notOrganizer"
    assert txns["f1"].outcome is MeetingOutcome.FAILED and txns["f1"].start == START
    assert txns["done"].outcome is MeetingOutcome.UPDATED  # a confirmed PATCH stays updated
    record = await store.get_migration(cid)
    assert record is not None
    assert (record.succeeded_meeting, record.failed_meeting, record.skipped_meeting) == (1, 1, 1)
