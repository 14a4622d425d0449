"""``mmsd run --config FILE``: the daemon process.

Start order (``READY=1`` only at the end): configuration → SQLite store → metrics →
engine (actors, Graph clients, recovery of interrupted migrations) → admin
listeners (Unix socket, optional TCP) → metrics listener → background tasks
(metrics refresh, which also updates ``STATUS=`` with users in progress and
pending; retention pruning; systemd watchdog) → ``READY=1``.

Signals: ``SIGTERM``/``SIGINT`` drain and stop (``STOPPING=1``): the listeners stop
taking requests, the engine runs its staged shutdown (stop intake → in-flight
Graph calls finish or checkpoint → cancel the rest → flush), then the store
closes. ``SIGHUP`` re-reads the configuration (``RELOADING=1``): tenants added or
removed and limits changed are applied by the engine without losing work in flight;
a broken file is logged and the running configuration kept. Keys that name
listeners or the state directory need a restart, which the log says.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import gc
import logging
import signal
import sys
from collections.abc import Mapping, Sequence
from datetime import timedelta
from pathlib import Path

from mmsd.admin.listeners import ListenerError, read_token_file, start_admin_listeners
from mmsd.clock import SystemClock
from mmsd.config import Config, ConfigError, load_config
from mmsd.domain.model import MigrationState
from mmsd.engine.service import Engine
from mmsd.logs import setup_logging
from mmsd.metrics.registry import Metrics
from mmsd.metrics.server import MetricsServer
from mmsd.store import QueueMetrics, Store, database_path
from mmsd.systemd import Notifier, run_watchdog

log = logging.getLogger("mmsd.daemon")

DEFAULT_CONFIG = Path("/etc/mmsd/mmsd.toml")
PRUNE_INTERVAL_S = 3600.0
METRICS_REFRESH_S = 5.0
_RESTART_KEYS = (
    "state_dir",
    "admin_socket",
    "admin_socket_group",
    "admin_listen",
    "admin_token_file",
    "metrics_listen",
)


def status_line(snapshots: Mapping[str, QueueMetrics | None]) -> str:
    """The ``STATUS=`` text: tenants served and users in progress, pending and done.

    Summed over the tenants from the metrics cache (``systemctl status`` shows it);
    before the first refresh only the number of tenants is known.
    """
    head = f"serving {len(snapshots)} tenant(s)"
    known = [s for s in snapshots.values() if s is not None]
    if not known:
        return head

    def total(state: MigrationState) -> int:
        return sum(s.users_by_state.get(state, 0) for s in known)

    return (
        f"{head}: {total(MigrationState.IN_PROGRESS)} in progress, "
        f"{total(MigrationState.PENDING)} pending, {total(MigrationState.SUCCEEDED)} succeeded, "
        f"{total(MigrationState.FAILED)} failed"
    )


def run_main(argv: Sequence[str]) -> int:
    """Parse ``mmsd run`` arguments, load the configuration and run until stopped."""
    parser = argparse.ArgumentParser(prog="mmsd run", description="run the mmsd daemon")
    parser.add_argument(
        "--config",
        type=Path,
        default=DEFAULT_CONFIG,
        help=f"TOML configuration file (default {DEFAULT_CONFIG})",
    )
    args = parser.parse_args(list(argv))
    try:
        config = load_config(args.config)
    except ConfigError as exc:
        print(f"mmsd: {exc}", file=sys.stderr)
        return 2
    if config.admin_listen is not None:
        # Refuse a TCP admin listener without a usable token before anything starts.
        try:
            read_token_file(config.admin_token_file)
        except ListenerError as exc:
            print(f"mmsd: admin_listen refused: {exc}", file=sys.stderr)
            return 1
    setup_logging(config.log_level)
    from mmsd.actors import run

    return run(Daemon(config, args.config).main())


#: Allocations (minus deallocations) between two collections of the youngest
#: generation; CPython's default is 700.
GC_YOUNG_THRESHOLD = 50_000


def settle_heap() -> None:
    """Freeze what start-up built and collect the youngest generation less often.

    A migration wave allocates mostly short-lived, acyclic objects (the dicts and
    strings of Graph's JSON, freed by reference counting); with CPython's default
    threshold the cyclic collector ran every 700 of them and re-scanned the
    modules, tables and pools start-up left on the heap: 5.6 % of the daemon's CPU
    under the CPU benchmark (py-spy). ``gc.freeze`` moves start-up's objects out of
    every scan; cycles are still collected, in larger, rarer batches.
    """
    gc.collect()
    gc.freeze()
    gc.set_threshold(GC_YOUNG_THRESHOLD, 20, 20)


class Daemon:
    """One daemon process: owns the store, the engine, the listeners and the signals."""

    def __init__(self, config: Config, config_path: Path) -> None:
        self.config = config
        self.config_path = config_path
        self.clock = SystemClock()
        self.notifier = Notifier()
        self._ready = False
        self._stop = asyncio.Event()
        self._reload = asyncio.Event()
        self._engine: Engine | None = None

    def ready(self) -> bool:
        """``/readyz``: store, actors and listeners are up and the daemon is not stopping."""
        return self._ready

    def healthy(self) -> bool:
        """Watchdog and ``/healthz``: every configured tenant actor is alive.

        A tenant actor that exhausted its restart budget stays down; withholding the
        watchdog ping then makes systemd restart the service, with state rebuilt from
        the store.
        """
        engine = self._engine
        if engine is None:
            return False
        tenants = engine.system.stats().kinds.get("tenant")
        return tenants is not None and tenants.live >= len(engine.tenants)

    async def main(self) -> int:
        """Start everything, serve until SIGTERM, then stop in stages; the exit status."""
        config = self.config
        store = await Store.open(
            database_path(config.state_dir),
            clock=self.clock,
            retention=timedelta(days=config.retention_days),
        )
        tasks: list[asyncio.Task[None]] = []
        admin = None
        metrics_server = None
        try:
            metrics = Metrics(config.tenants, store=store)
            engine = await Engine.start(
                config, store, clock=self.clock, observer=metrics, graph_observer=metrics
            )
            self._engine = engine
            metrics.actors = engine.system
            try:
                admin = await start_admin_listeners(
                    config, engine, store, clock=self.clock, readiness=self.ready
                )
            except ListenerError as exc:
                log.error("admin listener refused: %s", exc)
                await engine.shutdown()
                return 1
            metrics_server = MetricsServer(
                metrics, config.metrics_listen, ready=self.ready, healthy=self.healthy
            )
            await metrics_server.start()
            watchdog = asyncio.create_task(
                run_watchdog(self.notifier, self.healthy), name="watchdog"
            )
            tasks = [
                asyncio.create_task(self._refresh_forever(metrics), name="metrics-refresh"),
                asyncio.create_task(self._prune_forever(store), name="retention-prune"),
                watchdog,
            ]
            self._install_signals()
            settle_heap()
            self._ready = True
            self.notifier.ready(status_line(metrics.snapshots()))
            log.info("mmsd ready", extra={"tenant": ",".join(config.tenants)})
            await self._serve(engine, metrics)
            self._ready = False
            self.notifier.stopping("draining")
            # systemd stops watching once STOPPING=1 is sent; the draining actors are not
            # a health problem, so the watchdog must not report them as one.
            watchdog.cancel()
            log.info("stopping: draining in-flight work")
            if admin is not None:
                await admin.close()
            await engine.shutdown()
            return 0
        finally:
            self._ready = False
            for task in tasks:
                task.cancel()
            for task in tasks:
                with contextlib.suppress(asyncio.CancelledError, Exception):
                    await task
            if metrics_server is not None:
                await metrics_server.stop()
            await store.close()

    async def _serve(self, engine: Engine, metrics: Metrics) -> None:
        """Wait for SIGTERM; apply each SIGHUP meanwhile."""
        while not self._stop.is_set():
            stop = asyncio.create_task(self._stop.wait())
            reload = asyncio.create_task(self._reload.wait())
            await asyncio.wait({stop, reload}, return_when=asyncio.FIRST_COMPLETED)
            stop.cancel()
            reload.cancel()
            if self._reload.is_set() and not self._stop.is_set():
                self._reload.clear()
                await self._apply_reload(engine, metrics)

    async def _apply_reload(self, engine: Engine, metrics: Metrics) -> None:
        self.notifier.reloading("re-reading the configuration")
        try:
            new = load_config(self.config_path)
        except ConfigError as exc:
            log.error("reload refused, keeping the running configuration: %s", exc)
            self.notifier.ready("reload refused; running configuration kept")
            return
        for key in _RESTART_KEYS:
            if getattr(new, key) != getattr(self.config, key):
                log.warning("configuration key %s changed: it takes effect on restart", key)
        await engine.reload(new)
        metrics.set_tenants(new.tenants)
        self.config = new
        log.info("configuration reloaded")
        self.notifier.ready(status_line(metrics.snapshots()))

    def _install_signals(self) -> None:
        loop = asyncio.get_running_loop()
        loop.add_signal_handler(signal.SIGTERM, self._stop.set)
        loop.add_signal_handler(signal.SIGINT, self._stop.set)
        loop.add_signal_handler(signal.SIGHUP, self._reload.set)

    async def _refresh_forever(self, metrics: Metrics) -> None:
        """Refresh the metrics cache every few seconds and show it in ``STATUS=``."""
        while True:
            try:
                await metrics.refresh()
            except Exception:
                log.exception("metrics refresh failed")
            if self._ready:
                self.notifier.status(status_line(metrics.snapshots()))
            await asyncio.sleep(METRICS_REFRESH_S)

    async def _prune_forever(self, store: Store) -> None:
        while True:
            try:
                result = await store.prune()
                log.info("retention prune done: %s", result)
            except Exception:
                log.exception("retention prune failed; will retry")
            await asyncio.sleep(PRUNE_INTERVAL_S)
