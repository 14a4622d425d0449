"""Status records: enqueue and join, the queue, state transitions, status, summary, metrics."""

from __future__ import annotations

import sqlite3
from datetime import timedelta
from pathlib import Path

import pytest
from store_clock import FakeClock

from mmsd.domain.model import (
    AudioConferencingProvider,
    ConferencingProfile,
    IgnoreReason,
    MeetingOutcome,
    MeetingTransaction,
    MigrationState,
    PolicyScope,
    TeamsUpgradeMode,
    TenantSwitches,
    Trigger,
    TriggerFate,
    TriggerType,
)
from mmsd.domain.model import SourceMeetingType as S
from mmsd.domain.model import TargetMeetingType as T
from mmsd.domain.rules import MMS_DISABLED_MESSAGE
from mmsd.store import EnqueueRequest, InvalidTransition, Store, StoreError, UnknownMigration

TENANT = "contoso"


def _raw(path: Path, sql: str, *params: object) -> list[tuple[object, ...]]:
    """Read through a second, plain sqlite3 connection: only committed data is visible."""
    with sqlite3.connect(path) as conn:
        return list(conn.execute(sql, params))


async def _trigger(store: Store, clock: FakeClock, trigger_id: str, user: str) -> None:
    await store.record_trigger(
        Trigger(
            id=trigger_id,
            tenant=TENANT,
            type=TriggerType.BRIDGE_CHANGED,
            identity=user,
            received_at=clock.now(),
        )
    )


async def test_enqueue_creates_pending_and_commits_before_returning(
    store: Store, db_path: Path, clock: FakeClock
) -> None:
    result = await store.enqueue_migration(
        TENANT, "u1", "alice@contoso.example", S.ALL, T.CURRENT, "Queued."
    )
    assert result.created and result.correlation_id == "corr-0001"
    correlation_id, created = result  # also a plain tuple
    assert created
    rows = _raw(db_path, "SELECT correlation_id, state, source, target FROM migrations")
    assert rows == [("corr-0001", "Pending", "All", "Current")]
    record = await store.get_migration(correlation_id)
    assert record is not None
    assert record.state is MigrationState.PENDING
    assert record.create_date == clock.now() and record.last_message == "Queued."
    assert record.user_principal_name == "alice@contoso.example"


async def test_trigger_for_pending_user_joins_and_merges(
    store: Store, db_path: Path, clock: FakeClock
) -> None:
    await _trigger(store, clock, "t1", "u1")
    await _trigger(store, clock, "t2", "u1")
    first = await store.enqueue_migration(
        TENANT, "u1", None, S.SFB, T.TEAMS, "upgrade", trigger_id="t1"
    )
    clock.advance(seconds=5)
    second = await store.enqueue_migration(
        TENANT, "u1", "alice@contoso.example", S.ALL, T.CURRENT, "dial-in", trigger_id="t2"
    )
    assert first.created and not second.created
    assert second.correlation_id == first.correlation_id
    record = await store.get_migration(first.correlation_id)
    assert record is not None
    assert (record.source_meeting_type, record.target_meeting_type) == (S.ALL, T.TEAMS)
    assert record.user_principal_name == "alice@contoso.example"
    assert record.last_message == "dial-in"
    assert record.not_before == record.create_date  # joins do not push the start back
    fates = _raw(db_path, "SELECT trigger_id, fate, correlation_id FROM triggers ORDER BY seq")
    assert fates == [
        ("t1", "migrated", first.correlation_id),
        ("t2", "coalesced", first.correlation_id),
    ]


