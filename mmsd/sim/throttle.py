"""Enforcement of the request limits of SPEC section 4 that fall within one tenant.

Window semantics (the closed-form bound in :mod:`mmsd.sim.bounds` is a true lower
bound for exactly these):

* Every "``N`` per ``W`` seconds" budget is an exact **sliding window**: a
  request is admitted at monotonic time ``t`` only if fewer than ``N`` units were
  admitted at times ``s`` with ``s + W > t``. An admission at ``s`` frees its
  units at ``s + W`` exactly. Upload budgets weigh each request by its body
  bytes; the others weigh every request 1.
* Admission is decided when a request starts; a refused request (429) consumes
  nothing, in any window.
* Outlook concurrency: at most ``outlook_concurrency`` admitted requests of one
  mailbox between ``__aenter__`` and ``__aexit__`` of :meth:`Throttler.outlook`.
* One call per request checks every budget the request falls under (its own
  scope and the overall application budget) all-or-nothing: when any refuses,
  none records it, and the answer names the budget that frees last.

Every refusal raises :class:`Throttled` with ``retry_at``, the monotonic instant
the budget frees (``None`` for concurrency, which frees when another request
ends), and an integer ``retry_after`` (>= 1 s, rounded up) for the header.

Cost: each check is amortised O(1) (expired entries are dropped once, equal
timestamps share one entry); computing ``retry_at`` on a refusal is O(log n).
"""

from __future__ import annotations

import bisect
import enum
import math
from dataclasses import dataclass, field
from types import TracebackType
from typing import Any

from mmsd.clock import Clock
from mmsd.sim.limits import LimitsProfile


class ThrottleScope(enum.StrEnum):
    """Which limit refused a request (a label for counters and ``/_sim/``)."""

    MAILBOX_CONCURRENCY = "mailboxConcurrency"
    MAILBOX_REQUESTS = "mailboxRequests"
    MAILBOX_UPLOAD = "mailboxUpload"
    TEAMS = "teamsTenant"
    ONLINE_MEETINGS = "onlineMeetingsPerUser"
    APP = "application"


class Throttled(Exception):
    """A request refused with 429: ``code`` and ``message`` for the body, ``retry_after`` for the header."""

    def __init__(
        self, *, scope: ThrottleScope, code: str, message: str, now: float, retry_at: float | None
    ) -> None:
        super().__init__(f"{scope}: {message}")
        self.scope: str = scope
        self.code = code
        self.message = message
        self.retry_at = retry_at
        # The exact wait (a perfect client's); the header rounds it up to whole seconds.
        self.wait_s = 1.0 if retry_at is None else max(0.0, retry_at - now)
        self.retry_after: int = max(1, math.ceil(self.wait_s - 1e-9))

    def body(self) -> dict[str, Any]:
        """The Graph error body for the 429 answer."""
        return {"error": {"code": self.code, "message": self.message}}


class SlidingWindow:
    """Weighted admissions at non-decreasing times; counts those younger than the window."""

    __slots__ = ("_base", "_cums", "_head", "_times", "_total")

    def __init__(self) -> None:
        self._times: list[float] = []
        self._cums: list[int] = []  # cumulative weight up to and including each entry
        self._head = 0  # first live entry
        self._base = 0  # cumulative weight of the expired entries
        self._total = 0

    def used(self, now: float, window_s: float) -> int:
        """Weight admitted within ``(now - window_s, now]``."""
        times = self._times
        head = self._head
        while head < len(times) and times[head] + window_s <= now:
            head += 1
        if head != self._head:
            self._base = self._cums[head - 1]
            if head > 64 and 2 * head > len(times):
                del times[:head]
                del self._cums[:head]
                head = 0
            self._head = head
        return self._total - self._base

    def free_at(self, now: float, window_s: float, capacity: int, weight: int) -> float | None:
        """``None`` if ``weight`` fits now, else the first instant it fits (at most ``capacity``)."""
        if weight > capacity:
            raise ValueError(f"a weight of {weight} can never fit a budget of {capacity}")
        need = self.used(now, window_s) + weight - capacity
        if need <= 0:
            return None
        index = bisect.bisect_left(self._cums, self._base + need, lo=self._head)
        return self._times[index] + window_s

    def record(self, now: float, weight: int) -> None:
        """Admit ``weight`` units at ``now`` (``now`` never before the last admission)."""
        self._total += weight
        if self._times and self._times[-1] >= now and len(self._times) > self._head:
            self._cums[-1] = self._total
        else:
            self._times.append(now)
            self._cums.append(self._total)


