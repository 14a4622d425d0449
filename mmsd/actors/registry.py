"""The actor system: groups of actors by key, task tracking, stats, staged shutdown.

An :class:`ActorGroup` holds the actors of one kind under one parent (e.g. the user
actors of one tenant): it creates them on demand (``get_or_spawn``), caps how many live
at once, passivates idle ones, and tells its ``on_exit`` callback when one ends. At the
cap, ``get_or_spawn`` *refuses* with :class:`CapacityReached` rather than waiting: the
caller (a tenant actor) must never block its turn on a child, and the work it wanted to
start simply stays pending in the store until an ``on_exit`` frees a slot.

Time: the restart budget's window reads the system's :class:`~mmsd.clock.Clock`; the
idle timer and back-off waits are event-loop timers (they must wake the loop), so tests
use sub-second values rather than moving a clock.

One activation per key: a key whose actor is still stopping is not spawned again until
that actor's ``on_stop`` returned, so two incarnations never touch the same rows.

:class:`ActorSystem` tracks every task it creates in a set (removed on completion), so
that shutdown can drain, cancel and account for all of them.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Coroutine, Hashable, Iterator
from dataclasses import dataclass, field
from typing import Any, Generic, TypeVar, cast

from mmsd.actors.actor import Actor, ActorCell, ActorRef, ChildExit, StopReason
from mmsd.actors.errors import CapacityReached, SystemStopping
from mmsd.actors.mailbox import Message
from mmsd.actors.shutdown import (
    CANCEL_GRACE_SECONDS,
    ShutdownHook,
    ShutdownPlan,
    ShutdownReport,
    ShutdownStage,
    StageReport,
    run_stage,
)
from mmsd.actors.supervisor import SupervisionPolicy
from mmsd.clock import Clock, SystemClock

log = logging.getLogger(__name__)

K = TypeVar("K", bound=Hashable)
M = TypeVar("M", bound=Message)
T = TypeVar("T")

ExitCallback = Callable[[ChildExit], None]


@dataclass(frozen=True)
class KindStats:
    """Figures for one kind of actor, summed over its groups (for metrics)."""

    live: int = 0
    mailbox_depth: int = 0
    restarts_total: int = 0
    failures_total: int = 0
    passivations_total: int = 0


@dataclass(frozen=True)
class SystemStats:
    """A snapshot of the system for ``mmsd_actors`` / mailbox-depth metrics."""

    kinds: dict[str, KindStats] = field(default_factory=dict)
    tasks: int = 0


@dataclass(frozen=True)
class _GroupSettings:
    kind: str
    mailbox_size: int
    cap: int | None
    idle_timeout: float | None
    policy: SupervisionPolicy


class ActorGroup(Generic[K, M]):
    """The actors of one kind under one parent, by key: spawn on demand, cap, passivate.

    ``on_exit`` is called synchronously whenever an actor of the group ends; it must not
    block (typically ``parent_ref.notify(ChildDone(...))``). It may be reassigned, e.g.
    by a parent actor's ``on_start`` after the parent restarted.
    """

    def __init__(
        self,
        system: ActorSystem,
        name: str,
        settings: _GroupSettings,
        on_exit: ExitCallback | None = None,
    ) -> None:
        self.system = system
        self.name = name
        self.settings = settings
        self.on_exit = on_exit
        self.restarts_total = 0
        self.failures_total = 0
        self.passivations_total = 0
        self._live: dict[K, ActorCell[M]] = {}
        self._closing: dict[K, ActorCell[M]] = {}

    @property
    def kind(self) -> str:
        """The kind of actor in this group (a metrics label), e.g. ``"user"``."""
        return self.settings.kind

    @property
    def mailbox_size(self) -> int:
        """The bound of each actor's mailbox."""
        return self.settings.mailbox_size

    @property
    def cap(self) -> int | None:
        """At most this many actors (live or stopping) at once; None for no cap."""
        return self.settings.cap

    @property
    def idle_timeout(self) -> float | None:
        """Seconds without a message after which an actor is passivated; None: never."""
        return self.settings.idle_timeout

    @property
    def policy(self) -> SupervisionPolicy:
        """The restart budget and back-off of each actor."""
        return self.settings.policy

    def __len__(self) -> int:
        return len(self._live) + len(self._closing)

    def __contains__(self, key: object) -> bool:
        return key in self._live

    def __iter__(self) -> Iterator[ActorRef[M]]:
        return iter([cell.ref for cell in self._live.values()])

    @property
    def free_slots(self) -> int | None:
        """How many more actors may be spawned now; None when uncapped."""
        return None if self.cap is None else max(0, self.cap - len(self))

    def get(self, key: K) -> ActorRef[M] | None:
        """The live actor for ``key``, if any (never spawns)."""
        cell = self._live.get(key)
        return None if cell is None else cell.ref

    async def get_or_spawn(self, key: K, factory: Callable[[], Actor[M]]) -> ActorRef[M]:
        """The actor for ``key``, spawned with ``factory`` if needed; returns once started.

        Raises :class:`CapacityReached` at the cap, :class:`SystemStopping` during
        shutdown, :class:`ActorFailed` if ``on_start`` kept crashing past the budget.
        """
        while True:
            cell = self._live.get(key)
            if cell is not None:
                break
            stopping = self._closing.get(key)
            if stopping is not None:
                await stopping.wait_exited()
                continue
            if self.system.stopping:
                raise SystemStopping("the actor system is shutting down")
            if self.cap is not None and len(self) >= self.cap:
                raise CapacityReached(f"{self.name}: at its cap of {self.cap} actors")
            cell = ActorCell(self, key, factory)
            self._live[key] = cell
            cell.start()
            break
        await cell.wait_started()
        return cell.ref

    def stop(self, key: K) -> bool:
        """Stop the actor for ``key`` after its pending messages; False if none is live."""
        cell = self._live.get(key)
        if cell is None:
            return False
        cell.close(StopReason.STOPPED)
        return True

    def stats(self) -> KindStats:
        """This group's figures."""
        cells = [*self._live.values(), *self._closing.values()]
        return KindStats(
            live=len(cells),
            mailbox_depth=sum(len(cell.mailbox) for cell in cells),
            restarts_total=self.restarts_total,
            failures_total=self.failures_total,
            passivations_total=self.passivations_total,
        )

    def _cells(self) -> list[ActorCell[M]]:
        return [*self._live.values(), *self._closing.values()]

    def _detach(self, cell: ActorCell[M]) -> None:
        """The cell stopped taking messages: it still counts until it exits."""
        key = cast(K, cell.key)
        if self._live.get(key) is cell:
            del self._live[key]
            self._closing[key] = cell

    def _idle(self, cell: ActorCell[M]) -> None:
        """Passivate an actor that saw no message for ``idle_timeout`` seconds."""
        if len(cell.mailbox) == 0 and cell.close_reason is None:
            self.passivations_total += 1
            cell.close(StopReason.PASSIVATED)

    def _restarting(self) -> None:
        self.restarts_total += 1

    def _exited(self, cell: ActorCell[M], reason: StopReason, error: BaseException | None) -> None:
        key = cast(K, cell.key)
        for table in (self._live, self._closing):
            if table.get(key) is cell:
                del table[key]
        if reason is StopReason.FAILED:
            self.failures_total += 1
        if self.on_exit is not None:
            try:
                self.on_exit(ChildExit(self.kind, key, reason, error))
            except Exception:
                log.exception("%s: on_exit callback raised", self.name)


