"""The tenant actor: trigger intake, the coalescing window, and scheduling users (SPEC section 2).

One per configured tenant. Its state is only timers; the truth lives in the store:

* :class:`DecideTrigger` (the trigger is already recorded): decided in a
  tracked task (at most ``decide_concurrency`` at once, each one Graph lookup),
  so a wave of triggers never blocks the actor's turn. A transient Graph
  failure leaves the trigger pending and it is retried after ``tick_seconds``.
* :class:`Wake`: claim runnable Pending migrations (``not_before`` passed, MMS
  enabled, no other of the user's running) up to the free user-actor slots
  and start a :class:`~mmsd.engine.user_actor.UserActor` for each. The actor
  is woken exactly at every ``not_before`` it learns of (a coalescing window's
  end, a retry, a quota wait) and at least every ``tick_seconds``.
* ``max_user_actors`` is the user group's cap; a reload changes it in place
  (:meth:`TenantRuntime.apply_settings`).
* a user actor's exit frees a slot (:class:`ChildDone`, through the group's
  ``on_exit``, never blocking the child); a user actor that failed past its
  restart budget fails its migration rather than leaving it ``InProgress``.

``on_start`` (first start, restart after a crash, or a daemon restart)
releases ``InProgress`` migrations no live user actor runs back to
``Pending`` (no attempt spent; the runner reads back their unresolved PATCHes
first) and decides every trigger still pending.
"""

from __future__ import annotations

import asyncio
import heapq
import logging
from collections.abc import Callable, Hashable
from dataclasses import dataclass, field, replace
from datetime import datetime

from mmsd.actors import (
    Actor,
    ActorFailed,
    ActorGroup,
    ActorStopped,
    CapacityReached,
    ChildExit,
    Message,
    Replaceable,
    StopReason,
    SupervisionPolicy,
    SystemStopping,
    handles,
)
from mmsd.domain.model import MigrationState, Trigger
from mmsd.engine.api import EngineObserver
from mmsd.engine.intake import TriggerIntake
from mmsd.engine.migrate import MigrationRunner
from mmsd.engine.settings import EngineSettings
from mmsd.engine.user_actor import RunMigration, UserActor, UserMessage
from mmsd.graph import GraphClient, GraphError, TransportError
from mmsd.store import Store

log = logging.getLogger(__name__)

IN_PROGRESS_MESSAGE = "Migration in progress."
RESUMED_MESSAGE = "Resumed after a restart of mmsd."
CRASHED_MESSAGE = "mmsd failed internally while migrating this user; see the daemon's log."


@dataclass(frozen=True)
class DecideTrigger(Message):
    """A recorded trigger to decide."""

    trigger: Trigger


@dataclass(frozen=True)
class Wake(Replaceable):
    """Look for runnable migrations now (many pokes coalesce into one)."""


@dataclass(frozen=True)
class Tick(Replaceable):
    """The periodic fallback wake-up."""


@dataclass(frozen=True)
class ChildDone(Replaceable):
    """A user actor ended; ``failed`` when it went past its restart budget."""

    user_id: str
    failed: bool = False

    def replace_key(self) -> Hashable:
        """One pending notice per user."""
        return self.user_id


TenantMessage = DecideTrigger | Wake | Tick | ChildDone


@dataclass
class TenantRuntime:
    """Everything a tenant's actors share; survives actor restarts, replaced fields on reload."""

    name: str
    store: Store
    client: GraphClient
    settings: EngineSettings
    observer: EngineObserver
    undecided_backlog: bool = False  # a trigger could not be handed over: re-read the store
    user_policy: SupervisionPolicy = field(default_factory=SupervisionPolicy)
    users: ActorGroup[str, UserMessage] | None = None  # set by the tenant actor's on_start

    def apply_settings(self, settings: EngineSettings) -> None:
        """New settings from a reload, ``max_user_actors`` included, for every actor.

        The user group's cap changes in place: a higher cap lets the next wake-up claim
        more users; a lower one lets running migrations finish and starts no new one
        until fewer than the cap are live. Nothing running is stopped or lost.
        """
        self.settings = settings
        group = self.users
        if group is not None and group.cap != settings.max_user_actors:
            group.settings = replace(group.settings, cap=settings.max_user_actors)

    def runner(self, should_stop: Callable[[], bool] | None = None) -> MigrationRunner:
        """A migration runner for this tenant (``should_stop``: the shutdown checkpoint)."""
        return MigrationRunner(
            self.name,
            self.store,
            self.client,
            self.settings,
            self.observer,
            should_stop or (lambda: False),
        )


