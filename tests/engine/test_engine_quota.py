"""The organizer's daily sending quota (SPEC section 3): waits without spending attempts, also across a restart.

The quota is mmsd's own (``send_recipients`` in the tenant's limits, here a
dozen recipients a day): a migration that needs more goes ``Pending`` with a
``lastMessage`` saying until when, its ``retryCount`` untouched, and resumes
when the (simulated) day has passed. What was sent before a restart still
counts: the store knows every confirmed PATCH with its recipients and time,
and a fresh sending pacer is restored from it.
"""

from __future__ import annotations

import asyncio
import re
from dataclasses import replace
from datetime import datetime, timedelta
from typing import Any

from engine_checks import assert_exactly_once, trigger
from engine_testkit import TENANT, Harness

from mmsd.clock import parse_rfc3339
from mmsd.domain.model import MigrationState, StatusRecord
from mmsd.engine.classify import attendee_addresses, parse_graph_time

QUOTA = 12
DAY = timedelta(days=1)
UNTIL = re.compile(r"until (\S+)$")


def _with_quota(h: Harness, recipients: int) -> None:
    tenant = h.config.tenants[TENANT]
    limits = {**tenant.limits, "send_recipients": recipients}
    h.config = replace(h.config, tenants={TENANT: replace(tenant, limits=limits)})


async def _sent(h: Harness, user: str, since: dict[str, Any]) -> int:
    """Recipients the PATCHes since the ``since`` counters sent, as mmsd counts them.

    One PATCH sends to every attendee of the event; a series master's also to the
    attendees of its future exceptions.
    """
    now = h.sim.clock.now()
    stored = {e["data"]["id"]: e["data"] for e in (await h.get(f"/events/{user}"))["value"]}
    after = (await h.counters())["patchesByEvent"]
    total = 0
    for event_id, n in after.items():
        if event_id not in stored or n <= since["patchesByEvent"].get(event_id, 0):
            continue
        event = stored[event_id]
        total += len(attendee_addresses(event))
        if event.get("type") == "seriesMaster":
            for other in stored.values():
                start = parse_graph_time(other.get("start"))
                if (
                    other.get("seriesMasterId") == event_id
                    and other.get("type") == "exception"
                    and start is not None
                    and start > now
                ):
                    total += len(attendee_addresses(other))
    return total


def _until(record: StatusRecord) -> datetime:
    assert record.last_message is not None
    assert "sending quota" in record.last_message, record.last_message
    found = UNTIL.search(record.last_message)
    assert found, record.last_message
    return parse_rfc3339(found.group(1))


async def _quota_wait(h: Harness, user: str) -> StatusRecord:
    """The user's record once it waits for the quota (or has ended)."""
    assert h.store is not None
    store = h.store

    async def waiting() -> StatusRecord | None:
        latest = (await store.status(TENANT, identity=user))[-1]
        if latest.waiting_for_quota or latest.state in (
            MigrationState.SUCCEEDED,
            MigrationState.FAILED,
        ):
            return latest
        return None

    record: StatusRecord = await h.wait_for(waiting, 30, "a quota wait")
    assert record.state is MigrationState.PENDING, "the quota did not hold the migration"
    assert record.retry_count == 0, "a quota wait spent an attempt"
    return record


async def test_quota_wait_survives_a_restart_and_resumes_next_day(harness: Harness) -> None:
    h = harness
    user = (await h.users("ordinary"))[4]["id"]
    _with_quota(h, QUOTA)
    initial = day_start = await h.counters()
    sim = h.sim

    # 1. A crash while the first PATCH's answer is held: the store has an open intent
    #    for a PATCH that Graph applied, and the Graph client's memory is gone.
    hold = sim.faults.hold_next_patch(None)
    engine = await h.start(patch_batch_size=1)
    await engine.submit_trigger(TENANT, trigger(h, {"type": "userMovedToOnline", "identity": user}))
    await asyncio.wait_for(sim.faults.wait_held(hold), 30)
    await engine.abort()
    sim.faults.release(hold)
    spent_before_crash = await _sent(h, user, day_start)
    assert 0 < spent_before_crash <= QUOTA
    assert h.store is not None
    await h.store.close()
    h.engine = h.store = None

    # 2. Restarted: the migration resumes, but only what is left of today's quota goes
    #    out; then it waits, Pending, without spending an attempt.
    await h.start(patch_batch_size=1)
    record = await _quota_wait(h, user)
    until = _until(record)
    assert sim.clock.now() + DAY - timedelta(minutes=5) < until <= sim.clock.now() + DAY
    assert await _sent(h, user, day_start) <= QUOTA, "the restart forgot today's sends"
    waits = [c for c in h.observer.calls if c[0] == "migration_rescheduled"]
    assert waits and all(c[1][1] is True for c in waits)  # waiting for quota, not a retry

    # 3. Restarted again while it waits: still Pending, same message, nothing sent.
    assert h.engine is not None and h.store is not None
    await h.engine.shutdown()
    await h.store.close()
    h.engine = h.store = None
    before_idle = await h.counters()
    await h.start(patch_batch_size=1)
    assert h.store is not None
    again = (await h.store.status(TENANT, identity=user))[-1]
    assert again.state is MigrationState.PENDING and again.last_message == record.last_message
    assert (await h.counters())["patchesByEvent"] == before_idle["patchesByEvent"]

    # 4. The day passes (simulated): it resumes, waiting again as often as it needs,
    #    each day within the quota, and succeeds with its retry count untouched.
    store = h.store
    for _day in range(5):
        sim.clock.advance((until - sim.clock.now()).total_seconds() + 1)
        day_start = await h.counters()

        async def moved_on(waited: datetime = until) -> StatusRecord | None:
            latest = (await store.status(TENANT, identity=user))[-1]
            if latest.state is MigrationState.PENDING and _until(latest) == waited:
                return None  # the tenant has not claimed it yet
            if latest.state is MigrationState.IN_PROGRESS:
                return None
            return latest

        record = await h.wait_for(moved_on, 30, "the migration to resume")
        assert await _sent(h, user, day_start) <= QUOTA
        assert record.retry_count == 0
        if record.state is not MigrationState.PENDING:
            break
        until = _until(record)
    assert record.state is MigrationState.SUCCEEDED, record.last_message
    await assert_exactly_once(h, [user], initial, await h.counters())
