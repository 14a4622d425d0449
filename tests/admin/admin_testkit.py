"""Test kit for the admin API: the real engine against the Graph simulator, and helpers.

The admin tests run the real :class:`~mmsd.engine.service.Engine` (azure-identity
auth, the real Graph client) against an in-process :class:`~mmsd.sim.server.Simulator`
whose tenant is generated from ``SEED`` at ``T0``; the store, the engine and the
admin app all read the simulator's clock. ``ALICE``, ``BOB`` and ``CAROL`` are
users of that tenant (computed here from the same generator), so Graph knows them.

``RecordingService`` (a ``MigrationService`` double on the real Store) is kept
for the one state the engine does not reach quickly: a daemon with two tenants.
"""

from __future__ import annotations

import asyncio
import contextlib
import sqlite3
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, TypeVar

from mmsd.clock import SimulatedClock
from mmsd.config import Config, TenantConfig
from mmsd.domain.model import (
    MeetingOutcome,
    MeetingTransaction,
    MigrationState,
    SkipReason,
    SourceMeetingType,
    StatusRecord,
    TargetMeetingType,
    TenantSwitches,
    Trigger,
    TriggerFate,
    TriggerType,
)
from mmsd.engine.api import Preview, UnknownTenant, UserNotFound
from mmsd.engine.service import Engine
from mmsd.engine.settings import EngineSettings
from mmsd.sim.generator import generate_tenant
from mmsd.sim.server import SimConfig, Simulator
from mmsd.store import Store

T0 = datetime(2026, 3, 1, 9, 0, tzinfo=UTC)
TENANT = "contoso"
SEED = 23
SIM_USERS = 9  # four ordinary users, then one of each special kind up to sfbUser
SIM_MEETINGS = 3
T = TypeVar("T")
TOKEN = b"s3cret-token-for-tests-0123456789"


def _sim_users() -> dict[str, list[tuple[str, str]]]:
    state = generate_tenant(SEED, T0, SIM_USERS, SIM_MEETINGS)
    out: dict[str, list[tuple[str, str]]] = {}
    for user in state.users:
        out.setdefault(user.kind, []).append((user.id, user.user_principal_name))
    return out


USERS_BY_KIND = _sim_users()
ALICE = USERS_BY_KIND["ordinary"][0]  # (object ID, UPN): a Teams user with meetings
BOB = USERS_BY_KIND["sfbUser"][0]  # a Skype for Business user
CAROL = USERS_BY_KIND["ordinary"][1]  # known to Graph, no record in the store
GHOST = "ghost@contoso.example"  # unknown to Graph


def sim_config() -> SimConfig:
    """The simulated tenant every admin test runs against."""
    return SimConfig(users=SIM_USERS, meetings=SIM_MEETINGS, seed=SEED, now=T0, latency_ms=1)


