"""Staged shutdown: order, per-stage timeouts, a hanging handler, no leaked tasks; signals; uvloop."""

from __future__ import annotations

import asyncio
import os
import signal
from dataclasses import dataclass

import pytest

from mmsd.actors import (
    Actor,
    ActorGroup,
    ActorStopped,
    ActorSystem,
    Message,
    Request,
    ShutdownHook,
    ShutdownPlan,
    ShutdownStage,
    StopReason,
    SupervisionPolicy,
    SystemStopping,
    handles,
    install_stop_signals,
    run,
    uvloop_available,
)


@dataclass(frozen=True)
class Migrate(Request[int]):
    """Work through ``meetings`` steps, returning at a checkpoint if shutdown begins."""

    meetings: int


@dataclass(frozen=True)
class Hang(Message):
    pass


@dataclass(frozen=True)
class Crash(Message):
    pass


class Migrator(Actor[Message]):
    """A long handler that checkpoints between steps, and one that hangs."""

    def __init__(
        self,
        log: list[str],
        in_turn: asyncio.Event,
        step: asyncio.Event,
        crashed: asyncio.Event | None = None,
    ) -> None:
        self.log = log
        self.crashed = crashed
        self.in_turn = in_turn
        self.step = step

    @handles(Migrate)
    async def on_migrate(self, message: Migrate) -> int:
        self.in_turn.set()
        done = 0
        for _ in range(message.meetings):
            await self.step.wait()  # one Graph call
            done += 1
            if self.stop_requested:  # checkpoint: progress is in the store
                self.log.append(f"checkpoint after {done}")
                break
        return done

    @handles(Hang)
    async def on_hang(self, message: Hang) -> None:
        self.in_turn.set()
        await asyncio.Event().wait()

    @handles(Crash)
    async def on_crash(self, message: Crash) -> None:
        if self.crashed is not None:
            self.crashed.set()
        raise RuntimeError("crash")

    async def on_stop(self, reason: StopReason) -> None:
        self.log.append(f"on_stop {reason.value}")


def hook(
    log: list[str], name: str, *, hang: bool = False, ran: asyncio.Event | None = None
) -> ShutdownHook:
    async def run_hook() -> None:
        log.append(name)
        if ran is not None:
            ran.set()
        if hang:
            await asyncio.Event().wait()

    return run_hook


async def test_stages_run_in_order_and_in_flight_work_reaches_a_checkpoint() -> None:
    log: list[str] = []
    in_turn, step, admin_stopped = asyncio.Event(), asyncio.Event(), asyncio.Event()
    system = ActorSystem(plan=ShutdownPlan(1, 2, 1, 1, stop_timeout=5))
    system.add_shutdown_hook(
        ShutdownStage.STOP_INTAKE, "admin", hook(log, "stop admin api", ran=admin_stopped)
    )
    system.add_shutdown_hook(ShutdownStage.FINAL, "store", hook(log, "flush store"))
    group: ActorGroup[str, Message] = system.group("user", mailbox_size=4)
    ref = await group.get_or_spawn("u1", lambda: Migrator(log, in_turn, step))
    in_flight = asyncio.create_task(ref.ask(Migrate(100), timeout=10))
    queued = asyncio.create_task(ref.ask(Migrate(1), timeout=10))
    await in_turn.wait()
    stopping = asyncio.create_task(system.shutdown())
    await admin_stopped.wait()
    assert log == ["stop admin api"] and not in_flight.done()
    step.set()  # let the in-flight Graph call return
    report = await stopping
    assert await in_flight == 1  # finished at its first checkpoint, reply delivered
    with pytest.raises(ActorStopped):
        await queued  # pending message dropped at intake: its work is in the store
    assert log == ["stop admin api", "checkpoint after 1", "on_stop shutdown", "flush store"]
    assert [s.stage for s in report.stages] == list(ShutdownStage)
    assert report.clean
    with pytest.raises(SystemStopping):
        await group.get_or_spawn("u2", lambda: Migrator(log, in_turn, step))
    assert await system.shutdown() is report  # idempotent
    assert asyncio.all_tasks() == {asyncio.current_task()}


