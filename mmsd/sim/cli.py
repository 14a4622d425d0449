"""``mmsd sim``: run the Graph simulator on its own until SIGTERM/SIGINT.

Once both listeners listen it writes exactly one JSON line to stdout, flushed —
``{"graphBaseUrl", "authority", "tenantId", "clientId", "clientSecret", "caFile"}``
— the simulator's own throwaway credentials; every log line goes to stderr.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import gc
import json
import logging
import signal
import sys
from pathlib import Path

from mmsd.clock import parse_rfc3339
from mmsd.sim.limits import LimitsProfile, load_limits
from mmsd.sim.server import DEFAULT_LATENCY_MS, SimConfig, Simulator


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="mmsd sim", description="Run the Microsoft Graph simulator.")
    p.add_argument("--port", type=int, default=0, help="Graph HTTP port (0: a free one)")
    p.add_argument("--users", type=int, default=20, help="users in the generated tenant")
    p.add_argument("--meetings", type=int, default=10, help="meetings each user organizes")
    p.add_argument("--seed", type=int, default=1, help="tenant generation and fault seed")
    p.add_argument("--now", type=str, default=None, help="start of the simulated clock (ISO 8601)")
    p.add_argument(
        "--latency-ms",
        type=float,
        default=DEFAULT_LATENCY_MS,
        help=f"median service time of a Graph request (default {DEFAULT_LATENCY_MS:g})",
    )
    p.add_argument("--limits", type=Path, default=None, help="limits profile (.json or .toml)")
    p.add_argument("--no-auth", action="store_true", help="accept Graph calls without a token")
    p.add_argument("--work-dir", type=Path, default=None, help="where the CA file is written")
    return p


def config_from_args(argv: list[str]) -> SimConfig:
    """Parse ``mmsd sim`` arguments into a :class:`SimConfig` (exits 2 on a usage error)."""
    parser = _parser()
    args = parser.parse_args(argv)
    if args.users < 1 or args.meetings < 0 or args.latency_ms < 0 or not 0 <= args.port < 65536:
        parser.error("--users must be >= 1, --meetings and --latency-ms >= 0, --port 0..65535")
    now = None
    if args.now is not None:
        try:
            now = parse_rfc3339(args.now)
        except ValueError:
            parser.error(f"--now: not an ISO 8601 instant: {args.now!r}")
    limits = LimitsProfile()
    if args.limits is not None:
        try:
            limits = load_limits(args.limits)
        except (OSError, ValueError) as exc:
            parser.error(f"--limits: {exc}")
    return SimConfig(
        port=args.port,
        users=args.users,
        meetings=args.meetings,
        seed=args.seed,
        now=now,
        latency_ms=args.latency_ms,
        limits=limits,
        auth=not args.no_auth,
        work_dir=args.work_dir,
    )


async def serve(config: SimConfig) -> None:
    """Start a simulator, print the ready line, and run until SIGTERM/SIGINT."""
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        with contextlib.suppress(NotImplementedError):
            loop.add_signal_handler(sig, stop.set)
    sim = Simulator(config)
    # The generated tenant lives as long as the process: move it out of the cyclic
    # collector's sight, so that full collections while serving do not rescan it.
    gc.freeze()
    async with sim:
        sys.stdout.write(json.dumps(sim.ready_line()) + "\n")
        sys.stdout.flush()
        await stop.wait()
        logging.getLogger("mmsd.sim").info("stopping")


def sim_main(argv: list[str]) -> int:
    """The ``mmsd sim`` command; returns the exit status."""
    config = config_from_args(argv)
    logging.basicConfig(
        stream=sys.stderr,
        level=logging.INFO,
        format="%(asctime)s %(name)s %(levelname)s %(message)s",
    )
    logging.getLogger("aiohttp.access").setLevel(logging.WARNING)
    try:
        import uvloop
    except ImportError:
        asyncio.run(serve(config))
    else:
        uvloop.run(serve(config))
    return 0
