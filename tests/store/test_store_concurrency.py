"""Many coroutines on one store: transactions never interleave; a cancelled write leaves nothing half-done."""

from __future__ import annotations

import asyncio
import sqlite3
from pathlib import Path

import pytest

from mmsd.domain.model import MigrationState
from mmsd.domain.model import SourceMeetingType as S
from mmsd.domain.model import TargetMeetingType as T
from mmsd.store import EnqueueRequest, Store

TENANT = "contoso"


async def test_concurrent_enqueues_join_per_user(store: Store) -> None:
    users = [f"u{i % 10}" for i in range(60)]
    pairs = [(S.SFB, T.TEAMS), (S.ALL, T.CURRENT), (S.TEAMS, T.CURRENT)]
    enqueued = await asyncio.gather(
        *(
            store.enqueue_migration(TENANT, user, None, *pairs[i % 3], f"r{i}")
            for i, user in enumerate(users)
        )
    )
    by_user: dict[str, set[str]] = {}
    for user, result in zip(users, enqueued, strict=True):
        by_user.setdefault(user, set()).add(result.correlation_id)
    assert all(len(ids) == 1 for ids in by_user.values())
    assert sum(1 for r in enqueued if r.created) == 10
    records = await store.status(TENANT)
    assert len(records) == 10
    # Every user got all three kinds of trigger: the merged migration is All -> Teams.
    assert {(r.source_meeting_type, r.target_meeting_type) for r in records} == {(S.ALL, T.TEAMS)}
    claims = await asyncio.gather(*(store.claim_runnable(TENANT, limit=3) for _ in range(5)))
    claimed = [r.correlation_id for batch in claims for r in batch]
    assert len(claimed) == len(set(claimed)) == 10  # nobody claimed twice


@pytest.mark.parametrize("yields", [0, 1, 2, 3, 5, 8, 13, 40])
async def test_cancelled_bulk_write_is_all_or_nothing(
    store: Store, db_path: Path, yields: int
) -> None:
    requests = [EnqueueRequest(f"u{i}", None, S.ALL, T.CURRENT, "wave") for i in range(2_000)]
    task = asyncio.create_task(store.enqueue_migrations(TENANT, requests))
    for _ in range(yields):  # cancel at BEGIN, mid-way, at COMMIT, after
        await asyncio.sleep(0)
    task.cancel()
    await asyncio.gather(task, return_exceptions=True)
    with sqlite3.connect(db_path) as conn:
        rows = conn.execute("SELECT COUNT(*) FROM migrations").fetchone()[0]
    assert rows in (0, 2_000)
    # The store is still usable afterwards.
    result = await store.enqueue_migration(TENANT, "later", None, S.ALL, T.CURRENT, "r")
    assert result.created
    summary = await store.summary(TENANT)
    assert summary[MigrationState.PENDING] == rows + 1
