"""The migration hot path: batched reads, one lookup per join URL, and gone meetings.

* Reads that come in numbers (``/instances``, exceptions, online-meeting lookups)
  go in ``$batch`` requests; each distinct join URL is looked up once per migration.
* A meeting that failed in an earlier attempt and is no longer among the user's
  future meetings is recorded ``skipped: meetingGone`` and the user can succeed.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from datetime import timedelta
from urllib.parse import unquote

import pytest
from engine_checks import patch_delta, trigger, updated_events
from engine_testkit import NOW, TENANT, Harness

from mmsd.clock import SimulatedClock
from mmsd.domain.model import MeetingOutcome, MigrationState
from mmsd.engine.migrate import MEETING_GONE, _TeamsLookups
from mmsd.graph import BatchItem, BatchResult, GraphError, RequestEvent
from mmsd.sim.server import SimConfig


class _Requests:
    """A GraphObserver that keeps every request event."""

    def __init__(self) -> None:
        self.events: list[RequestEvent] = []

    def on_request(self, event: RequestEvent) -> None:
        self.events.append(event)


# ---------------------------------------------------------------- lookups (unit)


class _FakeBatchClient:
    """Answers online-meeting lookups from a table; records every ``batch`` call."""

    def __init__(self, failing: frozenset[str] = frozenset()) -> None:
        self.calls: list[list[str]] = []
        self.failing = failing

    async def batch(self, items: Sequence[BatchItem]) -> list[BatchResult]:
        urls = [item.url for item in items]
        self.calls.append(urls)
        results = []
        for item in items:
            if any(f"meeting{n}'" in item.url for n in self.failing):
                error = GraphError(500, "InternalServerError", "boom", operation="lookup")
                results.append(BatchResult(item, 500, {}, None, error))
            else:
                body = {"value": [{"joinWebUrl": item.url}]}
                results.append(BatchResult(item, 200, {}, body))
        return results


def _url(n: int) -> str:
    return f"https://teams.microsoft.com/l/meetup-join/meeting{n}"


async def test_lookups_go_in_groups_of_20_and_each_url_once() -> None:
    fake = _FakeBatchClient(failing=frozenset({"7"}))
    lookups = _TeamsLookups(fake, "user-1")  # type: ignore[arg-type]
    first = [_url(n % 25) for n in range(50)]  # 25 distinct URLs, each twice
    lookups.order(first)
    lookups.prefetch(first[:20])  # the first chunk: the first group only
    assert await lookups.get(_url(0)) == {"joinWebUrl": fake.calls[0][0]}
    assert [len(c) for c in fake.calls] == [20]
    lookups.order([_url(3), _url(30), _url(31)])  # later: one new group of the 2 new URLs
    for n in [*range(25), 30, 31]:
        if n == 7:
            with pytest.raises(GraphError):
                await lookups.get(_url(n))
        else:
            found = await lookups.get(_url(n))
            assert found is not None and "meeting" in found["joinWebUrl"]
    assert [len(c) for c in fake.calls] == [20, 5, 2]
    looked_up = Counter(url for call in fake.calls for url in call)
    assert set(looked_up.values()) == {1}, "a join URL was looked up twice"
    assert await lookups.get(_url(99)) is not None  # a URL nobody queued: looked up alone
    assert [len(c) for c in fake.calls] == [20, 5, 2, 1]
    await lookups.aclose()


# ---------------------------------------------------------------- batched reads (simulator)


@pytest.mark.parametrize(
    "sim_config", [SimConfig(users=14, meetings=24, seed=11, now=NOW, latency_ms=2)]
)
async def test_reads_are_batched_and_each_join_url_looked_up_once(harness: Harness) -> None:
    h = harness
    users = [u["id"] for u in await h.users("ordinary")][:3]
    requests = _Requests()
    client = h.client(observer=requests)
    real_batch = client.batch
    lookups: list[str] = []

    async def batch(items: Sequence[BatchItem]) -> list[BatchResult]:
        lookups.extend(unquote(i.url) for i in items if i.operation == "find_online_meeting")
        return await real_batch(items)

    client.batch = batch  # type: ignore[method-assign]
    before = await h.counters()
    engine = await h.start(client=client)
    try:
        for user in users:
            await engine.submit_trigger(
                TENANT, trigger(h, {"type": "userMovedToOnline", "identity": user})
            )
        for user in users:
            record = await h.wait_state(user, MigrationState.SUCCEEDED, MigrationState.FAILED)
            assert record.state is MigrationState.SUCCEEDED, record.last_message
        after = await h.counters()
    finally:
        await engine.shutdown()
        h.engine = None
        await client.aclose()
    updated: set[str] = set()
    for user in users:
        updated |= await updated_events(h, user)
    assert set(patch_delta(before, after)) == updated
    alone = Counter(e.operation for e in requests.events if not e.batched)
    batched = Counter(e.operation for e in requests.events if e.batched)
    # Every read and write goes in $batch requests, the users' reads included (one user
    # lookup per trigger decision and per attempt, one listing page per attempt).
    assert set(alone) == {"batch"}, alone
    assert batched["list_events"] >= len(users)
    assert batched["patch_event"] == len(updated)
    assert batched["list_instances"] > 0
    assert batched["find_online_meeting"] > 0
    assert batched["get_user"] <= 2 * len(users)  # the trigger's decision and the attempt
    assert sum(batched.values()) >= 3 * alone["batch"]
    # Each distinct Teams join URL of the updated meetings is looked up once.
    assert h.store is not None
    teams_urls = {
        t.old_join_url
        for user in users
        for t in await h.store.history(TENANT, user)
        if t.outcome is MeetingOutcome.UPDATED
        and t.old_join_url
        and "teams.microsoft.com" in t.old_join_url
    }
    assert len(lookups) == batched["find_online_meeting"]
    assert all("$select=id,joinWebUrl,audioConferencing" in lookup for lookup in lookups)
    assert len(set(lookups)) == len(lookups), "a join URL was looked up twice"
    assert all(any(f"'{url}'" in lookup for lookup in lookups) for url in teams_urls)


# ---------------------------------------------------------------- gone meetings


async def test_a_failed_meeting_that_is_gone_later_is_skipped_and_the_user_succeeds(
    harness: Harness,
) -> None:
    h = harness
    user = (await h.users("ordinary"))[0]["id"]
    stored = [e["data"] for e in (await h.get(f"/events/{user}"))["value"]]
    singles = {d["id"] for d in stored if d.get("type") == "singleInstance"}
    client = h.client()
    real_batch = client.batch
    refused: list[str] = []
    clock = h.sim.clock
    assert isinstance(clock, SimulatedClock)

    async def refuse_then_move_into_the_past(items: Sequence[BatchItem]) -> list[BatchResult]:
        """The first PATCH of a single meeting fails (500) after its organizer moved it."""
        target = next(
            (
                i
                for i in items
                if i.method == "PATCH" and unquote(i.url).rsplit("/", 1)[-1] in singles
            ),
            None,
        )
        if refused or target is None:
            return await real_batch(items)
        event_id = unquote(target.url).rsplit("/", 1)[-1]
        refused.append(event_id)
        # Meanwhile the organizer moved the meeting to yesterday: it is over.
        start = clock.now() - timedelta(days=1)
        when = {
            "start": {"dateTime": start.strftime("%Y-%m-%dT%H:%M:%S"), "timeZone": "UTC"},
            "end": {
                "dateTime": (start + timedelta(hours=1)).strftime("%Y-%m-%dT%H:%M:%S"),
                "timeZone": "UTC",
            },
        }
        await client.patch_event(user, event_id, when)
        rest = [i for i in items if i is not target]
        answers = iter(await real_batch(rest) if rest else [])
        boom = GraphError(500, "InternalServerError", "boom", operation="patch_event")
        return [
            BatchResult(i, 500, {}, None, boom) if i is target else next(answers) for i in items
        ]

    client.batch = refuse_then_move_into_the_past  # type: ignore[method-assign]
    before = await h.counters()
    engine = await h.start(client=client, patch_batch_size=1)
    try:
        await engine.submit_trigger(
            TENANT, trigger(h, {"type": "userMovedToOnline", "identity": user})
        )
        record = await h.wait_state(user, MigrationState.SUCCEEDED, MigrationState.FAILED)
    finally:
        await engine.shutdown()
        h.engine = None
        await client.aclose()
    (gone,) = refused
    assert record.state is MigrationState.SUCCEEDED, record.last_message
    assert record.retry_count == 1  # the first attempt failed the meeting, the second let it go
    assert record.failed_meeting == 0
    assert h.store is not None
    history = {t.event_id: t for t in await h.store.history(TENANT, user)}
    assert history[gone].outcome is MeetingOutcome.SKIPPED
    assert history[gone].reason == MEETING_GONE
    assert ("meeting_outcome", (TENANT, "skipped", MEETING_GONE)) in h.observer.calls
    # Only the organizer's own move touched it; mmsd never PATCHed it.
    assert patch_delta(before, await h.counters()).get(gone) == 1
    assert record.total_meeting == record.succeeded_meeting + record.skipped_meeting - 1
