"""Test kit for the admin API: a MigrationService double on the real Store, and helpers.

``RecordingService`` stands in for the engine (``mmsd.engine.service.Engine``)
until it lands: it does its work through the real :class:`~mmsd.store.Store`,
so reads through the API see real records. Switching to the engine is a change
of the ``service`` fixture in ``conftest.py`` only.
"""

from __future__ import annotations

import sqlite3
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from mmsd.domain.model import (
    MeetingOutcome,
    MeetingTransaction,
    MigrationState,
    SkipReason,
    SourceMeetingType,
    TargetMeetingType,
    TenantSwitches,
    Trigger,
    TriggerFate,
    TriggerType,
)
from mmsd.engine.api import Preview, PreviewMeeting, UnknownTenant, UserNotFound
from mmsd.store import Store

T0 = datetime(2026, 3, 1, 9, 0, tzinfo=UTC)
TENANT = "contoso"
ALICE = ("11111111-aaaa-4aaa-8aaa-000000000001", "alice@contoso.example")
BOB = ("11111111-aaaa-4aaa-8aaa-000000000002", "bob@contoso.example")
CAROL = ("11111111-aaaa-4aaa-8aaa-000000000003", "carol@contoso.example")  # known, no record
TOKEN = b"s3cret-token-for-tests-0123456789"


class FakeClock:
    """A clock that moves only when told to."""

    def __init__(self, start: datetime = T0) -> None:
        self.current = start

    def now(self) -> datetime:
        return self.current

    def monotonic(self) -> float:
        return (self.current - T0).total_seconds()

    def advance(self, **delta: float) -> None:
        self.current += timedelta(**delta)


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
        await self.store.remember_user(tenant, uid, upn)
        queued = await self.store.enqueue_migration(
            tenant, uid, upn, source, target, "Queued by a manual start."
        )
        return queued.correlation_id

    async def preview(self, tenant: str, identity: str) -> Preview:
        self._tenant(tenant)
        self.calls.append(("preview", tenant, identity))
        uid, upn = self._user(identity)
        return Preview(
            user_id=uid,
            user_principal_name=upn,
            source_meeting_type=SourceMeetingType.ALL,
            target_meeting_type=TargetMeetingType.CURRENT,
            meetings=[
                PreviewMeeting(
                    "evt-1",
                    "Weekly sync",
                    "2026-03-02T10:00:00.000Z",
                    "migrate",
                    "<div>old block</div>",
                    "<div>new block</div>",
                    "https://meet.old.example/x",
                    "https://teams.example/l/meetup-join/PLACEHOLDER",
                ),
                PreviewMeeting(
                    "evt-2",
                    None,
                    None,
                    str(SkipReason.NO_BLOCK),
                    None,
                    None,
                    None,
                    None,
                ),
            ],
        )

    async def get_switches(self, tenant: str) -> TenantSwitches:
        self._tenant(tenant)
        return await self.store.get_switches(tenant)

    async def set_switches(self, tenant: str, switches: TenantSwitches) -> TenantSwitches:
        self._tenant(tenant)
        self.calls.append(("set_switches", tenant, switches))
        await self.store.set_switches(tenant, switches)
        return switches


async def seed(store: Store, clock: FakeClock) -> dict[str, str]:
    """Records to read: Alice Succeeded with two meetings, Bob Pending; triggers with fates."""
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
    clock.advance(hours=1)
    bob = await store.enqueue_migration(
        TENANT, *BOB, SourceMeetingType.SFB, TargetMeetingType.TEAMS, "upgrade"
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
