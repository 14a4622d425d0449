"""BatchLane: parts of many callers share ``$batch`` requests; each gets exactly its answers.

The fake ``send`` is the HTTP boundary: it records each encoded ``$batch`` body and answers
by echoing every item's id with status 200 and a body naming the item's url.
"""

from __future__ import annotations

import asyncio
import json
from typing import Any

import httpx
import pytest

from mmsd.graph.batch import BatchItem, encode_body
from mmsd.graph.lane import BatchLane, Entry, PartAnswer, SentBatch


class FakeSend:
    """Records every ``$batch`` body and answers it; can block, fail or drop items."""

    def __init__(self) -> None:
        self.requests: list[dict[str, Any]] = []
        self.attempts: list[int] = []
        self.gate: asyncio.Event | None = None  # when set: each send waits for it
        self.entered = asyncio.Event()  # set when a send starts
        self.error: Exception | None = None
        self.status = 200
        self.content: bytes | None = None  # overrides the echoed body
        self.drop: set[str] = set()  # merged ids left out of the answer

    async def __call__(self, body: bytes, attempt: int) -> SentBatch:
        self.requests.append(json.loads(body))
        self.attempts.append(attempt)
        self.entered.set()
        if self.gate is not None:
            await self.gate.wait()
        if self.error is not None:
            raise self.error
        if self.content is not None:
            content = self.content
        else:
            answers = [
                {"id": r["id"], "status": 200, "headers": {}, "body": {"url": r["url"]}}
                for r in self.requests[-1]["requests"]
                if r["id"] not in self.drop
            ]
            content = json.dumps({"responses": answers}).encode()
        return SentBatch(self.status, {"content-type": "application/json"}, content)

    def urls(self, n: int) -> list[str]:
        """The item urls of the ``n``-th request, in order."""
        return [r["url"] for r in self.requests[n]["requests"]]


def part(tag: str, count: int, *, patch: bool = False) -> list[Entry]:
    """``count`` entries with ids "1".."count" and urls naming ``tag``."""
    entries: list[Entry] = []
    for n in range(1, count + 1):
        if patch:
            item = BatchItem("PATCH", f"/users/{tag}/events/{n}", body={"n": n, "tag": tag})
        else:
            item = BatchItem("GET", f"/users/{tag}/events/{n}")
        entries.append((str(n), item, encode_body(item)))
    return entries


def own_urls(answer: PartAnswer) -> dict[str, str]:
    """The part's answers as its own id -> the url the fake echoed."""
    assert answer.answers is not None
    return {k: v.body["url"] for k, v in answer.answers.items()}


async def test_same_turn_parts_leave_in_one_request_with_own_ids() -> None:
    fake = FakeSend()
    lane = BatchLane(fake)
    a, b, c = await asyncio.gather(
        lane.send(part("a", 2)), lane.send(part("b", 3, patch=True)), lane.send(part("c", 1))
    )

    assert lane.requests_sent == 1 and lane.parts_sent == 3
    assert len(fake.requests) == 1
    sent = fake.requests[0]["requests"]
    assert [r["id"] for r in sent] == [str(n) for n in range(6)]  # remapped, unique
    assert fake.urls(0) == [
        "/users/a/events/1",
        "/users/a/events/2",
        "/users/b/events/1",
        "/users/b/events/2",
        "/users/b/events/3",
        "/users/c/events/1",
    ]
    assert sent[2]["method"] == "PATCH" and sent[2]["body"] == {"n": 1, "tag": "b"}
    assert sent[2]["headers"] == {"Content-Type": "application/json"}

    assert own_urls(a) == {"1": "/users/a/events/1", "2": "/users/a/events/2"}
    assert own_urls(b) == {
        "1": "/users/b/events/1",
        "2": "/users/b/events/2",
        "3": "/users/b/events/3",
    }
    assert own_urls(c) == {"1": "/users/c/events/1"}
    for answer in (a, b, c):
        assert answer.status == 200 and answer.error is None
        assert answer.headers["content-type"] == "application/json"
        assert answer.latency_s >= 0


async def test_attempt_sent_is_the_highest_of_the_merged_parts() -> None:
    fake = FakeSend()
    lane = BatchLane(fake)
    await asyncio.gather(lane.send(part("a", 1), 1), lane.send(part("b", 1), 3))
    assert fake.attempts == [3]


async def test_no_request_exceeds_max_items_and_parts_are_never_split() -> None:
    fake = FakeSend()
    lane = BatchLane(fake, max_items=20)
    a, b = await asyncio.gather(lane.send(part("a", 15)), lane.send(part("b", 10)))

    assert lane.requests_sent == 2 and lane.parts_sent == 2
    assert [len(r["requests"]) for r in fake.requests] == [15, 10]
    assert all(u.startswith("/users/a/") for u in fake.urls(0))
    assert all(u.startswith("/users/b/") for u in fake.urls(1))
    assert len(own_urls(a)) == 15 and len(own_urls(b)) == 10


