"""The one clock abstraction of mmsd and its simulator.

Everything that asks "what time is it" goes through a :class:`Clock`, so that
tests, the demo and the simulator can control time without sleeping.
"""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta
from typing import Protocol


class Clock(Protocol):
    """A source of wall time (aware UTC) and of monotonic seconds."""

    def now(self) -> datetime:
        """The current wall time, timezone-aware, in UTC."""
        ...

    def monotonic(self) -> float:
        """Seconds on a clock that never goes backwards."""
        ...


class SystemClock:
    """The real clock."""

    def now(self) -> datetime:
        """The current wall time in UTC."""
        return datetime.now(UTC)

    def monotonic(self) -> float:
        """``time.monotonic()``."""
        return time.monotonic()


class SimulatedClock:
    """A clock that starts at a chosen instant and runs with wall time.

    ``advance`` moves it forward (never back), as the simulator's ``/_sim/clock``
    does; ``monotonic`` moves with it so that rate windows follow simulated time.
    """

    def __init__(self, start: datetime) -> None:
        if start.tzinfo is None:
            raise ValueError("SimulatedClock needs a timezone-aware start")
        self._start = start.astimezone(UTC)
        self._origin = time.monotonic()
        self._offset = 0.0

    def now(self) -> datetime:
        """Start + elapsed wall time + every advance so far."""
        return self._start + timedelta(seconds=self.monotonic())

    def monotonic(self) -> float:
        """Seconds since the clock was made, advances included."""
        return time.monotonic() - self._origin + self._offset

    def advance(self, seconds: float) -> None:
        """Move the clock forward by ``seconds`` (must be >= 0)."""
        if seconds < 0:
            raise ValueError("the clock only moves forward")
        self._offset += seconds


def parse_rfc3339(text: str) -> datetime:
    """Parse an RFC 3339 / ISO 8601 instant; naive input is taken as UTC."""
    value = datetime.fromisoformat(text.replace("Z", "+00:00"))
    if value.tzinfo is None:
        value = value.replace(tzinfo=UTC)
    return value.astimezone(UTC)


def format_rfc3339(value: datetime) -> str:
    """Format an instant as RFC 3339 in UTC with a ``Z`` suffix."""
    return value.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"
