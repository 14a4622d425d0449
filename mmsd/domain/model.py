"""The vocabulary of mmsd: states, types, reasons and the records that carry them.

Every string value here is the one SPEC.md uses on the wire (the admin API, the
store, the metrics labels), so enums are ``StrEnum``s and records are frozen
dataclasses that turn into the SPEC's camelCase JSON.
"""

from __future__ import annotations

import enum
from collections.abc import Mapping
from dataclasses import dataclass, field, fields, replace
from datetime import UTC, datetime
from typing import Any

from mmsd.clock import format_rfc3339

JSON = dict[str, Any]


class MigrationState(enum.StrEnum):
    """The state of one user migration: Pending -> InProgress -> Succeeded | Failed."""

    PENDING = "Pending"
    IN_PROGRESS = "InProgress"
    SUCCEEDED = "Succeeded"
    FAILED = "Failed"

    @property
    def finished(self) -> bool:
        """True for the two end states, which never change again."""
        return self in (MigrationState.SUCCEEDED, MigrationState.FAILED)


class SourceMeetingType(enum.StrEnum):
    """Which of the organizer's meetings a migration touches."""

    ALL = "All"
    SFB = "SfB"
    TEAMS = "Teams"


class TargetMeetingType(enum.StrEnum):
    """What the touched meetings become: their own type again, or Teams meetings."""

    CURRENT = "Current"
    TEAMS = "Teams"


class MigrationType(enum.StrEnum):
    """The ``migrationType`` of a status record, derived from source and target."""

    SFB_TO_TEAMS = "SfbToTeams"
    TEAMS_TO_TEAMS = "TeamsToTeams"
    ALL_TO_TEAMS = "AllToTeams"
    TO_SAME_TYPE = "ToSameType"


def migration_type(source: SourceMeetingType, target: TargetMeetingType) -> MigrationType:
    """Map (source, target) to ``migrationType`` as SPEC section 5 defines it."""
    if target is TargetMeetingType.CURRENT:
        return MigrationType.TO_SAME_TYPE
    if source is SourceMeetingType.SFB:
        return MigrationType.SFB_TO_TEAMS
    if source is SourceMeetingType.TEAMS:
        return MigrationType.TEAMS_TO_TEAMS
    return MigrationType.ALL_TO_TEAMS


class TriggerType(enum.StrEnum):
    """Every trigger ``type`` of SPEC section 2, plus ``manualStart`` for an admin's start."""

    USER_MOVED_TO_ONLINE = "userMovedToOnline"
    TEAMS_UPGRADE_POLICY_GRANTED = "teamsUpgradePolicyGranted"
    AUDIO_CONFERENCING_LICENSE_ASSIGNED = "audioConferencingLicenseAssigned"
    AUDIO_CONFERENCING_LICENSE_REMOVED = "audioConferencingLicenseRemoved"
    DIAL_IN_CONFERENCING_ENABLED = "dialInConferencingEnabled"
    DIAL_IN_CONFERENCING_DISABLED = "dialInConferencingDisabled"
    CONFERENCE_ID_RESET = "conferenceIdReset"
    BRIDGE_CHANGED = "bridgeChanged"
    BRIDGE_NUMBER_UNASSIGNED = "bridgeNumberUnassigned"
    ACP_PROVIDER_SWITCHED_TO_MICROSOFT = "acpProviderSwitchedToMicrosoft"
    SIP_ADDRESS_CHANGED = "sipAddressChanged"
    TENANT_MEETING_URL_UPDATED = "tenantMeetingUrlUpdated"
    CVI_PARTNER_CHANGED = "cviPartnerChanged"
    USER_MOVED_TO_ON_PREMISES = "userMovedToOnPremises"
    MANUAL_START = "manualStart"


AUDIO_CONFERENCING_TRIGGERS: frozenset[TriggerType] = frozenset(
    {
        TriggerType.AUDIO_CONFERENCING_LICENSE_ASSIGNED,
        TriggerType.AUDIO_CONFERENCING_LICENSE_REMOVED,
        TriggerType.DIAL_IN_CONFERENCING_ENABLED,
        TriggerType.DIAL_IN_CONFERENCING_DISABLED,
        TriggerType.CONFERENCE_ID_RESET,
        TriggerType.BRIDGE_CHANGED,
        TriggerType.BRIDGE_NUMBER_UNASSIGNED,
        TriggerType.ACP_PROVIDER_SWITCHED_TO_MICROSOFT,
    }
)
"""The triggers that ``automaticallyMigrateUserMeetings`` turns off."""


