"""The ``mmsd`` command: ``run`` (the daemon), ``demo`` (the main job) and ``sim`` (the simulator)."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence


def main(argv: Sequence[str] | None = None) -> int:
    """Dispatch to a subcommand; each lives next to the part it runs."""
    parser = argparse.ArgumentParser(prog="mmsd", description="Meeting Migration Service daemon")
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser("run", help="run the daemon", add_help=False)
    sub.add_parser("demo", help="run the demo on the built-in simulator", add_help=False)
    sub.add_parser("sim", help="run the Microsoft Graph simulator", add_help=False)
    args, rest = parser.parse_known_args(argv if argv is not None else sys.argv[1:])
    if args.command == "sim":
        from mmsd.sim.cli import sim_main

        return sim_main(rest)
    if args.command == "demo":
        from mmsd.demo import demo_main

        return demo_main(rest)
    from mmsd.daemon import run_main

    return run_main(rest)
