"""One ``$batch`` request for the batch parts of many callers: cross-caller batching.

A ``$batch`` may carry any 20 requests of a tenant, whichever users they are for,
and every request through msgraph-sdk's adapter costs the same fixed CPU (the
SDK's request building, auth, middleware, httpx, the socket) whether it carries
one item or twenty. The engine's user actors each send their own small batches
(a user's online-meeting lookups, series, re-reads, PATCHes), so on a tenant
wave many small ``$batch`` requests left at once. :class:`BatchLane` merges them:
callers hand it a *part* (the items one caller's pacing permit covers, already
encoded) and get back the answers to exactly those items.

Merging never delays a part that could leave now on its own: parts submitted in
the same event-loop turn leave together, and when ``max_in_flight`` ``$batch``
requests are out, new parts queue and the next free slot takes as many queued
parts, in arrival order, as fit in one ``$batch`` (``max_items``). A part is
never split, so the permit that covers it covers exactly one HTTP request. What
each part gets back is what its own request would have got: the outer status,
headers and body, its items' answers (by the ids it gave them), or the
transport error — a lost answer is lost for every part in the request, and each
caller decides, item by item, what that means (a PATCH's outcome is unknown).

Graph runs up to four Outlook requests of a batch at a time whatever mailbox
they are for (``batch_outlook_parallel``), so a merged batch never raises a
mailbox's concurrency above what its parts' permits hold.
"""

from __future__ import annotations

import asyncio
import time
from collections import deque
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass

import httpx

from mmsd.graph.batch import (
    MAX_BATCH,
    BatchItem,
    RawItemResponse,
    decode_batch_response,
    encode_batch,
)

#: One item of a part: the caller's id for it, the item, its body encoded once.
Entry = tuple[str, BatchItem, bytes | None]


@dataclass(frozen=True)
class SentBatch:
    """What the HTTP layer answered to one ``$batch`` request."""

    status: int
    headers: Mapping[str, str]
    content: bytes


@dataclass(frozen=True)
class PartAnswer:
    """One part's share of a ``$batch`` answer.

    ``error`` is the transport error when no answer came (``status`` 0). Otherwise
    ``status``/``headers``/``content`` are the outer answer's; ``answers`` maps the
    part's own item ids to their answers when the outer status is 200 and the body
    is a readable batch answer, else it is None.
    """

    status: int
    headers: Mapping[str, str]
    content: bytes
    answers: dict[str, RawItemResponse] | None
    error: httpx.TransportError | None
    latency_s: float


class _Part:
    __slots__ = ("attempt", "entries", "future")

    def __init__(
        self, entries: Sequence[Entry], attempt: int, future: asyncio.Future[PartAnswer]
    ) -> None:
        self.entries = entries
        self.attempt = attempt
        self.future = future


#: Sends one encoded ``$batch`` body; ``attempt`` is the highest attempt among its items.
Send = Callable[[bytes, int], Awaitable[SentBatch]]