class TeamsUpgradeMode(enum.StrEnum):
    """The ``mode`` of a ``teamsUpgradePolicyGranted`` trigger (TeamsUpgradePolicy modes)."""

    ISLANDS = "Islands"
    SFB_ONLY = "SfBOnly"
    SFB_WITH_TEAMS_COLLAB = "SfBWithTeamsCollab"
    SFB_WITH_TEAMS_COLLAB_AND_MEETINGS = "SfBWithTeamsCollabAndMeetings"
    TEAMS_ONLY = "TeamsOnly"


MEETING_UPGRADE_MODES: frozenset[TeamsUpgradeMode] = frozenset(
    {TeamsUpgradeMode.TEAMS_ONLY, TeamsUpgradeMode.SFB_WITH_TEAMS_COLLAB_AND_MEETINGS}
)
"""The upgrade modes after which new meetings are Teams meetings: they migrate SfB -> Teams."""


class PolicyScope(enum.StrEnum):
    """The ``scope`` of a ``teamsUpgradePolicyGranted`` trigger."""

    USER = "user"
    TENANT = "tenant"


class TriggerFate(enum.StrEnum):
    """What became of a trigger."""

    MIGRATED = "migrated"  # it created a migration (correlation ID recorded)
    COALESCED = "coalesced"  # it joined a Pending migration (correlation ID recorded)
    IGNORED = "ignored"  # nothing runs; the reason says why
    PENDING = "pending"  # received and recorded, not decided yet


class IgnoreReason(enum.StrEnum):
    """Why a trigger did not lead to a migration."""

    NON_TRIGGER = "nonTrigger"  # SPEC section 2 says this change migrates nothing
    TENANT_SCOPE = "tenantScope"  # a tenant-wide change (tenant URL, tenant-scoped policy)
    AUTOMATIC_MIGRATION_OFF = "automaticMigrationOff"  # automaticallyMigrateUserMeetings false
    ACP_RULE = "acpRule"  # thirdParty provider and automaticallyReplaceAcpProvider false
    MANUAL_START_REQUIRED = "manualStartRequired"  # cviPartnerChanged: the admin starts users
    NOT_RUNNABLE = "notRunnable"  # userMovedToOnPremises: Graph cannot reach the meetings
    USER_NOT_FOUND = "userNotFound"  # the identity is not a user Graph knows


class SkipReason(enum.StrEnum):
    """Why a meeting was left alone."""

    NOT_ONLINE_MEETING = "notOnlineMeeting"
    NO_BLOCK = "noBlock"
    AMBIGUOUS_BLOCK = "ambiguousBlock"
    DAMAGED_BLOCK = "damagedBlock"
    TOO_MANY_ATTENDEES = "tooManyAttendees"
    SOURCE_TYPE_FILTERED = "sourceTypeFiltered"
    NOT_ORGANIZER = "notOrganizer"
    MEETING_GONE = "meetingGone"  # failed earlier, no longer among the future meetings


class MeetingOutcome(enum.StrEnum):
    """What a migration did to one meeting (one event ID)."""

    UPDATED = "updated"
    SKIPPED = "skipped"
    FAILED = "failed"
    PENDING = "pending"


class PatchState(enum.StrEnum):
    """Where the one PATCH a meeting may get per migration stands, for exactly-once.

    ``none`` -> ``intent`` (committed before the PATCH is sent) -> ``confirmed``
    (Graph answered 2xx, or a read-back recognised the new block) or ``unknown``
    (the answer was lost). ``intent`` and ``unknown`` are resolved by reading the
    event back: the new block there means ``confirmed``; the old one means the
    PATCH never applied and the transaction returns to ``none``.
    """

    NONE = "none"
    INTENT = "intent"
    CONFIRMED = "confirmed"
    UNKNOWN = "unknown"


class AudioConferencingProvider(enum.StrEnum):
    """Who provides a user's dial-in: Microsoft or a third-party ACP."""

    MICROSOFT = "microsoft"
    THIRD_PARTY = "thirdParty"


def _time(value: datetime | None) -> str | None:
    return None if value is None else format_rfc3339(value)


