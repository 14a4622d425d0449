"""Staged graceful shutdown (Home Assistant's ``core.py``, arq's drain) and stop signals.

Stages, in order, each bounded by its own timeout and all by ``stop_timeout``:

1. ``STOP_INTAKE``: at once, no new actors, every actor's ``stop_requested`` is set
   (handlers return at their next checkpoint), every mailbox is closed and its pending
   messages dropped (at-most-once: their work is in the store; askers get
   :class:`ActorStopped`), restart back-offs end; then the hooks that stop outside
   intake run (admin listener, trigger pollers).
2. ``DRAIN``: in-flight handlers finish or return at a checkpoint, ``on_stop`` runs;
   drain hooks (e.g. waiting for Graph calls) run alongside.
3. ``CANCEL``: every task still tracked is cancelled and awaited.
4. ``FINAL``: hooks that must run last (flush and close the store).

The systemd unit's ``TimeoutStopSec=`` must exceed ``stop_timeout`` (45 s vs the
default 30 s here), so the daemon exits on its own before systemd kills it.
"""

from __future__ import annotations

import asyncio
import enum
import logging
import signal
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass
from typing import Any

log = logging.getLogger(__name__)

ShutdownHook = Callable[[], Awaitable[None]]

#: Seconds a hook cancelled at its stage's timeout gets to unwind (within the total).
CANCEL_GRACE_SECONDS = 0.5


class ShutdownStage(enum.Enum):
    """The stages of a graceful stop, in the order they run."""

    STOP_INTAKE = "stop_intake"
    DRAIN = "drain"
    CANCEL = "cancel"
    FINAL = "final"


@dataclass(frozen=True)
class ShutdownPlan:
    """Per-stage timeouts (seconds) and the stop timeout that bounds them all."""

    stop_intake: float = 2.0
    drain: float = 20.0
    cancel: float = 3.0
    final: float = 5.0
    stop_timeout: float = 30.0

    def __post_init__(self) -> None:
        if min(self.stop_intake, self.drain, self.cancel, self.final) < 0:
            raise ValueError("stage timeouts must be >= 0")
        if sum(self.timeouts().values()) > self.stop_timeout:
            raise ValueError("the stage timeouts must add up to at most stop_timeout")

    def timeouts(self) -> dict[ShutdownStage, float]:
        """Each stage's own timeout."""
        return {
            ShutdownStage.STOP_INTAKE: self.stop_intake,
            ShutdownStage.DRAIN: self.drain,
            ShutdownStage.CANCEL: self.cancel,
            ShutdownStage.FINAL: self.final,
        }


@dataclass(frozen=True)
class StageReport:
    """How one stage went."""

    stage: ShutdownStage
    seconds: float
    timed_out: bool
    errors: tuple[str, ...] = ()


@dataclass(frozen=True)
class ShutdownReport:
    """How the whole shutdown went; ``leaked_tasks`` names tasks that outlived it."""

    stages: tuple[StageReport, ...]
    seconds: float
    leaked_tasks: tuple[str, ...]

    @property
    def clean(self) -> bool:
        """No stage timed out, no hook failed, no task leaked."""
        return not self.leaked_tasks and not any(s.timed_out or s.errors for s in self.stages)


async def run_stage(
    stage: ShutdownStage,
    budget: float,
    hooks: Iterable[tuple[str, asyncio.Task[None]]],
    wait_for: Iterable[asyncio.Future[Any]] = (),
    grace: float = CANCEL_GRACE_SECONDS,
) -> StageReport:
    """Wait up to ``budget`` s for hook tasks and ``wait_for``; cancel hooks still running.

    Cancelled hooks get ``grace`` more seconds to unwind; one that ignores cancellation
    is left behind and shows up in the report's ``leaked_tasks``.
    """
    loop = asyncio.get_running_loop()
    started = loop.time()
    named = list(hooks)
    waiting: set[asyncio.Future[Any]] = {task for _, task in named}
    waiting.update(wait_for)
    timed_out = False
    if waiting:
        _, pending = await asyncio.wait(waiting, timeout=budget)
        timed_out = bool(pending)
    stragglers = [task for _, task in named if not task.done()]
    for task in stragglers:
        task.cancel()
    if stragglers:
        await asyncio.wait(stragglers, timeout=grace)
    errors = tuple(
        f"{name}: {task.exception()!r}"
        for name, task in named
        if task.done() and not task.cancelled() and task.exception() is not None
    )
    if timed_out:
        log.warning("shutdown stage %s timed out after %.2fs", stage.value, budget)
    for error in errors:
        log.error("shutdown stage %s: hook %s", stage.value, error)
    return StageReport(stage, loop.time() - started, timed_out, errors)


def install_stop_signals(
    on_signal: Callable[[], None],
    signals: Iterable[signal.Signals] = (signal.SIGTERM, signal.SIGINT),
) -> Callable[[], None]:
    """Call ``on_signal`` from the event loop on SIGTERM/SIGINT; returns the remover."""
    loop = asyncio.get_running_loop()
    chosen = tuple(signals)
    for sig in chosen:
        loop.add_signal_handler(sig, on_signal)

    def remove() -> None:
        for sig in chosen:
            loop.remove_signal_handler(sig)

    return remove
