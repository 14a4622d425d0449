"""mmsd's pacing under Graph's and Exchange Online's limits (SPEC section 4).

:class:`GraphLimits` is the one place that knows mmsd's limits; every count is
"``X`` per ``X_window_s`` seconds" (the field names follow the simulator's limits
profile, so a benchmark can give both the same numbers). The pacers turn limits
into waits:

- :class:`MailboxPacer`: per app per mailbox — concurrent requests, requests per
  window, upload bytes per window (Outlook resources: events, messages);
- :class:`TenantPacer`: per tenant — Teams calls (onlineMeetings), and the
  registry of the tenant's mailbox pacers, online-meeting quotas and sending pacers;
- :class:`AppPacer`: per app across tenants — Graph overall, Teams across tenants;
- :class:`SendingPacer`: per organizer mailbox — messages a minute and recipients
  a day, which the engine asks before a PATCH that sends updates.

Every limit adapts, scope by scope: a ``429`` pauses its scope for ``Retry-After``
and lowers only the limit it names, to what Graph demonstrably accepted — a
request-window 429 lowers the count to the units Graph admitted in the last
window, a ``MailboxConcurrency`` 429 lowers the mailbox's concurrency to the most
requests mmsd had in flight while the refused one was out, minus one (and leaves
the request window alone). Lowered limits climb back slowly (over ``recovery_s``),
so a real limit lower than configured is found and held. Time comes from an injected :class:`~mmsd.clock.Clock`; waits go through
an injected ``sleep`` so tests drive everything without sleeping.
"""

from __future__ import annotations

import asyncio
import bisect
import dataclasses
import math
from collections import deque
from collections.abc import Awaitable, Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from mmsd.clock import Clock

MIB = 1024 * 1024
DAY_S = 86_400.0
MONTH_S = 30 * DAY_S

Sleep = Callable[[float], Awaitable[None]]


@dataclass(frozen=True)
class GraphLimits:
    """Every limit mmsd paces itself to; defaults are SPEC section 4's values."""

    # Outlook resources, per app per mailbox.
    outlook_requests: int = 10_000
    outlook_window_s: float = 600.0
    outlook_concurrency: int = 4
    outlook_upload_bytes: int = 150 * MIB
    outlook_upload_window_s: float = 300.0
    # Teams API calls (applied to onlineMeetings), per app per tenant.
    teams_requests: int = 30
    teams_window_s: float = 1.0
    # Teams API calls across all tenants, per app.
    app_teams_requests: int = 300
    app_teams_window_s: float = 1.0
    # Online meetings created, per user per rolling month.
    online_meetings_per_user: int = 2_000
    online_meetings_window_s: float = MONTH_S
    # Graph overall, per app across tenants.
    graph_requests: int = 130_000
    graph_window_s: float = 10.0
    # JSON batching.
    batch_max_requests: int = 20
    batch_outlook_parallel: int = 4
    # Sending, per organizer mailbox.
    send_messages: int = 30
    send_messages_window_s: float = 60.0
    send_recipients: int = 10_000
    send_recipients_window_s: float = DAY_S
    # Per event.
    attendees_per_event: int = 500
    # Adaptation: a request-window 429 lowers the count to what Graph admitted in the
    # last window (rate *= throttle_decrease when nothing was), never below
    # min_rate_fraction of the configured count; a concurrency 429 lowers the
    # concurrency to the peak in flight minus one. Both climb back over recovery_s.
    throttle_decrease: float = 0.5
    min_rate_fraction: float = 0.05
    recovery_s: float = 600.0
    # No longer used (windows are sliding, not token buckets); accepted so that
    # configurations which set it still load.
    burst_fraction: float = 0.05

    def __post_init__(self) -> None:
        for f in dataclasses.fields(self):
            value = getattr(self, f.name)
            if isinstance(value, bool) or not isinstance(value, int | float):
                raise ValueError(f"limits: {f.name} must be a number, got {value!r}")
            if f.type == "int" and not isinstance(value, int):
                raise ValueError(f"limits: {f.name} must be an integer, got {value!r}")
            if not math.isfinite(value) or value <= 0:
                raise ValueError(f"limits: {f.name} must be positive, got {value!r}")
        for name in ("throttle_decrease", "min_rate_fraction", "burst_fraction"):
            if getattr(self, name) > 1:
                raise ValueError(f"limits: {name} must be at most 1")
        if self.batch_max_requests > 20:
            raise ValueError("limits: batch_max_requests cannot exceed Graph's 20")

    @classmethod
    def from_mapping(cls, data: Mapping[str, Any]) -> GraphLimits:
        """Build limits from a TOML ``[tenants.NAME.limits]`` table; unknown keys are errors."""
        known = {f.name: f for f in dataclasses.fields(cls)}
        unknown = sorted(set(data) - set(known))
        if unknown:
            raise ValueError(
                f"limits: unknown key(s) {', '.join(unknown)}; known keys: {', '.join(sorted(known))}"
            )
        values: dict[str, Any] = {}
        for key, value in data.items():
            if (
                known[key].type == "float"
                and isinstance(value, int)
                and not isinstance(value, bool)
            ):
                value = float(value)
            values[key] = value
        return cls(**values)


