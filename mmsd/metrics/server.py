"""The plain metrics listener: ``/metrics``, ``/healthz`` and ``/readyz``, no token.

It runs on the daemon's event loop (aiohttp), by default on ``127.0.0.1:9464``
(SPEC section 5), apart from the admin API so that Prometheus never needs the admin
token. ``/metrics`` renders the registry in the loop's thread, which is what lets the
actor collector read :meth:`ActorSystem.stats` without locks; the queue figures come
from :class:`~mmsd.metrics.Metrics`' cache and never wait on the store.
"""

from __future__ import annotations

import logging
from collections.abc import Callable

from aiohttp import web
from prometheus_client import CollectorRegistry
from prometheus_client.exposition import choose_encoder

from mmsd.metrics.registry import Metrics

log = logging.getLogger(__name__)

DEFAULT_LISTEN = "127.0.0.1:9464"

Check = Callable[[], bool]


def parse_listen(listen: str) -> tuple[str, int]:
    """Split ``host:port`` (``[v6]:port`` for IPv6) into host and port; raise ValueError."""
    host, sep, port = listen.rpartition(":")
    if not sep or not host or not port.isdigit() or not 0 <= int(port) <= 65535:
        raise ValueError(f"metrics_listen: expected HOST:PORT, got {listen!r}")
    if host.startswith("[") and host.endswith("]"):
        host = host[1:-1]
    return host, int(port)


class MetricsServer:
    """Serves a registry and the health probes on one plain HTTP listener.

    ``ready`` answers ``/readyz`` (True once the store, actors and listeners are up and
    the daemon is not stopping); ``healthy`` answers ``/healthz`` (default: always,
    the process answering is the health).
    """

    def __init__(
        self,
        metrics: Metrics | CollectorRegistry,
        listen: str = DEFAULT_LISTEN,
        *,
        ready: Check | None = None,
        healthy: Check | None = None,
    ) -> None:
        self._registry = metrics.registry if isinstance(metrics, Metrics) else metrics
        self._host, self._port = parse_listen(listen)
        self._ready = ready or (lambda: True)
        self._healthy = healthy or (lambda: True)
        self._runner: web.AppRunner | None = None
        self._bound: tuple[str, int] | None = None

    def app(self) -> web.Application:
        """The aiohttp application (exposed so tests can drive it without a socket)."""
        app = web.Application()
        app.router.add_get("/metrics", self._metrics)
        app.router.add_get("/healthz", self._healthz)
        app.router.add_get("/readyz", self._readyz)
        return app

    async def start(self) -> None:
        """Bind and start serving; after this :attr:`port` is the bound port."""
        runner = web.AppRunner(self.app(), access_log=None, handle_signals=False)
        await runner.setup()
        site = web.TCPSite(runner, self._host, self._port, reuse_address=True)
        try:
            await site.start()
        except BaseException:
            await runner.cleanup()
            raise
        self._runner = runner
        for address in runner.addresses:
            if isinstance(address, tuple):
                self._bound = (str(address[0]), int(address[1]))
                break
        log.info("metrics listener on %s", self.url)

    async def stop(self) -> None:
        """Stop listening and finish open requests (aiohttp's graceful cleanup)."""
        if self._runner is not None:
            runner, self._runner = self._runner, None
            await runner.cleanup()

    @property
    def port(self) -> int:
        """The port bound (the configured one, or the one the OS chose for port 0)."""
        return self._bound[1] if self._bound is not None else self._port

    @property
    def url(self) -> str:
        """``http://host:port`` of the listener."""
        host = f"[{self._host}]" if ":" in self._host else self._host
        return f"http://{host}:{self.port}"

    async def _metrics(self, request: web.Request) -> web.Response:
        encoder, content_type = choose_encoder(request.headers.get("Accept", ""))
        body = encoder(self._registry)
        return web.Response(body=body, headers={"Content-Type": content_type})

    async def _healthz(self, request: web.Request) -> web.Response:
        return self._probe(self._healthy)

    async def _readyz(self, request: web.Request) -> web.Response:
        return self._probe(self._ready)

    @staticmethod
    def _probe(check: Check) -> web.Response:
        try:
            ok = bool(check())
        except Exception:
            log.exception("probe check failed")
            ok = False
        if ok:
            return web.json_response({"status": "ok"})
        return web.json_response({"status": "unavailable"}, status=503)
