"""Benchmark: the tenant pacer's bookkeeping per ``$batch`` part (acquire + release).

Each step acquires a 20-item part (``TenantPacer.acquire(costs, partial=True)``, as
``GraphClient._send_group`` does) over 60 mailboxes, PATCHes (with upload bytes) and
GETs mixed, then releases it; a manual clock moves 2 ms a step so that no window
fills (``ample``); ``one-mailbox`` makes each part one mailbox's 20 requests. ``tight`` gives the mailbox request window room for only part of
each batch, so the item-by-item fit runs. Prints CPU microseconds per acquire+release,
median of ``--runs``, for the working tree's ``mmsd/graph/pacing.py`` and for the same
file at ``--base`` (a git revision, loaded with ``git show``), and their ratio.
In-process, no network.

    .venv/bin/python bench/bench_pacing.py [--runs 5] [--steps 2000] [--base REV]
"""

from __future__ import annotations

import argparse
import asyncio
import importlib.util
import random
import statistics
import subprocess
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from types import ModuleType
from typing import Any

from mmsd.graph import pacing as current

ROOT = Path(__file__).resolve().parent.parent
# The pacer before session 2's cheaper partial fit.
DEFAULT_BASE = "8bb88739f74fb257b2884e6d4dd509118ec9c982"
MAILBOXES = 60
PART = 20


class StepClock:
    """A clock that moves only when told to, so windows never fill during a run."""

    def __init__(self) -> None:
        self.t = 1000.0
        self._start = datetime(2026, 1, 5, 9, 0, tzinfo=UTC)

    def now(self) -> datetime:
        """Start plus the time advanced so far."""
        return self._start + timedelta(seconds=self.t - 1000.0)

    def monotonic(self) -> float:
        """Seconds, moved only by the benchmark."""
        return self.t


def load_base(rev: str) -> ModuleType | None:
    """``mmsd/graph/pacing.py`` at git revision ``rev`` as a module (None when git cannot)."""
    try:
        source = subprocess.run(
            ["git", "show", f"{rev}:mmsd/graph/pacing.py"],
            cwd=ROOT,
            check=True,
            capture_output=True,
            text=True,
        ).stdout
    except (OSError, subprocess.CalledProcessError) as exc:
        print(f"base {rev}: not loaded ({exc})", file=sys.stderr)
        return None
    name = "bench_pacing_base"
    spec = importlib.util.spec_from_loader(name, loader=None)
    assert spec is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    exec(compile(source, f"{rev[:7]}:mmsd/graph/pacing.py", "exec"), module.__dict__)
    return module


def make_parts(module: ModuleType, count: int, seed: int, mixed: bool) -> list[list[Any]]:
    """``count`` parts of 20 costs, two PATCHes in three: random mailboxes of 60 (``mixed``)
    or one mailbox a part, in turn (a user's PATCHes)."""
    rng = random.Random(seed)
    users = [f"user-{n:02d}@contoso.example" for n in range(MAILBOXES)]
    parts = []
    for step in range(count):
        part = []
        for _ in range(PART):
            user = rng.choice(users) if mixed else users[step % MAILBOXES]
            body = rng.randrange(2_000, 30_000) if rng.random() < 2 / 3 else 0
            part.append(module.RequestCost(mailbox=user, upload_bytes=body))
        parts.append(part)
    return parts


async def run_once(module: ModuleType, steps: int, case: str, seed: int) -> float:
    """Microseconds per acquire+release over ``steps`` parts on a fresh pacer."""
    clock = StepClock()
    kwargs: dict[str, Any] = {}
    if case == "tight":
        # Room for ~12 requests per mailbox per 0.5 s: parts are cut to what fits.
        kwargs = {"outlook_requests": 12, "outlook_window_s": 0.5}
    limits = module.GraphLimits(**kwargs)

    async def sleep(seconds: float) -> None:
        clock.t += seconds

    pacer = module.TenantPacer(clock, limits, sleep=sleep)
    for n in range(MAILBOXES):
        pacer.mailbox(f"user-{n:02d}@contoso.example").concurrency.confirm(4)
    parts = make_parts(module, steps, seed, mixed=case != "one-mailbox")
    start = time.process_time()  # CPU time: the machine is shared
    for part in parts:
        permit = await pacer.acquire(part, partial=True)
        permit.release()
        clock.t += 0.002
    return (time.process_time() - start) / steps * 1e6


def measure(module: ModuleType, runs: int, steps: int, case: str) -> list[float]:
    """One figure per run (a fresh pacer and the same parts each time)."""
    return [asyncio.run(run_once(module, steps, case, seed=7)) for _ in range(runs)]


def main() -> int:
    """Print the per-acquire figures of the working tree and of ``--base``, and the ratio."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--steps", type=int, default=2000)
    parser.add_argument("--base", default=DEFAULT_BASE, help="git revision to compare with")
    args = parser.parse_args()
    base = load_base(args.base) if args.base else None
    for case in ("ample", "one-mailbox", "tight"):
        now = measure(current, args.runs, args.steps, case)
        line = f"{case}: working tree {statistics.median(now):.1f} us per acquire+release"
        line += f" [{', '.join(f'{x:.1f}' for x in now)}]"
        if base is not None:
            before = measure(base, args.runs, args.steps, case)
            ratio = statistics.median(before) / statistics.median(now)
            line += (
                f"; base {args.base[:7]} {statistics.median(before):.1f} us"
                f" [{', '.join(f'{x:.1f}' for x in before)}]; {ratio:.2f}x faster"
            )
        print(line, flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