@dataclass
class _Mailbox:
    in_flight: int = 0
    requests: SlidingWindow = field(default_factory=SlidingWindow)
    upload: SlidingWindow = field(default_factory=SlidingWindow)


class OutlookSlot:
    """One Outlook request's admission: ``async with`` takes it (or raises Throttled), exit frees it."""

    __slots__ = ("_held", "_mailbox", "_throttler", "_upload_bytes")

    def __init__(self, throttler: Throttler, mailbox_id: str, upload_bytes: int) -> None:
        self._throttler = throttler
        self._mailbox = mailbox_id
        self._upload_bytes = upload_bytes
        self._held = False

    def acquire(self) -> None:
        """Admit the request now or raise :class:`Throttled`; pair with :meth:`release`."""
        if self._held:
            raise RuntimeError("this Outlook slot is already held")
        self._throttler._admit_outlook(self._mailbox, self._upload_bytes)
        self._held = True

    def release(self) -> None:
        """Free the concurrency slot (idempotent)."""
        if self._held:
            self._held = False
            self._throttler._mailboxes[self._mailbox].in_flight -= 1

    async def __aenter__(self) -> OutlookSlot:
        self.acquire()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.release()


class Throttler:
    """The per-tenant request limits of one simulator, over a :class:`~mmsd.clock.Clock`.

    The server makes exactly one call per Graph request (each request of a
    ``$batch`` on its own, the outer batch not), and every call also counts the
    request against the overall application budget:

    * :meth:`outlook` around an events/messages request (holds the mailbox's
      concurrency slot until the request is answered);
    * :meth:`teams` for an onlineMeetings request, naming the user when the
      server knows that the request creates an online meeting;
    * :meth:`app` for any other request (users, delta, ...).

    :meth:`online_meeting_created` counts a creation discovered only after the
    request was admitted (createOrGet finding no meeting with its externalId).
    """

    def __init__(self, profile: LimitsProfile, clock: Clock) -> None:
        self._profile = profile
        self._clock = clock
        self._mailboxes: dict[str, _Mailbox] = {}
        self._teams = SlidingWindow()
        self._app = SlidingWindow()
        self._meetings: dict[str, SlidingWindow] = {}
        self._counters = dict.fromkeys(ThrottleScope, 0)

    @property
    def profile(self) -> LimitsProfile:
        """The limits in force."""
        return self._profile

    def set_profile(self, profile: LimitsProfile) -> None:
        """Change the limits at run time; what was admitted keeps counting in the new windows."""
        self._profile = profile

    def counters(self) -> dict[str, int]:
        """429s answered so far, by scope (every scope present)."""
        return {str(scope): n for scope, n in self._counters.items()}

    def in_flight(self, mailbox_id: str) -> int:
        """Outlook requests of a mailbox admitted and not yet finished."""
        mailbox = self._mailboxes.get(mailbox_id)
        return 0 if mailbox is None else mailbox.in_flight

    def outlook(self, mailbox_id: str, upload_bytes: int = 0) -> OutlookSlot:
        """An async context manager admitting one Outlook request of ``mailbox_id``.

        ``upload_bytes`` is the request body's size for PATCH/POST/PUT. Raises
        :class:`Throttled` on entry; ``ValueError`` at once if the body alone
        exceeds the upload budget (it could never be admitted: answer 413).
        """
        if upload_bytes < 0:
            raise ValueError("upload_bytes must be >= 0")
        if upload_bytes > self._profile.outlook_upload_bytes:
            raise ValueError("request body is larger than the mailbox upload budget")
        return OutlookSlot(self, mailbox_id, upload_bytes)

    def teams(self, creating_for: str | None = None) -> None:
        """Admit one onlineMeetings request (creating one for ``creating_for``) or raise Throttled."""
        p = self._profile
        now = self._clock.monotonic()
        checks = [
            (self._teams, p.teams_window_s, p.teams_requests, 1, ThrottleScope.TEAMS),
            self._app_check(),
        ]
        if creating_for is not None:
            checks.append(self._meetings_check(creating_for))
        self._admit(now, checks)

    def app(self) -> None:
        """Admit one request that is neither Outlook nor Teams, or raise :class:`Throttled`."""
        self._admit(self._clock.monotonic(), [self._app_check()])

    def online_meeting_created(self, user_id: str) -> None:
        """Count one online meeting created for ``user_id`` or raise :class:`Throttled` (monthly cap)."""
        self._admit(self._clock.monotonic(), [self._meetings_check(user_id)])

    def _app_check(self) -> _Check:
        p = self._profile
        return (self._app, p.graph_window_s, p.graph_requests, 1, ThrottleScope.APP)

    def _meetings_check(self, user_id: str) -> _Check:
        window = self._meetings.get(user_id)
        if window is None:
            window = self._meetings[user_id] = SlidingWindow()
        p = self._profile
        return (
            window,
            p.online_meetings_window_s,
            p.online_meetings_per_user,
            1,
            ThrottleScope.ONLINE_MEETINGS,
        )

    def _admit(self, now: float, checks: list[_Check]) -> None:
        """Record the request in every window, or in none and raise for the latest to free."""
        worst: tuple[float, ThrottleScope] | None = None
        for window, window_s, capacity, weight, scope in checks:
            free = window.free_at(now, window_s, capacity, weight)
            if free is not None and (worst is None or free > worst[0]):
                worst = (free, scope)
        if worst is not None:
            code, message = _ANSWERS[worst[1]]
            self._counters[worst[1]] += 1
            raise Throttled(scope=worst[1], code=code, message=message, now=now, retry_at=worst[0])
        for window, _, _, weight, _ in checks:
            window.record(now, weight)

    def _admit_outlook(self, mailbox_id: str, upload_bytes: int) -> None:
        p = self._profile
        now = self._clock.monotonic()
        mailbox = self._mailboxes.get(mailbox_id)
        if mailbox is None:
            mailbox = self._mailboxes[mailbox_id] = _Mailbox()
        if mailbox.in_flight >= p.outlook_concurrency:
            scope = ThrottleScope.MAILBOX_CONCURRENCY
            code, message = _ANSWERS[scope]
            self._counters[scope] += 1
            raise Throttled(scope=scope, code=code, message=message, now=now, retry_at=None)
        checks = [
            (
                mailbox.requests,
                p.outlook_window_s,
                p.outlook_requests,
                1,
                ThrottleScope.MAILBOX_REQUESTS,
            ),
            self._app_check(),
        ]
        if upload_bytes:
            checks.append(
                (
                    mailbox.upload,
                    p.outlook_upload_window_s,
                    p.outlook_upload_bytes,
                    upload_bytes,
                    ThrottleScope.MAILBOX_UPLOAD,
                )
            )
        self._admit(now, checks)
        mailbox.in_flight += 1


_Check = tuple[SlidingWindow, float, int, int, ThrottleScope]

_ANSWERS: dict[ThrottleScope, tuple[str, str]] = {
    ThrottleScope.MAILBOX_CONCURRENCY: (
        "ApplicationThrottled",
        "Application is over its MailboxConcurrency limit.",
    ),
    ThrottleScope.MAILBOX_REQUESTS: (
        "ApplicationThrottled",
        "Application is over its MailboxRequests limit.",
    ),
    ThrottleScope.MAILBOX_UPLOAD: (
        "ApplicationThrottled",
        "Application is over its MailboxUpload limit.",
    ),
    ThrottleScope.TEAMS: ("TooManyRequests", "Please retry again later."),
    ThrottleScope.ONLINE_MEETINGS: (
        "TooManyRequests",
        "The user has reached the limit of online meetings created per month.",
    ),
    ThrottleScope.APP: ("TooManyRequests", "Please retry again later."),
}