@dataclass(frozen=True)
class RetryPolicy:
    """How mmsd retries a transient failure of one call (SPEC section 3)."""

    max_attempts: int = 6
    base_delay_s: float = 1.0
    max_delay_s: float = 60.0
    # A Retry-After longer than this is not waited for inside a call: the error surfaces
    # (transient) and the engine reschedules the user's migration instead.
    max_retry_after_s: float = 300.0

    def __post_init__(self) -> None:
        if isinstance(self.max_attempts, bool) or not isinstance(self.max_attempts, int):
            raise ValueError("retry: max_attempts must be an integer")
        if self.max_attempts < 1:
            raise ValueError("retry: max_attempts must be at least 1")
        for name in ("base_delay_s", "max_delay_s", "max_retry_after_s"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int | float) or value < 0:
                raise ValueError(f"retry: {name} must be a non-negative number")

    @classmethod
    def from_mapping(cls, data: Mapping[str, Any]) -> RetryPolicy:
        """Build a policy from a config table; unknown keys are errors."""
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(data) - known)
        if unknown:
            raise ValueError(f"retry: unknown key(s) {', '.join(unknown)}")
        return cls(**dict(data))

    def backoff(self, attempt: int, uniform: Callable[[float, float], float]) -> float:
        """Delay before retry number ``attempt`` (1-based): exponential, capped, equal jitter."""
        ceiling = min(self.max_delay_s, self.base_delay_s * (2 ** (attempt - 1)))
        return uniform(ceiling / 2, ceiling)


