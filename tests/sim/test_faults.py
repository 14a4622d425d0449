"""Fault injection that repeats from a seed, and PATCH holds."""

from __future__ import annotations

import asyncio
import random

import pytest

from mmsd.sim.faults import FaultKind, FaultPlan

RATES = {
    FaultKind.HTTP_503: 0.1,
    FaultKind.HTTP_504: 0.05,
    FaultKind.SLOW: 0.05,
    FaultKind.TIMEOUT: 0.05,
    FaultKind.RESET: 0.05,
    FaultKind.LOST_PATCH_ANSWER: 0.2,
}

REQUESTS = [
    (method, f"/v1.0/users/u{u}/events/e{e}")
    for u in range(5)
    for e in range(8)
    for method in ("GET", "PATCH")
]


def test_no_rates_no_faults() -> None:
    plan = FaultPlan(7)
    assert all(plan.decide(m, p) is None for m, p in REQUESTS)
    assert set(plan.injected().values()) == {0}


def test_same_seed_same_faults_whatever_the_interleaving() -> None:
    def run(order_seed: int) -> dict[tuple[str, str, int], FaultKind | None]:
        plan = FaultPlan(42, RATES)
        calls = [r for r in REQUESTS for _ in range(3)]  # three attempts of each
        random.Random(order_seed).shuffle(calls)
        seen: dict[tuple[str, str], int] = {}
        out: dict[tuple[str, str, int], FaultKind | None] = {}
        for method, path in calls:
            attempt = seen.get((method, path), 0)
            seen[(method, path)] = attempt + 1
            out[(method, path, attempt)] = plan.decide(method, path)
        return out

    first = run(1)
    assert run(2) == first
    assert any(v is not None for v in first.values())
    other_seed = FaultPlan(43, RATES)
    assert [other_seed.decide(m, p, 0) for m, p in REQUESTS] != [
        first[(m, p, 0)] for m, p in REQUESTS
    ]


def test_explicit_attempt_matches_the_inner_counter() -> None:
    a, b = FaultPlan(5, RATES), FaultPlan(5, RATES)
    for attempt in range(4):
        for method, path in REQUESTS:
            assert a.decide(method, path) == b.decide(method.lower(), path, attempt)


def test_rates_are_respected() -> None:
    plan = FaultPlan(3, {FaultKind.HTTP_503: 0.1, FaultKind.RESET: 0.3})
    kinds = [plan.decide("GET", f"/p{i}") for i in range(20_000)]
    assert 0.09 < kinds.count(FaultKind.HTTP_503) / len(kinds) < 0.11
    assert 0.28 < kinds.count(FaultKind.RESET) / len(kinds) < 0.32
    assert plan.injected()["http503"] == kinds.count(FaultKind.HTTP_503)


def test_lost_patch_answer_only_for_patch() -> None:
    plan = FaultPlan(1, {FaultKind.LOST_PATCH_ANSWER: 1.0})
    assert plan.decide("GET", "/e") is None
    assert plan.decide("POST", "/e") is None
    assert plan.decide("PATCH", "/e") is FaultKind.LOST_PATCH_ANSWER


def test_set_rates_and_validation() -> None:
    plan = FaultPlan(1)
    plan.set_rates({FaultKind.HTTP_504: 1.0})
    assert plan.decide("GET", "/x") is FaultKind.HTTP_504
    assert plan.rates == {FaultKind.HTTP_504: 1.0}
    plan.set_rates(None)
    assert plan.decide("GET", "/x") is None
    for bad in ({FaultKind.SLOW: -0.1}, {FaultKind.SLOW: 1.5}, {FaultKind.SLOW: True}):
        with pytest.raises(ValueError):
            plan.set_rates(bad)
    with pytest.raises(ValueError, match="add up"):
        FaultPlan(1, {FaultKind.SLOW: 0.6, FaultKind.RESET: 0.6})


async def test_hold_blocks_the_matching_patch_until_released() -> None:
    plan = FaultPlan(1)
    hold_id = plan.hold_next_patch("e1")
    assert [h.to_json() for h in plan.held()] == [
        {"holdId": hold_id, "eventId": "e1", "heldEventId": None, "held": False}
    ]
    await plan.maybe_hold("e2")  # not the armed event: no wait
    task = asyncio.create_task(plan.maybe_hold("e1"))
    held = await plan.wait_held(hold_id)
    assert held.held_event_id == "e1"
    assert not task.done()
    await plan.maybe_hold("e1")  # the hold is taken: a second PATCH goes through
    assert plan.release(hold_id)
    await task
    assert plan.held() == []
    assert not plan.release(hold_id)


async def test_hold_on_any_event_and_release_all() -> None:
    plan = FaultPlan(1)
    plan.hold_next_patch(None)
    plan.hold_next_patch(None)
    waiter = asyncio.create_task(plan.wait_held())
    first = asyncio.create_task(plan.maybe_hold("x"))
    second = asyncio.create_task(plan.maybe_hold("y"))
    assert (await waiter).held_event_id == "x"
    await asyncio.sleep(0)
    assert sorted(h.held_event_id or "" for h in plan.held()) == ["x", "y"]
    assert plan.release_all() == 2
    await asyncio.gather(first, second)
    assert plan.held() == []


async def test_a_cancelled_held_request_drops_its_hold() -> None:
    plan = FaultPlan(1)
    hold_id = plan.hold_next_patch("e")
    task = asyncio.create_task(plan.maybe_hold("e"))
    await plan.wait_held(hold_id)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert plan.held() == []


async def test_disarming_an_unused_hold_wakes_its_waiter() -> None:
    plan = FaultPlan(1)
    hold_id = plan.hold_next_patch("e")
    waiter = asyncio.create_task(plan.wait_held(hold_id))
    await asyncio.sleep(0)
    assert plan.release(hold_id)
    with pytest.raises(LookupError):
        await waiter
    await plan.maybe_hold("e")  # disarmed: no wait