class TenantActor(Actor[TenantMessage]):
    """Intake and scheduling for one tenant."""

    def __init__(self, runtime: TenantRuntime) -> None:
        """Keep the shared runtime; timers and the user group are set up in ``on_start``."""
        self.rt = runtime
        self.users: ActorGroup[str, UserMessage] | None = None
        self._wakeups: list[datetime] = []
        self._armed: datetime | None = None
        self._deciding = asyncio.Semaphore(runtime.settings.decide_concurrency)

    # ----------------------------------------------------------------- lifecycle

    async def on_start(self) -> None:
        """Set up the user group, release orphaned InProgress work, decide pending triggers."""
        rt = self.rt
        ref = self.ref
        self.users = self.system.group(
            f"users:{rt.name}",
            kind="user",
            mailbox_size=rt.settings.user_mailbox_size,
            cap=rt.settings.max_user_actors,
            policy=rt.user_policy,
            on_exit=lambda exit_: self._child_exit(ref, exit_),
        )
        rt.users = self.users
        recovery = await rt.store.recovery(rt.name)
        for record in recovery.in_progress:
            if record.user_id not in self.users:
                await rt.store.release(record.correlation_id, last_message=RESUMED_MESSAGE)
        for trigger in recovery.undecided_triggers:
            self._decide(trigger)
        self.ref.try_tell(Wake())
        self.tell_later(rt.settings.tick_seconds, Tick())

    @staticmethod
    def _child_exit(ref: object, exit_: ChildExit) -> None:
        from mmsd.actors import ActorRef

        if isinstance(ref, ActorRef):
            ref.notify(ChildDone(str(exit_.key), exit_.reason is StopReason.FAILED))

    # ----------------------------------------------------------------- intake

    @handles(DecideTrigger)
    async def on_trigger(self, message: DecideTrigger) -> None:
        """Decide the trigger in a tracked task."""
        self._decide(message.trigger)

    def _decide(self, trigger: Trigger) -> None:
        self.system.create_task(self._decide_task(trigger), name=f"decide:{self.rt.name}")

    async def _decide_task(self, trigger: Trigger) -> None:
        rt = self.rt
        intake = TriggerIntake(rt.name, rt.store, rt.client, rt.settings, rt.observer)
        async with self._deciding:
            try:
                decided = await intake.decide(trigger)
            except (GraphError, TransportError) as exc:
                log.warning(
                    "trigger decision postponed: %s", type(exc).__name__, extra={"tenant": rt.name}
                )
                rt.undecided_backlog = True
                return
        if decided.not_before is not None:
            self.wake_at(decided.not_before)

    # ----------------------------------------------------------------- scheduling

    def wake_at(self, at: datetime | None) -> None:
        """Make sure the actor looks for runnable migrations at ``at`` (None: now)."""
        now = self.rt.store.now()
        if at is None or at <= now:
            self.ref.notify(Wake())
            return
        heapq.heappush(self._wakeups, at)
        if self._armed is None or at < self._armed:
            self._armed = at
            self.tell_later((at - now).total_seconds() + 0.001, Wake())

    @handles(Wake)
    async def on_wake(self, message: Wake) -> None:
        """Claim and start what is runnable; re-arm the next known wake-up."""
        await self._schedule()

    @handles(Tick)
    async def on_tick(self, message: Tick) -> None:
        """The fallback: pick up a trigger backlog, claim what is runnable, re-arm."""
        rt = self.rt
        if rt.undecided_backlog:
            rt.undecided_backlog = False
            for trigger in (await rt.store.recovery(rt.name)).undecided_triggers:
                self._decide(trigger)
        await self._schedule()
        self.tell_later(rt.settings.tick_seconds, Tick())

    @handles(ChildDone)
    async def on_child_done(self, message: ChildDone) -> None:
        """A slot is free; a user actor that failed for good fails its migration."""
        if message.failed:
            rt = self.rt
            for record in await rt.store.status(
                rt.name,
                identity=message.user_id,
                state=MigrationState.IN_PROGRESS,
                latest_only=False,
            ):
                await rt.store.finish(record.correlation_id, MigrationState.FAILED, CRASHED_MESSAGE)
                rt.observer.migration_finished(rt.name, str(MigrationState.FAILED), 0.0)
        await self._schedule()

    async def _schedule(self) -> None:
        now = self.rt.store.now()
        while self._wakeups and self._wakeups[0] <= now:
            heapq.heappop(self._wakeups)
        self._armed = None
        if self._wakeups:
            self._armed = self._wakeups[0]
            self.tell_later((self._armed - now).total_seconds() + 0.001, Wake())
        if self.stop_requested or self.users is None:
            return
        free = self.users.free_slots
        if free is not None and free <= 0:
            return
        rt = self.rt
        limit = free if free is not None else 100
        claimed = await rt.store.claim_runnable(rt.name, limit, message=IN_PROGRESS_MESSAGE)
        for record in claimed:
            wait = (now - record.create_date).total_seconds()
            rt.observer.migration_started(rt.name, max(0.0, wait))
            try:
                ref = await self.users.get_or_spawn(record.user_id, self._user_factory)
                ref.try_tell(RunMigration(record.correlation_id))
            except (CapacityReached, SystemStopping, ActorStopped, ActorFailed):
                await rt.store.release(record.correlation_id)

    def _user_factory(self) -> UserActor:
        rt = self.rt
        return UserActor(rt.runner, self.wake_at)