class RateWindow:
    """At most ``count`` units per ``window_s`` seconds, as Graph counts them: a sliding window.

    Graph (and the simulator) admit a request at its arrival when fewer than
    ``count`` units arrived within the last ``window_s``. mmsd cannot see arrival
    times, only that a request arrived between its send and its answer, so a used
    unit occupies the window from when it is taken until ``window_s`` after its
    answer: the server's window then never holds more than mmsd's, whatever the
    network delays, and the full rate is used (a token bucket would give away its
    burst share). Requests :meth:`take` units when sent and :meth:`finish` them
    when answered (refused units are not counted: Graph counts nothing for a
    ``429``); :meth:`reserve` books units at a future instant instead (the
    per-minute message pacing). The adaptive factor lowers ``count`` after a
    ``429`` to what Graph admitted (:meth:`throttled`) and climbs back linearly
    over ``recovery_s``; :meth:`pause` only honours a ``Retry-After``.
    """

    def __init__(self, clock: Clock, count: float, window_s: float, limits: GraphLimits) -> None:
        self._clock = clock
        self.count = float(count)
        self.window_s = float(window_s)
        self._decrease = limits.throttle_decrease
        self._floor = limits.min_rate_fraction
        self._recovery_s = limits.recovery_s
        now = clock.monotonic()
        self._stamps: list[float] = []  # when each used unit's window starts, ascending
        self._units: list[float] = []
        self._head = 0  # first entry still inside the window
        self._live = 0.0  # units of the entries from _head on
        self.in_flight = 0.0
        self._factor = 1.0
        self._factor_since = now
        self.paused_until = now
        # After a 429 and until its pause ends, answers still arriving for requests sent
        # before it were admitted too: they raise the learned count up to this ceiling.
        self._learn_until = now
        self._learn_ceiling = 0.0

    def factor(self, now: float | None = None) -> float:
        """The share of the configured count in force now (1.0 = not lowered)."""
        t = self._clock.monotonic() if now is None else now
        if t <= self._factor_since:
            return self._factor
        return min(1.0, self._factor + (t - self._factor_since) / self._recovery_s)

    def capacity(self, now: float | None = None) -> float:
        """Units allowed per window now (the configured count times the factor, at least 1)."""
        if self._factor >= 1.0:  # not lowered (the factor never exceeds 1): no clock, no product
            return max(1.0, math.floor(self.count))
        return max(1.0, math.floor(self.count * self.factor(now)))

    def room(self, now: float) -> tuple[float, float]:
        """``(used, ceiling)`` at ``now``: ``units`` more fit iff ``used + units <= ceiling``.

        The same answer as ``wait(units) == 0`` (a paused window fits nothing, an
        empty one anything), in a form a caller can test for many totals cheaply.
        """
        stamps, head = self._stamps, self._head
        if head < len(stamps) and stamps[head] + self.window_s <= now:
            self._expire(now)
        used = self._live + self.in_flight
        if self.paused_until > now:
            return used, -math.inf
        if used == 0:
            return used, math.inf
        if self._factor >= 1.0:
            return used, max(1.0, math.floor(self.count))
        return used, self.capacity(now)

    def _expire(self, now: float) -> None:
        stamps, head = self._stamps, self._head
        while head < len(stamps) and stamps[head] + self.window_s <= now:
            self._live -= self._units[head]
            head += 1
        if head > 256 and 2 * head > len(stamps):
            del stamps[:head]
            del self._units[:head]
            head = 0
        self._head = head

    def used(self, now: float | None = None) -> float:
        """Units inside the window now, those in flight included."""
        t = self._clock.monotonic() if now is None else now
        self._expire(t)
        return self._live + self.in_flight

    def wait(self, units: float = 1.0) -> float:
        """Seconds until ``units`` more fit (0 = now); an estimate when answers are awaited."""
        now = self._clock.monotonic()
        pause = max(0.0, self.paused_until - now)
        self._expire(now)
        excess = self._live + self.in_flight + units - self.capacity(now)
        if excess <= 0 or (self._live + self.in_flight == 0):
            return pause
        freed = 0.0
        for i in range(self._head, len(self._stamps)):
            freed += self._units[i]
            if freed >= excess:
                return max(pause, self._stamps[i] + self.window_s - now)
        # Units still in flight must be answered first; they free a window after that.
        return max(pause, self.window_s)

    def take(self, units: float = 1.0) -> None:
        """Units sent now (after :meth:`wait` said 0); :meth:`finish` them on the answer."""
        self.in_flight += units

    def finish(self, units: float, admitted: float | None = None) -> None:
        """``units`` taken earlier were answered; ``admitted`` of them (default all) count."""
        self.in_flight = max(0.0, self.in_flight - units)
        counted = units if admitted is None else admitted
        if counted > 0:
            now = self._clock.monotonic()
            self._book(now, counted)
            if now < self._learn_until:
                self._expire(now)
                learned = min(self._live, self._learn_ceiling) / self.count
                self._factor = max(self._factor, min(1.0, learned))

    def _book(self, at: float, units: float) -> None:
        stamps = self._stamps
        if not stamps or at >= stamps[-1]:  # the usual case: now is the latest stamp
            stamps.append(at)
            self._units.append(units)
        else:
            index = bisect.bisect_right(stamps, at, lo=self._head)
            stamps.insert(index, at)
            self._units.insert(index, units)
        self._live += units

    def reserve(self, units: float = 1.0) -> float:
        """Book ``units`` at the first instant they fit; the seconds to wait until then (0 = now)."""
        now = self._clock.monotonic()
        self._expire(now)
        delay = max(0.0, self.paused_until - now)
        excess = self._live + self.in_flight + units - self.capacity(now)
        if excess > 0 and self._live > 0:
            freed = 0.0
            for i in range(self._head, len(self._stamps)):
                freed += self._units[i]
                if freed >= excess:
                    delay = max(delay, self._stamps[i] + self.window_s - now)
                    break
            else:
                delay = max(delay, self._stamps[-1] + self.window_s - now)
        self._book(max(now + delay, self._stamps[-1] if self._stamps else now), units)
        return delay

    def pause_left(self) -> float:
        """Seconds until a Retry-After pause on this scope ends (0 when not paused)."""
        return max(0.0, self.paused_until - self._clock.monotonic())

    def pause(self, retry_after: float) -> None:
        """Send nothing in this scope for ``retry_after`` seconds; the count is kept."""
        now = self._clock.monotonic()
        until = now + max(0.0, retry_after)
        if until > self.paused_until:
            # The count climbs back only once the scope sends again.
            self._factor = self.factor(now)
            self._factor_since = max(now, self._factor_since, until)
            self.paused_until = until

    def throttled(self, retry_after: float, admitted: float | None = None) -> None:
        """A 429 from this window: pause for ``retry_after`` and learn the count, once per pause.

        ``admitted``: units Graph surely accepted within the last window. The count
        becomes that (the real limit is at least what was accepted, and mmsd was
        refused just above it), never more than one unit below the count in force,
        and it holds for ``recovery_s`` before climbing back over another
        ``recovery_s`` (a real limit is a standing condition: probing it every
        window would draw a 429 every window). Without evidence (None or 0) it is
        multiplied by ``throttle_decrease`` and climbs back from the pause's end.
        Answers arriving during the pause raise it again up to that ceiling.
        """
        now = self._clock.monotonic()
        until = now + max(0.0, retry_after)
        if now >= self.paused_until:
            # Not already paused: answers to requests sent before the pause do not
            # lower the rate a second time.
            in_force = self.capacity(now)
            if admitted is not None and admitted >= 1 and self.count > 0:
                learned = min(admitted, in_force - 1) / self.count
                self._factor_since = max(self._factor_since, until + self._recovery_s)
            else:
                learned = self.factor(now) * self._decrease
            self._factor = max(self._floor, min(1.0, learned))
            self._learn_ceiling = max(1.0, in_force - 1)
            self._learn_until = until
        if until > self.paused_until:
            self.paused_until = until
        self._factor_since = max(self._factor_since, self.paused_until)

    def admitted_recently(self) -> float:
        """Units answered (not refused) within the last window: what Graph surely accepted."""
        self._expire(self._clock.monotonic())
        return self._live

    def idle(self) -> bool:
        """True when nothing is in flight or in the window, unpaused and at full rate."""
        now = self._clock.monotonic()
        self._expire(now)
        return (
            self.factor(now) >= 1.0
            and now >= self.paused_until
            and self.in_flight == 0
            and self._live == 0
        )


