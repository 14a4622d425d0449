"""Strict trigger parsing: every type accepted, every malformed body refused with a clear message."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest

from mmsd.domain.model import (
    AudioConferencingProvider,
    PolicyScope,
    SourceMeetingType,
    TargetMeetingType,
    TeamsUpgradeMode,
    Trigger,
    TriggerFate,
    TriggerType,
)
from mmsd.domain.triggers import (
    ValidationError,
    parse_conferencing,
    parse_migration_request,
    parse_trigger,
)

NOW = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)
USER = "alice@contoso.example"
PROFILE: dict[str, Any] = {
    "audioConferencingProvider": "microsoft",
    "sipAddress": "sip:alice@contoso.example",
    "meetUrlBase": "https://meet.contoso.example/alice",
    "conferenceId": "123456789",
    "tollNumbers": ["+1 206 555 0100", "+44 20 7946 0000"],
    "tollFreeNumbers": ["+1 (800) 555-0199"],
    "dialInUrl": "https://dialin.contoso.example/",
}


def ok(body: object) -> Trigger:
    result = parse_trigger(body, tenant="contoso", received_at=NOW, trigger_id="t-1")
    assert isinstance(result, Trigger), result
    return result


def bad(body: object) -> ValidationError:
    result = parse_trigger(body, tenant="contoso", received_at=NOW)
    assert isinstance(result, ValidationError), result
    return result


USER_TYPES = [
    t
    for t in TriggerType
    if t
    not in (
        TriggerType.TEAMS_UPGRADE_POLICY_GRANTED,
        TriggerType.TENANT_MEETING_URL_UPDATED,
    )
]


@pytest.mark.parametrize("type_", USER_TYPES)
def test_every_user_type_parses_with_identity(type_: TriggerType) -> None:
    trigger = ok({"type": str(type_), "identity": USER})
    assert trigger.type is type_
    assert trigger.identity == USER
    assert trigger.tenant == "contoso" and trigger.received_at == NOW and trigger.id == "t-1"
    assert trigger.fate is TriggerFate.PENDING and trigger.conferencing is None


@pytest.mark.parametrize("type_", USER_TYPES)
def test_user_types_require_identity(type_: TriggerType) -> None:
    error = bad({"type": str(type_)})
    assert error.field == "identity"
    assert error.message == f"'identity' is required for type '{type_}'"


def test_tenant_meeting_url_update_needs_no_identity() -> None:
    assert ok({"type": "tenantMeetingUrlUpdated"}).identity is None


def test_upgrade_policy_user_scope() -> None:
    trigger = ok(
        {
            "type": "teamsUpgradePolicyGranted",
            "identity": USER,
            "mode": "TeamsOnly",
            "scope": "user",
        }
    )
    assert trigger.mode is TeamsUpgradeMode.TEAMS_ONLY
    assert trigger.scope is PolicyScope.USER


def test_upgrade_policy_tenant_scope_needs_no_identity() -> None:
    trigger = ok({"type": "teamsUpgradePolicyGranted", "mode": "TeamsOnly", "scope": "tenant"})
    assert trigger.identity is None and trigger.scope is PolicyScope.TENANT


def test_upgrade_policy_user_scope_needs_identity() -> None:
    assert bad(
        {"type": "teamsUpgradePolicyGranted", "mode": "TeamsOnly", "scope": "user"}
    ).field == ("identity")


@pytest.mark.parametrize("missing", ["mode", "scope"])
def test_upgrade_policy_requires_mode_and_scope(missing: str) -> None:
    body = {
        "type": "teamsUpgradePolicyGranted",
        "identity": USER,
        "mode": "Islands",
        "scope": "user",
    }
    del body[missing]
    error = bad(body)
    assert error.field == missing
    assert "required" in error.message


def test_bad_enum_value_names_the_allowed_values() -> None:
    error = bad(
        {"type": "teamsUpgradePolicyGranted", "identity": USER, "mode": "Teams", "scope": "user"}
    )
    assert error.field == "mode"
    assert "TeamsOnly" in error.message and "'Teams'" in error.message


def test_unknown_type() -> None:
    error = bad({"type": "userMovedToMars", "identity": USER})
    assert error.field == "type"
    assert "userMovedToOnline" in error.message


@pytest.mark.parametrize(
    ("body", "field", "needle"),
    [
        ([], "", "the body must be a JSON object, got an array"),
        ("x", "", "got a string"),
        (None, "", "got null"),
        ({}, "type", "'type' is required"),
        ({"type": 3, "identity": USER}, "type", "'type' must be a string, got a number"),
        (
            {"type": "bridgeChanged", "identity": True},
            "identity",
            "must be a string, got a boolean",
        ),
        ({"type": "bridgeChanged", "identity": ""}, "identity", "object ID or UPN"),
        ({"type": "bridgeChanged", "identity": "a b@c"}, "identity", "without spaces"),
        (
            {"type": "bridgeChanged", "identity": USER, "colour": 1},
            "colour",
            "unknown field 'colour'",
        ),
        ({"type": "bridgeChanged", "identity": USER, "mode": "TeamsOnly"}, "mode", "unknown field"),
        (
            {"type": "tenantMeetingUrlUpdated", "conferencing": {}},
            "conferencing",
            "needs an 'identity'",
        ),
        ({"type": "bridgeChanged", "identity": USER, "conferencing": []}, "conferencing", "object"),
    ],
)
def test_malformed_bodies(body: object, field: str, needle: str) -> None:
    error = bad(body)
    assert error.field == field
    assert needle in error.message
    assert str(error) == error.message


def test_conferencing_parses_every_field() -> None:
    trigger = ok({"type": "bridgeChanged", "identity": USER, "conferencing": PROFILE})
    profile = trigger.conferencing
    assert profile is not None
    assert profile.audio_conferencing_provider is AudioConferencingProvider.MICROSOFT
    assert profile.toll_numbers == ("+1 206 555 0100", "+44 20 7946 0000")
    assert profile.toll_free_numbers == ("+1 (800) 555-0199",)
    assert profile.to_json() == PROFILE


def test_conferencing_accepts_simulator_extras() -> None:
    profile = parse_conferencing({"bridgeId": "bridge-2", "dialInEnabled": False})
    assert not isinstance(profile, ValidationError)
    assert profile.bridge_id == "bridge-2" and profile.dial_in_enabled is False


@pytest.mark.parametrize(
    ("key", "value", "field", "needle"),
    [
        (
            "audioConferencingProvider",
            "acme",
            "conferencing.audioConferencingProvider",
            "thirdParty",
        ),
        ("sipAddress", 5, "conferencing.sipAddress", "must be a string"),
        ("meetUrlBase", "ftp://x", "conferencing.meetUrlBase", "http or https URL"),
        ("meetUrlBase", "https://", "conferencing.meetUrlBase", "http or https URL"),
        ("conferenceId", "12a", "conferencing.conferenceId", "digits"),
        ("conferenceId", 123, "conferencing.conferenceId", "must be a string, got a number"),
        ("tollNumbers", "+1 206", "conferencing.tollNumbers", "array"),
        ("tollNumbers", ["+1 206 555 0100", "call me"], "conferencing.tollNumbers[1]", "phone"),
        ("tollFreeNumbers", [None], "conferencing.tollFreeNumbers[0]", "got null"),
        ("dialInUrl", "javascript:alert(1)", "conferencing.dialInUrl", "http or https URL"),
        ("dialInEnabled", "yes", "conferencing.dialInEnabled", "boolean"),
        ("pin", "1234", "conferencing.pin", "unknown field 'conferencing.pin'"),
    ],
)
def test_conferencing_field_errors(key: str, value: object, field: str, needle: str) -> None:
    body = {"type": "bridgeChanged", "identity": USER, "conferencing": {**PROFILE, key: value}}
    error = bad(body)
    assert error.field == field
    assert needle in error.message


def test_error_messages_do_not_echo_identity() -> None:
    error = bad({"type": "bridgeChanged", "identity": "secret person@contoso.example"})
    assert "secret" not in error.message


def test_manual_start_defaults_to_all_to_current() -> None:
    trigger = ok({"type": "manualStart", "identity": USER})
    assert (trigger.source, trigger.target) == (SourceMeetingType.ALL, TargetMeetingType.CURRENT)


def test_fresh_ids_are_unique() -> None:
    a = parse_trigger({"type": "bridgeChanged", "identity": USER}, tenant="c", received_at=NOW)
    b = parse_trigger({"type": "bridgeChanged", "identity": USER}, tenant="c", received_at=NOW)
    assert isinstance(a, Trigger) and isinstance(b, Trigger)
    assert a.id != b.id


def test_migration_request() -> None:
    result = parse_migration_request(
        {"identity": USER, "sourceMeetingType": "SfB", "targetMeetingType": "Teams"},
        tenant="contoso",
        received_at=NOW,
    )
    assert isinstance(result, Trigger)
    assert result.type is TriggerType.MANUAL_START
    assert (result.source, result.target) == (SourceMeetingType.SFB, TargetMeetingType.TEAMS)


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({}, "identity"),
        ({"identity": USER, "type": "bridgeChanged"}, "type"),
        ({"identity": USER, "targetMeetingType": "SfB"}, "targetMeetingType"),
        ({"identity": USER, "sourceMeetingType": "Current"}, "sourceMeetingType"),
    ],
)
def test_migration_request_errors(body: object, field: str) -> None:
    result = parse_migration_request(body, tenant="contoso", received_at=NOW)
    assert isinstance(result, ValidationError)
    assert result.field == field
