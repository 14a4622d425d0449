"""Test kit for the Graph client tests: a hand-driven clock and a sleep that moves it."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta


class ManualClock:
    """A clock that moves only when told to (``advance``), so pacing is deterministic."""

    def __init__(self, start: datetime | None = None) -> None:
        self._start = start or datetime(2026, 1, 5, 9, 0, tzinfo=UTC)
        self._t = 1000.0
        self._origin = self._t

    def now(self) -> datetime:
        """Start plus the time advanced so far."""
        return self._start + timedelta(seconds=self._t - self._origin)

    def monotonic(self) -> float:
        """Seconds, moved only by ``advance``."""
        return self._t

    def advance(self, seconds: float) -> None:
        """Move the clock forward."""
        assert seconds >= 0
        self._t += seconds


class RecordingSleep:
    """An injected ``sleep`` that records each wait and advances the manual clock instead."""

    def __init__(self, clock: ManualClock) -> None:
        self.clock = clock
        self.calls: list[float] = []

    async def __call__(self, seconds: float) -> None:
        self.calls.append(seconds)
        self.clock.advance(max(0.0, seconds))

    @property
    def total(self) -> float:
        """Seconds slept in all."""
        return sum(self.calls)