async def test_fitting_parts_fill_a_request_in_arrival_order() -> None:
    fake = FakeSend()
    lane = BatchLane(fake, max_items=5)
    sizes = [2, 3, 4, 1, 5]
    answers = await asyncio.gather(*(lane.send(part(f"p{n}", s)) for n, s in enumerate(sizes)))

    per_request = [len(r["requests"]) for r in fake.requests]
    assert per_request == [5, 5, 5]  # [2+3], [4+1], [5]
    assert all(size <= 5 for size in per_request)
    assert [len(own_urls(a)) for a in answers] == sizes
    assert lane.requests_sent == 3 and lane.parts_sent == 5


async def test_queued_parts_leave_merged_in_the_next_request() -> None:
    fake = FakeSend()
    fake.gate = asyncio.Event()
    lane = BatchLane(fake, max_in_flight=1)
    first = asyncio.create_task(lane.send(part("first", 1)))
    await asyncio.wait_for(fake.entered.wait(), 5.0)

    queued = [asyncio.create_task(lane.send(part(t, 2))) for t in ("q1", "q2", "q3")]
    await asyncio.sleep(0)  # let the three submit
    await asyncio.sleep(0)  # and their kick run
    assert lane.queued == 3
    assert lane.requests_sent == 1

    fake.gate.set()
    answers = await asyncio.gather(first, *queued)

    assert lane.requests_sent == 2 and lane.parts_sent == 4
    assert fake.urls(1) == [f"/users/{t}/events/{n}" for t in ("q1", "q2", "q3") for n in (1, 2)]
    assert own_urls(answers[2]) == {"1": "/users/q2/events/1", "2": "/users/q2/events/2"}
    assert lane.queued == 0


async def test_transport_error_reaches_every_part_of_the_request() -> None:
    fake = FakeSend()
    error = httpx.ReadError("connection lost")
    fake.error = error
    lane = BatchLane(fake)
    a, b = await asyncio.gather(lane.send(part("a", 1)), lane.send(part("b", 2, patch=True)))

    for answer in (a, b):
        assert answer.error is error
        assert answer.status == 0
        assert answer.answers is None
        assert answer.content == b""
    assert lane.requests_sent == 1

    fake.error = None  # the lane keeps working after a failed request
    c = await lane.send(part("c", 1))
    assert own_urls(c) == {"1": "/users/c/events/1"}


async def test_non_200_outer_answer_reaches_every_part_without_answers() -> None:
    fake = FakeSend()
    fake.status = 429
    fake.content = b'{"error":{"code":"TooManyRequests"}}'
    lane = BatchLane(fake)
    a, b = await asyncio.gather(lane.send(part("a", 1)), lane.send(part("b", 1)))
    for answer in (a, b):
        assert answer.status == 429
        assert answer.answers is None
        assert answer.error is None
        assert answer.content == fake.content


@pytest.mark.parametrize("content", [b"<html>gateway</html>", b'{"value": []}', b""])
async def test_unreadable_200_body_gives_no_answers(content: bytes) -> None:
    fake = FakeSend()
    fake.content = content
    lane = BatchLane(fake)
    answer = await lane.send(part("a", 2))
    assert answer.status == 200
    assert answer.answers is None
    assert answer.error is None
    assert answer.content == content


async def test_missing_item_answer_is_absent_from_its_part() -> None:
    fake = FakeSend()
    fake.drop = {"1"}  # merged id 1: part a's second item
    lane = BatchLane(fake)
    a, b = await asyncio.gather(lane.send(part("a", 2)), lane.send(part("b", 2)))
    assert own_urls(a) == {"1": "/users/a/events/1"}
    assert own_urls(b) == {"1": "/users/b/events/1", "2": "/users/b/events/2"}


async def test_unknown_ids_in_the_answer_are_ignored() -> None:
    fake = FakeSend()
    fake.content = json.dumps(
        {
            "responses": [
                {"id": "0", "status": 200, "body": {"url": "/users/a/events/1"}},
                {"id": "7", "status": 200, "body": None},
                {"id": "x", "status": 200, "body": None},
            ]
        }
    ).encode()
    lane = BatchLane(fake)
    answer = await lane.send(part("a", 1))
    assert own_urls(answer) == {"1": "/users/a/events/1"}


async def test_caller_cancelled_while_queued_is_not_sent() -> None:
    fake = FakeSend()
    fake.gate = asyncio.Event()
    lane = BatchLane(fake, max_in_flight=1)
    first = asyncio.create_task(lane.send(part("first", 1)))
    await asyncio.wait_for(fake.entered.wait(), 5.0)
    gone = asyncio.create_task(lane.send(part("gone", 2)))
    kept = asyncio.create_task(lane.send(part("kept", 1)))
    await asyncio.sleep(0)
    gone.cancel()
    with pytest.raises(asyncio.CancelledError):
        await gone

    fake.gate.set()
    await first
    answer = await kept
    assert fake.urls(1) == ["/users/kept/events/1"]
    assert own_urls(answer) == {"1": "/users/kept/events/1"}
    assert lane.requests_sent == 2 and lane.parts_sent == 2


