"""Pacing under SPEC section 4's limits, driven by a manual clock (no real sleeping)."""

from __future__ import annotations

import asyncio
import random
from collections import deque
from datetime import timedelta

import pytest
from graph_testkit import ManualClock, RecordingSleep

from mmsd.graph.pacing import (
    MIB,
    ConcurrencyLimit,
    GraphLimits,
    RateWindow,
    RequestCost,
    RetryPolicy,
    RollingQuota,
    TenantPacer,
    request_cost,
)


def test_defaults_are_spec_section_4() -> None:
    limits = GraphLimits()
    assert (limits.outlook_requests, limits.outlook_window_s) == (10_000, 600.0)
    assert limits.outlook_concurrency == 4
    assert (limits.outlook_upload_bytes, limits.outlook_upload_window_s) == (150 * MIB, 300.0)
    assert (limits.teams_requests, limits.teams_window_s) == (30, 1.0)
    assert (limits.app_teams_requests, limits.app_teams_window_s) == (300, 1.0)
    assert limits.online_meetings_per_user == 2_000
    assert (limits.graph_requests, limits.graph_window_s) == (130_000, 10.0)
    assert (limits.batch_max_requests, limits.batch_outlook_parallel) == (20, 4)
    assert (limits.send_messages, limits.send_messages_window_s) == (30, 60.0)
    assert (limits.send_recipients, limits.send_recipients_window_s) == (10_000, 86_400.0)
    assert limits.attendees_per_event == 500


def test_from_mapping_overrides_and_coerces() -> None:
    limits = GraphLimits.from_mapping({"outlook_concurrency": 2, "teams_window_s": 1})
    assert limits.outlook_concurrency == 2
    assert isinstance(limits.teams_window_s, float)
    assert limits.outlook_requests == 10_000


def test_from_mapping_rejects_unknown_keys_by_name() -> None:
    with pytest.raises(ValueError, match=r"unknown key\(s\) mailbox_concurrency") as info:
        GraphLimits.from_mapping({"mailbox_concurrency": 3})
    assert "outlook_concurrency" in str(info.value)  # the message lists the known keys


@pytest.mark.parametrize(
    "table",
    [
        {"outlook_concurrency": 0},
        {"outlook_concurrency": 2.5},
        {"outlook_concurrency": True},
        {"teams_window_s": "1"},
        {"batch_max_requests": 21},
        {"throttle_decrease": 1.5},
    ],
)
def test_from_mapping_rejects_bad_values(table: dict[str, object]) -> None:
    with pytest.raises(ValueError, match="limits:"):
        GraphLimits.from_mapping(table)


def _drive(window: RateWindow, clock: ManualClock, n: int) -> list[float]:
    """Use ``n`` units one by one, waiting as told; return the instant of each use."""
    uses = []
    for _ in range(n):
        clock.advance(window.reserve(1))
        uses.append(clock.monotonic())
    return uses


def _max_in_window(uses: list[float], window_s: float) -> int:
    best, left = 0, 0
    for right, t in enumerate(uses):
        while t - uses[left] >= window_s - 1e-9:
            left += 1
        best = max(best, right - left + 1)
    return best


@pytest.mark.parametrize(("count", "window_s"), [(30, 1.0), (10_000, 600.0), (30, 60.0)])
def test_rate_window_never_exceeds_count_in_any_window(
    clock: ManualClock, count: int, window_s: float
) -> None:
    window = RateWindow(clock, count, window_s, GraphLimits())
    uses = _drive(window, clock, count * 3)
    assert _max_in_window(uses, window_s) <= count
    # ...and it is not needlessly slow: three windows' worth takes about three windows.
    assert uses[-1] - uses[0] < 3.2 * window_s


def test_throttle_pauses_for_retry_after_and_halves_rate(clock: ManualClock) -> None:
    window = RateWindow(clock, 30, 1.0, GraphLimits())
    _drive(window, clock, 10)
    window.throttled(7.0)
    assert window.factor() == pytest.approx(0.5)
    assert window.reserve(1) >= 7.0
    # A second 429 arriving during the pause (a request sent before it) does not halve again.
    clock.advance(1.0)
    window.throttled(2.0)
    assert window.factor() == pytest.approx(0.5)


