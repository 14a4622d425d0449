"""Retention: finished records and decided triggers go after 150 days (configurable), nothing else."""

from __future__ import annotations

import sqlite3
from datetime import timedelta
from pathlib import Path

from store_clock import FakeClock

from mmsd.domain.model import (
    MeetingOutcome,
    MeetingTransaction,
    MigrationState,
    Trigger,
    TriggerFate,
    TriggerType,
)
from mmsd.domain.model import SourceMeetingType as S
from mmsd.domain.model import TargetMeetingType as T
from mmsd.store import DEFAULT_RETENTION, PruneResult, Store

TENANT = "contoso"


async def _finished(store: Store, user: str, meetings: int) -> str:
    await store.enqueue_migration(TENANT, user, None, S.ALL, T.CURRENT, "r")
    [record] = [r for r in await store.claim_runnable(TENANT, limit=10) if r.user_id == user]
    for i in range(meetings):
        await store.record_meeting(
            MeetingTransaction(record.correlation_id, f"e{i}", MeetingOutcome.SKIPPED)
        )
    await store.finish(record.correlation_id, MigrationState.SUCCEEDED, None)
    return record.correlation_id


def _count(path: Path, table: str) -> int:
    with sqlite3.connect(path) as conn:
        return int(conn.execute(f"SELECT COUNT(*) FROM {table}").fetchone()[0])


async def test_prune_at_150_days(store: Store, db_path: Path, clock: FakeClock) -> None:
    assert DEFAULT_RETENTION == timedelta(days=150)
    old = await _finished(store, "old", meetings=3)
    await store.record_trigger(
        Trigger(
            "t-old",
            TENANT,
            TriggerType.BRIDGE_CHANGED,
            "old",
            clock.now(),
            fate=TriggerFate.MIGRATED,
            correlation_id=old,
        )
    )
    await store.record_trigger(
        Trigger("t-undecided", TENANT, TriggerType.BRIDGE_CHANGED, "x", clock.now())
    )
    await store.enqueue_migration(TENANT, "stuck", None, S.ALL, T.CURRENT, "r")  # never finishes
    clock.advance(days=1)
    young = await _finished(store, "young", meetings=2)

    clock.advance(days=149)  # "old" is exactly 150 days old: kept
    assert await store.prune() == PruneResult(0, 0, 0)
    clock.advance(seconds=1)
    result = await store.prune()
    assert (result.migrations, result.meeting_transactions, result.triggers) == (1, 3, 1)
    assert await store.get_migration(old) is None
    assert await store.get_migration(young) is not None
    assert await store.history(TENANT, "old") == []
    assert _count(db_path, "meeting_transactions") == 2
    assert [t.id for t in await store.list_triggers(TENANT)] == ["t-undecided"]
    [stuck] = await store.status(TENANT, identity="stuck")  # unfinished: never pruned
    assert not stuck.state.finished
    clock.advance(days=1)
    assert (await store.prune()).migrations == 1


async def test_retention_is_configurable(db_path: Path, clock: FakeClock) -> None:
    store = await Store.open(db_path, clock=clock, retention=timedelta(days=7))
    cid = await _finished(store, "u", meetings=1)
    clock.advance(days=7)
    assert (await store.prune()).migrations == 0
    clock.advance(microseconds=1)
    assert (await store.prune()).migrations == 1
    assert await store.get_migration(cid) is None
    await store.close()


async def test_prune_with_explicit_cutoff(store: Store, clock: FakeClock) -> None:
    cid = await _finished(store, "u", meetings=0)
    assert (await store.prune(older_than=clock.now())).migrations == 0
    assert (await store.prune(older_than=clock.now() + timedelta(seconds=1))).migrations == 1
    assert await store.get_migration(cid) is None