class ConcurrencyLimit:
    """At most ``limit`` requests in flight; learned from concurrency 429s, recovered slowly.

    Holders :meth:`watch` the in-flight count while their request is out: the peak
    they saw bounds Graph's real limit when that request is refused (Graph had at
    most the others of mmsd's requests running), so :meth:`throttled` learns
    ``peak - 1``. The limit climbs back one step per ``recovery_s / configured``.
    """

    def __init__(self, clock: Clock, limit: int, recovery_s: float) -> None:
        self._clock = clock
        self.configured = limit
        self._limit = limit
        self._lowered_at = clock.monotonic()
        self._step_s = recovery_s / max(1, limit)
        self.in_flight = 0
        self._waiters: deque[tuple[int, asyncio.Future[int]]] = deque()
        self._watchers: list[list[int]] = []
        self._confirmed = 0  # the largest limit Graph has been seen to run without a 429

    def confirmed(self) -> bool:
        """True once Graph answered ``limit()`` concurrent requests without a concurrency 429."""
        return self._confirmed >= self.limit()

    def confirm(self, peak_in_flight: int) -> None:
        """Graph ran ``peak_in_flight`` requests at once and refused none for concurrency."""
        self._confirmed = max(self._confirmed, min(peak_in_flight, self.limit()))

    def limit(self) -> int:
        """The number of concurrent requests allowed now."""
        if self._limit < self.configured:
            steps = int((self._clock.monotonic() - self._lowered_at) / self._step_s)
            if steps > 0:
                self._limit = min(self.configured, self._limit + steps)
                self._lowered_at = self._clock.monotonic()
        return self._limit

    async def acquire(self, wanted: int = 1) -> int:
        """Wait for up to ``wanted`` slots (at most the current limit); return how many."""
        granted = self.try_acquire(wanted)
        if granted:
            return granted
        future: asyncio.Future[int] = asyncio.get_running_loop().create_future()
        self._waiters.append((wanted, future))
        try:
            return await future
        except BaseException:
            if future.done() and not future.cancelled():
                self.release(future.result())
            else:
                self._waiters.remove((wanted, future))
            raise

    def try_acquire(self, wanted: int = 1) -> int:
        """Up to ``wanted`` slots now, without waiting: 0 when none are free or others wait first."""
        if self._waiters:
            return 0
        return self._try(wanted)

    def _try(self, wanted: int) -> int:
        n = min(wanted, self.limit())
        if self.in_flight + n <= self.limit():
            self.in_flight += n
            for cell in self._watchers:
                if cell[0] < self.in_flight:
                    cell[0] = self.in_flight
            return n
        return 0

    def watch(self) -> list[int]:
        """Start recording the peak in-flight count (a one-item list, updated in place)."""
        cell = [self.in_flight]
        self._watchers.append(cell)
        return cell

    def unwatch(self, cell: list[int]) -> None:
        """Stop updating ``cell`` (it keeps the peak it saw)."""
        for i, other in enumerate(self._watchers):
            if other is cell:
                del self._watchers[i]
                return

    def release(self, n: int = 1) -> None:
        """Give back ``n`` slots and wake waiters, first come first served."""
        self.in_flight -= n
        while self._waiters:
            wanted, future = self._waiters[0]
            if future.done():
                self._waiters.popleft()
                continue
            granted = self._try(wanted)
            if not granted:
                break
            self._waiters.popleft()
            future.set_result(granted)

    def throttled(self, peak_in_flight: int | None = None) -> None:
        """A concurrency 429: learn the limit from ``peak_in_flight`` (never below one).

        ``peak_in_flight``: the most requests of this mailbox mmsd had in flight while
        the refused one was out, itself included; Graph then ran at most one fewer, so
        its limit is at most that. None: allow one request fewer than now. A refusal
        of a request sent before an earlier lowering does not lower again.
        """
        current = self.limit()
        learned = current - 1 if peak_in_flight is None else min(current, peak_in_flight - 1)
        self._limit = max(1, learned)
        self._confirmed = min(self._confirmed, self._limit)
        self._lowered_at = self._clock.monotonic()


class MailboxPacer:
    """Per app per mailbox: concurrency, requests per window and upload bytes per window."""

    def __init__(self, clock: Clock, limits: GraphLimits) -> None:
        self.concurrency = ConcurrencyLimit(clock, limits.outlook_concurrency, limits.recovery_s)
        self.requests = RateWindow(clock, limits.outlook_requests, limits.outlook_window_s, limits)
        self.upload = RateWindow(
            clock, limits.outlook_upload_bytes, limits.outlook_upload_window_s, limits
        )

    def throttled(
        self, retry_after: float, message: str, peak_in_flight: int | None = None
    ) -> None:
        """A 429 for this mailbox: pause it and lower only the limit the message names.

        ``MailboxConcurrency``: the concurrency, learned from ``peak_in_flight`` (the
        request window is only paused: Graph counted nothing and its rate was not
        the problem). ``MailboxUpload``: the upload budget. Anything else (the
        request window, or an unnamed Outlook throttle): the request count.
        """
        text = message.lower()
        if "concurrency" in text:
            self.concurrency.throttled(peak_in_flight)
            self.requests.pause(retry_after)
        elif "upload" in text:
            self.upload.throttled(retry_after, admitted=self.upload.admitted_recently())
        else:
            self.requests.throttled(retry_after, admitted=self.requests.admitted_recently())

    def idle(self) -> bool:
        """True when nothing is in flight and every budget is back to full."""
        return (
            self.concurrency.in_flight == 0
            and self.concurrency.limit() == self.concurrency.configured
            and self.requests.idle()
            and self.upload.idle()
        )


class AppPacer:
    """Per app across every tenant: Graph overall and Teams calls; one per daemon."""

    def __init__(self, clock: Clock, limits: GraphLimits | None = None) -> None:
        limits = limits or GraphLimits()
        self.requests = RateWindow(clock, limits.graph_requests, limits.graph_window_s, limits)
        self.teams = RateWindow(clock, limits.app_teams_requests, limits.app_teams_window_s, limits)


