"""Actors: turn-based message handlers, their references, and the task that runs each.

An actor is a subclass of :class:`Actor` whose handlers are marked with
:func:`handles`. Each live actor has one bounded :class:`~mmsd.actors.mailbox.Mailbox`
and one named task (``"{kind}:{key}"``) that supervises it: it builds the actor from its
factory, awaits ``on_start`` (rebuild state from the store), then handles one message
at a time until the mailbox is closed. Crashes restart the actor with a fresh instance
(see :mod:`mmsd.actors.supervisor`).

Keys appear in logs and task names: use object IDs or tenant names, never addresses.
"""

from __future__ import annotations

import asyncio
import enum
import logging
from collections.abc import Awaitable, Callable, Hashable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, ClassVar, Generic, TypeVar, cast

from mmsd.actors.errors import (
    ActorCrashed,
    ActorFailed,
    ActorStopped,
    AskTimeout,
    Rejected,
    UnhandledMessage,
)
from mmsd.actors.mailbox import Envelope, Mailbox, Message, Replaceable, Request
from mmsd.actors.supervisor import Supervisor
from mmsd.clock import Clock

if TYPE_CHECKING:
    from mmsd.actors.registry import ActorGroup, ActorSystem

log = logging.getLogger(__name__)

M = TypeVar("M", bound=Message)
R = TypeVar("R")
H = TypeVar("H", bound=Callable[..., Awaitable[Any]])

_HANDLES = "__mmsd_handles__"


class StopReason(enum.Enum):
    """Why an actor (or one incarnation of it) ended."""

    STOPPED = "stopped"  # asked to stop: pending messages were handled first
    PASSIVATED = "passivated"  # idle past the group's idle timeout
    SHUTDOWN = "shutdown"  # the system is shutting down
    CRASHED = "crashed"  # this incarnation crashed; the supervisor restarts or fails it
    FAILED = "failed"  # restart budget exhausted: escalated to the parent
    CANCELLED = "cancelled"  # its task was cancelled (last shutdown stage)


class ActorState(enum.Enum):
    """Where an actor is in its life, for stats and tests."""

    STARTING = "starting"
    RUNNING = "running"
    RESTARTING = "restarting"
    STOPPING = "stopping"
    STOPPED = "stopped"
    FAILED = "failed"


@dataclass(frozen=True)
class ChildExit:
    """Told to a group's ``on_exit`` callback (the parent) when one of its actors ends."""

    kind: str
    key: Hashable
    reason: StopReason
    error: BaseException | None = None


def handles(*message_types: type[Message]) -> Callable[[H], H]:
    """Mark an ``async def`` method as the handler of the given message types."""
    if not message_types:
        raise TypeError("handles() needs at least one message type")

    def mark(method: H) -> H:
        setattr(method, _HANDLES, message_types)
        return method

    return mark


class Actor(Generic[M]):
    """Base of every actor: handlers by message type, lifecycle hooks, one turn at a time.

    Subclasses keep only state that ``on_start`` can rebuild from the store: after a
    crash the runtime builds a fresh instance and calls ``on_start`` again.
    """

    _handlers: ClassVar[dict[type[Message], str]] = {}
    _cell: ActorCell[M]

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        table: dict[type[Message], str] = {}
        for klass in reversed(cls.__mro__):
            for attr, value in vars(klass).items():
                for message_type in getattr(value, _HANDLES, ()):
                    table[message_type] = attr
        cls._handlers = table

    @property
    def ref(self) -> ActorRef[M]:
        """This actor's own reference (to hand out, or to tell itself later)."""
        return self._cell.ref

    @property
    def key(self) -> Hashable:
        """This actor's key in its group (a tenant name, a user object ID)."""
        return self._cell.key

    @property
    def system(self) -> ActorSystem:
        """The actor system, e.g. to create a group of children."""
        return self._cell.group.system

    @property
    def clock(self) -> Clock:
        """The system's clock."""
        return self._cell.group.system.clock

    @property
    def stop_requested(self) -> bool:
        """True once shutdown began: long handlers return at their next checkpoint."""
        return self._cell.stop_requested

    async def on_start(self) -> None:
        """Rebuild state (and pending work) from the store; the actor counts as started after."""

    async def on_stop(self, reason: StopReason) -> None:
        """Release resources; called after every incarnation that started, except on cancel."""

    def stop(self) -> None:
        """Stop intake; the actor handles what is pending, then stops (``STOPPED``)."""
        self._cell.close(StopReason.STOPPED)

    def tell_later(self, delay: float, message: M) -> None:
        """Send ``message`` to this actor after ``delay`` seconds (a tracked timer task).

        Timers are cancelled when this incarnation ends; state that must survive a crash
        (e.g. a Retry-After) belongs in the store, and ``on_start`` re-arms it.
        """
        self._cell.schedule(delay, message)

    def _handler_for(self, message: Message) -> Callable[[Any], Awaitable[object]] | None:
        for klass in type(message).__mro__:
            name = self._handlers.get(klass)
            if name is not None:
                return cast(Callable[[Any], Awaitable[object]], getattr(self, name))
        return None


