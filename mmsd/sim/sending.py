"""Exchange Online's sending limits per sender mailbox: delayed messages and the daily quota.

Semantics (what :mod:`mmsd.sim.bounds` assumes):

* A *message* is what one submission sends (one meeting update to all its
  recipients). :meth:`SendingLimiter.plan` is called once per message at its
  submission time, with its number of recipients.
* **Recipients per day** is a sliding window over submission times:
  a message is accepted only if the recipients accepted in the last
  ``send_recipients_window_s`` plus its own fit ``send_recipients``; otherwise the
  whole message **bounces** (nothing is delivered, nothing counts) and the
  caller puts a non-delivery report (:data:`NDR_STATUS`) in the sender's mailbox.
* **Messages per minute** delays, never refuses: accepted message ``k`` of a
  sender is delivered at ``max(submitted_k, delivered_{k-N} + W)`` with
  ``N = send_messages`` and ``W = send_messages_window_s``, so no window of
  ``W`` seconds holds more than ``N`` deliveries, in submission order.
  ``Delivery.deliver_at`` is ``None`` when that instant is not after the
  submission (deliver now, before the request answers), else the monotonic
  instant; the caller parks the payload with :meth:`SendingLimiter.defer` and
  delivers what :meth:`SendingLimiter.due` returns as the clock passes it.
"""

from __future__ import annotations

import heapq
import itertools
from collections import deque
from dataclasses import dataclass
from typing import Generic, TypeVar

from mmsd.clock import Clock
from mmsd.sim.limits import LimitsProfile
from mmsd.sim.throttle import SlidingWindow

NDR_STATUS = "554 5.2.0 STOREDRV.Submission.Exception:SubmissionQuotaExceededException"

P = TypeVar("P")


@dataclass(frozen=True)
class Delivery:
    """What becomes of one submitted message: delivered now, later, or bounced."""

    sender_id: str
    recipients: int
    submitted_at: float
    deliver_at: float | None  # monotonic; None = now
    bounced: bool


@dataclass
class _Sender:
    deliveries: deque[float]
    recipients: SlidingWindow


class SendingLimiter(Generic[P]):
    """Per-sender sending limits and the queue of delayed deliveries (payloads of type ``P``)."""

    def __init__(self, profile: LimitsProfile, clock: Clock) -> None:
        self._profile = profile
        self._clock = clock
        self._senders: dict[str, _Sender] = {}
        self._heap: list[tuple[float, int, P]] = []
        self._seq = itertools.count()
        self._delayed = 0
        self._bounced = 0

    def set_profile(self, profile: LimitsProfile) -> None:
        """Change the limits at run time; past submissions keep counting."""
        self._profile = profile

    def plan(self, sender_id: str, recipients: int) -> Delivery:
        """Submit one message of ``sender_id`` to ``recipients`` people now and decide its fate."""
        if recipients < 0:
            raise ValueError("recipients must be >= 0")
        now = self._clock.monotonic()
        p = self._profile
        sender = self._sender(sender_id)
        if recipients > p.send_recipients or (
            recipients
            and sender.recipients.free_at(
                now, p.send_recipients_window_s, p.send_recipients, recipients
            )
            is not None
        ):
            self._bounced += 1
            return Delivery(sender_id, recipients, now, None, bounced=True)
        if recipients:
            sender.recipients.record(now, recipients)
        deliveries = sender.deliveries
        while len(deliveries) > p.send_messages:
            deliveries.popleft()
        at = now
        if len(deliveries) == p.send_messages:
            at = max(now, deliveries[0] + p.send_messages_window_s)
        deliveries.append(at)
        if at <= now:
            return Delivery(sender_id, recipients, now, None, bounced=False)
        self._delayed += 1
        return Delivery(sender_id, recipients, now, at, bounced=False)

    def recipients_free_at(self, sender_id: str, recipients: int) -> float | None:
        """``None`` if a message to ``recipients`` would be accepted now, else when it first would."""
        p = self._profile
        if recipients > p.send_recipients:
            raise ValueError("more recipients than a day's quota: such a message always bounces")
        return self._sender(sender_id).recipients.free_at(
            self._clock.monotonic(), p.send_recipients_window_s, p.send_recipients, recipients
        )

    def recipients_used(self, sender_id: str) -> int:
        """Recipients accepted for ``sender_id`` within the current rolling day."""
        sender = self._senders.get(sender_id)
        if sender is None:
            return 0
        return sender.recipients.used(
            self._clock.monotonic(), self._profile.send_recipients_window_s
        )

    def defer(self, delivery: Delivery, payload: P) -> None:
        """Park ``payload`` until ``delivery.deliver_at`` (only for delayed, accepted messages)."""
        if delivery.bounced or delivery.deliver_at is None:
            raise ValueError("only a delayed, accepted delivery can be deferred")
        heapq.heappush(self._heap, (delivery.deliver_at, next(self._seq), payload))

    def due(self, now: float | None = None) -> list[P]:
        """Pop every parked payload whose time has come (at ``now``, default the clock), in order."""
        if now is None:
            now = self._clock.monotonic()
        out: list[P] = []
        while self._heap and self._heap[0][0] <= now:
            out.append(heapq.heappop(self._heap)[2])
        return out

    def next_due(self) -> float | None:
        """The monotonic instant of the next parked delivery, or ``None``."""
        return self._heap[0][0] if self._heap else None

    def pending(self) -> int:
        """How many deliveries are parked."""
        return len(self._heap)

    def counters(self) -> dict[str, int]:
        """Messages delayed and bounced so far."""
        return {"delayed": self._delayed, "bounced": self._bounced}

    def _sender(self, sender_id: str) -> _Sender:
        sender = self._senders.get(sender_id)
        if sender is None:
            sender = self._senders[sender_id] = _Sender(deque(), SlidingWindow())
        return sender
