"""A stand-in for ``mmsd run`` that answers the admin API and does nothing (for the demo's tests).

Usage: ``python demo_fake_daemon.py CONFIG``; it listens on the config's
``admin_socket``, accepts every trigger, reports nobody migrated, and exits 0 on
SIGTERM.
"""

from __future__ import annotations

import asyncio
import signal
import sys
import tomllib

from aiohttp import web

STATES = ("Pending", "InProgress", "Succeeded", "Failed")


async def main(config: dict[str, object]) -> None:
    app = web.Application()
    base = "/v1/tenants/demo"

    async def ready(request: web.Request) -> web.Response:
        return web.json_response({"status": "ready"})

    async def trigger(request: web.Request) -> web.Response:
        await request.json()
        return web.json_response({"triggerId": "t"}, status=202)

    async def summary(request: web.Request) -> web.Response:
        return web.json_response({"value": [{"state": s, "userCount": 0} for s in STATES]})

    async def migrations(request: web.Request) -> web.Response:
        return web.json_response({"value": []})

    app.router.add_get("/readyz", ready)
    app.router.add_post(base + "/triggers", trigger)
    app.router.add_get(base + "/migrations/summary", summary)
    app.router.add_get(base + "/migrations", migrations)
    runner = web.AppRunner(app)
    await runner.setup()
    await web.UnixSite(runner, str(config["admin_socket"])).start()
    stop = asyncio.Event()
    asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, stop.set)
    await stop.wait()
    await runner.cleanup()


if __name__ == "__main__":
    with open(sys.argv[1], "rb") as fh:
        asyncio.run(main(tomllib.load(fh)))