class ActorSystem:
    """Owns every actor group and background task, their stats, and the staged shutdown."""

    def __init__(self, *, clock: Clock | None = None, plan: ShutdownPlan | None = None) -> None:
        self.clock: Clock = clock or SystemClock()
        self.plan = plan or ShutdownPlan()
        self._groups: dict[str, ActorGroup[Any, Any]] = {}
        self._tasks: set[asyncio.Task[Any]] = set()
        self._hooks: dict[ShutdownStage, list[tuple[str, ShutdownHook]]] = {
            stage: [] for stage in ShutdownStage
        }
        self._stopping = False
        self._closed = False
        self._report: ShutdownReport | None = None
        self._done = asyncio.Event()

    @property
    def stopping(self) -> bool:
        """True from the start of shutdown on: no new actors."""
        return self._stopping

    @property
    def tasks(self) -> frozenset[asyncio.Task[Any]]:
        """Every tracked task still running."""
        return frozenset(self._tasks)

    def group(
        self,
        name: str,
        *,
        kind: str | None = None,
        mailbox_size: int,
        cap: int | None = None,
        idle_timeout: float | None = None,
        policy: SupervisionPolicy | None = None,
        on_exit: ExitCallback | None = None,
    ) -> ActorGroup[Any, Any]:
        """Get or create the group ``name`` (annotate the result: ``ActorGroup[str, Msg]``).

        Asking again for an existing name with different settings is a ValueError;
        ``on_exit``, when given, replaces the group's callback.
        """
        if cap is not None and cap < 1:
            raise ValueError("cap must be >= 1")
        settings = _GroupSettings(
            kind or name, mailbox_size, cap, idle_timeout, policy or SupervisionPolicy()
        )
        existing = self._groups.get(name)
        if existing is not None:
            if existing.settings != settings:
                raise ValueError(f"group {name!r} exists with other settings")
            if on_exit is not None:
                existing.on_exit = on_exit
            return existing
        group: ActorGroup[Any, Any] = ActorGroup(self, name, settings, on_exit)
        self._groups[name] = group
        return group

    def create_task(self, coro: Coroutine[Any, Any, T], *, name: str) -> asyncio.Task[T]:
        """Start a background task held in the tracked set until it completes."""
        if self._closed:
            coro.close()
            raise SystemStopping("the actor system has shut down")
        task = asyncio.get_running_loop().create_task(coro, name=name)
        self._tasks.add(task)
        task.add_done_callback(self._task_done)
        return task

    def add_shutdown_hook(self, stage: ShutdownStage, name: str, hook: ShutdownHook) -> None:
        """Run ``hook`` in ``stage`` (STOP_INTAKE, DRAIN or FINAL) of the shutdown."""
        if stage is ShutdownStage.CANCEL:
            raise ValueError("the cancel stage runs no hooks")
        self._hooks[stage].append((name, hook))

    def stats(self) -> SystemStats:
        """Live actors, mailbox depth and restart counters per kind; tracked tasks."""
        kinds: dict[str, KindStats] = {}
        for group in self._groups.values():
            mine = group.stats()
            seen = kinds.get(group.kind, KindStats())
            kinds[group.kind] = KindStats(
                live=seen.live + mine.live,
                mailbox_depth=seen.mailbox_depth + mine.mailbox_depth,
                restarts_total=seen.restarts_total + mine.restarts_total,
                failures_total=seen.failures_total + mine.failures_total,
                passivations_total=seen.passivations_total + mine.passivations_total,
            )
        return SystemStats(kinds=kinds, tasks=len(self._tasks))

    async def shutdown(self, plan: ShutdownPlan | None = None) -> ShutdownReport:
        """Stop in stages (see :mod:`mmsd.actors.shutdown`) within ``plan.stop_timeout``.

        Idempotent: a second call waits for the first and returns the same report.
        """
        if self._stopping:
            await self._done.wait()
            assert self._report is not None
            return self._report
        self._stopping = True
        try:
            self._report = await self._run_stages(plan or self.plan)
        finally:
            self._closed = True
            self._done.set()
        return self._report

    async def _run_stages(self, plan: ShutdownPlan) -> ShutdownReport:
        loop = asyncio.get_running_loop()
        started = loop.time()
        deadline = started + plan.stop_timeout
        me = asyncio.current_task()
        timeouts = plan.timeouts()

        def budget(stage: ShutdownStage) -> float:
            return max(0.0, min(timeouts[stage], deadline - loop.time()))

        def grace() -> float:
            return max(0.0, min(CANCEL_GRACE_SECONDS, deadline - loop.time()))

        for group in self._groups.values():
            for cell in group._cells():
                cell.begin_shutdown()
        reports: list[StageReport] = []
        stage = ShutdownStage.STOP_INTAKE
        reports.append(
            await run_stage(stage, budget(stage), self._start_hooks(stage), grace=grace())
        )

        stage = ShutdownStage.DRAIN
        actor_tasks = [
            cell.task
            for group in self._groups.values()
            for cell in group._cells()
            if cell.task is not None
        ]
        reports.append(
            await run_stage(
                stage, budget(stage), self._start_hooks(stage), actor_tasks, grace=grace()
            )
        )

        stage = ShutdownStage.CANCEL
        rest = [task for task in self._tasks if task is not me and not task.done()]
        for task in rest:
            task.cancel()
        reports.append(await run_stage(stage, budget(stage), (), rest))

        stage = ShutdownStage.FINAL
        reports.append(
            await run_stage(stage, budget(stage), self._start_hooks(stage), grace=grace())
        )
        leaked = tuple(sorted(t.get_name() for t in self._tasks if t is not me and not t.done()))
        if leaked:
            log.error("shutdown left %d tasks running: %s", len(leaked), ", ".join(leaked))
        return ShutdownReport(tuple(reports), loop.time() - started, leaked)

    def _start_hooks(self, stage: ShutdownStage) -> list[tuple[str, asyncio.Task[None]]]:
        return [
            (name, self.create_task(_call(hook), name=f"shutdown:{stage.value}:{name}"))
            for name, hook in self._hooks[stage]
        ]

    def _task_done(self, task: asyncio.Task[Any]) -> None:
        self._tasks.discard(task)
        if not task.cancelled() and task.exception() is not None:
            log.error("task %s failed", task.get_name(), exc_info=task.exception())


async def _call(hook: ShutdownHook) -> None:
    await hook()