async def test_started_migration_is_not_joined(store: Store, clock: FakeClock) -> None:
    first = await store.enqueue_migration(TENANT, "u1", None, S.ALL, T.CURRENT, "a")
    [claimed] = await store.claim_runnable(TENANT)
    await store.reschedule(
        claimed.correlation_id, not_before=clock.now() + timedelta(hours=1), last_message="503"
    )
    second = await store.enqueue_migration(TENANT, "u1", None, S.ALL, T.CURRENT, "b")
    assert second.created and second.correlation_id != first.correlation_id
    # A user's migrations run one at a time, oldest first: the retry goes before the new one.
    assert await store.claim_runnable(TENANT) == []
    clock.advance(hours=1)
    [again] = await store.claim_runnable(TENANT, limit=5)
    assert again.correlation_id == first.correlation_id
    assert await store.claim_runnable(TENANT) == []
    await store.finish(first.correlation_id, MigrationState.SUCCEEDED, None)
    [third] = await store.claim_runnable(TENANT)
    assert third.correlation_id == second.correlation_id


async def test_claim_order_not_before_and_limit(store: Store, clock: FakeClock) -> None:
    later = await store.enqueue_migration(
        TENANT, "late", None, S.ALL, T.CURRENT, "r", not_before=clock.now() + timedelta(seconds=60)
    )
    a = await store.enqueue_migration(TENANT, "a", None, S.ALL, T.CURRENT, "r")
    b = await store.enqueue_migration(TENANT, "b", None, S.ALL, T.CURRENT, "r")
    await store.enqueue_migration("other-tenant", "x", None, S.ALL, T.CURRENT, "r")
    claimed = await store.claim_runnable(TENANT, limit=10, message="Migration in progress.")
    assert [r.correlation_id for r in claimed] == [a.correlation_id, b.correlation_id]
    assert all(r.state is MigrationState.IN_PROGRESS for r in claimed)
    assert all(r.last_message == "Migration in progress." for r in claimed)
    assert all(r.started_at == r.claimed_at == clock.now() for r in claimed)
    clock.advance(seconds=60)
    [late] = await store.claim_runnable(TENANT, limit=10)
    assert late.correlation_id == later.correlation_id


async def test_mms_disabled_holds_the_queue(store: Store) -> None:
    await store.update_switches(TENANT, meeting_migration_enabled=False)
    result = await store.enqueue_migration(
        TENANT, "u", None, S.ALL, T.CURRENT, MMS_DISABLED_MESSAGE
    )
    assert await store.claim_runnable(TENANT) == []
    [record] = await store.status(TENANT)
    assert record.state is MigrationState.PENDING and record.last_message == MMS_DISABLED_MESSAGE
    await store.update_switches(TENANT, meeting_migration_enabled=True)
    [claimed] = await store.claim_runnable(TENANT, message="Migration in progress.")
    assert claimed.correlation_id == result.correlation_id


async def test_transitions(store: Store, clock: FakeClock) -> None:
    cid = (await store.enqueue_migration(TENANT, "u", None, S.ALL, T.CURRENT, "r")).correlation_id
    with pytest.raises(InvalidTransition):
        await store.finish(cid, MigrationState.SUCCEEDED, None)  # still Pending
    with pytest.raises(UnknownMigration):
        await store.finish("nope", MigrationState.FAILED, "x")
    await store.claim_runnable(TENANT)
    progress = await store.update_progress(cid, total_meeting=12, last_message="listing done")
    assert progress.total_meeting == 12 and progress.last_message == "listing done"

    clock.advance(minutes=1)
    quota_until = clock.now() + timedelta(hours=20)
    parked = await store.wait_for_quota(cid, until=quota_until, last_message="quota until …")
    assert parked.state is MigrationState.PENDING and parked.waiting_for_quota
    assert parked.retry_count == 0 and parked.not_before == quota_until
    assert parked.modified_date == clock.now()
    clock.advance(hours=20)
    [resumed] = await store.claim_runnable(TENANT)
    assert not resumed.waiting_for_quota and resumed.started_at != resumed.claimed_at

    retry_at = clock.now() + timedelta(minutes=5)
    retried = await store.reschedule(cid, not_before=retry_at, last_message="503 from Graph")
    assert retried.state is MigrationState.PENDING and retried.retry_count == 1
    assert retried.last_message == "503 from Graph"
    clock.advance(minutes=5)
    await store.claim_runnable(TENANT)
    released = await store.release(cid, last_message="draining")
    assert released.state is MigrationState.PENDING and released.retry_count == 1
    await store.claim_runnable(TENANT)
    with pytest.raises(InvalidTransition):
        await store.finish(cid, MigrationState.PENDING, None)
    done = await store.finish(cid, MigrationState.FAILED, "mailbox on premises")
    assert done.state is MigrationState.FAILED and done.last_message == "mailbox on premises"
    with pytest.raises(InvalidTransition):
        await store.reschedule(cid, not_before=clock.now(), last_message="x")


