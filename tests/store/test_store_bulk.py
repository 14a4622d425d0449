"""A wave of 100,000 users in one tenant: recorded and queued well under a minute."""

from __future__ import annotations

import time
from datetime import timedelta

import pytest
from store_clock import FakeClock

from mmsd.domain.model import MigrationState, Trigger, TriggerFate, TriggerType
from mmsd.domain.model import SourceMeetingType as S
from mmsd.domain.model import TargetMeetingType as T
from mmsd.store import EnqueueRequest, Store

USERS = 100_000
TENANT = "contoso"


async def test_hundred_thousand_users_enqueue_fast(
    store: Store, clock: FakeClock, capsys: pytest.CaptureFixture[str]
) -> None:
    triggers = [
        Trigger(f"t{i}", TENANT, TriggerType.USER_MOVED_TO_ONLINE, f"user{i}", clock.now())
        for i in range(USERS)
    ]
    requests = [
        EnqueueRequest(
            f"user{i}",
            f"user{i}@contoso.example",
            S.ALL,
            T.CURRENT,
            "Queued by trigger userMovedToOnline.",
            trigger_id=f"t{i}",
            not_before=clock.now() + timedelta(seconds=60),
        )
        for i in range(USERS)
    ]
    started = time.perf_counter()
    await store.record_triggers(triggers)
    recorded = time.perf_counter()
    results = await store.enqueue_migrations(TENANT, requests)
    queued = time.perf_counter()
    summary = await store.summary(TENANT)
    summarised = time.perf_counter()
    clock.advance(seconds=60)
    claimed = await store.claim_runnable(TENANT, limit=20)
    claimed_at = time.perf_counter()

    assert len(results) == USERS and all(r.created for r in results)
    assert len({r.correlation_id for r in results}) == USERS
    assert summary[MigrationState.PENDING] == USERS
    assert [r.user_id for r in claimed] == [f"user{i}" for i in range(20)]
    last = await store.get_trigger(f"t{USERS - 1}")
    assert last is not None and last.fate is TriggerFate.MIGRATED
    assert last.correlation_id == results[-1].correlation_id

    total = queued - started
    with capsys.disabled():
        print(
            f"\n[store bulk] {USERS} triggers recorded in {recorded - started:.2f}s, "
            f"{USERS} migrations enqueued in {queued - recorded:.2f}s, "
            f"summary {summarised - queued:.3f}s, claim of 20 {claimed_at - summarised:.3f}s"
        )
    assert total < 30, f"100k users took {total:.1f}s"
    assert claimed_at - summarised < 1.0
