"""The mailbox's overflow rule: bounded, backpressure with timeout, coalescing, close."""

from __future__ import annotations

import asyncio
from collections.abc import Hashable
from dataclasses import dataclass

import pytest

from mmsd.actors import ActorStopped, Envelope, Mailbox, MailboxFull, Message, Replaceable


@dataclass(frozen=True)
class Work(Message):
    n: int


@dataclass(frozen=True)
class Wake(Replaceable):
    user: str
    generation: int = 0

    def replace_key(self) -> Hashable:
        return self.user


def _numbers(box: Mailbox[Message]) -> list[Message]:
    return [env.message for env in box._items]


async def test_try_put_refuses_when_full() -> None:
    box: Mailbox[Message] = Mailbox(2)
    assert box.put_nowait(Envelope(Work(1)))
    assert box.put_nowait(Envelope(Work(2)))
    assert not box.put_nowait(Envelope(Work(3)))
    assert len(box) == 2


async def test_put_waits_for_space_then_proceeds_in_order() -> None:
    box: Mailbox[Message] = Mailbox(1)
    await box.put(Envelope(Work(1)))
    waiting = asyncio.create_task(box.put(Envelope(Work(2)), timeout=5))
    await asyncio.sleep(0)
    assert not waiting.done()
    first = await box.get()
    assert first is not None and first.message == Work(1)
    await waiting
    second = await box.get()
    assert second is not None and second.message == Work(2)


async def test_put_times_out_with_mailbox_full() -> None:
    box: Mailbox[Message] = Mailbox(1)
    await box.put(Envelope(Work(1)))
    with pytest.raises(MailboxFull):
        await box.put(Envelope(Work(2)), timeout=0.02)
    assert len(box) == 1
    assert not box._putters  # the timed-out waiter left no trace


async def test_replaceable_takes_the_pending_place_and_never_grows() -> None:
    box: Mailbox[Message] = Mailbox(3)
    box.put_nowait(Envelope(Wake("a", 1)))
    box.put_nowait(Envelope(Work(1)))
    box.put_nowait(Envelope(Wake("b", 1)))
    # Full, yet replacements are accepted and keep their position.
    assert box.put_nowait(Envelope(Wake("a", 2)))
    assert box.put_nowait(Envelope(Wake("a", 3)))
    await box.put(Envelope(Wake("b", 2)), timeout=0)
    assert _numbers(box) == [Wake("a", 3), Work(1), Wake("b", 2)]
    assert box.replaced_total == 3
    # A key not pending is an ordinary message: refused when full.
    assert not box.put_nowait(Envelope(Wake("c")))


async def test_replaced_asks_all_get_the_reply() -> None:
    loop = asyncio.get_running_loop()
    box: Mailbox[Message] = Mailbox(2)
    first: asyncio.Future[object] = loop.create_future()
    second: asyncio.Future[object] = loop.create_future()
    box.put_nowait(Envelope(Wake("a", 1), first))
    box.put_nowait(Envelope(Wake("a", 2), second))
    env = await box.get()
    assert env is not None and env.message == Wake("a", 2)
    env.resolve("done")
    assert (first.result(), second.result()) == ("done", "done")


async def test_a_delivered_replaceable_no_longer_absorbs_new_ones() -> None:
    box: Mailbox[Message] = Mailbox(2)
    box.put_nowait(Envelope(Wake("a", 1)))
    await box.get()
    box.put_nowait(Envelope(Wake("a", 2)))
    assert len(box) == 1 and box.replaced_total == 0


async def test_overflow_path_exceeds_bound_only_once_per_key() -> None:
    box: Mailbox[Message] = Mailbox(1)
    box.put_nowait(Envelope(Work(1)))
    for generation in range(10):
        for user in ("a", "b"):
            assert box.put_overflow(Envelope(Wake(user, generation)))
    assert _numbers(box) == [Work(1), Wake("a", 9), Wake("b", 9)]
    with pytest.raises(TypeError):
        box.put_overflow(Envelope(Work(2)))


async def test_close_keeps_pending_then_stops_the_reader() -> None:
    box: Mailbox[Message] = Mailbox(2)
    box.put_nowait(Envelope(Work(1)))
    assert box.close() == []
    with pytest.raises(ActorStopped):
        box.put_nowait(Envelope(Work(2)))
    env = await box.get()
    assert env is not None and env.message == Work(1)
    with pytest.raises(ActorStopped):
        await box.get()


async def test_close_with_drop_returns_pending_and_releases_waiters() -> None:
    box: Mailbox[Message] = Mailbox(1)
    box.put_nowait(Envelope(Work(1)))
    blocked = asyncio.create_task(box.put(Envelope(Work(2))))
    await asyncio.sleep(0)
    dropped = box.close(drop_pending=True)
    assert [env.message for env in dropped] == [Work(1)]
    with pytest.raises(ActorStopped):
        await blocked


async def test_get_returns_none_after_idle_timeout_and_wakes_on_put() -> None:
    box: Mailbox[Message] = Mailbox(1)
    assert await box.get(timeout=0.01) is None
    reader = asyncio.create_task(box.get(timeout=5))
    await asyncio.sleep(0)
    box.put_nowait(Envelope(Work(7)))
    env = await reader
    assert env is not None and env.message == Work(7)


def test_mailbox_must_be_bounded_by_at_least_one() -> None:
    with pytest.raises(ValueError):
        Mailbox(0)
