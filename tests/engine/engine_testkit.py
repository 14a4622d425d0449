"""The engine tests' harness: the real simulator (azure-identity auth), a real SQLite store."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx

from mmsd.config import Config, TenantConfig
from mmsd.domain.model import MigrationState, StatusRecord
from mmsd.engine.service import Engine
from mmsd.engine.settings import EngineSettings
from mmsd.graph import GraphClient
from mmsd.sim.server import Simulator
from mmsd.store import Store

NOW = datetime(2026, 1, 5, 9, 0, tzinfo=UTC)
TENANT = "contoso"


class Observer:
    """An EngineObserver that counts what it is told and wakes waiters."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, tuple[Any, ...]]] = []
        self.changed = asyncio.Event()

    def _note(self, name: str, *args: Any) -> None:
        self.calls.append((name, args))
        self.changed.set()

    def trigger_decided(self, tenant: str, trigger_type: str, fate: str) -> None:
        self._note("trigger_decided", tenant, trigger_type, fate)

    def migration_started(self, tenant: str, queue_wait_s: float) -> None:
        self._note("migration_started", tenant, queue_wait_s)

    def migration_finished(self, tenant: str, state: str, duration_s: float) -> None:
        self._note("migration_finished", tenant, state, duration_s)

    def migration_rescheduled(self, tenant: str, waiting_for_quota: bool) -> None:
        self._note("migration_rescheduled", tenant, waiting_for_quota)

    def meeting_outcome(self, tenant: str, outcome: str, reason: str | None) -> None:
        self._note("meeting_outcome", tenant, outcome, reason)

    def invites_sent(self, tenant: str, count: int) -> None:
        self._note("invites_sent", tenant, count)


class Harness:
    """A simulator, a store and (once started) an engine, with helpers for both."""

    def __init__(self, sim: Simulator, tmp: Path) -> None:
        self.sim = sim
        self.tmp = tmp
        self.control = sim.graph_base_url.rsplit("/v1.0", 1)[0] + "/_sim"
        secret = tmp / "client-secret"
        secret.write_text(sim.client_secret)
        self.config = Config(
            state_dir=tmp / "state",
            admin_socket=tmp / "admin.sock",
            coalesce_seconds=0.3,
            retry_delays_seconds=(0.05,) * 9,
            stop_timeout_seconds=10.0,
            tenants={
                TENANT: TenantConfig(
                    name=TENANT,
                    tenant_id=sim.tenant_id,
                    client_id=sim.client_id,
                    graph_base_url=sim.graph_base_url,
                    authority=sim.authority,
                    ca_file=Path(sim.ca_file),
                    client_secret_file=secret,
                )
            },
        )
        self.store: Store | None = None
        self.engine: Engine | None = None
        self.observer = Observer()
        self.http = httpx.AsyncClient(timeout=30)

    # -- simulator -------------------------------------------------------------------

    async def get(self, path: str) -> Any:
        response = await self.http.get(self.control + path)
        response.raise_for_status()
        return response.json()

    async def send(self, method: str, path: str, body: Any = None) -> Any:
        response = await self.http.request(method, self.control + path, json=body)
        response.raise_for_status()
        return response.json() if response.content else None

    async def users(self, kind: str | None = None) -> list[dict[str, Any]]:
        users: list[dict[str, Any]] = (await self.get("/users"))["value"]
        return [u for u in users if kind is None or u["kind"] == kind]

    async def counters(self) -> dict[str, Any]:
        counters: dict[str, Any] = await self.get("/counters")
        return counters

    # -- engine ----------------------------------------------------------------------

    async def open_store(self) -> Store:
        self.store = await Store.open(self.tmp / "state" / "mmsd.sqlite3", clock=self.sim.clock)
        return self.store

    def client(self, **options: Any) -> GraphClient:
        """A Graph client of the tenant (its own, to wrap in a test), on the simulator's clock."""
        secret = self.tmp / "client-secret"
        settings = self.config.tenants[TENANT].graph_settings() | {
            "client_secret_file": str(secret)
        }
        return GraphClient.from_config(settings, tenant=TENANT, clock=self.sim.clock, **options)

    async def start(
        self,
        *,
        poll_licences: bool = False,
        client: GraphClient | None = None,
        **overrides: Any,
    ) -> Engine:
        """Start the engine (``client``: the tenant's Graph client, else one of its own)."""
        if self.store is None:
            await self.open_store()
        assert self.store is not None
        values: dict[str, Any] = {"tick_seconds": 0.5}
        values.update(overrides)
        settings = EngineSettings.from_config(self.config, **values)
        self.engine = await Engine.start(
            self.config,
            self.store,
            clock=self.sim.clock,
            observer=self.observer,
            settings=settings,
            clients=None if client is None else {TENANT: client},
            poll_licences=poll_licences,
        )
        return self.engine

    async def wait_for(
        self, check: Callable[[], Any], within: float = 30.0, what: str = "condition"
    ) -> Any:
        """Re-check ``check`` (a coroutine function) whenever the engine reports progress."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + within
        while True:
            self.observer.changed.clear()
            result = await check()
            if result:
                return result
            left = deadline - loop.time()
            if left <= 0:
                raise AssertionError(f"timed out waiting for {what}")
            try:
                await asyncio.wait_for(self.observer.changed.wait(), min(left, 0.5))
            except TimeoutError:
                pass

    async def wait_state(
        self, user_id: str, *states: MigrationState, within: float = 30.0
    ) -> StatusRecord:
        """The user's latest record once it is in one of ``states``."""
        assert self.store is not None
        store = self.store

        async def check() -> StatusRecord | None:
            records = await store.status(TENANT, identity=user_id)
            if records and records[-1].state in states:
                return records[-1]
            return None

        record: StatusRecord = await self.wait_for(check, within, f"{user_id} in {states}")
        return record

    async def close(self) -> None:
        if self.engine is not None:
            await self.engine.shutdown()
        if self.store is not None:
            await self.store.close()
        await self.http.aclose()
