"""Groups: spawn on demand once per key, started-after-on_start, cap, passivation, stats."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from dataclasses import dataclass

import pytest

from mmsd.actors import (
    Actor,
    ActorGroup,
    ActorState,
    ActorStopped,
    ActorSystem,
    CapacityReached,
    ChildExit,
    Message,
    Request,
    ShutdownPlan,
    StopReason,
    handles,
)

QUICK = ShutdownPlan(stop_intake=0.2, drain=0.3, cancel=0.2, final=0.2, stop_timeout=1.0)


@dataclass(frozen=True)
class Ping(Request[str]):
    pass


@dataclass(frozen=True)
class Block(Message):
    pass


class Journal:
    """What happened to the actors of a test, in order."""

    def __init__(self) -> None:
        self.events: list[tuple[str, object]] = []
        self.release_start = asyncio.Event()
        self.release_start.set()
        self.release_stop = asyncio.Event()
        self.release_stop.set()
        self.unblock = asyncio.Event()
        self.blocked = asyncio.Event()


class Probe(Actor[Message]):
    """Logs its lifecycle; on_start/on_stop can be held open by the journal."""

    def __init__(self, journal: Journal) -> None:
        self.journal = journal
        self.journal.events.append(("made", None))

    async def on_start(self) -> None:
        await self.journal.release_start.wait()
        self.journal.events.append(("start", self.key))

    async def on_stop(self, reason: StopReason) -> None:
        await self.journal.release_stop.wait()
        self.journal.events.append(("stop", reason))

    @handles(Ping)
    async def on_ping(self, message: Ping) -> str:
        return f"pong {self.key}"

    @handles(Block)
    async def on_block(self, message: Block) -> None:
        self.journal.blocked.set()
        await self.journal.unblock.wait()


@pytest.fixture
async def system() -> AsyncIterator[ActorSystem]:
    system = ActorSystem(plan=QUICK)
    yield system
    await system.shutdown()


def users(
    system: ActorSystem, *, cap: int | None = None, idle: float | None = None
) -> ActorGroup[str, Message]:
    group: ActorGroup[str, Message] = system.group(
        "users/t1", kind="user", mailbox_size=4, cap=cap, idle_timeout=idle
    )
    return group


async def test_concurrent_get_or_spawn_makes_one_actor(system: ActorSystem) -> None:
    journal = Journal()
    group = users(system)
    refs = await asyncio.gather(
        *(group.get_or_spawn("u1", lambda: Probe(journal)) for _ in range(5))
    )
    assert len({id(ref) for ref in refs}) == 1
    assert journal.events == [("made", None), ("start", "u1")]
    assert await refs[0].ask(Ping(), timeout=5) == "pong u1"


async def test_spawn_returns_only_once_on_start_returned(system: ActorSystem) -> None:
    journal = Journal()
    journal.release_start.clear()
    spawning = asyncio.create_task(users(system).get_or_spawn("u1", lambda: Probe(journal)))
    for _ in range(5):
        await asyncio.sleep(0)
    assert not spawning.done()
    journal.release_start.set()
    ref = await spawning
    assert ref.state is ActorState.RUNNING
    assert ("start", "u1") in journal.events


async def test_cap_refuses_and_a_stop_frees_the_slot(system: ActorSystem) -> None:
    journal = Journal()
    exits: list[ChildExit] = []
    exited = asyncio.Event()

    def on_exit(event: ChildExit) -> None:
        exits.append(event)
        exited.set()

    group = users(system, cap=2)
    group.on_exit = on_exit
    await group.get_or_spawn("u1", lambda: Probe(journal))
    await group.get_or_spawn("u2", lambda: Probe(journal))
    assert group.free_slots == 0
    with pytest.raises(CapacityReached):
        await group.get_or_spawn("u3", lambda: Probe(journal))
    assert (
        await (await group.get_or_spawn("u1", lambda: Probe(journal))).ask(Ping(), timeout=5)
        == "pong u1"
    )  # an existing key is not a new spawn
    assert group.stop("u1")
    await exited.wait()
    assert [(e.key, e.reason) for e in exits] == [("u1", StopReason.STOPPED)]
    ref = await group.get_or_spawn("u3", lambda: Probe(journal))
    assert ref.key == "u3" and len(group) == 2


async def test_stopping_actor_still_counts_and_is_not_doubled(system: ActorSystem) -> None:
    journal = Journal()
    group = users(system, cap=1)
    first = await group.get_or_spawn("u1", lambda: Probe(journal))
    journal.release_stop.clear()
    group.stop("u1")
    await asyncio.sleep(0)
    assert "u1" not in group and len(group) == 1
    with pytest.raises(CapacityReached):
        await group.get_or_spawn("u2", lambda: Probe(journal))
    respawn = asyncio.create_task(group.get_or_spawn("u1", lambda: Probe(journal)))
    for _ in range(5):
        await asyncio.sleep(0)
    assert not respawn.done()  # waits for the old activation's on_stop: one at a time
    journal.release_stop.set()
    second = await respawn
    assert second is not first
    starts_and_stops = [e for e in journal.events if e[0] != "made"]
    assert starts_and_stops == [("start", "u1"), ("stop", StopReason.STOPPED), ("start", "u1")]


async def test_idle_actor_passivates_and_comes_back_on_demand(system: ActorSystem) -> None:
    journal = Journal()
    exits: list[ChildExit] = []
    exited = asyncio.Event()

    def on_exit(event: ChildExit) -> None:
        exits.append(event)
        exited.set()

    group = users(system, idle=0.02)
    group.on_exit = on_exit
    old = await group.get_or_spawn("u1", lambda: Probe(journal))
    await asyncio.wait_for(exited.wait(), 5)
    assert exits == [ChildExit("user", "u1", StopReason.PASSIVATED)]
    assert ("stop", StopReason.PASSIVATED) in journal.events
    assert len(group) == 0 and system.stats().kinds["user"].passivations_total == 1
    with pytest.raises(ActorStopped):
        old.try_tell(Ping())
    new = await group.get_or_spawn("u1", lambda: Probe(journal))
    assert await new.ask(Ping(), timeout=5) == "pong u1"


async def test_busy_actor_is_not_passivated(system: ActorSystem) -> None:
    journal = Journal()
    journal.unblock.clear()
    group = users(system, idle=0.01)
    ref = await group.get_or_spawn("u1", lambda: Probe(journal))
    await ref.tell(Block())
    await asyncio.sleep(0.05)  # several idle timeouts pass while the turn runs
    assert "u1" in group
    journal.unblock.set()


async def test_stats_count_live_actors_and_depth_per_kind(system: ActorSystem) -> None:
    journal = Journal()
    journal.unblock.clear()
    first = users(system)
    second: ActorGroup[str, Message] = system.group("users/t2", kind="user", mailbox_size=4)
    tenants: ActorGroup[str, Message] = system.group("tenants", kind="tenant", mailbox_size=4)
    ref = await first.get_or_spawn("u1", lambda: Probe(journal))
    await second.get_or_spawn("u9", lambda: Probe(journal))
    await tenants.get_or_spawn("t1", lambda: Probe(journal))
    await ref.tell(Block())
    await journal.blocked.wait()
    await ref.tell(Ping())
    await ref.tell(Ping())
    stats = system.stats()
    assert stats.kinds["user"].live == 2 and stats.kinds["user"].mailbox_depth == 2
    assert stats.kinds["tenant"].live == 1 and stats.kinds["tenant"].mailbox_depth == 0
    assert stats.tasks == 3
    journal.unblock.set()


def test_group_settings_must_match_on_reuse() -> None:
    system = ActorSystem()
    group = system.group("g", mailbox_size=4)
    assert system.group("g", mailbox_size=4) is group
    with pytest.raises(ValueError):
        system.group("g", mailbox_size=5)
