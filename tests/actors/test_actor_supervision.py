"""Supervision: crash -> restart with back-off and on_start again; budget -> escalation."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime

import pytest

from mmsd.actors import (
    Actor,
    ActorCrashed,
    ActorFailed,
    ActorGroup,
    ActorState,
    ActorStopped,
    ActorSystem,
    ChildExit,
    Message,
    Request,
    ShutdownPlan,
    StopReason,
    SupervisionPolicy,
    Supervisor,
    handles,
)

QUICK = ShutdownPlan(stop_intake=0.2, drain=0.3, cancel=0.2, final=0.2, stop_timeout=1.0)


class ManualClock:
    """A clock that moves only when told to."""

    def __init__(self) -> None:
        self.t = 1000.0

    def now(self) -> datetime:
        return datetime.fromtimestamp(self.t, UTC)

    def monotonic(self) -> float:
        return self.t


@dataclass(frozen=True)
class Process(Message):
    item: str


@dataclass(frozen=True)
class Crash(Request[None]):
    pass


@dataclass(frozen=True)
class Done(Request[list[str]]):
    pass


class FakeStore:
    """Stands in for SQLite: pending items survive actor crashes."""

    def __init__(self, items: list[str]) -> None:
        self.pending = list(items)
        self.done: list[str] = []
        self.poison_once = {"b"}


class Worker(Actor[Message]):
    """Rebuilds its queue from the store in on_start; crashes once on a poison item."""

    def __init__(self, store: FakeStore, starts: list[float]) -> None:
        self.store = store
        self.starts = starts

    async def on_start(self) -> None:
        self.starts.append(asyncio.get_running_loop().time())
        for item in self.store.pending:
            self.ref.try_tell(Process(item))

    @handles(Process)
    async def on_process(self, message: Process) -> None:
        if message.item not in self.store.pending:
            return  # already done: handlers are idempotent against the store
        if message.item in self.store.poison_once:
            self.store.poison_once.discard(message.item)
            raise RuntimeError("transient fault")
        self.store.pending.remove(message.item)
        self.store.done.append(message.item)

    @handles(Crash)
    async def on_crash(self, message: Crash) -> None:
        raise RuntimeError("asked to crash")

    @handles(Done)
    async def on_done(self, message: Done) -> list[str]:
        return list(self.store.done)


@pytest.fixture
async def system() -> AsyncIterator[ActorSystem]:
    system = ActorSystem(plan=QUICK)
    yield system
    await system.shutdown()


def test_backoff_grows_exponentially_up_to_its_cap() -> None:
    policy = SupervisionPolicy(backoff_initial=0.5, backoff_factor=2, backoff_max=3)
    assert [policy.backoff(n) for n in range(1, 6)] == [0.5, 1.0, 2.0, 3.0, 3.0]


def test_budget_counts_crashes_in_a_sliding_window() -> None:
    clock = ManualClock()
    supervisor = Supervisor(SupervisionPolicy(max_restarts=2, within_seconds=10), clock)
    first, second = supervisor.on_crash(), supervisor.on_crash()
    assert (first.restart, first.crashes_in_window) == (True, 1)
    assert (second.restart, second.delay) == (True, 1.0)
    clock.t += 10.5  # the first two crashes left the window
    third = supervisor.on_crash()
    assert (third.restart, third.crashes_in_window) == (True, 1)
    clock.t += 1
    supervisor.on_crash()
    escalate = supervisor.on_crash()
    assert not escalate.restart and escalate.crashes_in_window == 3
    assert supervisor.crashes_total == 5


async def test_crash_restarts_with_backoff_and_work_is_rebuilt_from_store(
    system: ActorSystem,
) -> None:
    store = FakeStore(["a", "b", "c"])
    starts: list[float] = []
    policy = SupervisionPolicy(max_restarts=3, backoff_initial=0.05)
    group: ActorGroup[str, Message] = system.group("w", mailbox_size=8, policy=policy)
    ref = await group.get_or_spawn("w1", lambda: Worker(store, starts))
    while store.pending:
        await ref.ask(Done(), timeout=5)
    # "b" crashed its handler; the fresh incarnation's on_start re-queued it from the store.
    assert sorted(store.done) == ["a", "b", "c"]
    assert len(starts) == 2
    assert starts[1] - starts[0] >= 0.05
    assert group.restarts_total == 1
    assert ref.state is ActorState.RUNNING


async def test_exhausted_budget_escalates_to_the_parent(system: ActorSystem) -> None:
    exits: list[ChildExit] = []
    exited = asyncio.Event()

    def on_exit(event: ChildExit) -> None:
        exits.append(event)
        exited.set()

    starts: list[float] = []
    policy = SupervisionPolicy(max_restarts=2, within_seconds=60, backoff_initial=0.001)
    group: ActorGroup[str, Message] = system.group(
        "w", mailbox_size=8, policy=policy, on_exit=on_exit
    )
    ref = await group.get_or_spawn("w1", lambda: Worker(FakeStore([]), starts))
    for _ in range(3):  # asks sent during a back-off wait for the next incarnation
        with pytest.raises(ActorCrashed):
            await ref.ask(Crash(), timeout=5)
    await asyncio.wait_for(exited.wait(), 5)
    assert ref.state is ActorState.FAILED
    assert [(e.key, e.reason) for e in exits] == [("w1", StopReason.FAILED)]
    assert isinstance(exits[0].error, RuntimeError)
    assert "w1" not in group and len(group) == 0
    with pytest.raises(ActorStopped):
        await ref.tell(Process("x"))
    stats = system.stats().kinds["w"]
    assert (stats.restarts_total, stats.failures_total, stats.live) == (2, 1, 0)
    assert len(starts) == 3


class FlakyStart(Actor[Message]):
    """on_start fails the first ``failures`` times (shared counter)."""

    def __init__(self, attempts: list[int], failures: int) -> None:
        self.attempts = attempts
        self.failures = failures

    async def on_start(self) -> None:
        self.attempts.append(1)
        if len(self.attempts) <= self.failures:
            raise OSError("store not reachable")


async def test_on_start_crash_is_retried_before_the_actor_counts_as_started(
    system: ActorSystem,
) -> None:
    attempts: list[int] = []
    policy = SupervisionPolicy(max_restarts=3, backoff_initial=0.001)
    group: ActorGroup[str, Message] = system.group("f", mailbox_size=2, policy=policy)
    ref = await group.get_or_spawn("f1", lambda: FlakyStart(attempts, failures=2))
    assert len(attempts) == 3 and ref.state is ActorState.RUNNING


async def test_on_start_failing_past_the_budget_fails_the_spawn(system: ActorSystem) -> None:
    attempts: list[int] = []
    exits: list[ChildExit] = []
    policy = SupervisionPolicy(max_restarts=1, backoff_initial=0.001)
    group: ActorGroup[str, Message] = system.group(
        "f", mailbox_size=2, policy=policy, on_exit=exits.append
    )
    with pytest.raises(ActorFailed):
        await group.get_or_spawn("f1", lambda: FlakyStart(attempts, failures=99))
    assert len(attempts) == 2
    assert [e.reason for e in exits] == [StopReason.FAILED]
    assert len(group) == 0
