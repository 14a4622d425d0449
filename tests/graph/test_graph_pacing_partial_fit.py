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
