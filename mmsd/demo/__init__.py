"""``mmsd demo``: the main job on the built-in simulator, judged on the simulator's state alone.

``demo_main(argv)`` parses the options, runs :func:`mmsd.demo.runner.run_demo`
and returns the exit status: 0 only if every check holds, 1 otherwise, 2 on a
usage error.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys

from mmsd.demo.progress import ProgressView
from mmsd.demo.runner import DEFAULT_MEETINGS, DEFAULT_USERS, DemoOptions, print_report, run_demo

__all__ = ["demo_main", "parse_options"]


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="mmsd demo",
        description=(
            "Start the Graph simulator, run the real daemon on it, fire a wave of triggers, "
            "show live progress, print the summary and check the outcome against the "
            "simulator's state alone. Exit status 0 only if every check holds."
        ),
    )
    p.add_argument(
        "--users",
        type=int,
        default=DEFAULT_USERS,
        help=f"users in the tenant (default {DEFAULT_USERS})",
    )
    p.add_argument(
        "--meetings",
        type=int,
        default=DEFAULT_MEETINGS,
        help=f"meetings each user organizes (default {DEFAULT_MEETINGS})",
    )
    p.add_argument("--seed", type=int, default=1, help="tenant seed (default 1)")
    p.add_argument(
        "--json", action="store_true", help="print one JSON document instead of the report"
    )
    p.add_argument(
        "--timeout", type=float, default=300.0, help="seconds to wait for the wave (default 300)"
    )
    p.add_argument(
        "--keep", action="store_true", help="keep the work directory (config, daemon log, state)"
    )
    return p


def parse_options(argv: list[str]) -> DemoOptions:
    """``mmsd demo`` arguments as :class:`DemoOptions` (exits 2 on a usage error)."""
    parser = _parser()
    args = parser.parse_args(argv)
    if args.users < 1 or args.meetings < 1 or args.timeout <= 0:
        parser.error("--users and --meetings must be >= 1, --timeout > 0")
    return DemoOptions(
        users=args.users,
        meetings=args.meetings,
        seed=args.seed,
        json=args.json,
        timeout=args.timeout,
        keep=args.keep,
    )


def demo_main(argv: list[str]) -> int:
    """Run ``mmsd demo``; the exit status is 0 only if every check holds."""
    options = parse_options(list(argv))
    # With --json, stdout carries the document alone; progress goes to stderr on a terminal.
    stream = sys.stderr if options.json else sys.stdout
    show = stream if (not options.json or stream.isatty()) else None
    if show is not None and not options.json:
        view = ProgressView(show)
        view.line(
            view.style("bold", "mmsd demo")
            + f" - {options.users} users x {options.meetings} meetings, seed {options.seed}"
        )
    try:
        result = asyncio.run(run_demo(options, show))
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    if options.json:
        print(json.dumps(result.to_json(), ensure_ascii=False))
    else:
        print_report(result, ProgressView(sys.stdout))
    return 0 if result.ok else 1
