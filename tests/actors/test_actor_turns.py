"""Turn-based handling: order, one at a time, tell/try_tell/notify, ask with timeout."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Hashable
from dataclasses import dataclass

import pytest

from mmsd.actors import (
    Actor,
    ActorCrashed,
    ActorGroup,
    ActorSystem,
    AskTimeout,
    MailboxFull,
    Message,
    Rejected,
    Replaceable,
    Request,
    ShutdownPlan,
    UnhandledMessage,
    handles,
)

QUICK = ShutdownPlan(stop_intake=0.2, drain=0.3, cancel=0.2, final=0.2, stop_timeout=1.0)


@dataclass(frozen=True)
class Add(Message):
    n: int


@dataclass(frozen=True)
class Total(Request[int]):
    pass


@dataclass(frozen=True)
class Validate(Request[str]):
    value: int


@dataclass(frozen=True)
class Hang(Request[None]):
    pass


@dataclass(frozen=True)
class Boom(Request[None]):
    pass


@dataclass(frozen=True)
class Poke(Replaceable):
    source: str

    def replace_key(self) -> Hashable:
        return self.source


@dataclass(frozen=True)
class Unknown(Message):
    pass


class Counter(Actor[Message]):
    """Records handled messages and checks that turns never overlap."""

    def __init__(self, gate: asyncio.Event | None = None) -> None:
        self.seen: list[int] = []
        self.pokes: list[str] = []
        self.active = 0
        self.max_active = 0
        self.gate = gate
        self.starts = 0
        self.added = asyncio.Event()
        self.entered = asyncio.Event()

    async def on_start(self) -> None:
        self.starts += 1

    @handles(Add)
    async def on_add(self, message: Add) -> None:
        self.active += 1
        self.entered.set()
        self.max_active = max(self.max_active, self.active)
        if self.gate is not None:
            await self.gate.wait()
        await asyncio.sleep(0)
        self.seen.append(message.n)
        self.active -= 1
        self.added.set()

    @handles(Total)
    async def on_total(self, message: Total) -> int:
        return sum(self.seen)

    @handles(Validate)
    async def on_validate(self, message: Validate) -> str:
        if message.value < 0:
            raise Rejected("badValue", "negative")
        return "ok"

    @handles(Hang)
    async def on_hang(self, message: Hang) -> None:
        await asyncio.Event().wait()

    @handles(Boom)
    async def on_boom(self, message: Boom) -> None:
        raise RuntimeError("boom")

    @handles(Poke)
    async def on_poke(self, message: Poke) -> None:
        self.pokes.append(message.source)


@pytest.fixture
async def system() -> AsyncIterator[ActorSystem]:
    system = ActorSystem(plan=QUICK)
    yield system
    await system.shutdown()


def counters(system: ActorSystem, size: int = 8) -> ActorGroup[str, Message]:
    group: ActorGroup[str, Message] = system.group("counter", mailbox_size=size)
    return group


async def test_messages_are_handled_in_order_one_at_a_time(system: ActorSystem) -> None:
    made: list[Counter] = []

    def factory() -> Counter:
        made.append(Counter())
        return made[-1]

    ref = await counters(system, size=64).get_or_spawn("c", factory)
    for n in range(50):
        await ref.tell(Add(n))
    assert await ref.ask(Total(), timeout=5) == sum(range(50))
    assert made[0].seen == list(range(50))
    assert made[0].max_active == 1


async def test_try_tell_refuses_and_tell_times_out_when_full(system: ActorSystem) -> None:
    gate = asyncio.Event()
    made: list[Counter] = []

    def factory() -> Counter:
        made.append(Counter(gate))
        return made[-1]

    ref = await counters(system, size=2).get_or_spawn("c", factory)
    await ref.tell(Add(1))
    await made[0].entered.wait()  # taken into the (blocked) turn
    assert ref.try_tell(Add(2)) and ref.try_tell(Add(3))
    assert not ref.try_tell(Add(4))
    with pytest.raises(MailboxFull):
        await ref.tell(Add(4), timeout=0.02)
    waiting = asyncio.create_task(ref.tell(Add(5), timeout=5))
    await asyncio.sleep(0.01)
    assert not waiting.done()  # backpressure: waits while full
    gate.set()
    await waiting
    assert await ref.ask(Total(), timeout=5) == 1 + 2 + 3 + 5


async def test_pokes_coalesce_and_notify_never_blocks(system: ActorSystem) -> None:
    gate = asyncio.Event()
    made: list[Counter] = []

    def factory() -> Counter:
        made.append(Counter(gate))
        return made[-1]

    ref = await counters(system, size=1).get_or_spawn("c", factory)
    await ref.tell(Add(1))
    await made[0].entered.wait()
    assert ref.try_tell(Add(2))  # now full
    for _ in range(100):
        assert ref.notify(Poke("child-a"))
        assert ref.notify(Poke("child-b"))
    assert ref.depth == 3  # one Add + one poke per distinct child
    with pytest.raises(TypeError):
        ref.notify(Add(3))
    gate.set()
    await ref.ask(Total(), timeout=5)
    assert made[0].pokes == ["child-a", "child-b"]


async def test_ask_returns_the_handlers_value_and_times_out(system: ActorSystem) -> None:
    ref = await counters(system).get_or_spawn("c", Counter)
    assert await ref.ask(Validate(1), timeout=5) == "ok"
    with pytest.raises(AskTimeout):
        await ref.ask(Hang(), timeout=0.02)


async def test_rejection_reaches_the_asker_without_a_restart(system: ActorSystem) -> None:
    made: list[Counter] = []

    def factory() -> Counter:
        made.append(Counter())
        return made[-1]

    group = counters(system)
    ref = await group.get_or_spawn("c", factory)
    await ref.tell(Add(4))
    with pytest.raises(Rejected) as caught:
        await ref.ask(Validate(-1), timeout=5)
    assert caught.value.code == "badValue"
    with pytest.raises(UnhandledMessage):
        await ref.ask(Unknown(), timeout=5)  # type: ignore[arg-type]
    await ref.tell(Unknown())  # told: logged, not a crash
    assert await ref.ask(Total(), timeout=5) == 4  # state kept
    assert len(made) == 1 and made[0].starts == 1
    assert group.restarts_total == 0


async def test_a_crashing_ask_tells_the_asker(system: ActorSystem) -> None:
    ref = await counters(system).get_or_spawn("c", Counter)
    with pytest.raises(ActorCrashed) as caught:
        await ref.ask(Boom(), timeout=5)
    assert isinstance(caught.value.__cause__, RuntimeError)


async def test_tell_later_delivers_after_the_delay(system: ActorSystem) -> None:
    made: list[Counter] = []

    def factory() -> Counter:
        made.append(Counter())
        return made[-1]

    ref = await counters(system).get_or_spawn("c", factory)
    made[0].tell_later(0.01, Add(9))
    assert await ref.ask(Total(), timeout=5) == 0
    await asyncio.wait_for(made[0].added.wait(), 5)
    assert await ref.ask(Total(), timeout=5) == 9
