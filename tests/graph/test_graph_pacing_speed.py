"""The cheaper partial ``$batch`` fit decides exactly as the item-by-item one it replaced."""

from __future__ import annotations

import asyncio
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import pytest
from graph_testkit import ManualClock, RecordingSleep
from hypothesis import given, settings
from hypothesis import strategies as st

from mmsd.graph.pacing import GraphLimits, RateWindow, RequestCost, TenantPacer

USERS = ("a", "b", "c")
WINDOWS = ("app", "app.teams", "teams", *(f"{u}.{k}" for u in USERS for k in ("req", "up")))


async def legacy_fit_partial(
    self: TenantPacer, costs: Sequence[RequestCost], caps: Mapping[str, int]
) -> tuple[list[int], dict[int, tuple[RateWindow, float]]]:
    """``TenantPacer._fit_partial`` as of 8bb8873, verbatim: the reference decisions."""
    while True:
        pause = self.directory_paused_until - self.clock.monotonic()
        first_delay: float | None = None
        chosen: list[int] = []
        needs: dict[int, tuple[RateWindow, float]] = {}
        per_mailbox: dict[str, int] = {}
        # Within one pass a window's wait only grows with the units asked of it: the
        # smallest total each window refused stands for every larger one.
        refused: dict[int, float] = {}
        for i, cost in enumerate(costs):
            user = cost.mailbox
            if user is not None and per_mailbox.get(user, 0) >= caps.get(user, 0):
                continue
            # The windows of one request's charges are distinct objects: each one's
            # trial total is what the batch holds there already plus this request.
            charges = [
                (window, units + needs.get(id(window), (window, 0.0))[1])
                for window, units in self.charges(cost)
            ]
            if any(total >= refused.get(id(w), math.inf) for w, total in charges):
                continue  # a refusal came first, so first_delay is set
            delay = 0.0
            for window, total in charges:
                wait = window.wait(total)
                if wait > 0:
                    refused[id(window)] = min(total, refused.get(id(window), math.inf))
                    delay = max(delay, wait)
            if delay > 0 or pause > 0:
                if first_delay is None:
                    first_delay = max(delay, pause)
                if pause > 0 or id(self.app.requests) in refused:
                    break  # nothing fits before the pause ends / every item is charged there
                continue
            chosen.append(i)
            for window, total in charges:
                needs[id(window)] = (window, total)
            if user is not None:
                per_mailbox[user] = per_mailbox.get(user, 0) + 1
        if chosen:
            return chosen, needs
        await self._sleep(max(first_delay or 0.0, 1e-3))


class Stuck(Exception):
    """The fit slept too often: nothing would ever fit (units in flight are never answered)."""


class BoundedSleep(RecordingSleep):
    """A recording sleep that gives up after ``limit`` waits."""

    def __init__(self, clock: ManualClock, limit: int = 40) -> None:
        super().__init__(clock)
        self.limit = limit

    async def __call__(self, seconds: float) -> None:
        if len(self.calls) >= self.limit:
            raise Stuck
        await super().__call__(seconds)


def window(pacer: TenantPacer, name: str) -> RateWindow:
    """The window called ``name`` in :data:`WINDOWS`."""
    if name == "app":
        return pacer.app.requests
    if name == "app.teams":
        return pacer.app.teams
    if name == "teams":
        return pacer.teams
    user, kind = name.split(".")
    mailbox = pacer.mailbox(user)
    return mailbox.requests if kind == "req" else mailbox.upload


@dataclass(frozen=True)
class Op:
    """One step of a window's history before the fit: what happened to which window."""

    kind: str  # book | fly | pause | throttle | advance | directory
    name: str = "app"
    units: int = 1
    seconds: float = 0.0


def apply(pacer: TenantPacer, clock: ManualClock, op: Op) -> None:
    """Replay ``op`` on ``pacer`` (the same on both pacers of a comparison)."""
    scale = 700 if op.name.endswith(".up") else 1
    target = window(pacer, op.name)
    if op.kind == "book":
        target.take(op.units * scale)
        target.finish(op.units * scale)
    elif op.kind == "fly":
        target.take(op.units * scale)
    elif op.kind == "pause":
        target.pause(op.seconds)
    elif op.kind == "throttle":
        target.throttled(op.seconds, admitted=float(op.units) if op.units > 1 else None)
    elif op.kind == "advance":
        clock.advance(op.seconds)
    else:
        pacer.directory_paused_until = clock.monotonic() + op.seconds


limits_st = st.builds(
    GraphLimits,
    outlook_requests=st.integers(1, 8),
    outlook_window_s=st.sampled_from([1.0, 5.0, 20.0]),
    outlook_upload_bytes=st.integers(500, 8000),
    outlook_upload_window_s=st.sampled_from([2.0, 10.0]),
    teams_requests=st.integers(1, 6),
    teams_window_s=st.sampled_from([0.5, 1.0]),
    app_teams_requests=st.integers(1, 10),
    graph_requests=st.integers(1, 40),
    graph_window_s=st.sampled_from([1.0, 10.0]),
    recovery_s=st.sampled_from([5.0, 60.0]),
)
op_st = st.one_of(
    st.builds(Op, st.just("book"), st.sampled_from(WINDOWS), st.integers(1, 5)),
    st.builds(Op, st.just("fly"), st.sampled_from(WINDOWS), st.integers(1, 2)),
    st.builds(Op, st.just("pause"), st.sampled_from(WINDOWS), seconds=st.sampled_from([0.5, 3.0])),
    st.builds(
        Op,
        st.just("throttle"),
        st.sampled_from(WINDOWS),
        st.integers(0, 4),
        st.sampled_from([0.0, 1.0, 4.0]),
    ),
    st.builds(Op, st.just("advance"), seconds=st.sampled_from([0.1, 0.5, 1.0, 3.0, 12.0])),
    st.builds(Op, st.just("directory"), seconds=st.sampled_from([0.0, 0.7, 2.0])),
)
cost_st = st.builds(
    RequestCost,
    mailbox=st.sampled_from((None, *USERS)),
    teams=st.booleans(),
    upload_bytes=st.sampled_from([0, 0, 300, 1400, 5000]),
)


