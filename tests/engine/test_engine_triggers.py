"""Triggers under the tenant switches (SPEC section 2), decided by the running engine."""

from __future__ import annotations

from typing import Any

import pytest
from engine_checks import trigger
from engine_testkit import TENANT, Harness

from mmsd.domain.model import (
    IgnoreReason,
    MigrationState,
    SourceMeetingType,
    TargetMeetingType,
    TenantSwitches,
    TriggerFate,
)
from mmsd.domain.rules import MMS_DISABLED_MESSAGE
from mmsd.engine.settings import ON_PREMISES_MESSAGE

AC_TYPES = [
    "audioConferencingLicenseAssigned",
    "audioConferencingLicenseRemoved",
    "dialInConferencingEnabled",
    "dialInConferencingDisabled",
    "conferenceIdReset",
    "bridgeChanged",
    "bridgeNumberUnassigned",
    "acpProviderSwitchedToMicrosoft",
]
ALWAYS = [
    ({"type": "userMovedToOnline"}, ("All", "Current")),
    ({"type": "teamsUpgradePolicyGranted", "scope": "user", "mode": "TeamsOnly"}, ("SfB", "Teams")),
    (
        {
            "type": "teamsUpgradePolicyGranted",
            "scope": "user",
            "mode": "SfBWithTeamsCollabAndMeetings",
        },
        ("SfB", "Teams"),
    ),
]
NEVER = [
    ({"type": "sipAddressChanged"}, IgnoreReason.NON_TRIGGER),
    ({"type": "teamsUpgradePolicyGranted", "scope": "user", "mode": "Islands"}, None),
    ({"type": "teamsUpgradePolicyGranted", "scope": "tenant", "mode": "TeamsOnly"}, None),
    ({"type": "cviPartnerChanged"}, IgnoreReason.MANUAL_START_REQUIRED),
    ({"type": "userMovedToOnPremises"}, IgnoreReason.NOT_RUNNABLE),
]


async def _fate(h: Harness, trigger_id: str) -> Any:
    assert h.store is not None
    store = h.store

    async def decided() -> Any:
        found = await store.get_trigger(trigger_id)
        return found if found is not None and found.fate is not TriggerFate.PENDING else None

    return await h.wait_for(decided, 15, "a trigger's fate")


@pytest.mark.parametrize("automatic", [True, False])
async def test_every_trigger_type_under_each_switch(harness: Harness, automatic: bool) -> None:
    h = harness
    users = [u["id"] for u in await h.users("ordinary")]
    engine = await h.start(coalesce_seconds=3600.0)  # decide only; nothing runs
    await engine.set_switches(TENANT, TenantSwitches(automatically_migrate_user_meetings=automatic))
    for i, type_ in enumerate(AC_TYPES):
        body = {"type": type_, "identity": users[i % len(users)]}
        fate = await _fate(h, await engine.submit_trigger(TENANT, trigger(h, body)))
        if automatic:
            assert fate.fate in (TriggerFate.MIGRATED, TriggerFate.COALESCED), type_
            assert fate.correlation_id is not None
        else:
            assert fate.fate is TriggerFate.IGNORED, type_
            assert fate.reason is IgnoreReason.AUTOMATIC_MIGRATION_OFF
    target_user = users[-1]
    for body, _pair in ALWAYS:
        fate = await _fate(
            h,
            await engine.submit_trigger(TENANT, trigger(h, {**body, "identity": target_user})),
        )
        assert fate.fate in (TriggerFate.MIGRATED, TriggerFate.COALESCED), body
    assert h.store is not None
    record = (await h.store.status(TENANT, identity=target_user))[-1]
    assert record.state is MigrationState.PENDING
    # a move (All -> Current) and an upgrade (SfB -> Teams) coalesce into All -> Teams
    assert (record.source_meeting_type, record.target_meeting_type) == (
        SourceMeetingType.ALL,
        TargetMeetingType.TEAMS,
    )
    for body, reason in NEVER:
        fate = await _fate(
            h, await engine.submit_trigger(TENANT, trigger(h, {**body, "identity": users[0]}))
        )
        assert fate.fate is TriggerFate.IGNORED, body
        if reason is not None:
            assert fate.reason is reason
    tenant_wide = await engine.submit_trigger(
        TENANT, trigger(h, {"type": "tenantMeetingUrlUpdated"})
    )
    assert (await _fate(h, tenant_wide)).reason is IgnoreReason.TENANT_SCOPE
    unknown = await engine.submit_trigger(
        TENANT, trigger(h, {"type": "userMovedToOnline", "identity": "nobody@nowhere.example"})
    )
    assert (await _fate(h, unknown)).reason is IgnoreReason.USER_NOT_FOUND


