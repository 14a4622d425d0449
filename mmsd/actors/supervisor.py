"""Supervision: a restart budget and exponential back-off for crashed actors (Erlang/OTP).

A crash is an *unexpected* exception from ``on_start`` or a handler (a :class:`Rejected`
is not a crash). Each actor's own task is its supervisor: it asks its :class:`Supervisor`
what to do, waits the back-off, then builds a fresh actor from its factory and calls
``on_start`` again. Past the budget (more than ``max_restarts`` crashes within
``within_seconds``) it escalates: the actor is marked failed, its mailbox closed, and the
group's ``on_exit`` callback (the parent) is told.

Contract with actors: the message whose handler crashed is not retried (it might be a
poison message) and an asker gets :class:`ActorCrashed`; the work it stood for is not
lost because ``on_start`` rebuilds pending work from the store, where the truth lives.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass

from mmsd.clock import Clock


@dataclass(frozen=True)
class SupervisionPolicy:
    """How often and how fast a crashed actor is restarted before it is declared failed."""

    max_restarts: int = 5
    within_seconds: float = 60.0
    backoff_initial: float = 0.5
    backoff_factor: float = 2.0
    backoff_max: float = 30.0

    def __post_init__(self) -> None:
        if self.max_restarts < 0 or self.within_seconds <= 0:
            raise ValueError("max_restarts must be >= 0 and within_seconds > 0")
        if self.backoff_initial < 0 or self.backoff_factor < 1 or self.backoff_max < 0:
            raise ValueError("back-off must be non-negative and non-shrinking")

    def backoff(self, crashes: int) -> float:
        """The delay before the restart that follows the ``crashes``-th crash in the window."""
        if crashes < 1:
            return 0.0
        return min(self.backoff_max, self.backoff_initial * self.backoff_factor ** (crashes - 1))


@dataclass(frozen=True)
class RestartDecision:
    """What to do after one crash: restart after ``delay`` seconds, or escalate."""

    restart: bool
    delay: float
    crashes_in_window: int


class Supervisor:
    """The restart bookkeeping of one actor: crash times in a sliding window."""

    def __init__(self, policy: SupervisionPolicy, clock: Clock) -> None:
        self.policy = policy
        self.crashes_total = 0
        self._clock = clock
        self._recent: deque[float] = deque()

    def on_crash(self) -> RestartDecision:
        """Record a crash now and decide: restart with back-off, or escalate past the budget."""
        now = self._clock.monotonic()
        self.crashes_total += 1
        while self._recent and self._recent[0] <= now - self.policy.within_seconds:
            self._recent.popleft()
        self._recent.append(now)
        crashes = len(self._recent)
        if crashes > self.policy.max_restarts:
            return RestartDecision(restart=False, delay=0.0, crashes_in_window=crashes)
        return RestartDecision(
            restart=True, delay=self.policy.backoff(crashes), crashes_in_window=crashes
        )