async def test_hanging_handler_and_hooks_stay_inside_the_stop_timeout() -> None:
    log: list[str] = []
    in_turn = asyncio.Event()
    plan = ShutdownPlan(stop_intake=0.1, drain=0.2, cancel=0.1, final=0.1, stop_timeout=0.5)
    system = ActorSystem(plan=plan)
    system.add_shutdown_hook(ShutdownStage.STOP_INTAKE, "stuck", hook(log, "intake", hang=True))
    system.add_shutdown_hook(ShutdownStage.DRAIN, "stuck", hook(log, "drain", hang=True))
    system.add_shutdown_hook(ShutdownStage.FINAL, "stuck", hook(log, "final", hang=True))
    group: ActorGroup[str, Message] = system.group("user", mailbox_size=4)
    ref = await group.get_or_spawn("u1", lambda: Migrator(log, in_turn, asyncio.Event()))
    await ref.tell(Hang())
    await in_turn.wait()
    loop = asyncio.get_running_loop()
    started = loop.time()
    report = await system.shutdown()
    elapsed = loop.time() - started
    assert elapsed <= plan.stop_timeout + 0.05
    assert report.seconds <= plan.stop_timeout + 0.05
    timed_out = {s.stage: s.timed_out for s in report.stages}
    assert timed_out == {
        ShutdownStage.STOP_INTAKE: True,
        ShutdownStage.DRAIN: True,  # the hung handler did not finish
        ShutdownStage.CANCEL: False,  # ... so it was cancelled, promptly
        ShutdownStage.FINAL: True,
    }
    assert log == ["intake", "drain", "final"]  # cancelled: no on_stop
    assert report.leaked_tasks == () and not report.clean
    assert system.stats().kinds["user"].live == 0
    assert asyncio.all_tasks() == {asyncio.current_task()}


async def test_shutdown_ends_a_restart_backoff_early() -> None:
    log: list[str] = []
    system = ActorSystem(plan=ShutdownPlan(0.1, 0.5, 0.1, 0.1, stop_timeout=1))
    slow = SupervisionPolicy(backoff_initial=30)
    group: ActorGroup[str, Message] = system.group("user", mailbox_size=4, policy=slow)
    crashed = asyncio.Event()
    ref = await group.get_or_spawn(
        "u1", lambda: Migrator(log, asyncio.Event(), asyncio.Event(), crashed)
    )
    await ref.tell(Crash())
    await crashed.wait()
    await asyncio.sleep(0)  # let the supervisor enter its 30 s back-off
    assert group.restarts_total == 1
    report = await system.shutdown()
    assert report.clean and report.seconds < 0.5
    assert asyncio.all_tasks() == {asyncio.current_task()}


async def test_tracked_tasks_are_cancelled_and_none_can_start_after() -> None:
    system = ActorSystem(plan=ShutdownPlan(0.1, 0.1, 0.1, 0.1, stop_timeout=1))
    poller = system.create_task(asyncio.Event().wait(), name="delta-poller")
    assert poller in system.tasks
    report = await system.shutdown()
    assert poller.cancelled() and report.leaked_tasks == ()
    assert system.stats().tasks == 0
    coro = asyncio.sleep(0)
    with pytest.raises(SystemStopping):
        system.create_task(coro, name="late")


def test_plan_must_fit_inside_its_stop_timeout() -> None:
    with pytest.raises(ValueError):
        ShutdownPlan(stop_intake=10, drain=20, cancel=5, final=5, stop_timeout=30)
    default = ShutdownPlan()
    assert sum(default.timeouts().values()) <= default.stop_timeout < 45  # TimeoutStopSec=45


async def test_sigterm_sets_the_stop_event() -> None:
    stop = asyncio.Event()
    remove = install_stop_signals(stop.set, (signal.SIGTERM,))
    try:
        os.kill(os.getpid(), signal.SIGTERM)
        await asyncio.wait_for(stop.wait(), 5)
    finally:
        remove()


def test_run_uses_uvloop_when_available() -> None:
    async def loop_module() -> str:
        return type(asyncio.get_running_loop()).__module__

    assert uvloop_available()
    assert run(loop_module()).startswith("uvloop")
    assert run(loop_module(), use_uvloop=False).startswith("asyncio")