class BatchLane:
    """Merges concurrently submitted batch parts into shared ``$batch`` requests."""

    def __init__(
        self,
        send: Send,
        *,
        max_items: int = 20,
        max_in_flight: int = 8,
        eager_below: int | None = None,
    ) -> None:
        if max_items < 1 or max_in_flight < 1:
            raise ValueError("max_items and max_in_flight must be at least 1")
        if eager_below is not None and eager_below < 1:
            raise ValueError("eager_below must be at least 1")
        if max_items > MAX_BATCH:
            raise ValueError(f"a $batch holds at most {MAX_BATCH} requests")
        self._send = send
        self.max_items = max_items
        self.max_in_flight = max_in_flight
        # Below this many requests in flight a batch leaves even if not full.
        self.eager_below = max_in_flight if eager_below is None else min(eager_below, max_in_flight)
        self._queue: deque[_Part] = deque()
        self._in_flight = 0
        self._kick_scheduled = False
        self._tasks: set[asyncio.Task[None]] = set()
        self._closed = False
        self.requests_sent = 0  # $batch requests, for tests and benchmarks
        self.parts_sent = 0

    @property
    def queued(self) -> int:
        """Parts waiting for a free request slot."""
        return len(self._queue)

    async def send(self, entries: Sequence[Entry], attempt: int = 1) -> PartAnswer:
        """Send ``entries`` (at most ``max_items``, ids unique within them) in some ``$batch``."""
        if self._closed:
            raise RuntimeError("the batch lane is closed")
        if not entries:
            raise ValueError("a batch part needs at least one item")
        if len(entries) > self.max_items:
            raise ValueError(f"a batch part holds at most {self.max_items} items")
        loop = asyncio.get_running_loop()
        part = _Part(entries, attempt, loop.create_future())
        self._queue.append(part)
        if not self._kick_scheduled:
            self._kick_scheduled = True
            loop.call_soon(self._kick)
        return await part.future

    def _kick(self) -> None:
        """Start ``$batch`` requests while slots are free: full ones always, others when few fly.

        A batch takes the queued parts that fit, first fit in arrival order (the
        oldest part always goes first; a part too large for the room left waits for
        the next batch, at its head). With ``eager_below`` or more requests in
        flight, a batch with room left and nothing else queued waits for more parts
        (the end of any request in flight kicks the lane again); below that,
        whatever is queued leaves at once.
        """
        self._kick_scheduled = False
        while self._queue and self._in_flight < self.max_in_flight:
            taken: list[_Part] = []
            left: deque[_Part] = deque()
            size = 0
            for part in self._queue:
                if part.future.done():  # its caller gave up (cancelled) before it left
                    continue
                if size + len(part.entries) <= self.max_items:
                    taken.append(part)
                    size += len(part.entries)
                else:
                    left.append(part)
            if not taken:
                self._queue = left
                return
            full = bool(left) or size >= self.max_items
            if not full and self._in_flight >= self.eager_below:
                self._queue = deque(taken)
                return
            self._queue = left
            self._in_flight += 1
            task = asyncio.get_running_loop().create_task(
                self._flight(taken), name="mmsd-batch-lane"
            )
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)

    async def _flight(self, parts: list[_Part]) -> None:
        try:
            await self._deliver(parts)
        finally:
            self._in_flight -= 1
            self._kick()

    async def _deliver(self, parts: list[_Part]) -> None:
        """One ``$batch`` for ``parts``; every part's future is resolved, whatever happens."""
        ids: list[tuple[int, str]] = []  # merged id -> (part, the part's own id)
        pairs: list[tuple[str, BatchItem]] = []
        bodies: list[bytes | None] = []
        for p, part in enumerate(parts):
            for own_id, item, body in part.entries:
                ids.append((p, own_id))
                pairs.append((str(len(pairs)), item))
                bodies.append(body)
        started = time.perf_counter()
        try:
            self.requests_sent += 1
            self.parts_sent += len(parts)
            sent = await self._send(encode_batch(pairs, bodies), max(p.attempt for p in parts))
        except httpx.TransportError as exc:
            latency = time.perf_counter() - started
            for part in parts:
                _resolve(part, PartAnswer(0, {}, b"", None, exc, latency))
            return
        except Exception as exc:  # each caller gets it; the lane's task ends cleanly
            for part in parts:
                if not part.future.done():
                    part.future.set_exception(exc)
            return
        except BaseException:  # cancelled (the client is closing)
            for part in parts:
                part.future.cancel()
            raise
        latency = time.perf_counter() - started
        split: list[dict[str, RawItemResponse]] | None = None
        if sent.status == 200:
            try:
                merged = decode_batch_response(sent.content)
            except ValueError:
                split = None
            else:
                split = [{} for _ in parts]
                for merged_id, answer in merged.items():
                    if merged_id.isdigit() and int(merged_id) < len(ids):
                        p, own_id = ids[int(merged_id)]
                        split[p][own_id] = answer
        for p, part in enumerate(parts):
            answers = split[p] if split is not None else None
            _resolve(
                part, PartAnswer(sent.status, sent.headers, sent.content, answers, None, latency)
            )

    async def aclose(self) -> None:
        """Cancel requests in flight and fail queued parts (the client is closing)."""
        self._closed = True
        for part in self._queue:
            if not part.future.done():
                part.future.cancel()
        self._queue.clear()
        tasks = list(self._tasks)
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)


def _resolve(part: _Part, answer: PartAnswer) -> None:
    if not part.future.done():
        part.future.set_result(answer)