def engine_config(sim: Simulator, work: Path, **overrides: Any) -> Config:
    """A daemon configuration with one tenant, ``contoso``, served by ``sim``."""
    secret = work / "client-secret"
    secret.write_text(sim.client_secret)
    secret.chmod(0o600)
    values: dict[str, Any] = {
        "state_dir": work / "state",
        "admin_socket": work / "admin.sock",
        "coalesce_seconds": 0.2,
        "retry_delays_seconds": (0.05,) * 9,
        "stop_timeout_seconds": 5.0,
        "tenants": {
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
    }
    values.update(overrides)
    return Config(**values)


async def start_engine(sim: Simulator, store: Store, work: Path) -> Engine:
    """The real engine on ``store``, talking to ``sim``, on the simulator's clock."""
    config = engine_config(sim, work)
    settings = EngineSettings.from_config(config, tick_seconds=0.5)
    return await Engine.start(
        config, store, clock=sim.clock, settings=settings, poll_licences=False
    )


@contextlib.asynccontextmanager
async def running_engine(sim: Simulator, store: Store, work: Path) -> AsyncIterator[Engine]:
    """:func:`start_engine`, shut down (staged) on exit."""
    engine = await start_engine(sim, store, work)
    try:
        yield engine
    finally:
        await engine.shutdown()


def new_ids() -> Iterator[str]:
    """Deterministic correlation IDs: corr-0001, corr-0002, ..."""
    return (f"corr-{n:04d}" for n in range(1, 10**9))


async def eventually(
    check: Callable[[], Awaitable[T | None]], what: str, within: float = 20.0
) -> T:
    """Poll ``check`` (the store or the API; the engine reports to neither) until truthy."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + within
    while True:
        result = await check()
        if result:
            return result
        if loop.time() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        await asyncio.sleep(0.02)


async def wait_until_idle(store: Store, tenant: str = TENANT, within: float = 20.0) -> None:
    """Wait until no migration of ``tenant`` is InProgress (the engine is quiet)."""

    async def idle() -> bool:
        return not (await store.summary(tenant)).get(MigrationState.IN_PROGRESS, 0)

    await eventually(idle, "the engine to go idle", within)


async def wait_state(
    store: Store, identity: str, *states: MigrationState, within: float = 20.0
) -> StatusRecord:
    """The user's latest record once it is in one of ``states``."""

    async def check() -> StatusRecord | None:
        records = await store.status(TENANT, identity=identity)
        return records[-1] if records and records[-1].state in states else None

    return await eventually(check, f"a migration in {states}", within)


@dataclass
class RecordingService:
    """A ``MigrationService`` double: records every call and acts through the real Store."""

    store: Store
    tenant_names: list[str]
    users: dict[str, tuple[str, str]] = field(default_factory=dict)  # identity -> (id, upn)
    calls: list[tuple[Any, ...]] = field(default_factory=list)

    def know(self, *users: tuple[str, str]) -> None:
        """Make users known to "Graph" (by object ID and by UPN)."""
        for uid, upn in users:
            self.users[uid] = (uid, upn)
            self.users[upn.lower()] = (uid, upn)

    def _user(self, identity: str) -> tuple[str, str]:
        found = self.users.get(identity) or self.users.get(identity.lower())
        if found is None:
            raise UserNotFound("Graph does not know this user")
        return found

    def _tenant(self, tenant: str) -> None:
        if tenant not in self.tenant_names:
            raise UnknownTenant("no such tenant")

    @property
    def tenants(self) -> list[str]:
        return list(self.tenant_names)

    async def submit_trigger(self, tenant: str, trigger: Trigger) -> str:
        self._tenant(tenant)
        self.calls.append(("submit_trigger", tenant, trigger.type, trigger.identity))
        await self.store.record_trigger(trigger)
        return trigger.id

    async def start_migration(
        self,
        tenant: str,
        identity: str,
        source: SourceMeetingType = SourceMeetingType.ALL,
        target: TargetMeetingType = TargetMeetingType.CURRENT,
    ) -> str:
        self._tenant(tenant)
        self.calls.append(("start_migration", tenant, identity, source, target))
        uid, upn = self._user(identity)
        queued = await self.store.enqueue_migration(
            tenant, uid, upn, source, target, "Queued by a manual start."
        )
        return queued.correlation_id

    async def preview(self, tenant: str, identity: str) -> Preview:
        self._tenant(tenant)
        uid, upn = self._user(identity)
        return Preview(uid, upn, SourceMeetingType.ALL, TargetMeetingType.CURRENT, [])

    async def get_switches(self, tenant: str) -> TenantSwitches:
        self._tenant(tenant)
        return await self.store.get_switches(tenant)

    async def set_switches(self, tenant: str, switches: TenantSwitches) -> TenantSwitches:
        self._tenant(tenant)
        self.calls.append(("set_switches", tenant, switches))
        await self.store.set_switches(tenant, switches)
        return switches


async def seed(store: Store, clock: SimulatedClock) -> dict[str, str]:
    """Records to read, written before the engine starts (it would otherwise race the claim).

    Alice Succeeded (created at T0) with two meetings; Bob Pending (created an
    hour later) and held for a day, as a trigger in a long coalescing window
    would be, so the running engine leaves him Pending; one ignored trigger.
    """
    await store.remember_user(TENANT, *ALICE)
    await store.remember_user(TENANT, *BOB)
    alice = await store.enqueue_migration(
        TENANT, *ALICE, SourceMeetingType.ALL, TargetMeetingType.CURRENT, "manual"
    )
    (claimed,) = await store.claim_runnable(TENANT, 1)
    await store.update_progress(alice.correlation_id, total_meeting=2)
    await store.record_meeting(
        MeetingTransaction(
            alice.correlation_id,
            "evt-a1",
            MeetingOutcome.SKIPPED,
            subject="Planning",
            start=T0 + timedelta(days=1),
            reason=str(SkipReason.NO_BLOCK),
        )
    )
    await store.record_intent(alice.correlation_id, "evt-a2", block_digest="d", subject="Sync")
    await store.mark_patched(
        alice.correlation_id, "evt-a2", invites=3, new_join_url="https://teams.example/new"
    )
    await store.finish(alice.correlation_id, MigrationState.SUCCEEDED, "All meetings updated.")
    clock.advance(3600)
    bob = await store.enqueue_migration(
        TENANT,
        *BOB,
        SourceMeetingType.SFB,
        TargetMeetingType.TEAMS,
        "upgrade",
        not_before=clock.now() + timedelta(days=1),
    )
    trigger = Trigger(
        id="trg-1",
        tenant=TENANT,
        type=TriggerType.SIP_ADDRESS_CHANGED,
        identity=BOB[1],
        received_at=clock.now(),
    )
    await store.record_trigger(trigger)
    await store.set_trigger_fate("trg-1", TriggerFate.IGNORED, message="not a trigger")
    assert claimed.correlation_id == alice.correlation_id
    return {"alice": alice.correlation_id, "bob": bob.correlation_id}


def snapshot(db_path: Path) -> dict[str, list[tuple[Any, ...]]]:
    """Every row of every table, read from the committed database file."""
    conn = sqlite3.connect(f"file:{db_path}?mode=ro", uri=True)
    try:
        tables = [
            r[0]
            for r in conn.execute(
                "SELECT name FROM sqlite_master WHERE type = 'table' ORDER BY name"
            )
        ]
        return {
            t: sorted(conn.execute(f'SELECT * FROM "{t}"').fetchall(), key=repr) for t in tables
        }
    finally:
        conn.close()