async def test_counters_follow_meeting_outcomes(store: Store) -> None:
    cid = (await store.enqueue_migration(TENANT, "u", None, S.ALL, T.CURRENT, "r")).correlation_id
    await store.claim_runnable(TENANT)
    await store.record_meeting(
        MeetingTransaction(cid, "e-skip", MeetingOutcome.SKIPPED, reason="noBlock")
    )
    await store.record_meeting(MeetingTransaction(cid, "e-fail", MeetingOutcome.FAILED, reason="x"))
    assert await store.record_intent(cid, "e-ok", block_digest="d1")
    await store.mark_patched(cid, "e-ok", invites=7)
    record = await store.get_migration(cid)
    assert record is not None
    assert (record.succeeded_meeting, record.failed_meeting, record.skipped_meeting) == (1, 1, 1)
    assert record.invites_update == 7
    # The failed meeting succeeds on a later attempt: counters move, nothing double-counts.
    assert await store.record_intent(cid, "e-fail", block_digest="d2")
    await store.mark_patched(cid, "e-fail", invites=3)
    record = await store.get_migration(cid)
    assert record is not None
    assert (record.succeeded_meeting, record.failed_meeting, record.invites_update) == (2, 0, 10)


async def test_status_filters_with_inclusive_time_ends(store: Store, clock: FakeClock) -> None:
    t_a = clock.now()
    a = await store.enqueue_migration(TENANT, "ua", "a@contoso.example", S.ALL, T.CURRENT, "r")
    t_b = clock.advance(hours=1)
    b = await store.enqueue_migration(TENANT, "ub", "b@contoso.example", S.ALL, T.CURRENT, "r")
    t_c = clock.advance(hours=1)
    c = await store.enqueue_migration(TENANT, "uc", "c@contoso.example", S.ALL, T.CURRENT, "r")

    async def ids(**filters: object) -> list[str]:
        return [r.correlation_id for r in await store.status(TENANT, **filters)]  # type: ignore[arg-type]

    assert await ids() == [a.correlation_id, b.correlation_id, c.correlation_id]
    assert await ids(start_time=t_b, end_time=t_b) == [b.correlation_id]
    assert await ids(start_time=t_a, end_time=t_b) == [a.correlation_id, b.correlation_id]
    assert await ids(start_time=t_c) == [c.correlation_id]
    assert await ids(end_time=t_a) == [a.correlation_id]
    assert (
        await ids(
            start_time=t_b + timedelta(microseconds=1), end_time=t_c - timedelta(microseconds=1)
        )
        == []
    )
    assert await ids(identity="B@Contoso.Example") == [b.correlation_id]
    assert await ids(identity="ub") == [b.correlation_id]
    assert await ids(identity="nobody") == []
    assert await ids(limit=2) == [a.correlation_id, b.correlation_id]
    [claimed] = await store.claim_runnable(TENANT)
    assert await ids(state=MigrationState.IN_PROGRESS) == [claimed.correlation_id]
    assert await ids(state=MigrationState.PENDING) == [b.correlation_id, c.correlation_id]
    assert await store.status("unknown-tenant") == []