class ActorRef(Generic[M]):
    """The only way to reach an actor: tell, try_tell, notify, ask. Cheap and hashable."""

    __slots__ = ("_cell",)

    def __init__(self, cell: ActorCell[M]) -> None:
        self._cell = cell

    def __repr__(self) -> str:
        return f"<ActorRef {self._cell.name} {self._cell.state.value}>"

    @property
    def kind(self) -> str:
        """The kind of actor (its group's kind), e.g. ``"user"``."""
        return self._cell.group.kind

    @property
    def key(self) -> Hashable:
        """The actor's key in its group."""
        return self._cell.key

    @property
    def name(self) -> str:
        """``"{kind}:{key}"``, also the name of its task."""
        return self._cell.name

    @property
    def state(self) -> ActorState:
        """The actor's current state."""
        return self._cell.state

    @property
    def depth(self) -> int:
        """Messages waiting in its mailbox."""
        return len(self._cell.mailbox)

    @property
    def accepting(self) -> bool:
        """False once its mailbox is closed."""
        return not self._cell.mailbox.closed

    async def tell(self, message: M, *, timeout: float | None = None) -> None:  # noqa: ASYNC109 (the timeout selects a typed error)
        """Fire and forget, waiting for mailbox space up to ``timeout`` (:class:`MailboxFull`)."""
        await self._cell.mailbox.put(Envelope(message), timeout)

    def try_tell(self, message: M) -> bool:
        """Fire and forget without waiting: False if the mailbox is full."""
        return self._cell.mailbox.put_nowait(Envelope(message))

    def notify(self, message: M) -> bool:
        """Never-blocking, never-failing send of a :class:`Replaceable` message (child -> parent).

        Coalesces with a pending message of the same key and may exceed the mailbox bound
        by one message per distinct key. Returns False only if the actor is gone.
        """
        if not isinstance(message, Replaceable):
            raise TypeError("notify() takes Replaceable messages only")
        try:
            return self._cell.mailbox.put_overflow(Envelope(message))
        except ActorStopped:
            return False

    async def ask(self, message: Request[R], *, timeout: float) -> R:  # noqa: ASYNC109 (the timeout selects a typed error)
        """Send a request and await the handler's return value, all within ``timeout``.

        Raises :class:`AskTimeout`, :class:`Rejected` (the handler refused),
        :class:`ActorCrashed` (the handler crashed) or :class:`ActorStopped`.
        """
        reply: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        try:
            async with asyncio.timeout(timeout):
                await self._cell.mailbox.put(Envelope(cast(M, message), reply))
                return cast(R, await reply)
        except TimeoutError:
            reply.cancel()
            raise AskTimeout(f"{self._cell.name} did not answer within {timeout}s") from None

    def stop(self) -> None:
        """Stop intake; the actor handles what is pending, then stops (``STOPPED``)."""
        self._cell.close(StopReason.STOPPED)