async def run_fit(
    limits: GraphLimits,
    history: Sequence[Op],
    costs: Sequence[RequestCost],
    caps: Mapping[str, int],
    legacy: bool,
) -> tuple[object, list[float], float]:
    """One fresh pacer with ``history`` replayed: the fit's outcome, its waits and the clock."""
    clock = ManualClock()
    sleep = BoundedSleep(clock)
    pacer = TenantPacer(clock, limits, sleep=sleep)
    for op in history:
        apply(pacer, clock, op)
    names = {id(window(pacer, name)): name for name in WINDOWS}
    try:
        if legacy:
            chosen, needs = await legacy_fit_partial(pacer, costs, caps)
        else:
            chosen, needs = await pacer._fit_partial(costs, caps)
    except Stuck:
        return "stuck", sleep.calls, clock.monotonic()
    totals = {names[key]: total for key, (_, total) in needs.items()}
    assert all(id(w) == key for key, (w, _) in needs.items())
    return (chosen, totals), sleep.calls, clock.monotonic()


@settings(max_examples=400, derandomize=True, deadline=None, database=None)
@given(
    limits=limits_st,
    history=st.lists(op_st, max_size=30),
    costs=st.lists(cost_st, min_size=1, max_size=20),
    cap_values=st.fixed_dictionaries({u: st.integers(0, 6) for u in USERS}),
)
def test_partial_fit_decides_as_the_item_by_item_reference(
    limits: GraphLimits,
    history: list[Op],
    costs: list[RequestCost],
    cap_values: dict[str, int],
) -> None:
    caps = {u: n for u, n in cap_values.items() if any(c.mailbox == u for c in costs)}
    expected = asyncio.run(run_fit(limits, history, costs, caps, legacy=True))
    actual = asyncio.run(run_fit(limits, history, costs, caps, legacy=False))
    # Same items in the same order, same units per window, same waits before them.
    assert actual == expected


@settings(max_examples=300, derandomize=True, deadline=None, database=None)
@given(
    limits=limits_st,
    history=st.lists(op_st, max_size=30),
    name=st.sampled_from(WINDOWS),
    units=st.sampled_from([1.0, 2.0, 5.0, 700.0, 3000.0]),
)
def test_room_agrees_with_wait(
    limits: GraphLimits, history: list[Op], name: str, units: float
) -> None:
    clock = ManualClock()
    pacer = TenantPacer(clock, limits, sleep=RecordingSleep(clock))
    for op in history:
        apply(pacer, clock, op)
    target = window(pacer, name)
    used, ceiling = target.room(clock.monotonic())
    assert used == target.used()
    assert (used + units <= ceiling) == (target.wait(units) == 0)


async def test_a_batch_that_fits_whole_is_taken_whole_up_to_the_caps(
    clock: ManualClock, sleep: RecordingSleep
) -> None:
    pacer = TenantPacer(clock, GraphLimits(), sleep=sleep)
    a, b = RequestCost(mailbox="a", upload_bytes=1000), RequestCost(mailbox="b")
    costs = [a, b, a, a, b, RequestCost(teams=True), a]
    chosen, needs = await pacer._fit_partial(costs, {"a": 2, "b": 5})
    assert chosen == [0, 1, 2, 4, 5]
    totals = {key: total for key, (_, total) in needs.items()}
    assert totals == {
        id(pacer.app.requests): 5.0,
        id(pacer.app.teams): 1.0,
        id(pacer.teams): 1.0,
        id(pacer.mailbox("a").requests): 2.0,
        id(pacer.mailbox("a").upload): 2000.0,
        id(pacer.mailbox("b").requests): 2.0,
    }
    assert sleep.calls == []


async def test_try_acquire_never_jumps_the_queue(clock: ManualClock) -> None:
    pacer = TenantPacer(clock, GraphLimits(outlook_concurrency=2))
    limit = pacer.mailbox("a").concurrency
    assert limit.try_acquire(3) == 2
    waiter = asyncio.ensure_future(limit.acquire(2))
    await asyncio.sleep(0)
    limit.release(1)  # one slot free, but the waiter wants two and came first
    assert limit.try_acquire(1) == 0
    limit.release(1)
    assert await waiter == 2
    assert limit.in_flight == 2


@pytest.mark.parametrize("partial", [True, False])
async def test_unused_slots_go_back_and_used_ones_stay(
    clock: ManualClock, sleep: RecordingSleep, partial: bool
) -> None:
    pacer = TenantPacer(clock, GraphLimits(outlook_requests=2, outlook_window_s=10.0), sleep=sleep)
    limit = pacer.mailbox("a").concurrency
    limit.confirm(4)
    (await pacer.acquire([RequestCost(mailbox="a")])).release()
    permit = await pacer.acquire([RequestCost(mailbox="a")] * 3, partial=partial)
    # Partial: the window has room for one more now, so two of the three slots go back;
    # whole: the three wait until the window is empty (an empty window admits anything).
    assert limit.in_flight == (1 if partial else 3)
    assert permit.chosen == ([0] if partial else [0, 1, 2])
    assert sleep.total == (0.0 if partial else pytest.approx(10.0))
    permit.release()
    assert limit.in_flight == 0
