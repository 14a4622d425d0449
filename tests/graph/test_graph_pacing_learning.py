"""Scope-exact adaptation: each 429 lowers only the limit it names, to what Graph accepted.

Driven by a manual clock, plus one run against the simulator with a mailbox whose
real concurrency is half of mmsd's configuration while Graph runs four items of a
``$batch`` at a time.
"""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import httpx
import pytest
from graph_testkit import ManualClock, RecordingSleep

from mmsd.graph import BatchItem, GraphClient, GraphLimits, RequestEvent
from mmsd.graph.pacing import ConcurrencyLimit, RateWindow, RequestCost, TenantPacer

CONCURRENCY = "Application is over its MailboxConcurrency limit."
REQUESTS = "Application is over its MailboxRequests limit."
UPLOAD = "Application is over its MailboxUpload limit."
M = RequestCost(mailbox="m")


async def test_concurrency_429_learns_peak_minus_one_and_keeps_the_rate(
    clock: ManualClock, sleep: RecordingSleep
) -> None:
    pacer = TenantPacer(clock, GraphLimits(outlook_requests=40, outlook_window_s=20.0), sleep=sleep)
    first = await pacer.acquire([M])
    second = await pacer.acquire([M])
    third = await pacer.acquire([M])
    assert first.peak_in_flight("m") == 3  # it saw the two after it start
    assert third.peak_in_flight("m") == 3
    for permit in (first, second, third):
        permit.release()
    pacer.throttled(M, 1.0, CONCURRENCY, first.peak_in_flight("m"))
    mailbox = pacer.mailbox("m")
    assert mailbox.concurrency.limit() == 2  # Graph ran at most the 2 others
    assert mailbox.requests.factor() == 1.0 and mailbox.requests.capacity() == 40
    assert mailbox.requests.pause_left() == pytest.approx(1.0)  # Retry-After honoured
    # A refusal of a request sent before that lowering (same peak) lowers nothing more.
    pacer.throttled(M, 1.0, CONCURRENCY, 3)
    assert mailbox.concurrency.limit() == 2
    # Never below one, whatever the evidence.
    pacer.throttled(M, 1.0, CONCURRENCY, 1)
    assert mailbox.concurrency.limit() == 1


def test_concurrency_climbs_back_one_step_per_recovery_share(clock: ManualClock) -> None:
    limit = ConcurrencyLimit(clock, 4, recovery_s=600.0)
    limit.throttled(3)
    assert limit.limit() == 2
    clock.advance(149.0)
    assert limit.limit() == 2
    clock.advance(1.0)
    assert limit.limit() == 3  # one step per 600 / 4 s
    clock.advance(300.0)
    assert limit.limit() == 4


def test_request_window_429_learns_the_admitted_count_and_keeps_concurrency(
    clock: ManualClock,
) -> None:
    limits = GraphLimits(outlook_requests=40, outlook_window_s=20.0)
    pacer = TenantPacer(clock, limits)
    mailbox = pacer.mailbox("m")
    window = mailbox.requests
    window.take(3)  # three in flight when the refusal comes back
    for _ in range(17):
        window.take(1)
        window.finish(1)
    window.take(1)
    window.finish(1, admitted=0)  # the refused one
    pacer.throttled(M, 15.0, REQUESTS)
    assert window.capacity() == 17
    assert mailbox.concurrency.limit() == 4
    # The three sent before the refusal come back admitted: Graph took 20, so 20 it is.
    window.finish(3)
    assert window.capacity() == 20
    # Answers after the pause teach nothing more (they were paced at the learned count).
    clock.advance(15.0)
    window.take(1)
    window.finish(1)
    assert window.capacity() == 20


def test_a_learned_count_holds_then_climbs_back_slowly(clock: ManualClock) -> None:
    window = RateWindow(clock, 40, 20.0, GraphLimits(recovery_s=600.0))
    for _ in range(20):
        window.take(1)
        window.finish(1)
    window.throttled(20.0, admitted=window.admitted_recently())
    assert window.capacity() == 20
    clock.advance(20.0 + 599.0)  # the pause, then recovery_s of holding
    assert window.capacity() == 20
    clock.advance(151.0)  # then the factor climbs by 1.0 per recovery_s: 0.5 -> 0.75
    assert window.capacity() == 30
    clock.advance(150.0)
    assert window.capacity() == 40


def test_without_evidence_the_rate_halves(clock: ManualClock) -> None:
    window = RateWindow(clock, 40, 20.0, GraphLimits())
    window.throttled(2.0, admitted=0)
    assert window.capacity() == 20


def test_upload_429_lowers_only_the_upload_budget(clock: ManualClock) -> None:
    pacer = TenantPacer(clock, GraphLimits())
    pacer.throttled(M, 5.0, UPLOAD)
    mailbox = pacer.mailbox("m")
    assert mailbox.upload.factor() < 1.0 and mailbox.upload.pause_left() == 5.0
    assert mailbox.requests.factor() == 1.0 and mailbox.requests.pause_left() == 0.0
    assert mailbox.concurrency.limit() == 4