def test_rate_recovers_slowly_after_the_pause(clock: ManualClock) -> None:
    limits = GraphLimits(recovery_s=600.0)
    window = RateWindow(clock, 30, 1.0, limits)
    window.throttled(10.0)
    clock.advance(10.0)
    assert window.factor() == pytest.approx(0.5)
    clock.advance(150.0)
    assert window.factor() == pytest.approx(0.75)
    clock.advance(1000.0)
    assert window.factor() == 1.0


def test_rate_never_drops_below_the_floor(clock: ManualClock) -> None:
    window = RateWindow(clock, 30, 1.0, GraphLimits(min_rate_fraction=0.1))
    for _ in range(20):
        window.throttled(1.0)
        clock.advance(1.0)
    assert window.factor() >= 0.1


def test_adapts_to_a_real_limit_lower_than_configured(clock: ManualClock) -> None:
    """Configured 30/s, Graph really allows 12/s: few 429s after adapting, decent throughput."""
    window = RateWindow(clock, 30, 1.0, GraphLimits())
    real_limit, recent = 12, deque[float]()
    throttled_at: list[float] = []
    sent = 0
    start = clock.monotonic()
    while clock.monotonic() - start < 300:
        clock.advance(window.reserve(1))
        now = clock.monotonic()
        while recent and now - recent[0] >= 1.0:
            recent.popleft()
        if len(recent) >= real_limit:
            throttled_at.append(now)
            window.throttled(1.0)
            continue
        recent.append(now)
        sent += 1
    elapsed = clock.monotonic() - start
    assert sent / elapsed >= 0.5 * real_limit
    late = [t for t in throttled_at if t - start > 60]
    # Without adaptation it would be throttled every second (about 240 times after the first minute).
    assert len(late) <= 12
    assert len(throttled_at) >= 1


async def test_concurrency_limit_blocks_the_fifth_and_wakes_it(clock: ManualClock) -> None:
    limit = ConcurrencyLimit(clock, 4, recovery_s=600.0)
    for _ in range(4):
        assert await limit.acquire() == 1
    waiter = asyncio.ensure_future(limit.acquire())
    await asyncio.sleep(0)
    assert not waiter.done()
    limit.release()
    assert await asyncio.wait_for(waiter, 1) == 1
    assert limit.in_flight == 4


async def test_concurrency_throttle_lowers_then_recovers(clock: ManualClock) -> None:
    limit = ConcurrencyLimit(clock, 4, recovery_s=600.0)
    limit.throttled()
    assert limit.limit() == 3
    assert await limit.acquire(10) == 3  # a batch gets at most the current limit
    limit.release(3)
    clock.advance(150.0)  # one step per recovery_s / configured
    assert limit.limit() == 4


async def test_cancelled_waiter_gives_nothing_away(clock: ManualClock) -> None:
    limit = ConcurrencyLimit(clock, 1, recovery_s=60.0)
    await limit.acquire()
    waiter = asyncio.ensure_future(limit.acquire())
    await asyncio.sleep(0)
    waiter.cancel()
    with pytest.raises(asyncio.CancelledError):
        await waiter
    limit.release()
    assert limit.in_flight == 0
    assert await limit.acquire() == 1


def test_request_cost_scopes() -> None:
    assert request_cost("/users/u1/events/e1", 10) == RequestCost(mailbox="u1", upload_bytes=10)
    assert request_cost("/users/u1/calendarView?startDateTime=x").mailbox == "u1"
    assert request_cost("/users/u1/onlineMeetings?$filter=x") == RequestCost(teams=True)
    create = request_cost("/users/u1/onlineMeetings/createOrGet")
    assert create.teams and create.creates_meeting_for == "u1"
    assert request_cost("/users/delta") == RequestCost()
    assert request_cost("/users/u1") == RequestCost()


async def test_batch_holds_at_most_four_slots_of_its_mailbox(
    clock: ManualClock, sleep: RecordingSleep
) -> None:
    pacer = TenantPacer(clock, GraphLimits(), sleep=sleep)
    permit = await pacer.acquire([RequestCost(mailbox="m")] * 20)
    assert pacer.mailbox("m").concurrency.in_flight == 4
    permit.release()
    permit.release()  # idempotent
    assert pacer.mailbox("m").concurrency.in_flight == 0


