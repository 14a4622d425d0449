"""Messages and the bounded mailbox every actor reads from.

Overflow rule (trio: explicit ``max_buffer_size``, no silent unbounded queue):

1. A :class:`Replaceable` message whose ``(type, replace_key())`` matches a message
   still pending takes that message's place in the queue (Textual's ``can_replace``):
   it is always accepted and never grows the queue.
2. Otherwise it is appended if fewer than ``max_size`` messages are pending.
3. Otherwise ``put`` (``ActorRef.tell``) waits for space, up to its timeout, then raises
   :class:`MailboxFull`; ``put_nowait`` (``ActorRef.try_tell``) returns ``False``.
4. ``put_overflow`` (``ActorRef.notify``) takes only replaceable messages and appends
   even past ``max_size``. Because rule 1 still applies, the excess is bounded by the
   number of distinct replace keys (e.g. one "child finished" per child, and children
   are capped). This is the child -> parent path: a child never waits for its parent's
   mailbox space, so bounded mailboxes cannot deadlock in a cycle.
5. A closed mailbox raises :class:`ActorStopped` on ``put``/``put_nowait``; ``get``
   still returns what was pending unless it was dropped on close, then raises.

Messages are at-most-once: they carry identifiers, and the truth lives in the store.
"""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import Hashable
from typing import Any, Generic, TypeVar

from mmsd.actors.errors import ActorStopped, MailboxFull

R = TypeVar("R")


class Message:
    """Base of every actor message; subclasses are frozen dataclasses carrying identifiers."""

    __slots__ = ()


class Replaceable(Message):
    """A message that supersedes a pending one of the same type and ``replace_key()``.

    Used to coalesce pokes such as "wake up" or "child finished": however many are sent
    while one is pending, the actor handles one, carrying the newest fields.
    """

    __slots__ = ()

    def replace_key(self) -> Hashable:
        """The identity within the type under which a newer message replaces a pending one."""
        return None


class Request(Message, Generic[R]):
    """A message that expects a reply of type ``R`` (``ActorRef.ask``).

    The handler's return value is the reply; a handler raising :class:`Rejected` makes
    the asker's ``ask`` raise it.
    """

    __slots__ = ()


M = TypeVar("M", bound=Message)


class Envelope(Generic[M]):
    """One queued message with the futures of those waiting for its reply."""

    __slots__ = ("key", "message", "replies")

    def __init__(self, message: M, reply: asyncio.Future[Any] | None = None) -> None:
        self.message = message
        self.replies: list[asyncio.Future[Any]] = [] if reply is None else [reply]
        self.key: Hashable | None = (
            (type(message), message.replace_key()) if isinstance(message, Replaceable) else None
        )

    def resolve(self, value: object) -> None:
        """Deliver the handler's result to every asker still waiting."""
        for reply in self.replies:
            if not reply.done():
                reply.set_result(value)

    def fail(self, error: BaseException) -> None:
        """Deliver an error to every asker still waiting."""
        for reply in self.replies:
            if not reply.done():
                reply.set_exception(error)


class Mailbox(Generic[M]):
    """A bounded FIFO of envelopes with one reader, following the module's overflow rule."""

    def __init__(self, max_size: int) -> None:
        if max_size < 1:
            raise ValueError("a mailbox holds at least one message")
        self.max_size = max_size
        self.replaced_total = 0
        self._items: deque[Envelope[M]] = deque()
        self._pending_by_key: dict[Hashable, Envelope[M]] = {}
        self._getter: asyncio.Future[None] | None = None
        self._putters: deque[asyncio.Future[None]] = deque()
        self._closed = False

    def __len__(self) -> int:
        return len(self._items)

    @property
    def closed(self) -> bool:
        """True once :meth:`close` was called: intake is over."""
        return self._closed

    def put_nowait(self, envelope: Envelope[M]) -> bool:
        """Queue without waiting; False when full (rules 1-2, 5)."""
        return self._admit(envelope, overflow=False)

    def put_overflow(self, envelope: Envelope[M]) -> bool:
        """Queue a replaceable message even past ``max_size`` (rule 4, never waits)."""
        if envelope.key is None:
            raise TypeError("only Replaceable messages may bypass the mailbox bound")
        return self._admit(envelope, overflow=True)

    async def put(self, envelope: Envelope[M], timeout: float | None = None) -> None:  # noqa: ASYNC109 (the timeout selects a typed error)
        """Queue, waiting up to ``timeout`` seconds for space; :class:`MailboxFull` after."""
        loop = asyncio.get_running_loop()
        deadline = None if timeout is None else loop.time() + timeout
        while not self._admit(envelope, overflow=False):
            if deadline is not None and loop.time() >= deadline:
                raise MailboxFull(f"mailbox full ({self.max_size}) for {timeout}s")
            putter: asyncio.Future[None] = loop.create_future()
            self._putters.append(putter)
            try:
                async with asyncio.timeout_at(deadline):
                    await putter
            except BaseException as exc:
                putter.cancel()
                try:
                    self._putters.remove(putter)
                except ValueError:
                    pass
                if not putter.cancelled():
                    self._wake_putter()  # hand the wake-up we got to the next in line
                if isinstance(exc, TimeoutError):
                    raise MailboxFull(f"mailbox full ({self.max_size}) for {timeout}s") from None
                raise

    async def get(self, timeout: float | None = None) -> Envelope[M] | None:  # noqa: ASYNC109 (the timeout selects a typed error)
        """The next envelope; None after ``timeout`` idle seconds; ActorStopped once closed and empty."""
        while not self._items:
            if self._closed:
                raise ActorStopped("mailbox closed")
            if self._getter is not None:
                raise RuntimeError("a mailbox has exactly one reader")
            getter: asyncio.Future[None] = asyncio.get_running_loop().create_future()
            self._getter = getter
            try:
                async with asyncio.timeout(timeout):
                    await getter
            except TimeoutError:
                if not self._items:
                    return None
            finally:
                self._getter = None
        envelope = self._items.popleft()
        if envelope.key is not None and self._pending_by_key.get(envelope.key) is envelope:
            del self._pending_by_key[envelope.key]
        self._wake_putter()
        return envelope

    def close(self, *, drop_pending: bool = False) -> list[Envelope[M]]:
        """End intake (the sentinel); with ``drop_pending`` also remove and return what was queued."""
        self._closed = True
        dropped: list[Envelope[M]] = []
        if drop_pending:
            dropped = list(self._items)
            self._items.clear()
            self._pending_by_key.clear()
        if self._getter is not None and not self._getter.done():
            self._getter.set_result(None)
        while self._putters:
            putter = self._putters.popleft()
            if not putter.done():
                putter.set_result(None)
        return dropped

    def _admit(self, envelope: Envelope[M], *, overflow: bool) -> bool:
        if self._closed:
            raise ActorStopped("mailbox closed")
        if envelope.key is not None:
            pending = self._pending_by_key.get(envelope.key)
            if pending is not None:
                pending.message = envelope.message
                pending.replies.extend(envelope.replies)
                self.replaced_total += 1
                return True
        if len(self._items) >= self.max_size and not overflow:
            return False
        self._items.append(envelope)
        if envelope.key is not None:
            self._pending_by_key[envelope.key] = envelope
        if self._getter is not None and not self._getter.done():
            self._getter.set_result(None)
        return True

    def _wake_putter(self) -> None:
        while self._putters and len(self._items) < self.max_size:
            putter = self._putters.popleft()
            if not putter.done():
                putter.set_result(None)
                return