async def test_summary_counts_each_user_once_by_latest_record(
    store: Store, clock: FakeClock
) -> None:
    # u1: failed, then a new run succeeds -> Succeeded. u2: succeeded, then a new one pending.
    for user in ("u1", "u2"):
        await store.enqueue_migration(TENANT, user, None, S.ALL, T.CURRENT, "r")
    claimed = {r.user_id: r for r in await store.claim_runnable(TENANT, limit=5)}
    await store.finish(claimed["u1"].correlation_id, MigrationState.FAILED, "x")
    await store.finish(claimed["u2"].correlation_id, MigrationState.SUCCEEDED, None)
    clock.advance(minutes=1)
    again = await store.enqueue_migration(TENANT, "u1", None, S.ALL, T.CURRENT, "r")
    await store.enqueue_migration(TENANT, "u2", None, S.ALL, T.CURRENT, "r")
    await store.enqueue_migration(TENANT, "u3", None, S.ALL, T.CURRENT, "r")
    [run] = [r for r in await store.claim_runnable(TENANT, limit=5) if r.user_id == "u1"]
    assert run.correlation_id == again.correlation_id
    await store.finish(run.correlation_id, MigrationState.SUCCEEDED, None)
    summary = await store.summary(TENANT)
    assert list(summary) == list(MigrationState)
    assert summary[MigrationState.SUCCEEDED] == 1
    assert summary[MigrationState.FAILED] == 0
    assert summary[MigrationState.IN_PROGRESS] + summary[MigrationState.PENDING] == 2
    assert sum(summary.values()) == 3
    assert await store.summary("empty") == dict.fromkeys(MigrationState, 0)
    assert len(await store.status(TENANT, latest_only=False)) == 5
    assert len(await store.status(TENANT, identity="u1", latest_only=False)) == 2


async def test_queue_metrics(store: Store, clock: FakeClock) -> None:
    empty = await store.queue_metrics(TENANT)
    assert empty.oldest_pending_seconds == 0 and empty.oldest_in_progress_seconds == 0
    await store.enqueue_migration(TENANT, "run", None, S.ALL, T.CURRENT, "r")
    [running] = await store.claim_runnable(TENANT)
    clock.advance(minutes=10)
    await store.enqueue_migration(TENANT, "wait", None, S.ALL, T.CURRENT, "r")
    await store.enqueue_migration(
        TENANT, "future", None, S.ALL, T.CURRENT, "r", not_before=clock.now() + timedelta(hours=9)
    )
    await store.enqueue_migration(TENANT, "quota", None, S.ALL, T.CURRENT, "r")
    claimed = {r.user_id: r for r in await store.claim_runnable(TENANT, limit=5)}
    assert set(claimed) == {"wait", "quota"}  # "future" is not due, "run" is running
    await store.wait_for_quota(
        claimed["quota"].correlation_id, until=clock.now() - timedelta(hours=1), last_message="q"
    )
    clock.advance(minutes=5)
    metrics = await store.queue_metrics(TENANT)
    assert metrics.oldest_in_progress_seconds == 15 * 60  # "run", claimed first
    await store.release(claimed["wait"].correlation_id)
    metrics = await store.queue_metrics(TENANT)
    assert metrics.oldest_pending_seconds == 0  # released just now
    assert metrics.pending_waiting_for_quota == 1
    assert metrics.pending_total == 3
    clock.advance(minutes=30)
    metrics = await store.queue_metrics(TENANT)
    assert metrics.oldest_pending_seconds == 30 * 60
    assert running.claimed_at is not None
    assert metrics.users_by_state[MigrationState.IN_PROGRESS] == 1


async def test_bulk_enqueue_joins_within_and_across_calls(store: Store, db_path: Path) -> None:
    await store.enqueue_migration(TENANT, "u0", None, S.SFB, T.TEAMS, "first")
    requests = [
        EnqueueRequest("u0", "zero@contoso.example", S.ALL, T.CURRENT, "wave"),
        EnqueueRequest("u1", None, S.ALL, T.CURRENT, "wave"),
        EnqueueRequest("u1", None, S.SFB, T.TEAMS, "wave again"),
    ]
    results = await store.enqueue_migrations(TENANT, requests)
    assert [r.created for r in results] == [False, True, False]
    assert results[1].correlation_id == results[2].correlation_id
    rows = _raw(db_path, "SELECT user_id, source, target, upn FROM migrations ORDER BY id")
    assert rows == [
        ("u0", "All", "Teams", "zero@contoso.example"),
        ("u1", "All", "Teams", None),
    ]