class RollingQuota:
    """At most ``limit`` units in any rolling ``window_s`` of wall time (monthly meetings)."""

    def __init__(self, clock: Clock, limit: int, window_s: float) -> None:
        self._clock = clock
        self.limit = limit
        self._window = timedelta(seconds=window_s)
        self._log: deque[tuple[datetime, int]] = deque()
        self._used = 0

    def _expire(self, now: datetime) -> None:
        while self._log and self._log[0][0] + self._window <= now:
            self._used -= self._log.popleft()[1]

    def used(self) -> int:
        """Units spent within the current window."""
        self._expire(self._clock.now())
        return self._used

    def available_at(self, units: int = 1) -> datetime | None:
        """None when ``units`` fit now, else the earliest wall time at which they will."""
        now = self._clock.now()
        self._expire(now)
        excess = self._used + units - self.limit
        if excess <= 0:
            return None
        freed = 0
        for when, n in self._log:
            freed += n
            if freed >= excess:
                return when + self._window
        return now + self._window  # more than the whole window holds: never fits in one

    def reserve(self, units: int = 1) -> datetime | None:
        """Spend ``units`` if they fit (returns None), else return when they will fit."""
        until = self.available_at(units)
        if until is None:
            self._log.append((self._clock.now(), units))
            self._used += units
        return until

    def refund(self, units: int = 1) -> None:
        """Give back the latest ``units`` (the call did not spend them after all)."""
        while units > 0 and self._log:
            when, n = self._log.pop()
            taken = min(n, units)
            units -= taken
            self._used -= taken
            if n > taken:
                self._log.append((when, n - taken))

    def restore(self, entries: Iterable[tuple[datetime, int]]) -> None:
        """Load units spent before a restart (from the store), oldest first."""
        for when, n in sorted(entries, key=lambda e: e[0]):
            self._log.append((when, n))
            self._used += n
        self._expire(self._clock.now())


class SendingPacer:
    """Per organizer mailbox: 30 messages a minute, 10,000 recipients a day (rolling)."""

    def __init__(self, clock: Clock, limits: GraphLimits, sleep: Sleep) -> None:
        self.messages = RateWindow(
            clock, limits.send_messages, limits.send_messages_window_s, limits
        )
        self.recipients = RollingQuota(
            clock, limits.send_recipients, limits.send_recipients_window_s
        )
        self._sleep = sleep

    def can_send(self, recipients: int) -> datetime | None:
        """None when ``recipients`` fit in today's quota now, else when they will fit."""
        return self.recipients.available_at(recipients)

    def reserve_recipients(self, recipients: int) -> datetime | None:
        """Spend ``recipients`` of the daily quota if they fit (None), else return when they will."""
        return self.recipients.reserve(recipients)

    def refund_recipients(self, recipients: int) -> None:
        """Give back recipients reserved for a PATCH that surely was not applied."""
        self.recipients.refund(recipients)

    async def wait_for_messages(self, messages: int = 1) -> float:
        """Wait until ``messages`` more fit the per-minute rate; return the seconds waited."""
        delay = self.messages.reserve(messages)
        if delay > 0:
            await self._sleep(delay)
        return delay


@dataclass(frozen=True)
class RequestCost:
    """What one Graph request spends, by scope: the pacers' view of a request."""

    mailbox: str | None = None  # the user whose Outlook resources it touches
    teams: bool = False  # an onlineMeetings (Teams API) call
    upload_bytes: int = 0
    creates_meeting_for: str | None = None  # a createOrGet: counts against the monthly quota


class Permit:
    """Concurrency slots and window units held for a request (or a batch); release exactly once.

    ``chosen``: the indices of the costs given to :meth:`TenantPacer.acquire` that
    this permit covers (all of them unless the acquisition was partial).
    """

    def __init__(self, pacer: TenantPacer | None = None) -> None:
        self._pacer = pacer
        self._held: list[tuple[ConcurrencyLimit, int]] = []
        self._taken: list[tuple[RateWindow, float]] = []
        self._peaks: dict[str, tuple[ConcurrencyLimit, list[int]]] = {}
        self.chosen: list[int] = []

    def hold(self, limit: ConcurrencyLimit, n: int, mailbox: str | None = None) -> None:
        """Record ``n`` slots of ``limit`` as held by this permit (watched per ``mailbox``)."""
        self._held.append((limit, n))
        if mailbox is not None and mailbox not in self._peaks:
            self._peaks[mailbox] = (limit, limit.watch())

    def shrink(self, limit: ConcurrencyLimit, n: int) -> None:
        """Give back ``n`` of the slots held of ``limit`` now (the batch sends fewer items)."""
        for i, (held_limit, held) in enumerate(self._held):
            if held_limit is limit and n > 0:
                give = min(n, held)
                self._held[i] = (held_limit, held - give)
                held_limit.release(give)
                n -= give

    def peak_in_flight(self, mailbox: str | None) -> int | None:
        """The most requests of ``mailbox`` in flight while this permit held its slots."""
        entry = self._peaks.get(mailbox) if mailbox is not None else None
        return None if entry is None else entry[1][0]

    def answered(self, over_concurrency: Iterable[str] = ()) -> None:
        """Graph answered: every mailbox not in ``over_concurrency`` ran its peak without a 429."""
        refused = set(over_concurrency)
        for mailbox, (limit, cell) in self._peaks.items():
            if mailbox not in refused:
                limit.confirm(cell[0])

    def took(self, window: RateWindow, units: float) -> None:
        """Record ``units`` taken from ``window`` for this request."""
        self._taken.append((window, units))

    def took_all(self, taken: Iterable[tuple[RateWindow, float]]) -> None:
        """Record ``(window, units)`` pairs taken for this request, as :meth:`took` does each."""
        self._taken.extend(taken)

    def release(self, refused: Sequence[RequestCost] = ()) -> None:
        """Give back every slot; the window units count from now, except ``refused`` (429) ones."""
        held, self._held = self._held, []
        taken, self._taken = self._taken, []
        for limit, cell in self._peaks.values():
            limit.unwatch(cell)
        for limit, n in held:
            if n:
                limit.release(n)
        if not taken:
            return
        if not refused or self._pacer is None:
            for window, units in taken:
                window.finish(units)
            return
        not_counted: dict[int, float] = {}
        for cost in refused:
            for window, units in self._pacer.charges(cost):
                not_counted[id(window)] = not_counted.get(id(window), 0.0) + units
        for window, units in taken:
            window.finish(units, max(0.0, units - not_counted.get(id(window), 0.0)))


