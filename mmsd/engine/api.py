"""The engine's face towards its adapters (admin API, daemon, demo, metrics).

Adapters depend on these protocols, never on the actors behind them:
``MigrationService`` is what the admin API and the demo call (reads may go
straight to the :class:`~mmsd.store.Store`, which is the truth); an
``EngineObserver`` is what the engine reports to (the metrics module
implements one; :class:`NullObserver` does nothing).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Protocol

from mmsd.domain.model import (
    SourceMeetingType,
    TargetMeetingType,
    TenantSwitches,
    Trigger,
)


class EngineError(Exception):
    """A request the engine refuses; ``code`` is the admin API's error code."""

    code = "badRequest"
    status = 400


class UnknownTenant(EngineError):
    """The tenant is not in the configuration."""

    code = "tenantNotFound"
    status = 404


class UserNotFound(EngineError):
    """Graph does not know the identity (start, preview)."""

    code = "userNotFound"
    status = 404


class ServiceUnavailable(EngineError):
    """The engine is shutting down or Graph cannot be reached right now."""

    code = "serviceUnavailable"
    status = 503


@dataclass(frozen=True)
class PreviewMeeting:
    """One meeting as a migration would see it (SPEC section 5, preview)."""

    event_id: str
    subject: str | None
    start: str | None
    classification: str  # "migrate" or a SkipReason value
    old_block: str | None
    new_block: str | None
    old_join_url: str | None
    new_join_url: str | None  # a placeholder where Graph would assign a link


@dataclass(frozen=True)
class Preview:
    """What ``preview`` answers: sends nothing, creates nothing, records nothing."""

    user_id: str
    user_principal_name: str | None
    source_meeting_type: SourceMeetingType
    target_meeting_type: TargetMeetingType
    meetings: list[PreviewMeeting] = field(default_factory=list)


class MigrationService(Protocol):
    """Everything an adapter may ask of the running engine."""

    @property
    def tenants(self) -> list[str]:
        """Tenant names from the configuration, in order."""
        ...

    async def submit_trigger(self, tenant: str, trigger: Trigger) -> str:
        """Record a parsed trigger (committed before returning) and hand it to the tenant actor."""
        ...

    async def start_migration(
        self,
        tenant: str,
        identity: str,
        source: SourceMeetingType = SourceMeetingType.ALL,
        target: TargetMeetingType = TargetMeetingType.CURRENT,
    ) -> str:
        """Start-CsExMeetingMigration: the correlation ID (the existing one if Pending)."""
        ...

    async def preview(self, tenant: str, identity: str) -> Preview:
        """A dry run of the user's migration."""
        ...

    async def get_switches(self, tenant: str) -> TenantSwitches:
        """The tenant's switches."""
        ...

    async def set_switches(self, tenant: str, switches: TenantSwitches) -> TenantSwitches:
        """Store new switches (committed) and act on them (e.g. run what waited for MMS)."""
        ...


class EngineObserver(Protocol):
    """What the engine reports as it works (the metrics module implements this)."""

    def trigger_decided(self, tenant: str, trigger_type: str, fate: str) -> None:
        """A trigger got its fate (migrated, coalesced, ignored)."""
        ...

    def migration_started(self, tenant: str, queue_wait_s: float) -> None:
        """A migration went InProgress; ``queue_wait_s`` since its first trigger."""
        ...

    def migration_finished(self, tenant: str, state: str, duration_s: float) -> None:
        """A migration ended Succeeded or Failed after ``duration_s`` from its start."""
        ...

    def migration_rescheduled(self, tenant: str, waiting_for_quota: bool) -> None:
        """A migration went back to Pending for a retry or a quota wait."""
        ...

    def meeting_outcome(self, tenant: str, outcome: str, reason: str | None) -> None:
        """A meeting was updated, skipped (with its reason) or failed."""
        ...

    def invites_sent(self, tenant: str, count: int) -> None:
        """Attendee updates a PATCH sent."""
        ...


class NullObserver:
    """An observer that records nothing."""

    def trigger_decided(self, tenant: str, trigger_type: str, fate: str) -> None:
        """Nothing."""

    def migration_started(self, tenant: str, queue_wait_s: float) -> None:
        """Nothing."""

    def migration_finished(self, tenant: str, state: str, duration_s: float) -> None:
        """Nothing."""

    def migration_rescheduled(self, tenant: str, waiting_for_quota: bool) -> None:
        """Nothing."""

    def meeting_outcome(self, tenant: str, outcome: str, reason: str | None) -> None:
        """Nothing."""

    def invites_sent(self, tenant: str, count: int) -> None:
        """Nothing."""