@pytest.mark.parametrize("replace_acp", [False, True])
async def test_acp_rule_both_ways(harness: Harness, replace_acp: bool) -> None:
    h = harness
    acp_user = (await h.users("thirdPartyAcp"))[0]["id"]
    engine = await h.start()
    await engine.set_switches(
        TENANT, TenantSwitches(automatically_replace_acp_provider=replace_acp)
    )
    change = await h.send("POST", f"/users/{acp_user}/license", {"assigned": True})
    body = {**change["trigger"], "identity": acp_user}
    fate = await _fate(h, await engine.submit_trigger(TENANT, trigger(h, body)))
    if not replace_acp:
        assert fate.fate is TriggerFate.IGNORED
        assert fate.reason is IgnoreReason.ACP_RULE
        return
    assert fate.fate is TriggerFate.MIGRATED
    record = await h.wait_state(acp_user, MigrationState.SUCCEEDED, MigrationState.FAILED)
    assert record.state is MigrationState.SUCCEEDED, record.last_message
    assert record.succeeded_meeting > 0


async def test_on_premises_mailbox_fails_at_once(harness: Harness) -> None:
    h = harness
    user = (await h.users("onPremisesMailbox"))[0]["id"]
    engine = await h.start()
    await engine.submit_trigger(TENANT, trigger(h, {"type": "userMovedToOnline", "identity": user}))
    record = await h.wait_state(user, MigrationState.FAILED, MigrationState.SUCCEEDED)
    assert record.state is MigrationState.FAILED
    assert record.retry_count == 0
    assert record.last_message == ON_PREMISES_MESSAGE


async def test_mms_disabled_holds_pending_then_runs_when_enabled(harness: Harness) -> None:
    h = harness
    user = (await h.users("ordinary"))[1]["id"]
    engine = await h.start(coalesce_seconds=0.0)
    await engine.set_switches(TENANT, TenantSwitches(meeting_migration_enabled=False))
    await engine.submit_trigger(TENANT, trigger(h, {"type": "userMovedToOnline", "identity": user}))
    held = await h.wait_state(user, MigrationState.PENDING)
    assert held.last_message == MMS_DISABLED_MESSAGE
    counters = await h.counters()
    assert counters["patchesByEvent"] == {}
    await engine.set_switches(TENANT, TenantSwitches(meeting_migration_enabled=True))
    record = await h.wait_state(user, MigrationState.SUCCEEDED, MigrationState.FAILED)
    assert record.state is MigrationState.SUCCEEDED, record.last_message
    assert record.correlation_id == held.correlation_id


async def test_upgrade_converts_skype_meetings_to_teams(harness: Harness) -> None:
    h = harness
    user = (await h.users("sfbUser"))[0]["id"]
    engine = await h.start()
    body = {
        "type": "teamsUpgradePolicyGranted",
        "scope": "user",
        "mode": "TeamsOnly",
        "identity": user,
    }
    await engine.submit_trigger(TENANT, trigger(h, body))
    record = await h.wait_state(user, MigrationState.SUCCEEDED, MigrationState.FAILED)
    assert record.state is MigrationState.SUCCEEDED, record.last_message
    assert record.succeeded_meeting > 0
    counters = await h.counters()
    assert counters["onlineMeetingsCreated"] >= 1
    assert h.store is not None
    for txn in await h.store.history(TENANT, user):
        if txn.outcome.value == "updated":
            assert txn.new_join_url is not None
            assert txn.new_join_url.startswith("https://teams.microsoft.com/l/meetup-join/")
    # a second manual start finds no Skype block left to convert: nothing PATCHed twice
    before = await h.counters()
    cid = await engine.start_migration(TENANT, user, SourceMeetingType.SFB, TargetMeetingType.TEAMS)
    again = await h.wait_state(user, MigrationState.SUCCEEDED, MigrationState.FAILED)
    assert again.correlation_id == cid
    assert again.succeeded_meeting == 0
    assert (await h.counters())["patchesByEvent"] == before["patchesByEvent"]