@dataclass(frozen=True, slots=True)
class _ChargePlan:
    """One acquisition's windows, numbered, and each item's charges as (window number, units)."""

    windows: list[RateWindow]
    charges: list[tuple[tuple[int, float], ...]]  # one per distinct cost
    item_plan: list[int]  # per item: its entry in ``charges``


class _Line:
    """The batch parts waiting for room in one window; the one holding ``turn`` polls it."""

    __slots__ = ("key", "members", "turn")

    def __init__(self, key: int) -> None:
        self.key = key
        self.members = 0
        self.turn = asyncio.Lock()


class TenantPacer:
    """Per tenant: Teams calls, plus the tenant's mailbox, meeting-quota and sending pacers."""

    def __init__(
        self,
        clock: Clock,
        limits: GraphLimits | None = None,
        app: AppPacer | None = None,
        sleep: Sleep = asyncio.sleep,
    ) -> None:
        self.clock = clock
        self.limits = limits or GraphLimits()
        self.app = app or AppPacer(clock, self.limits)
        self.teams = RateWindow(
            clock, self.limits.teams_requests, self.limits.teams_window_s, self.limits
        )
        self.directory_paused_until = clock.monotonic()
        self._sleep = sleep
        self._mailboxes: dict[str, MailboxPacer] = {}
        self._meeting_quotas: dict[str, RollingQuota] = {}
        self._senders: dict[str, SendingPacer] = {}
        # One waiting batch at a time per full window (by id): see _fit_partial.
        self._lines: dict[int, _Line] = {}

    def mailbox(self, user: str) -> MailboxPacer:
        """The pacer of one mailbox (made on first use; idle ones are forgotten)."""
        pacer = self._mailboxes.get(user)
        if pacer is None:
            if len(self._mailboxes) >= 1024:
                self._forget_idle()
            pacer = self._mailboxes[user] = MailboxPacer(self.clock, self.limits)
        return pacer

    def _forget_idle(self) -> None:
        for key in [k for k, p in self._mailboxes.items() if p.idle()]:
            del self._mailboxes[key]

    def meeting_quota(self, user: str) -> RollingQuota:
        """The user's online meetings created in the rolling month."""
        quota = self._meeting_quotas.get(user)
        if quota is None:
            quota = self._meeting_quotas[user] = RollingQuota(
                self.clock,
                self.limits.online_meetings_per_user,
                self.limits.online_meetings_window_s,
            )
        return quota

    def sending(self, user: str) -> SendingPacer:
        """The sending pacer of one organizer mailbox."""
        pacer = self._senders.get(user)
        if pacer is None:
            pacer = self._senders[user] = SendingPacer(self.clock, self.limits, self._sleep)
        return pacer

    def charges(self, cost: RequestCost) -> list[tuple[RateWindow, float]]:
        """The window units one request spends, by window."""
        out: list[tuple[RateWindow, float]] = [(self.app.requests, 1.0)]
        if cost.teams:
            out += [(self.app.teams, 1.0), (self.teams, 1.0)]
        if cost.mailbox is not None:
            pacer = self.mailbox(cost.mailbox)
            out.append((pacer.requests, 1.0))
            if cost.upload_bytes:
                out.append((pacer.upload, float(cost.upload_bytes)))
        return out

    async def acquire(self, costs: Sequence[RequestCost], *, partial: bool = False) -> Permit:
        """Wait until ``costs`` (one request, or a batch's items) fit every scope; hold slots.

        Mailbox slots are taken in sorted mailbox order so that two batches never wait
        on each other in a cycle; a batch holds at most ``batch_outlook_parallel`` slots
        of a mailbox, as Graph runs that many of its requests at a time. Without
        ``partial``, window units are taken only once every window has room for all
        of them at the same instant. With ``partial`` (a batch), the permit covers the
        items that fit now (``Permit.chosen``, at least one, waiting for that one):
        at most as many items of a mailbox as slots were granted when its
        concurrency is below what Graph would run of them at once or not yet
        confirmed (a first batch cannot draw a storm of concurrency 429s), and, in order,
        every item for which every window still has room — a batch never waits for
        a whole window to empty, nor exceeds a learned concurrency on its own.
        """
        per_mailbox: dict[str, int] = {}
        for cost in costs:
            user = cost.mailbox
            if user is not None:
                per_mailbox[user] = per_mailbox.get(user, 0) + 1
        permit = Permit(self)
        try:
            caps: dict[str, int] = {}
            slots: dict[str, tuple[ConcurrencyLimit, int]] = {}
            parallel = self.limits.batch_outlook_parallel
            mailboxes = self._mailboxes
            for user in sorted(per_mailbox):
                limit = (mailboxes.get(user) or self.mailbox(user)).concurrency
                count = per_mailbox[user]
                wanted = min(count, parallel)
                granted = limit.try_acquire(wanted) or await limit.acquire(wanted)
                permit.hold(limit, granted, user)
                slots[user] = (limit, granted)
                full = granted >= wanted and (limit.confirmed() or not partial)
                caps[user] = count if full else granted
            if partial:
                chosen, needs = await self._fit_partial(costs, caps)
                sent: dict[str, int] = {}
                for i in chosen:
                    user = costs[i].mailbox
                    if user is not None:
                        sent[user] = sent.get(user, 0) + 1
                for user, (limit, granted) in slots.items():
                    spare = granted - min(granted, sent.get(user, 0))
                    if spare:
                        permit.shrink(limit, spare)
            else:
                chosen, needs = list(range(len(costs))), self._needs(costs)
                while True:
                    delay = max((w.wait(units) for w, units in needs.values()), default=0.0)
                    delay = max(delay, self.directory_paused_until - self.clock.monotonic())
                    if delay <= 0:
                        break
                    await self._sleep(delay)
            for window, units in needs.values():
                window.take(units)
            permit.took_all(needs.values())
            permit.chosen = chosen
            return permit
        except BaseException:
            permit.release()
            raise

    def _needs(self, costs: Iterable[RequestCost]) -> dict[int, tuple[RateWindow, float]]:
        """The window units ``costs`` spend together, by window."""
        needs: dict[int, tuple[RateWindow, float]] = {}
        for cost in costs:
            for window, units in self.charges(cost):
                key = id(window)
                needs[key] = (window, needs.get(key, (window, 0.0))[1] + units)
        return needs

    def _charge_plan(self, costs: Sequence[RequestCost]) -> _ChargePlan:
        """Number the windows ``costs`` spend and share one charge tuple among equal costs."""
        windows: list[RateWindow] = [self.app.requests]  # every request's first charge
        numbers: dict[RateWindow, int] = {self.app.requests: 0}
        plans: dict[tuple[str | None, bool, int], int] = {}
        charges: list[tuple[tuple[int, float], ...]] = []
        item_plan: list[int] = []
        for cost in costs:
            key = (cost.mailbox, cost.teams, cost.upload_bytes)  # what charges() reads
            plan = plans.get(key)
            if plan is None:
                entry: list[tuple[int, float]] = []
                for window, units in self.charges(cost):
                    k = numbers.get(window)
                    if k is None:
                        k = numbers[window] = len(windows)
                        windows.append(window)
                    entry.append((k, units))
                plan = plans[key] = len(charges)
                charges.append(tuple(entry))
            item_plan.append(plan)
        return _ChargePlan(windows, charges, item_plan)

    async def _fit_partial(
        self, costs: Sequence[RequestCost], caps: Mapping[str, int]
    ) -> tuple[list[int], dict[int, tuple[RateWindow, float]]]:
        """The items that fit every window now (waiting until one does), and their units.

        In order, an item is taken when its mailbox is under its cap and every window
        it is charged in has room for what the items taken before it hold there plus
        its own units. Windows are numbered and each distinct cost's charges computed
        once per call; each pass reads every window's room once. When the whole
        capped batch fits every window at once (the common case), all of it is taken
        without trying items one by one: a window's room only shrinks with the units
        asked of it, so each item would have fitted in turn.
        """
        plan: _ChargePlan | None = None
        line: _Line | None = None
        holding = False  # this part holds its line's turn
        try:
            while True:
                fitted, (window, plan), delay = self._fit_pass(costs, caps, plan)
                if fitted is not None:
                    return fitted
                # Parts refused by the same full window wait in line, one polling it at a
                # time: when each unit frees, one part takes it instead of every waiting
                # part waking to re-check all of its items (a thundering herd).
                if line is None or line.key != window:
                    if line is not None:
                        self._leave(line, holding)
                        holding = False
                    line = self._lines.get(window)
                    if line is None:
                        line = self._lines[window] = _Line(window)
                    line.members += 1
                    contended = line.turn.locked()
                    await line.turn.acquire()
                    holding = True
                    if contended:
                        continue  # the window may have room by now
                await self._sleep(delay)
        finally:
            if line is not None:
                self._leave(line, holding)

    def _leave(self, line: _Line, holding: bool) -> None:
        """Leave ``line`` (giving the turn to the next part if held); forget it once empty."""
        line.members -= 1
        if holding:
            line.turn.release()
        if line.members == 0 and self._lines.get(line.key) is line:
            del self._lines[line.key]

    def _fit_pass(
        self,
        costs: Sequence[RequestCost],
        caps: Mapping[str, int],
        plan: _ChargePlan | None,
    ) -> tuple[
        tuple[list[int], dict[int, tuple[RateWindow, float]]] | None,
        tuple[int, _ChargePlan | None],
        float,
    ]:
        """One pass of :meth:`_fit_partial`: (the fit or None, (the window to wait on, plan), delay)."""
        now = self.clock.monotonic()
        pause = self.directory_paused_until - now
        if pause <= 0:
            fitted = self._fit_whole(costs, caps, now)
            if fitted is not None:
                return fitted, (0, plan), 0.0
        if plan is None:
            plan = self._charge_plan(costs)
        windows, charges, item_plan = plan.windows, plan.charges, plan.item_plan
        n = len(windows)
        used: list[float] = []
        ceiling: list[float] = []
        for window in windows:
            u, c = window.room(now)
            used.append(u)
            ceiling.append(c)
        # Item by item. Within one pass a window's room only shrinks with the units
        # asked of it: the smallest total each window refused stands for every larger one.
        first_delay: float | None = None
        wait_on = 0  # id of the window the first refused item waits longest for
        chosen: list[int] = []
        held = [0.0] * n
        touched = [False] * n
        refused = [math.inf] * n
        per_mailbox: dict[str, int] = {}
        for i, cost in enumerate(costs):
            user = cost.mailbox
            if user is not None and per_mailbox.get(user, 0) >= caps.get(user, 0):
                continue
            item = charges[item_plan[i]]
            fits = pause <= 0
            skip = False
            for k, units in item:
                total = held[k] + units
                if total >= refused[k]:
                    skip = True  # a refusal came first, so first_delay is set
                    break
                if fits and not used[k] + total <= ceiling[k]:
                    fits = False
            if skip:
                continue
            if fits:
                chosen.append(i)
                for k, units in item:
                    held[k] += units
                    touched[k] = True
                if user is not None:
                    per_mailbox[user] = per_mailbox.get(user, 0) + 1
                continue
            delay = 0.0
            for k, units in item:
                total = held[k] + units
                if not used[k] + total <= ceiling[k]:
                    if total < refused[k]:
                        refused[k] = total
                    if first_delay is None:
                        wait = windows[k].wait(total)
                        if wait >= delay:
                            delay, wait_on = wait, id(windows[k])
            if first_delay is None:
                first_delay = max(delay, pause)
            if pause > 0 or refused[0] < math.inf:
                break  # nothing fits before the pause ends / every item is charged there
        if chosen:
            fit = chosen, {id(windows[k]): (windows[k], held[k]) for k in range(n) if touched[k]}
            return fit, (0, plan), 0.0
        if pause > 0 and (first_delay or 0.0) <= pause:
            wait_on = id(self)  # the directory pause: every part waits on it
        return None, (wait_on, plan), max(first_delay or 0.0, 1e-3)

    def _fit_whole(
        self, costs: Sequence[RequestCost], caps: Mapping[str, int], now: float
    ) -> tuple[list[int], dict[int, tuple[RateWindow, float]]] | None:
        """Every item under its mailbox cap and their units, if all of them fit at once; else None.

        The units are those :meth:`charges` counts (keep the two in step), summed by
        window in item order; the caller then has nothing to try item by item.
        """
        chosen: list[int] = []
        per_mailbox: dict[str, int] = {}
        upload: dict[str, float] = {}
        teams = 0
        for i, cost in enumerate(costs):
            user = cost.mailbox
            if user is not None:
                taken = per_mailbox.get(user, 0)
                if taken >= caps.get(user, 0):
                    continue
                per_mailbox[user] = taken + 1
                if cost.upload_bytes:
                    upload[user] = upload.get(user, 0.0) + cost.upload_bytes
            if cost.teams:
                teams += 1
            chosen.append(i)
        if not chosen:
            return None
        needs: dict[int, tuple[RateWindow, float]] = {}
        totals: list[tuple[RateWindow, float]] = [(self.app.requests, float(len(chosen)))]
        if teams:
            totals += [(self.app.teams, float(teams)), (self.teams, float(teams))]
        for window, total in totals:
            used, ceiling = window.room(now)
            if not used + total <= ceiling:
                return None
            needs[id(window)] = (window, total)
        mailboxes = self._mailboxes
        for user, count in per_mailbox.items():
            pacer = mailboxes.get(user) or self.mailbox(user)
            window, total = pacer.requests, float(count)
            used, ceiling = window.room(now)
            if not used + total <= ceiling:
                return None
            needs[id(window)] = (window, total)
            sent = upload.get(user)
            if sent is not None:
                window = pacer.upload
                used, ceiling = window.room(now)
                if not used + sent <= ceiling:
                    return None
                needs[id(window)] = (window, sent)
        return chosen, needs

    def throttled(
        self,
        cost: RequestCost,
        retry_after: float,
        message: str,
        peak_in_flight: int | None = None,
    ) -> None:
        """Attribute a 429 to the request's narrowest scope, pausing it and lowering that limit.

        ``peak_in_flight``: the most requests of the mailbox in flight while the
        refused one was out (``Permit.peak_in_flight``), for a concurrency 429.
        """
        if cost.mailbox is not None:
            self.mailbox(cost.mailbox).throttled(retry_after, message, peak_in_flight)
        elif cost.teams:
            self.teams.throttled(retry_after, admitted=self.teams.admitted_recently())
        else:
            self.directory_paused_until = max(
                self.directory_paused_until, self.clock.monotonic() + retry_after
            )


_OUTLOOK_SEGMENTS = frozenset(
    {"events", "calendar", "calendars", "calendarview", "calendargroups", "messages", "mailfolders"}
)


def request_cost(path: str, upload_bytes: int = 0) -> RequestCost:
    """Which scopes a request to ``path`` (relative to the version root) spends.

    ``/users/{id}/events…`` and other Outlook resources spend that mailbox's budget,
    ``/users/{id}/onlineMeetings…`` the Teams budgets (``createOrGet`` also the user's
    monthly meeting quota); anything else only the app's overall budget.
    """
    parts = [p for p in path.split("?", 1)[0].split("/") if p]
    if len(parts) >= 3 and parts[0].lower() == "users":
        user = parts[1]
        resource = parts[2].lower()
        if resource in _OUTLOOK_SEGMENTS:
            return RequestCost(mailbox=user, upload_bytes=upload_bytes)
        if resource == "onlinemeetings":
            creates = user if parts[-1].lower() == "createorget" else None
            return RequestCost(teams=True, upload_bytes=upload_bytes, creates_meeting_for=creates)
    return RequestCost(upload_bytes=upload_bytes)
