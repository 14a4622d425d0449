"""A partial ``$batch`` fit: a refused window skips only the items charged there."""

from __future__ import annotations

import pytest
from graph_testkit import ManualClock, RecordingSleep

from mmsd.graph import GraphLimits
from mmsd.graph.pacing import RequestCost, TenantPacer

A = RequestCost(mailbox="a")
B = RequestCost(mailbox="b")
C = RequestCost(mailbox="c")


async def test_a_full_mailbox_window_skips_only_that_mailbox(
    clock: ManualClock, sleep: RecordingSleep
) -> None:
    pacer = TenantPacer(clock, GraphLimits(outlook_requests=2, outlook_window_s=20.0), sleep=sleep)
    for user in "abc":
        pacer.mailbox(user).concurrency.confirm(4)
    for cost in (A, A, B, C):
        (await pacer.acquire([cost])).release()
    permit = await pacer.acquire([A, B, A, B, C, B, A, C], partial=True)
    # a's window is full; b and c have room for one more each, the first of each.
    assert permit.chosen == [1, 4]
    assert sleep.total == 0
    permit.release()


async def test_a_full_app_window_waits_for_its_first_stamp(
    clock: ManualClock, sleep: RecordingSleep
) -> None:
    pacer = TenantPacer(clock, GraphLimits(graph_requests=3, graph_window_s=10.0), sleep=sleep)
    for user in "abc":
        pacer.mailbox(user).concurrency.confirm(4)
    (await pacer.acquire([C])).release()  # booked at t=0
    clock.advance(1.0)
    first = await pacer.acquire([A, B, C, A, B], partial=True)
    assert first.chosen == [0, 1]  # the app window had room for two more
    first.release()  # booked at t=1
    clock.advance(4.0)
    rest = await pacer.acquire([A, B], partial=True)
    assert sleep.total == pytest.approx(5.0)  # until the t=0 request leaves the window
    assert rest.chosen == [0]  # the t=1 pair is still inside it
    rest.release()


class _CountingSleep:
    """A sleep that advances the manual clock after yielding, counting parts asleep at once."""

    def __init__(self, clock: ManualClock) -> None:
        self.clock = clock
        self.asleep = 0
        self.peak = 0
        self.calls = 0

    async def __call__(self, seconds: float) -> None:
        import asyncio

        self.calls += 1
        self.asleep += 1
        self.peak = max(self.peak, self.asleep)
        for _ in range(3):  # let every other waiting part run meanwhile
            await asyncio.sleep(0)
        self.clock.advance(max(0.0, seconds))
        self.asleep -= 1


async def test_parts_waiting_for_one_full_window_poll_it_one_at_a_time_in_order(
    clock: ManualClock,
) -> None:
    import asyncio

    sleep = _CountingSleep(clock)
    pacer = TenantPacer(clock, GraphLimits(teams_requests=2, teams_window_s=1.0), sleep=sleep)
    teams = RequestCost(teams=True)
    for _ in range(2):
        (await pacer.acquire([teams])).release()  # the window is full until t=1
    order: list[int] = []

    async def part(n: int) -> None:
        permit = await pacer.acquire([teams, teams], partial=True)
        order.append(n)
        permit.release()

    await asyncio.gather(*(part(n) for n in range(5)))
    assert order == [0, 1, 2, 3, 4]  # first come, first served
    assert sleep.peak == 1  # never a herd of parts re-checking the same window
    assert not pacer._lines  # every line is gone once empty
