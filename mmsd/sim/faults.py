"""Deterministic fault injection and PATCH holds for the simulator.

A :class:`FaultPlan` decides, per request, whether to inject a fault. The
decision is a pure function of ``(seed, method, path, attempt)`` where
``attempt`` counts how often this method and path were seen before (0 first),
so a run repeats whatever the interleaving of concurrent requests on other
paths. The hash gives a draw in ``[0, 1)``; the kinds take consecutive slices
of it, as wide as their rates, in :class:`FaultKind` order (so each kind fires
with exactly its rate), and ``LOST_PATCH_ANSWER``'s slice means "no fault" for
methods other than PATCH.

Holds let a test freeze the simulator right after it applied a chosen PATCH
(to kill the daemon in that window): :meth:`FaultPlan.hold_next_patch` arms a
hold, the server awaits :meth:`FaultPlan.maybe_hold` after applying each
PATCH, and the test awaits :meth:`FaultPlan.wait_held`, then releases.
"""

from __future__ import annotations

import asyncio
import enum
import hashlib
import itertools
import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any


class FaultKind(enum.StrEnum):
    """A fault the simulator can inject into one request."""

    HTTP_503 = "http503"  # 503 Service Unavailable, nothing applied
    HTTP_504 = "http504"  # 504 Gateway Timeout, nothing applied
    SLOW = "slow"  # a correct answer, late
    TIMEOUT = "timeout"  # no answer until the client gives up, nothing applied
    RESET = "reset"  # connection reset before anything is applied
    LOST_PATCH_ANSWER = "lostPatchAnswer"  # PATCH applied, connection reset instead of the answer


@dataclass(frozen=True)
class HeldPatch:
    """A PATCH applied and held before its answer, waiting for :meth:`FaultPlan.release`."""

    hold_id: str
    event_id: str | None  # what the hold was armed for; None = any event
    held_event_id: str | None  # the event actually held; None while only armed

    def to_json(self) -> dict[str, Any]:
        """The hold as ``/_sim/`` shows it."""
        return {
            "holdId": self.hold_id,
            "eventId": self.event_id,
            "heldEventId": self.held_event_id,
            "held": self.held_event_id is not None,
        }


class _Hold:
    __slots__ = ("event_id", "held_event_id", "hold_id", "released")

    def __init__(self, hold_id: str, event_id: str | None) -> None:
        self.hold_id = hold_id
        self.event_id = event_id
        self.held_event_id: str | None = None
        self.released = asyncio.Event()

    def view(self) -> HeldPatch:
        return HeldPatch(self.hold_id, self.event_id, self.held_event_id)


def _check_rates(rates: Mapping[FaultKind, float] | None) -> dict[FaultKind, float]:
    checked: dict[FaultKind, float] = {}
    for kind, rate in (rates or {}).items():
        kind = FaultKind(kind)
        if isinstance(rate, bool) or not isinstance(rate, int | float) or not math.isfinite(rate):
            raise ValueError(f"fault rate for {kind} must be a number")
        if not 0.0 <= rate <= 1.0:
            raise ValueError(f"fault rate for {kind} must be within [0, 1]")
        checked[kind] = float(rate)
    if sum(checked.values()) > 1.0 + 1e-9:
        raise ValueError("fault rates must add up to at most 1")
    return checked