class ActorCell(Generic[M]):
    """The runtime side of one actor: mailbox, reference, supervision, and its one task."""

    def __init__(
        self, group: ActorGroup[Any, M], key: Hashable, factory: Callable[[], Actor[M]]
    ) -> None:
        self.group = group
        self.key = key
        self.name = f"{group.kind}:{key}"
        self.mailbox: Mailbox[M] = Mailbox(group.mailbox_size)
        self.ref: ActorRef[M] = ActorRef(self)
        self.state = ActorState.STARTING
        self.stop_requested = False
        self.close_reason: StopReason | None = None
        self._factory = factory
        self._supervisor = Supervisor(group.policy, group.system.clock)
        self._abort = asyncio.Event()
        self._started = asyncio.Event()
        self._start_error: BaseException | None = None
        self._exited = asyncio.Event()
        self._timers: set[asyncio.Task[None]] = set()
        self.task: asyncio.Task[None] | None = None

    @property
    def crashes_total(self) -> int:
        """Crashes so far, over every incarnation."""
        return self._supervisor.crashes_total

    def start(self) -> None:
        """Start the actor's one task (tracked by the system)."""
        self.task = self.group.system.create_task(self._main(), name=self.name)

    async def wait_started(self) -> None:
        """Return once ``on_start`` returned; raise if the actor failed or stopped first."""
        await self._started.wait()
        if self._start_error is not None:
            if self.state is ActorState.FAILED:
                raise ActorFailed(f"{self.name} failed before it started") from self._start_error
            raise ActorStopped(f"{self.name} stopped before it started") from self._start_error

    async def wait_exited(self) -> None:
        """Return once the actor's task ended."""
        await self._exited.wait()

    def close(self, reason: StopReason, *, drop_pending: bool = False) -> None:
        """End intake (idempotent); dropped asks get :class:`ActorStopped`."""
        if self.close_reason is None:
            self.close_reason = reason
            if self.state is not ActorState.FAILED:
                self.state = ActorState.STOPPING
            self.group._detach(self)
        for envelope in self.mailbox.close(drop_pending=drop_pending):
            envelope.fail(ActorStopped(f"{self.name} stopped ({reason.value})"))

    def begin_shutdown(self) -> None:
        """Shutdown: ask handlers to checkpoint, drop pending messages, end any back-off."""
        self.stop_requested = True
        self._abort.set()
        self.close(StopReason.SHUTDOWN, drop_pending=True)

    def schedule(self, delay: float, message: M) -> None:
        """Deliver ``message`` to this actor after ``delay`` seconds (see ``Actor.tell_later``)."""

        async def fire() -> None:
            await asyncio.sleep(delay)
            try:
                await self.mailbox.put(Envelope(message))
            except ActorStopped:
                pass

        task = self.group.system.create_task(fire(), name=f"{self.name}:timer")
        self._timers.add(task)
        task.add_done_callback(self._timers.discard)

    async def _main(self) -> None:
        reason, error = StopReason.CANCELLED, None
        try:
            reason, error = await self._supervise()
        finally:
            self._finish(reason, error)

    async def _supervise(self) -> tuple[StopReason, BaseException | None]:
        while True:
            actor = self._factory()
            actor._cell = self
            try:
                return await self._incarnation(actor), None
            except Exception as exc:
                decision = self._supervisor.on_crash()
                if self._abort.is_set():
                    log.warning("%s crashed during shutdown: %r", self.name, exc)
                    return StopReason.SHUTDOWN, exc
                if not decision.restart:
                    log.error(
                        "%s failed: %d crashes within %.0fs, escalating",
                        self.name,
                        decision.crashes_in_window,
                        self._supervisor.policy.within_seconds,
                        exc_info=exc,
                    )
                    self.state = ActorState.FAILED
                    self.close(StopReason.FAILED, drop_pending=True)
                    return StopReason.FAILED, exc
                log.warning(
                    "%s crashed, restarting in %.3fs", self.name, decision.delay, exc_info=exc
                )
                self.group._restarting()
                self.state = ActorState.RESTARTING
                try:
                    async with asyncio.timeout(decision.delay):
                        await self._abort.wait()
                    return StopReason.SHUTDOWN, exc
                except TimeoutError:
                    pass

    async def _incarnation(self, actor: Actor[M]) -> StopReason:
        try:
            await actor.on_start()
            self.state = ActorState.RUNNING if self.close_reason is None else ActorState.STOPPING
            self._started.set()
            try:
                reason = await self._serve(actor)
            except Exception:
                await self._call_on_stop(actor, StopReason.CRASHED)
                raise
            await self._call_on_stop(actor, reason)
            return reason
        finally:
            for timer in list(self._timers):
                timer.cancel()

    async def _serve(self, actor: Actor[M]) -> StopReason:
        while True:
            try:
                envelope = await self.mailbox.get(self.group.idle_timeout)
            except ActorStopped:
                return self.close_reason or StopReason.STOPPED
            if envelope is None:
                self.group._idle(self)
                continue
            await self._turn(actor, envelope)

    async def _turn(self, actor: Actor[M], envelope: Envelope[M]) -> None:
        message = envelope.message
        try:
            handler = actor._handler_for(message)
            if handler is None:
                raise UnhandledMessage(self.name, type(message))
            result = await handler(message)
        except Rejected as exc:
            if envelope.replies:
                envelope.fail(exc)
            else:
                log.info("%s rejected %s: %s", self.name, type(message).__name__, exc.code)
        except asyncio.CancelledError:
            envelope.fail(ActorStopped(f"{self.name} cancelled"))
            raise
        except Exception as exc:
            crashed = ActorCrashed(f"{self.name} crashed handling {type(message).__name__}")
            crashed.__cause__ = exc
            envelope.fail(crashed)
            raise
        else:
            envelope.resolve(result)

    async def _call_on_stop(self, actor: Actor[M], reason: StopReason) -> None:
        try:
            await actor.on_stop(reason)
        except Exception:
            log.exception("%s: on_stop raised", self.name)

    def _finish(self, reason: StopReason, error: BaseException | None) -> None:
        self.close(reason, drop_pending=True)
        if reason is StopReason.FAILED:
            self.state = ActorState.FAILED
        else:
            self.state = ActorState.STOPPED
        if not self._started.is_set():
            self._start_error = error or ActorStopped(f"{self.name} ended ({reason.value})")
            self._started.set()
        self._exited.set()
        self.group._exited(self, reason, error)