async def test_partial_batch_takes_what_the_window_has_room_for(
    clock: ManualClock, sleep: RecordingSleep
) -> None:
    pacer = TenantPacer(clock, GraphLimits(outlook_requests=20, outlook_window_s=20.0), sleep=sleep)
    mailbox = pacer.mailbox("m")
    mailbox.concurrency.confirm(4)
    for _ in range(6):
        (await pacer.acquire([M])).release()
    permit = await pacer.acquire([M] * 20, partial=True)
    assert permit.chosen == list(range(14))  # sent now, not after a whole window
    assert sleep.total == 0
    assert mailbox.concurrency.in_flight == 4
    permit.release()
    rest = await pacer.acquire([M] * 6, partial=True)
    assert rest.chosen == list(range(6))
    assert sleep.total == pytest.approx(20.0)  # the first six leave the window
    rest.release()


async def test_partial_batch_follows_the_learned_concurrency(
    clock: ManualClock, sleep: RecordingSleep
) -> None:
    pacer = TenantPacer(clock, GraphLimits(), sleep=sleep)
    concurrency = pacer.mailbox("m").concurrency
    # Not yet confirmed: a first batch carries only as many items as it holds slots.
    first = await pacer.acquire([M] * 20, partial=True)
    assert len(first.chosen) == 4
    first.release()
    first.answered()  # Graph ran the 4 without a concurrency 429
    assert concurrency.confirmed()
    full = await pacer.acquire([M] * 20, partial=True)
    assert len(full.chosen) == 20 and concurrency.in_flight == 4
    full.release()
    # Learned 2: Graph would run 4 of a batch at once, so a batch carries 2 items.
    concurrency.throttled(3)
    small = await pacer.acquire([M] * 20, partial=True)
    assert small.chosen == [0, 1] and concurrency.in_flight == 2
    small.release()
    assert concurrency.in_flight == 0


async def test_partial_batch_gives_back_slots_it_does_not_use(
    clock: ManualClock, sleep: RecordingSleep
) -> None:
    limits = GraphLimits(outlook_requests=2, outlook_window_s=20.0)
    pacer = TenantPacer(clock, limits, sleep=sleep)
    concurrency = pacer.mailbox("m").concurrency
    concurrency.confirm(4)
    (await pacer.acquire([M])).release()
    permit = await pacer.acquire([M] * 4, partial=True)
    assert permit.chosen == [0]  # the window has room for one
    assert concurrency.in_flight == 1  # the other three slots went back at once
    permit.release()
    assert concurrency.in_flight == 0


class Recorder:
    """A GraphObserver keeping every event."""

    def __init__(self) -> None:
        self.events: list[RequestEvent] = []

    def on_request(self, event: RequestEvent) -> None:
        self.events.append(event)


async def test_batch_against_a_mailbox_with_half_the_concurrency(tmp_path: Path) -> None:
    """Real concurrency 2, configured 4, Graph runs 4 of a batch at once: learned, few 429s."""
    server = pytest.importorskip("mmsd.sim.server")
    simulator = server.Simulator(
        server.SimConfig(
            users=4,
            meetings=4,
            seed=11,
            now=datetime(2026, 1, 5, 9, 0, tzinfo=UTC),
            latency_ms=5,
        )
    )
    async with simulator:
        control = simulator.graph_base_url.rsplit("/v1.0", 1)[0] + "/_sim"
        async with httpx.AsyncClient() as http:
            changed = await http.patch(control + "/limits", json={"outlook_concurrency": 2})
            changed.raise_for_status()
            listed = (await http.get(control + "/users")).json()["value"]
        user = next(u["id"] for u in listed if u["mailbox"] == "exchangeOnline")
        secret = tmp_path / "secret"
        secret.write_text(simulator.client_secret)
        config = {
            "tenant_id": simulator.tenant_id,
            "client_id": simulator.client_id,
            "client_secret_file": str(secret),
            "authority": simulator.authority,
            "ca_file": str(simulator.ca_file),
            "graph_base_url": simulator.graph_base_url,
        }
        recorder = Recorder()
        async with GraphClient.from_config(config, observer=recorder, seed=1) as client:
            event = None
            async for found in client.list_events(user, "isOrganizer eq true", ["id"], 5):
                event = found
                break
            assert event is not None
            items = [BatchItem("GET", f"/users/{user}/events/{event['id']}?$select=id")] * 20
            results = await client.batch(items)
            assert all(r.ok for r in results)
            mailbox = client.pacer.mailbox(user)
            assert mailbox.concurrency.limit() == 2
            assert mailbox.requests.factor() == 1.0  # the rate was never cut
        throttled = [e for e in recorder.events if e.throttled]
        # Old behaviour: a first batch of 20 drew 18 refusals. Now: 2 (batch of 4, learned
        # 3), then at most 1 (batch of 3, learned 2).
        assert 1 <= len(throttled) <= 3