async def test_all_parts_cancelled_before_leaving_sends_nothing() -> None:
    fake = FakeSend()
    lane = BatchLane(fake)
    task = asyncio.create_task(lane.send(part("a", 1)))
    await asyncio.sleep(0)  # submitted; the kick is scheduled for the next turn
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    await asyncio.sleep(0)
    assert fake.requests == []
    assert lane.requests_sent == 0
    assert lane.queued == 0


async def test_part_size_is_validated() -> None:
    lane = BatchLane(FakeSend(), max_items=3)
    with pytest.raises(ValueError):
        await lane.send([])
    with pytest.raises(ValueError):
        await lane.send(part("a", 4))
    assert lane.queued == 0 and lane.requests_sent == 0


def test_lane_limits_are_validated() -> None:
    with pytest.raises(ValueError):
        BatchLane(FakeSend(), max_items=0)
    with pytest.raises(ValueError):
        BatchLane(FakeSend(), max_in_flight=0)
    with pytest.raises(ValueError):
        BatchLane(FakeSend(), max_items=21)  # Graph's $batch holds 20


async def test_an_unexpected_send_error_reaches_every_part_and_the_lane_goes_on() -> None:
    fake = FakeSend()
    fake.error = RuntimeError("encoder broke")
    lane = BatchLane(fake)
    outcomes = await asyncio.gather(
        lane.send(part("a", 1)), lane.send(part("b", 1)), return_exceptions=True
    )
    assert [type(o) for o in outcomes] == [RuntimeError, RuntimeError]
    assert not lane._tasks  # the lane's task ended without an unretrieved exception
    fake.error = None
    again = await lane.send(part("c", 1))
    assert own_urls(again) == {"1": "/users/c/events/1"}


async def test_a_closed_lane_refuses_parts() -> None:
    lane = BatchLane(FakeSend())
    await lane.aclose()
    with pytest.raises(RuntimeError):
        await lane.send(part("late", 1))


async def test_aclose_cancels_queued_and_in_flight_parts() -> None:
    fake = FakeSend()
    fake.gate = asyncio.Event()
    lane = BatchLane(fake, max_in_flight=1)
    flying = asyncio.create_task(lane.send(part("flying", 1)))
    await asyncio.wait_for(fake.entered.wait(), 5.0)
    queued = asyncio.create_task(lane.send(part("queued", 1)))
    await asyncio.sleep(0)
    await asyncio.sleep(0)
    assert lane.queued == 1

    await asyncio.wait_for(lane.aclose(), 5.0)

    assert lane.queued == 0
    for task in (flying, queued):
        with pytest.raises(asyncio.CancelledError):
            await task
    assert len(fake.requests) == 1  # the queued part never left


async def test_with_enough_in_flight_a_part_waits_for_others_to_fill_its_batch() -> None:
    fake = FakeSend()
    fake.gate = asyncio.Event()
    lane = BatchLane(fake, max_items=5, max_in_flight=4, eager_below=2)
    first = asyncio.create_task(lane.send(part("a", 1)))
    await asyncio.wait_for(fake.entered.wait(), 5.0)
    fake.entered.clear()
    second = asyncio.create_task(lane.send(part("b", 1)))  # one in flight: leaves at once
    await asyncio.wait_for(fake.entered.wait(), 5.0)
    fake.entered.clear()
    waiting = [asyncio.create_task(lane.send(part(t, 2))) for t in ("c", "d")]
    for _ in range(5):
        await asyncio.sleep(0)
    assert len(fake.requests) == 2 and lane.queued == 2  # two in flight: c and d wait
    filler = asyncio.create_task(lane.send(part("e", 1)))  # 2 + 2 + 1 = 5: a full batch
    await asyncio.wait_for(fake.entered.wait(), 5.0)
    assert sorted({u.split("/")[2] for u in fake.urls(2)}) == ["c", "d", "e"]
    late = asyncio.create_task(lane.send(part("f", 1)))
    for _ in range(5):
        await asyncio.sleep(0)
    assert len(fake.requests) == 3 and lane.queued == 1  # three in flight, f not full
    fake.gate.set()  # the flights end: f leaves on its own
    await asyncio.gather(first, second, *waiting, filler, late)
    assert fake.urls(3) == ["/users/f/events/1"]


async def test_a_part_too_large_for_the_room_left_waits_while_smaller_ones_fill_it() -> None:
    fake = FakeSend()
    lane = BatchLane(fake, max_items=20)
    await asyncio.gather(
        lane.send(part("big", 15)), lane.send(part("mid", 10)), lane.send(part("small", 5))
    )
    tags = [sorted({u.split("/")[2] for u in fake.urls(n)}) for n in range(len(fake.requests))]
    assert tags == [["big", "small"], ["mid"]]  # first fit, the oldest part first