@dataclass(frozen=True)
class ConferencingProfile:
    """A user's conferencing settings as a trigger reports them; ``None`` means not known.

    ``bridgeId`` and ``dialInEnabled`` go beyond SPEC section 2's list; they are
    accepted because the simulator reports them and the SfB block needs to know
    whether dial-in is on.
    """

    audio_conferencing_provider: AudioConferencingProvider | None = None
    sip_address: str | None = None
    meet_url_base: str | None = None
    conference_id: str | None = None
    toll_numbers: tuple[str, ...] | None = None
    toll_free_numbers: tuple[str, ...] | None = None
    dial_in_url: str | None = None
    bridge_id: str | None = None
    dial_in_enabled: bool | None = None

    def merged_with(self, newer: ConferencingProfile) -> ConferencingProfile:
        """This profile with every field that ``newer`` knows replaced by ``newer``'s value."""
        changes = {
            f.name: getattr(newer, f.name)
            for f in fields(newer)
            if getattr(newer, f.name) is not None
        }
        return replace(self, **changes)

    def to_json(self) -> JSON:
        """The camelCase shape of SPEC section 2, leaving out unknown fields."""
        out: JSON = {}
        for name, key in _PROFILE_KEYS.items():
            value = getattr(self, name)
            if value is None:
                continue
            if isinstance(value, tuple):
                value = list(value)
            elif isinstance(value, enum.Enum):
                value = str(value)
            out[key] = value
        return out

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> ConferencingProfile:
        """Rebuild a profile from :meth:`to_json` output (trusted input, e.g. the store)."""
        values: dict[str, Any] = {}
        for name, key in _PROFILE_KEYS.items():
            if key not in data or data[key] is None:
                continue
            value = data[key]
            if name == "audio_conferencing_provider":
                value = AudioConferencingProvider(value)
            elif isinstance(value, list):
                value = tuple(value)
            values[name] = value
        return cls(**values)


_PROFILE_KEYS: dict[str, str] = {
    "audio_conferencing_provider": "audioConferencingProvider",
    "sip_address": "sipAddress",
    "meet_url_base": "meetUrlBase",
    "conference_id": "conferenceId",
    "toll_numbers": "tollNumbers",
    "toll_free_numbers": "tollFreeNumbers",
    "dial_in_url": "dialInUrl",
    "bridge_id": "bridgeId",
    "dial_in_enabled": "dialInEnabled",
}
PROFILE_JSON_KEYS: frozenset[str] = frozenset(_PROFILE_KEYS.values())
"""The camelCase keys a ``conferencing`` object may carry."""


@dataclass(frozen=True)
class TenantSwitches:
    """A tenant's three switches of SPEC section 2, with the SPEC's defaults."""

    meeting_migration_enabled: bool = True
    automatically_migrate_user_meetings: bool = True
    automatically_replace_acp_provider: bool = False

    def configuration_json(self) -> JSON:
        """The body of ``GET /configuration``."""
        return {"meetingMigrationEnabled": self.meeting_migration_enabled}

    def dial_in_json(self) -> JSON:
        """The body of ``GET /dialInConferencingSettings``."""
        return {
            "automaticallyMigrateUserMeetings": self.automatically_migrate_user_meetings,
            "automaticallyReplaceAcpProvider": self.automatically_replace_acp_provider,
        }


@dataclass(frozen=True)
class Trigger:
    """One event about one user (or a tenant), as received, and what became of it."""

    id: str
    tenant: str
    type: TriggerType
    identity: str | None
    received_at: datetime
    mode: TeamsUpgradeMode | None = None
    scope: PolicyScope | None = None
    source: SourceMeetingType | None = None  # manualStart only
    target: TargetMeetingType | None = None  # manualStart only
    conferencing: ConferencingProfile | None = None
    fate: TriggerFate = TriggerFate.PENDING
    reason: IgnoreReason | None = None
    correlation_id: str | None = None
    user_id: str | None = None  # the identity resolved to an object ID, once known
    message: str | None = None  # a human line about the fate
    decided_at: datetime | None = None

    def to_json(self) -> JSON:
        """The trigger as ``GET /triggers`` lists it."""
        out: JSON = {
            "triggerId": self.id,
            "type": str(self.type),
            "identity": self.identity,
            "receivedAt": _time(self.received_at),
            "fate": str(self.fate),
            "reason": None if self.reason is None else str(self.reason),
            "correlationId": self.correlation_id,
            "userId": self.user_id,
            "message": self.message,
            "decidedAt": _time(self.decided_at),
        }
        if self.mode is not None:
            out["mode"] = str(self.mode)
        if self.scope is not None:
            out["scope"] = str(self.scope)
        if self.source is not None:
            out["sourceMeetingType"] = str(self.source)
        if self.target is not None:
            out["targetMeetingType"] = str(self.target)
        if self.conferencing is not None:
            out["conferencing"] = self.conferencing.to_json()
        return out


