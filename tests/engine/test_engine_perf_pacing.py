"""Pacing at full rate without 429s: sliding windows counted from the answer, learned limits."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from types import SimpleNamespace

from mmsd.graph import GraphClient
from mmsd.graph.pacing import GraphLimits, RateWindow, RequestCost, TenantPacer


class Clock:
    """Moves only when told to."""

    def __init__(self) -> None:
        self.t = 100.0

    def now(self) -> datetime:
        return datetime(2026, 1, 5, tzinfo=UTC) + timedelta(seconds=self.t)

    def monotonic(self) -> float:
        return self.t


def _max_in_window(uses: list[float], window_s: float) -> int:
    best, left = 0, 0
    for right, t in enumerate(uses):
        while t - uses[left] >= window_s - 1e-9:
            left += 1
        best = max(best, right - left + 1)
    return best


def test_a_window_is_used_in_full_like_the_greedy_client() -> None:
    clock = Clock()
    window = RateWindow(clock, 40, 20.0, GraphLimits())
    starts: list[float] = []
    for _ in range(121):  # three windows' worth and one: the last starts at 3 W exactly
        clock.t += window.wait(1)
        window.take(1)
        starts.append(clock.t)
        window.finish(1)
    assert _max_in_window(starts, 20.0) == 40
    assert starts[-1] - starts[0] == 60.0


def test_units_count_until_a_window_after_the_answer() -> None:
    """Graph admits a request somewhere between send and answer: mmsd assumes the answer."""
    clock = Clock()
    window = RateWindow(clock, 2, 10.0, GraphLimits())
    window.take(2)
    clock.t += 3.0  # a slow answer
    window.finish(2)
    assert window.wait(1) == 10.0  # not 7 s: the server may have admitted them just now
    clock.t += 10.0
    assert window.wait(1) == 0.0


def test_refused_requests_do_not_count_and_the_limit_is_learned() -> None:
    clock = Clock()
    pacer = TenantPacer(clock, GraphLimits(outlook_requests=40, outlook_window_s=20.0))
    cost = RequestCost(mailbox="m")
    requests = pacer.mailbox("m").requests

    async def wave() -> None:
        for _ in range(20):  # Graph admits these...
            (await pacer.acquire([cost])).release()
        permit = await pacer.acquire([cost] * 20)  # ...and refuses a batch of 20 more
        permit.release(refused=[cost] * 20)

    asyncio.run(wave())
    assert requests.admitted_recently() == 20
    pacer.throttled(cost, 15.0, "Application is over its MailboxRequests limit.")
    # Graph surely took 20 in its window: the count drops to 20, not to 40 * 0.5 * 0.5.
    assert requests.capacity() == 20
    assert requests.wait(1) >= 15.0


def test_batches_shrink_to_a_lowered_mailbox_concurrency() -> None:
    clock = Clock()
    pacer = TenantPacer(clock, GraphLimits())
    client = GraphClient(SimpleNamespace(base_url="http://127.0.0.1:1/v1.0"), pacer)
    costs = [RequestCost(mailbox="m")] * 20
    assert client._batch_size(range(20), costs, 20) == 20
    pacer.mailbox("m").concurrency.throttled()
    pacer.mailbox("m").concurrency.throttled()
    assert client._batch_size(range(20), costs, 20) == 2
