"""Throughput of the Graph simulator's request path (auth, routing, throttling, JSON) in GETs/s.

Starts ``mmsd sim`` as a SEPARATE process (``--latency-ms 0`` and a generous limits
file, so that it measures the throttling layer rather than 429s), gets a token from
its authority with azure-identity, then from this process hits it with concurrent
aiohttp ``GET /users/{id}/events/{id}`` spread across every mailbox for a few seconds,
several runs, and prints the median GETs/s (target: at least 2,000).

Usage: ``.venv/bin/python bench/bench_sim_throughput.py [--seconds 3] [--runs 5]
[--concurrency 64] [--users 50]``
"""

from __future__ import annotations

import argparse
import asyncio
import json
import signal
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import aiohttp

GENEROUS_LIMITS: dict[str, Any] = {
    "description": "benchmark: limits far above what one client can reach",
    "outlook_requests": 1_000_000_000,
    "outlook_concurrency": 1_000_000,
    "graph_requests": 1_000_000_000,
    "teams_requests": 1_000_000_000,
}


async def start_sim(work: Path, users: int) -> tuple[asyncio.subprocess.Process, dict[str, str]]:
    """Start ``mmsd sim`` and read its ready line."""
    limits = work / "limits.json"
    limits.write_text(json.dumps(GENEROUS_LIMITS))
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "mmsd",
        "sim",
        "--port",
        "0",
        "--users",
        str(users),
        "--meetings",
        "10",
        "--seed",
        "1",
        "--now",
        "2030-01-01T00:00:00Z",
        "--latency-ms",
        "0",
        "--limits",
        str(limits),
        "--work-dir",
        str(work / "sim"),
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.DEVNULL,
    )
    assert proc.stdout is not None
    ready: dict[str, str] = json.loads(await asyncio.wait_for(proc.stdout.readline(), 120))
    return proc, ready


async def get_token(ready: dict[str, str]) -> str:
    """A Graph token from the simulator's authority via azure-identity."""
    from azure.identity.aio import ClientSecretCredential

    cred = ClientSecretCredential(
        ready["tenantId"],
        ready["clientId"],
        ready["clientSecret"],
        authority=ready["authority"],
        disable_instance_discovery=True,
        connection_verify=ready["caFile"],
    )
    async with cred:
        return str((await cred.get_token("https://graph.microsoft.com/.default")).token)


async def targets(session: aiohttp.ClientSession, base: str) -> list[str]:
    """One event URL per Exchange Online mailbox (several per mailbox when available)."""
    control = base.removesuffix("/v1.0") + "/_sim"
    async with session.get(f"{control}/users") as r:
        users = (await r.json())["value"]
    urls: list[str] = []
    for user in users:
        if user["mailbox"] != "exchangeOnline":
            continue
        async with session.get(f"{control}/events/{user['id']}") as r:
            events = (await r.json())["value"][:3]
        urls += [f"{base}/users/{user['id']}/events/{e['data']['id']}" for e in events]
    return urls


async def run_once(
    session: aiohttp.ClientSession, urls: list[str], seconds: float, concurrency: int
) -> tuple[float, int]:
    """Hammer for ``seconds``; (GETs/s of 200 answers, non-200 answers)."""
    done = 0
    bad = 0
    deadline = time.perf_counter() + seconds

    async def worker(offset: int) -> None:
        nonlocal done, bad
        i = offset
        while time.perf_counter() < deadline:
            async with session.get(urls[i % len(urls)]) as r:
                await r.read()
                if r.status == 200:
                    done += 1
                else:
                    bad += 1
            i += concurrency

    start = time.perf_counter()
    await asyncio.gather(*(worker(k) for k in range(concurrency)))
    return done / (time.perf_counter() - start), bad


TARGET = 2000.0
"""GETs per second the simulator must serve."""


async def main(args: argparse.Namespace) -> int:
    """Start the simulator, run the benchmark, print the figures, stop it; 1 on a missed target."""
    with tempfile.TemporaryDirectory(prefix="mmsd-bench-") as tmp:
        proc, ready = await start_sim(Path(tmp), args.users)
        try:
            token = await get_token(ready)
            conn = aiohttp.TCPConnector(limit=args.concurrency)
            headers = {"Authorization": f"Bearer {token}"}
            async with aiohttp.ClientSession(connector=conn, headers=headers) as session:
                urls = await targets(session, ready["graphBaseUrl"])
                await run_once(session, urls, 0.5, args.concurrency)  # warm-up
                rates = []
                for n in range(args.runs):
                    rate, bad = await run_once(session, urls, args.seconds, args.concurrency)
                    rates.append(rate)
                    print(f"run {n + 1}: {rate:,.0f} GETs/s ({bad} non-200)", file=sys.stderr)
            median = statistics.median(rates)
            print(
                json.dumps(
                    {
                        "medianGetsPerSecond": round(median),
                        "runs": [round(r) for r in rates],
                        "concurrency": args.concurrency,
                        "mailboxes": len({u.split("/events/")[0] for u in urls}),
                        "targetMet": median >= TARGET,
                    }
                )
            )
        finally:
            proc.send_signal(signal.SIGTERM)
            await proc.wait()
    return 0 if median >= TARGET else 1


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=3.0)
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--concurrency", type=int, default=64)
    parser.add_argument("--users", type=int, default=50)
    try:
        import uvloop
    except ImportError:
        sys.exit(asyncio.run(main(parser.parse_args())))
    else:
        sys.exit(uvloop.run(main(parser.parse_args())))