class FaultPlan:
    """Which requests fail and how, repeatable from a seed; plus PATCH holds."""

    def __init__(self, seed: int, rates: Mapping[FaultKind, float] | None = None) -> None:
        self._seed = seed
        self._rates = _check_rates(rates)
        self._attempts: dict[tuple[str, str], int] = {}
        self._injected = dict.fromkeys(FaultKind, 0)
        self._ids = itertools.count(1)
        self._holds: list[_Hold] = []  # armed and held, in arming order
        self._changed = asyncio.Event()  # set and replaced whenever a hold changes

    @property
    def rates(self) -> dict[FaultKind, float]:
        """The rates in force (kinds absent are 0)."""
        return dict(self._rates)

    def set_rates(self, rates: Mapping[FaultKind, float] | None) -> None:
        """Replace every rate (``None`` or ``{}``: no faults); seen-counters are kept."""
        self._rates = _check_rates(rates)

    def decide(self, method: str, path: str, attempt: int | None = None) -> FaultKind | None:
        """The fault for this request, or ``None``; ``attempt`` defaults to the inner counter.

        Pass ``path`` the same way every time (the server passes the URL path
        without its query string).
        """
        method = method.upper()
        if attempt is None:
            key = (method, path)
            attempt = self._attempts.get(key, 0)
            self._attempts[key] = attempt + 1
        kind = self.kind_at(self._draw(method, path, attempt), method)
        if kind is not None:
            self._injected[kind] += 1
        return kind

    def kind_at(self, draw: float, method: str) -> FaultKind | None:
        """Which kind's slice of ``[0, 1)`` holds ``draw`` for ``method`` (without counting)."""
        edge = 0.0
        for kind in FaultKind:
            edge += self._rates.get(kind, 0.0)
            if draw < edge:
                if kind is FaultKind.LOST_PATCH_ANSWER and method.upper() != "PATCH":
                    return None
                return kind
        return None

    def injected(self) -> dict[str, int]:
        """Faults injected so far, by kind (every kind present)."""
        return {str(kind): n for kind, n in self._injected.items()}

    def _draw(self, method: str, path: str, attempt: int) -> float:
        digest = hashlib.blake2b(
            f"{self._seed}\x00{method}\x00{path}\x00{attempt}".encode(), digest_size=8
        ).digest()
        return int.from_bytes(digest, "big") / 2.0**64

    # --- holds -------------------------------------------------------------

    def hold_next_patch(self, event_id: str | None = None) -> str:
        """Arm a hold on the next applied PATCH of ``event_id`` (``None``: of any event); its id."""
        hold = _Hold(f"hold-{next(self._ids)}", event_id)
        self._holds.append(hold)
        return hold.hold_id

    async def maybe_hold(self, event_id: str) -> None:
        """Called by the server after applying a PATCH: blocks while an armed hold takes it."""
        hold = next(
            (h for h in self._holds if h.held_event_id is None and h.event_id in (None, event_id)),
            None,
        )
        if hold is None:
            return
        hold.held_event_id = event_id
        self._notify()
        try:
            await hold.released.wait()
        finally:
            if hold in self._holds:  # cancelled (the client went away) before a release
                self._holds.remove(hold)
                self._notify()

    def held(self) -> list[HeldPatch]:
        """Every hold, armed or holding a PATCH, in arming order."""
        return [h.view() for h in self._holds]

    def release(self, hold_id: str) -> bool:
        """Release (or disarm) one hold; ``False`` if there is no such hold."""
        for hold in self._holds:
            if hold.hold_id == hold_id:
                self._drop(hold)
                return True
        return False

    def release_all(self) -> int:
        """Release and disarm every hold; how many there were."""
        holds = list(self._holds)
        for hold in holds:
            self._drop(hold)
        return len(holds)

    async def wait_held(self, hold_id: str | None = None) -> HeldPatch:
        """Wait until the hold ``hold_id`` (``None``: any hold) holds a PATCH; that hold."""
        while True:
            changed = self._changed
            for hold in self._holds:
                if hold.held_event_id is not None and hold_id in (None, hold.hold_id):
                    return hold.view()
            if hold_id is not None and all(h.hold_id != hold_id for h in self._holds):
                raise LookupError(f"no hold {hold_id!r} is armed")
            await changed.wait()

    def _drop(self, hold: _Hold) -> None:
        self._holds.remove(hold)
        hold.released.set()
        self._notify()

    def _notify(self) -> None:
        self._changed.set()
        self._changed = asyncio.Event()
