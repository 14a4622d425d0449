"""The engine: builds the actor system, one tenant actor and Graph client per tenant.

:class:`Engine` implements :class:`~mmsd.engine.api.MigrationService` for the
admin API, the daemon and the demo::

    engine = await Engine.start(config, store, clock=clock, observer=observer)
    trigger_id = await engine.submit_trigger("contoso", trigger)
    ...
    await engine.shutdown()      # staged: stop intake, drain, cancel; store stays open

The caller owns the store (opens it before, closes it after ``shutdown``). The
engine owns the Graph clients it built (closed at shutdown); clients passed in
``clients=`` stay the caller's. Licence polling runs as one tracked task per
tenant unless ``poll_licences=False``.

``reload(config)`` (SIGHUP) applies, without losing work in flight: new timing
settings (coalescing window, retry delays, delta interval); a new
``max_user_actors`` (each tenant's user-actor cap changes in place: running
migrations finish, and the next wake-up claims up to the new cap); a tenant's new
limits or credentials (a new Graph client for what starts from then on, see
:meth:`Engine._replace_client`); tenants added to the configuration start, and
tenants removed from it stop taking triggers.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Mapping
from dataclasses import dataclass, replace
from typing import Any

from mmsd.actors import (
    ActorGroup,
    ActorStopped,
    ActorSystem,
    MailboxFull,
    ShutdownPlan,
    ShutdownReport,
    ShutdownStage,
    SystemStats,
)
from mmsd.clock import Clock, SystemClock
from mmsd.config import Config, TenantConfig
from mmsd.domain.model import (
    SourceMeetingType,
    TargetMeetingType,
    TenantSwitches,
    Trigger,
    TriggerType,
)
from mmsd.domain.triggers import new_trigger_id
from mmsd.engine.api import (
    EngineObserver,
    NullObserver,
    Preview,
    ServiceUnavailable,
    UnknownTenant,
    UserNotFound,
)
from mmsd.engine.delta import LicencePoller
from mmsd.engine.intake import TriggerIntake
from mmsd.engine.preview import preview_user
from mmsd.engine.settings import EngineSettings
from mmsd.engine.tenant_actor import DecideTrigger, TenantActor, TenantMessage, TenantRuntime, Wake
from mmsd.graph import AppPacer, GraphClient, GraphError, GraphLimits, GraphObserver, NotFound
from mmsd.graph import TransportError as GraphTransportError
from mmsd.store import Store, StoreError

log = logging.getLogger(__name__)

HAND_OVER_TIMEOUT_S = 5.0


@dataclass(frozen=True)
class EngineStats:
    """A snapshot for metrics: actors and mailboxes, and the tenants served."""

    system: SystemStats
    tenants: tuple[str, ...]


class Engine:
    """The running migration engine (implements ``MigrationService``)."""

    def __init__(
        self,
        config: Config,
        store: Store,
        system: ActorSystem,
        settings: EngineSettings,
        observer: EngineObserver,
        clock: Clock,
    ) -> None:
        """Use :meth:`start`."""
        self.config = config
        self.store = store
        self.system = system
        self.settings = settings
        self.observer = observer
        self.clock = clock
        self._runtimes: dict[str, TenantRuntime] = {}
        self._pollers: dict[str, LicencePoller] = {}
        self._owned_clients: list[GraphClient] = []
        self._tenant_group: ActorGroup[str, TenantMessage] = system.group(
            "tenants", kind="tenant", mailbox_size=settings.tenant_mailbox_size
        )
        self._app_pacer: AppPacer | None = None
        self._graph_observer: GraphObserver | None = None
        self._poll_licences = True
        self._closed = False

    # ----------------------------------------------------------------- lifecycle

    @classmethod
    async def start(
        cls,
        config: Config,
        store: Store,
        *,
        clock: Clock | None = None,
        observer: EngineObserver | None = None,
        graph_observer: GraphObserver | None = None,
        settings: EngineSettings | None = None,
        clients: Mapping[str, GraphClient] | None = None,
        poll_licences: bool = True,
    ) -> Engine:
        """Build and start everything; returns once every tenant actor has started."""
        clock = clock or SystemClock()
        settings = settings or EngineSettings.from_config(config)
        stop = config.stop_timeout_seconds
        plan = ShutdownPlan(
            stop_intake=min(2.0, stop * 0.05),
            drain=stop * 0.6,
            cancel=stop * 0.1,
            final=stop * 0.2,
            stop_timeout=stop,
        )
        system = ActorSystem(clock=clock, plan=plan)
        engine = cls(config, store, system, settings, observer or NullObserver(), clock)
        engine._graph_observer = graph_observer
        engine._poll_licences = poll_licences
        engine._app_pacer = AppPacer(clock)
        system.add_shutdown_hook(ShutdownStage.FINAL, "graph-clients", engine._close_clients)
        try:
            for name, tenant in config.tenants.items():
                await engine._start_tenant(tenant, (clients or {}).get(name))
        except BaseException:
            await engine.abort()
            raise
        return engine

    async def _start_tenant(self, tenant: TenantConfig, client: GraphClient | None) -> None:
        if client is None:
            client = GraphClient.from_config(
                tenant.graph_settings(),
                tenant=tenant.name,
                clock=self.clock,
                app_pacer=self._app_pacer,
                limits=GraphLimits.from_mapping(tenant.limits),
                observer=self._graph_observer,
            )
            self._owned_clients.append(client)
        runtime = TenantRuntime(tenant.name, self.store, client, self.settings, self.observer)
        self._runtimes[tenant.name] = runtime
        await self._tenant_group.get_or_spawn(tenant.name, lambda: TenantActor(runtime))
        if self._poll_licences:
            poller = LicencePoller(
                tenant.name,
                client,
                lambda t: self.submit_trigger(t.tenant, t),
                self.clock,
                self.settings.delta_poll_seconds,
                self.store,
            )
            self._pollers[tenant.name] = poller
            self.system.create_task(poller.run(), name=f"delta:{tenant.name}")

    async def reload(self, config: Config) -> None:
        """Apply a new configuration without losing work (see the module docstring)."""
        cap = self.settings.max_user_actors  # kept unless the file changed it (tests override)
        if config.max_user_actors != self.config.max_user_actors:
            cap = config.max_user_actors
            log.info("max_user_actors changed to %d: applied to every tenant", cap)
        self.settings = replace(
            EngineSettings.from_config(config),
            max_user_actors=cap,
            tick_seconds=self.settings.tick_seconds,
            patch_batch_size=self.settings.patch_batch_size,
        )
        for runtime in self._runtimes.values():
            runtime.apply_settings(self.settings)
        for poller in self._pollers.values():
            poller.interval = self.settings.delta_poll_seconds
        for name, tenant in config.tenants.items():
            if name not in self._runtimes:
                await self._start_tenant(tenant, None)
            elif self._graph_changed(self.config.tenants.get(name), tenant):
                self._replace_client(tenant)
        for name in list(self._runtimes):
            if name not in config.tenants:
                del self._runtimes[name]
                self._tenant_group.stop(name)
        self.config = config
        for name in self._runtimes:
            await self._tell(name, Wake())  # a higher cap claims more users now

    @staticmethod
    def _graph_changed(old: TenantConfig | None, new: TenantConfig) -> bool:
        return old is None or (
            dict(old.limits) != dict(new.limits) or old.graph_settings() != new.graph_settings()
        )

    def _replace_client(self, tenant: TenantConfig) -> None:
        """New limits or credentials for a running tenant: a new Graph client from now on.

        Work in flight finishes on the old client (closed at shutdown); every
        decision, migration attempt and delta poll that starts after the reload
        uses the new one. Pacing windows start afresh; the sending quota is
        restored from the store when a migration starts.
        """
        client = GraphClient.from_config(
            tenant.graph_settings(),
            tenant=tenant.name,
            clock=self.clock,
            app_pacer=self._app_pacer,
            limits=GraphLimits.from_mapping(tenant.limits),
            observer=self._graph_observer,
        )
        self._owned_clients.append(client)
        self._runtimes[tenant.name].client = client
        poller = self._pollers.get(tenant.name)
        if poller is not None:
            poller.client = client
        log.info(
            "tenant limits or credentials changed: new Graph client", extra={"tenant": tenant.name}
        )

    async def shutdown(self) -> ShutdownReport:
        """Staged graceful stop: intake off, running attempts checkpoint, tasks end, clients close."""
        self._closed = True
        return await self.system.shutdown()

    async def abort(self) -> None:
        """Stop at once, like a killed process: cancel every task, write nothing more."""
        self._closed = True
        tasks = [t for t in self.system.tasks if t is not asyncio.current_task()]
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        await self._close_clients()

    async def _close_clients(self) -> None:
        clients, self._owned_clients = self._owned_clients, []
        for client in clients:
            try:
                await client.aclose()
            except Exception:  # closing must not fail the shutdown
                log.warning("closing a Graph client failed", exc_info=True)

    def stats(self) -> EngineStats:
        """Actors, mailbox depth and tasks (for metrics)."""
        return EngineStats(self.system.stats(), tuple(self._runtimes))

    def poller(self, tenant: str) -> LicencePoller | None:
        """The tenant's licence poller (tests poll it by hand)."""
        return self._pollers.get(tenant)

    # ----------------------------------------------------------------- service

    @property
    def tenants(self) -> list[str]:
        """Tenant names from the configuration, in order."""
        return list(self._runtimes)

    def _runtime(self, tenant: str) -> TenantRuntime:
        runtime = self._runtimes.get(tenant)
        if runtime is None:
            raise UnknownTenant(f"unknown tenant {tenant!r}")
        if self._closed or self.system.stopping:
            raise ServiceUnavailable("mmsd is shutting down")
        return runtime

    async def _tell(self, tenant: str, message: TenantMessage) -> bool:
        ref = self._tenant_group.get(tenant)
        if ref is None:
            return False
        try:
            await ref.tell(message, timeout=HAND_OVER_TIMEOUT_S)
        except (MailboxFull, ActorStopped):
            return False
        return True

    async def submit_trigger(self, tenant: str, trigger: Trigger) -> str:
        """Record the trigger (committed), then hand it to the tenant actor; its ID."""
        runtime = self._runtime(tenant)
        if trigger.tenant != tenant:
            trigger = replace(trigger, tenant=tenant)
        await self.store.record_trigger(trigger)
        if not await self._tell(tenant, DecideTrigger(trigger)):
            runtime.undecided_backlog = True  # the tenant's tick picks it up from the store
        return trigger.id

    async def start_migration(
        self,
        tenant: str,
        identity: str,
        source: SourceMeetingType = SourceMeetingType.ALL,
        target: TargetMeetingType = TargetMeetingType.CURRENT,
    ) -> str:
        """Start-CsExMeetingMigration: the correlation ID (the existing one if Pending)."""
        runtime = self._runtime(tenant)
        await self._lookup_user(runtime, identity)
        trigger = Trigger(
            id=new_trigger_id(),
            tenant=tenant,
            type=TriggerType.MANUAL_START,
            identity=identity,
            received_at=self.store.now(),
            source=source,
            target=target,
        )
        await self.store.record_trigger(trigger)
        intake = TriggerIntake(
            tenant, self.store, runtime.client, runtime.settings, runtime.observer
        )
        try:
            decided = await intake.decide(trigger)
        except (GraphError, GraphTransportError) as exc:
            raise ServiceUnavailable(f"Graph cannot be reached: {type(exc).__name__}") from exc
        if decided.correlation_id is None:
            raise UserNotFound("Graph does not know this identity")
        await self._tell(tenant, Wake())
        return decided.correlation_id

    async def _lookup_user(self, runtime: TenantRuntime, identity: str) -> dict[str, Any]:
        try:
            return await runtime.client.get_user(identity, ["id", "userPrincipalName", "mail"])
        except NotFound as exc:
            raise UserNotFound("Graph does not know this identity") from exc
        except (GraphError, GraphTransportError) as exc:
            raise ServiceUnavailable(f"Graph cannot be reached: {type(exc).__name__}") from exc

    async def preview(self, tenant: str, identity: str) -> Preview:
        """A dry run of the user's migration: reads only, records nothing."""
        runtime = self._runtime(tenant)
        user = await self._lookup_user(runtime, identity)
        try:
            return await preview_user(runtime, user)
        except (GraphError, GraphTransportError) as exc:
            raise ServiceUnavailable(f"Graph cannot be reached: {type(exc).__name__}") from exc

    async def get_switches(self, tenant: str) -> TenantSwitches:
        """The tenant's switches."""
        self._runtime(tenant)
        return await self.store.get_switches(tenant)

    async def set_switches(self, tenant: str, switches: TenantSwitches) -> TenantSwitches:
        """Store the switches (committed), then wake the tenant (MMS on runs what waited)."""
        self._runtime(tenant)
        try:
            await self.store.set_switches(tenant, switches)
        except StoreError as exc:  # pragma: no cover - the store refuses nothing here today
            raise ServiceUnavailable(str(exc)) from exc
        await self._tell(tenant, Wake())
        return await self.store.get_switches(tenant)