@dataclass(frozen=True)
class StatusRecord:
    """One user migration, with the fields of ``Get-CsMeetingMigrationStatus`` (SPEC section 5)."""

    tenant: str
    user_id: str
    user_principal_name: str | None
    state: MigrationState
    correlation_id: str
    create_date: datetime
    modified_date: datetime
    source_meeting_type: SourceMeetingType
    target_meeting_type: TargetMeetingType
    retry_count: int = 0
    last_message: str | None = None
    total_meeting: int = 0
    succeeded_meeting: int = 0
    failed_meeting: int = 0
    invites_update: int = 0
    skipped_meeting: int = 0
    not_before: datetime | None = None  # Pending: not run before this instant
    waiting_for_quota: bool = False  # Pending because the sending quota is spent
    started_at: datetime | None = None  # first time it went InProgress
    claimed_at: datetime | None = None  # latest time it went InProgress

    @property
    def migration_type(self) -> MigrationType:
        """The SPEC's ``migrationType`` for this record's source and target."""
        return migration_type(self.source_meeting_type, self.target_meeting_type)

    def to_json(self) -> JSON:
        """The record in the SPEC's camelCase, times in RFC 3339."""
        return {
            "userId": self.user_id,
            "userPrincipalName": self.user_principal_name,
            "state": str(self.state),
            "migrationType": str(self.migration_type),
            "correlationId": self.correlation_id,
            "createDate": _time(self.create_date),
            "modifiedDate": _time(self.modified_date),
            "retryCount": self.retry_count,
            "lastMessage": self.last_message,
            "totalMeeting": self.total_meeting,
            "succeededMeeting": self.succeeded_meeting,
            "failedMeeting": self.failed_meeting,
            "invitesUpdate": self.invites_update,
            "skippedMeeting": self.skipped_meeting,
            "sourceMeetingType": str(self.source_meeting_type),
            "targetMeetingType": str(self.target_meeting_type),
        }


@dataclass(frozen=True)
class MeetingTransaction:
    """What one migration did (or means to do) to one meeting, for history and exactly-once."""

    correlation_id: str
    event_id: str
    outcome: MeetingOutcome = MeetingOutcome.PENDING
    subject: str | None = None
    start: datetime | None = None
    reason: str | None = None  # a SkipReason value, or why it failed
    old_join_url: str | None = None
    new_join_url: str | None = None
    patch_state: PatchState = PatchState.NONE
    block_digest: str | None = None  # digest of the new block, to recognise it on read-back
    attempts: int = 0  # intents recorded so far
    invites: int = 0  # attendee updates the PATCH sent
    created_at: datetime = field(default_factory=lambda: datetime.fromtimestamp(0, UTC))
    updated_at: datetime = field(default_factory=lambda: datetime.fromtimestamp(0, UTC))
    intent_at: datetime | None = None
    patched_at: datetime | None = None

    @property
    def intent_recorded(self) -> bool:
        """True when a PATCH may have been sent and its fate is not yet known."""
        return self.patch_state in (PatchState.INTENT, PatchState.UNKNOWN)

    @property
    def patched(self) -> bool:
        """True when the PATCH is known to have applied: it must never be sent again."""
        return self.patch_state is PatchState.CONFIRMED

    def to_json(self) -> JSON:
        """One row of ``GET /history``."""
        return {
            "correlationId": self.correlation_id,
            "eventId": self.event_id,
            "subject": self.subject,
            "start": _time(self.start),
            "outcome": str(self.outcome),
            "reason": self.reason,
            "oldJoinUrl": self.old_join_url,
            "newJoinUrl": self.new_join_url,
            "invites": self.invites,
            "createDate": _time(self.created_at),
            "modifiedDate": _time(self.updated_at),
            "patchedAt": _time(self.patched_at),
        }
