"""The domain vocabulary: SPEC strings, migrationType mapping, records' JSON."""

from __future__ import annotations

import dataclasses
from datetime import UTC, datetime

import pytest

from mmsd.domain.model import (
    AudioConferencingProvider,
    ConferencingProfile,
    IgnoreReason,
    MeetingOutcome,
    MeetingTransaction,
    MigrationState,
    MigrationType,
    PatchState,
    SkipReason,
    SourceMeetingType,
    StatusRecord,
    TargetMeetingType,
    TenantSwitches,
    TriggerFate,
    TriggerType,
    migration_type,
)

S, T = SourceMeetingType, TargetMeetingType


@pytest.mark.parametrize(
    ("source", "target", "expected"),
    [
        (S.SFB, T.TEAMS, "SfbToTeams"),
        (S.TEAMS, T.TEAMS, "TeamsToTeams"),
        (S.ALL, T.TEAMS, "AllToTeams"),
        (S.ALL, T.CURRENT, "ToSameType"),
        (S.SFB, T.CURRENT, "ToSameType"),
        (S.TEAMS, T.CURRENT, "ToSameType"),
    ],
)
def test_migration_type_follows_spec_section_5(
    source: SourceMeetingType, target: TargetMeetingType, expected: str
) -> None:
    assert migration_type(source, target) == expected
    assert isinstance(migration_type(source, target), MigrationType)


def test_enum_strings_are_the_spec_strings() -> None:
    assert [str(s) for s in MigrationState] == ["Pending", "InProgress", "Succeeded", "Failed"]
    assert [str(s) for s in SourceMeetingType] == ["All", "SfB", "Teams"]
    assert [str(s) for s in TargetMeetingType] == ["Current", "Teams"]
    assert {str(s) for s in TriggerFate} == {"migrated", "coalesced", "ignored", "pending"}
    assert {str(s) for s in MeetingOutcome} == {"updated", "skipped", "failed", "pending"}
    assert {str(s) for s in SkipReason} == {
        "notOnlineMeeting",
        "noBlock",
        "ambiguousBlock",
        "damagedBlock",
        "tooManyAttendees",
        "sourceTypeFiltered",
        "notOrganizer",
        "meetingGone",  # mmsd's own: a meeting that failed earlier and is no longer future
    }
    assert {"nonTrigger", "acpRule", "notRunnable", "userNotFound"} <= {
        str(r) for r in IgnoreReason
    }
    spec_types = {
        "userMovedToOnline",
        "teamsUpgradePolicyGranted",
        "audioConferencingLicenseAssigned",
        "audioConferencingLicenseRemoved",
        "dialInConferencingEnabled",
        "dialInConferencingDisabled",
        "conferenceIdReset",
        "bridgeChanged",
        "bridgeNumberUnassigned",
        "acpProviderSwitchedToMicrosoft",
        "sipAddressChanged",
        "tenantMeetingUrlUpdated",
        "cviPartnerChanged",
        "userMovedToOnPremises",
    }
    assert {str(t) for t in TriggerType} == spec_types | {"manualStart"}


def test_finished_states() -> None:
    assert [s for s in MigrationState if s.finished] == [
        MigrationState.SUCCEEDED,
        MigrationState.FAILED,
    ]


def test_tenant_switch_defaults_are_the_spec_defaults() -> None:
    switches = TenantSwitches()
    assert switches.configuration_json() == {"meetingMigrationEnabled": True}
    assert switches.dial_in_json() == {
        "automaticallyMigrateUserMeetings": True,
        "automaticallyReplaceAcpProvider": False,
    }


def _record() -> StatusRecord:
    return StatusRecord(
        tenant="contoso",
        user_id="0d9c6d4e-0000-0000-0000-000000000001",
        user_principal_name="alice@contoso.example",
        state=MigrationState.IN_PROGRESS,
        correlation_id="c-1",
        create_date=datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC),
        modified_date=datetime(2026, 1, 2, 3, 5, 0, 250000, tzinfo=UTC),
        source_meeting_type=S.SFB,
        target_meeting_type=T.TEAMS,
        retry_count=2,
        last_message="retrying",
        total_meeting=10,
        succeeded_meeting=6,
        failed_meeting=1,
        invites_update=40,
        skipped_meeting=3,
    )


def test_status_record_json_has_exactly_the_spec_fields() -> None:
    data = _record().to_json()
    assert list(data) == [
        "userId",
        "userPrincipalName",
        "state",
        "migrationType",
        "correlationId",
        "createDate",
        "modifiedDate",
        "retryCount",
        "lastMessage",
        "totalMeeting",
        "succeededMeeting",
        "failedMeeting",
        "invitesUpdate",
        "skippedMeeting",
        "sourceMeetingType",
        "targetMeetingType",
    ]
    assert data["migrationType"] == "SfbToTeams"
    assert data["state"] == "InProgress"
    assert data["createDate"] == "2026-01-02T03:04:05.000Z"
    assert data["modifiedDate"] == "2026-01-02T03:05:00.250Z"
    assert data["retryCount"] == 2 and data["invitesUpdate"] == 40


def test_records_are_frozen() -> None:
    with pytest.raises(dataclasses.FrozenInstanceError):
        _record().state = MigrationState.FAILED  # type: ignore[misc]


def test_profile_merge_keeps_known_fields_and_round_trips() -> None:
    before = ConferencingProfile(
        audio_conferencing_provider=AudioConferencingProvider.THIRD_PARTY,
        conference_id="111",
        toll_numbers=("+1 206 555 0100",),
    )
    change = ConferencingProfile(
        audio_conferencing_provider=AudioConferencingProvider.MICROSOFT, conference_id="222"
    )
    after = before.merged_with(change)
    assert after.audio_conferencing_provider is AudioConferencingProvider.MICROSOFT
    assert after.conference_id == "222"
    assert after.toll_numbers == ("+1 206 555 0100",)
    data = after.to_json()
    assert data == {
        "audioConferencingProvider": "microsoft",
        "conferenceId": "222",
        "tollNumbers": ["+1 206 555 0100"],
    }
    assert ConferencingProfile.from_json(data) == after


def test_meeting_transaction_flags_follow_patch_state() -> None:
    base = MeetingTransaction(correlation_id="c", event_id="e")
    assert not base.intent_recorded and not base.patched
    for state in (PatchState.INTENT, PatchState.UNKNOWN):
        txn = dataclasses.replace(base, patch_state=state)
        assert txn.intent_recorded and not txn.patched
    done = dataclasses.replace(base, patch_state=PatchState.CONFIRMED)
    assert done.patched and not done.intent_recorded
    assert done.to_json()["outcome"] == "pending"