async def test_switches_and_profiles(store: Store) -> None:
    assert await store.get_switches(TENANT) == TenantSwitches()
    after = await store.update_switches(TENANT, automatically_replace_acp_provider=True)
    assert after == TenantSwitches(True, True, True)
    after = await store.update_switches(TENANT, automatically_migrate_user_meetings=False)
    assert after == TenantSwitches(True, False, True)
    await store.set_switches(TENANT, TenantSwitches(False, True, False))
    assert await store.get_switches(TENANT) == TenantSwitches(False, True, False)
    assert await store.get_switches("other") == TenantSwitches()

    assert await store.get_profile(TENANT, "u") is None
    first = ConferencingProfile(
        audio_conferencing_provider=AudioConferencingProvider.THIRD_PARTY, conference_id="1"
    )
    before, after_p = await store.update_profile(TENANT, "u", first)
    assert before is None and after_p == first
    change = ConferencingProfile(audio_conferencing_provider=AudioConferencingProvider.MICROSOFT)
    before, after_p = await store.update_profile(TENANT, "u", change)
    assert before == first
    assert after_p.audio_conferencing_provider is AudioConferencingProvider.MICROSOFT
    assert after_p.conference_id == "1"
    assert await store.get_profile(TENANT, "u") == after_p
    await store.set_profile(TENANT, "u", change)
    assert await store.get_profile(TENANT, "u") == change


async def test_user_cache(store: Store) -> None:
    assert await store.resolve_identity(TENANT, "alice@contoso.example") is None
    await store.remember_user(TENANT, "id-1", "Alice@Contoso.example")
    await store.remember_user(TENANT, "id-1", None)  # a known UPN is kept
    user = await store.resolve_identity(TENANT, "alice@contoso.EXAMPLE")
    assert user is not None and (user.user_id, user.upn) == ("id-1", "Alice@Contoso.example")
    by_id = await store.resolve_identity(TENANT, "id-1")
    assert by_id == user
    assert await store.resolve_identity("other", "id-1") is None


async def test_triggers_and_fates(store: Store, clock: FakeClock) -> None:
    first = Trigger(
        id="t1",
        tenant=TENANT,
        type=TriggerType.TEAMS_UPGRADE_POLICY_GRANTED,
        identity="alice@contoso.example",
        received_at=clock.now(),
        mode=TeamsUpgradeMode.TEAMS_ONLY,
        scope=PolicyScope.USER,
        conferencing=ConferencingProfile(conference_id="42"),
    )
    await store.record_trigger(first)
    clock.advance(minutes=1)
    second = Trigger(
        id="t2",
        tenant=TENANT,
        type=TriggerType.MANUAL_START,
        identity="id-1",
        received_at=clock.now(),
        source=S.SFB,
        target=T.TEAMS,
    )
    await store.record_triggers([second])
    assert await store.get_trigger("t1") == first
    assert await store.get_trigger("t2") == second
    assert await store.get_trigger("t3") is None

    await store.set_trigger_fate(
        "t1", TriggerFate.IGNORED, reason=IgnoreReason.USER_NOT_FOUND, message="no such user"
    )
    ignored = await store.get_trigger("t1")
    assert ignored is not None
    assert ignored.fate is TriggerFate.IGNORED and ignored.reason is IgnoreReason.USER_NOT_FOUND
    assert ignored.decided_at == clock.now()
    with pytest.raises(StoreError, match="unknown trigger"):
        await store.set_trigger_fate("t9", TriggerFate.IGNORED)

    await store.remember_user(TENANT, "id-1", "alice@contoso.example")
    listed = await store.list_triggers(TENANT, identity="ALICE@contoso.example")
    assert [t.id for t in listed] == ["t1", "t2"]  # by UPN and by object ID alike
    assert [t.id for t in await store.list_triggers(TENANT, since=clock.now())] == ["t2"]
    assert [t.id for t in await store.list_triggers(TENANT, limit=1)] == ["t1"]
    assert await store.list_triggers("other") == []
    assert listed[1].to_json()["sourceMeetingType"] == "SfB"