async def test_crossing_batches_do_not_deadlock(clock: ManualClock, sleep: RecordingSleep) -> None:
    pacer = TenantPacer(clock, GraphLimits(outlook_concurrency=1), sleep=sleep)
    a = [RequestCost(mailbox="a"), RequestCost(mailbox="b")]
    b = [RequestCost(mailbox="b"), RequestCost(mailbox="a")]

    async def run(costs: list[RequestCost]) -> None:
        for _ in range(20):
            permit = await pacer.acquire(costs)
            await asyncio.sleep(0)
            permit.release()

    await asyncio.wait_for(asyncio.gather(run(a), run(b), run(a)), 5)


async def test_mailbox_429_pauses_only_that_mailbox(
    clock: ManualClock, sleep: RecordingSleep
) -> None:
    pacer = TenantPacer(clock, GraphLimits(), sleep=sleep)
    pacer.throttled(
        RequestCost(mailbox="slow"), 30.0, "Application is over its MailboxConcurrency limit."
    )
    (await pacer.acquire([RequestCost(mailbox="fast")])).release()
    assert sleep.total == 0
    assert pacer.mailbox("slow").concurrency.limit() == 3
    (await pacer.acquire([RequestCost(mailbox="slow")])).release()
    assert sleep.total >= 30.0


async def test_teams_calls_paced_per_tenant_and_per_app(
    clock: ManualClock, sleep: RecordingSleep
) -> None:
    limits = GraphLimits(app_teams_requests=40)
    pacer = TenantPacer(clock, limits, sleep=sleep)
    other = TenantPacer(clock, limits, app=pacer.app, sleep=sleep)
    start = clock.monotonic()
    for _ in range(60):
        (await pacer.acquire([RequestCost(teams=True)])).release()
        (await other.acquire([RequestCost(teams=True)])).release()
    # 120 Teams calls: each tenant alone would allow 30/s, but the app allows 40/s in all.
    assert clock.monotonic() - start >= (120 - 40) / 40 * 0.9


def test_rolling_quota_tells_when_room_comes_back(clock: ManualClock) -> None:
    quota = RollingQuota(clock, 10_000, 86_400.0)
    t0 = clock.now()
    assert quota.reserve(6_000) is None
    clock.advance(3_600)
    assert quota.reserve(3_000) is None
    until = quota.available_at(2_000)
    assert until == t0 + timedelta(days=1)  # the first 6,000 leave the window then
    assert quota.reserve(2_000) == until
    assert quota.used() == 9_000
    quota.refund(3_000)
    assert quota.reserve(2_000) is None
    clock.advance(86_000)  # the 6,000 of t0 have left the window, the 2,000 not yet
    assert quota.used() == 2_000


async def test_sending_pacer_spreads_recipients_and_messages(
    clock: ManualClock, sleep: RecordingSleep
) -> None:
    pacer = TenantPacer(clock, GraphLimits(), sleep=sleep)
    sender = pacer.sending("organizer")
    assert sender.reserve_recipients(9_990) is None
    later = sender.can_send(500)
    assert later is not None and later > clock.now()
    waited = [await sender.wait_for_messages() for _ in range(90)]
    assert sum(waited) >= 60.0 * 0.9  # 90 messages at 30 a minute: about two minutes of waiting


def test_retry_backoff_is_seeded_capped_and_growing() -> None:
    policy = RetryPolicy(base_delay_s=1.0, max_delay_s=20.0)
    a = [policy.backoff(n, random.Random(7).uniform) for n in range(1, 8)]
    b = [policy.backoff(n, random.Random(7).uniform) for n in range(1, 8)]
    assert a == b
    assert 0.5 <= a[0] <= 1.0
    assert 4.0 <= a[3] <= 8.0
    assert all(d <= 20.0 for d in a)
    with pytest.raises(ValueError, match="unknown"):
        RetryPolicy.from_mapping({"attempts": 3})
