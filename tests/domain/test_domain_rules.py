"""SPEC section 2's table, row by row and switch by switch, and the coalescing merge."""

from __future__ import annotations

import itertools
from datetime import UTC, datetime

import pytest

from mmsd.domain.model import (
    AUDIO_CONFERENCING_TRIGGERS,
    AudioConferencingProvider,
    ConferencingProfile,
    IgnoreReason,
    PolicyScope,
    SourceMeetingType,
    TargetMeetingType,
    TeamsUpgradeMode,
    TenantSwitches,
    Trigger,
    TriggerType,
)
from mmsd.domain.rules import MMS_DISABLED_MESSAGE, Ignore, Migrate, Pair, decide, merge

S, T = SourceMeetingType, TargetMeetingType
ALL_TO_CURRENT = (S.ALL, T.CURRENT)
NOW = datetime(2026, 3, 1, tzinfo=UTC)
ON = TenantSwitches()
THIRD_PARTY = ConferencingProfile(audio_conferencing_provider=AudioConferencingProvider.THIRD_PARTY)
MICROSOFT = ConferencingProfile(audio_conferencing_provider=AudioConferencingProvider.MICROSOFT)


def trig(type_: TriggerType, **kw: object) -> Trigger:
    return Trigger(
        id="t",
        tenant="contoso",
        type=type_,
        identity="u",
        received_at=NOW,
        **kw,  # type: ignore[arg-type]
    )


def migrates(decision: object, pair: Pair) -> None:
    assert isinstance(decision, Migrate), decision
    assert (decision.source, decision.target) == pair
    assert not decision.held


def ignored(decision: object, reason: IgnoreReason) -> None:
    assert isinstance(decision, Ignore), decision
    assert decision.reason is reason
    assert decision.message


# ---- rows that migrate -----------------------------------------------------


def test_user_moved_to_online_migrates_all_to_current() -> None:
    migrates(decide(trig(TriggerType.USER_MOVED_TO_ONLINE), ON, None, None), ALL_TO_CURRENT)


def test_user_moved_to_online_ignores_the_audio_switch() -> None:
    switches = TenantSwitches(automatically_migrate_user_meetings=False)
    migrates(decide(trig(TriggerType.USER_MOVED_TO_ONLINE), switches, None, None), ALL_TO_CURRENT)


@pytest.mark.parametrize(
    "mode", [TeamsUpgradeMode.TEAMS_ONLY, TeamsUpgradeMode.SFB_WITH_TEAMS_COLLAB_AND_MEETINGS]
)
def test_upgrade_policy_user_scope_meeting_modes_migrate_sfb_to_teams(
    mode: TeamsUpgradeMode,
) -> None:
    trigger = trig(TriggerType.TEAMS_UPGRADE_POLICY_GRANTED, mode=mode, scope=PolicyScope.USER)
    migrates(decide(trigger, ON, None, None), (S.SFB, T.TEAMS))
    off = TenantSwitches(automatically_migrate_user_meetings=False)
    migrates(decide(trigger, off, None, None), (S.SFB, T.TEAMS))


@pytest.mark.parametrize("type_", sorted(AUDIO_CONFERENCING_TRIGGERS))
def test_audio_conferencing_triggers_migrate_all_to_current(type_: TriggerType) -> None:
    migrates(decide(trig(type_), ON, MICROSOFT, MICROSOFT), ALL_TO_CURRENT)


@pytest.mark.parametrize("type_", sorted(AUDIO_CONFERENCING_TRIGGERS))
def test_audio_conferencing_triggers_off_with_automatic_migration_off(
    type_: TriggerType,
) -> None:
    switches = TenantSwitches(automatically_migrate_user_meetings=False)
    ignored(decide(trig(type_), switches, None, None), IgnoreReason.AUTOMATIC_MIGRATION_OFF)


def test_manual_start_defaults_and_explicit_pair() -> None:
    migrates(decide(trig(TriggerType.MANUAL_START), ON, None, None), ALL_TO_CURRENT)
    trigger = trig(TriggerType.MANUAL_START, source=S.TEAMS, target=T.TEAMS)
    migrates(decide(trigger, ON, None, None), (S.TEAMS, T.TEAMS))
    off = TenantSwitches(automatically_migrate_user_meetings=False)
    migrates(decide(trigger, off, None, None), (S.TEAMS, T.TEAMS))


# ---- the ACP rule ------------------------------------------------------------


def test_acp_rule_holds_back_licence_assignment_for_third_party_user() -> None:
    trigger = trig(TriggerType.AUDIO_CONFERENCING_LICENSE_ASSIGNED)
    ignored(decide(trigger, ON, THIRD_PARTY, THIRD_PARTY), IgnoreReason.ACP_RULE)


def test_acp_rule_uses_the_provider_before_the_change() -> None:
    trigger = trig(TriggerType.AUDIO_CONFERENCING_LICENSE_ASSIGNED)
    ignored(decide(trigger, ON, THIRD_PARTY, MICROSOFT), IgnoreReason.ACP_RULE)
    migrates(decide(trigger, ON, MICROSOFT, THIRD_PARTY), ALL_TO_CURRENT)
    # No stored profile yet: the one the trigger brought stands in.
    ignored(decide(trigger, ON, None, THIRD_PARTY), IgnoreReason.ACP_RULE)
    migrates(decide(trigger, ON, None, None), ALL_TO_CURRENT)


def test_acp_rule_replaces_when_switch_on() -> None:
    trigger = trig(TriggerType.AUDIO_CONFERENCING_LICENSE_ASSIGNED)
    switches = TenantSwitches(automatically_replace_acp_provider=True)
    migrates(decide(trigger, switches, THIRD_PARTY, THIRD_PARTY), ALL_TO_CURRENT)


def test_acp_rule_only_concerns_licence_assignment() -> None:
    for type_ in AUDIO_CONFERENCING_TRIGGERS - {TriggerType.AUDIO_CONFERENCING_LICENSE_ASSIGNED}:
        migrates(decide(trig(type_), ON, THIRD_PARTY, THIRD_PARTY), ALL_TO_CURRENT)


# ---- rows that never migrate -------------------------------------------------


@pytest.mark.parametrize(
    ("trigger", "reason"),
    [
        (trig(TriggerType.SIP_ADDRESS_CHANGED), IgnoreReason.NON_TRIGGER),
        (trig(TriggerType.TENANT_MEETING_URL_UPDATED), IgnoreReason.TENANT_SCOPE),
        (
            trig(
                TriggerType.TEAMS_UPGRADE_POLICY_GRANTED,
                mode=TeamsUpgradeMode.TEAMS_ONLY,
                scope=PolicyScope.TENANT,
            ),
            IgnoreReason.TENANT_SCOPE,
        ),
        (
            trig(
                TriggerType.TEAMS_UPGRADE_POLICY_GRANTED,
                mode=TeamsUpgradeMode.ISLANDS,
                scope=PolicyScope.USER,
            ),
            IgnoreReason.NON_TRIGGER,
        ),
        (
            trig(
                TriggerType.TEAMS_UPGRADE_POLICY_GRANTED,
                mode=TeamsUpgradeMode.SFB_WITH_TEAMS_COLLAB,
                scope=PolicyScope.USER,
            ),
            IgnoreReason.NON_TRIGGER,
        ),
        (trig(TriggerType.CVI_PARTNER_CHANGED), IgnoreReason.MANUAL_START_REQUIRED),
        (trig(TriggerType.USER_MOVED_TO_ON_PREMISES), IgnoreReason.NOT_RUNNABLE),
    ],
)
def test_non_migrating_rows(trigger: Trigger, reason: IgnoreReason) -> None:
    for switches in (
        ON,
        TenantSwitches(False, False, True),
        TenantSwitches(meeting_migration_enabled=False),
    ):
        ignored(decide(trigger, switches, None, None), reason)


# ---- MMS disabled --------------------------------------------------------------


@pytest.mark.parametrize(
    "type_",
    [
        TriggerType.USER_MOVED_TO_ONLINE,
        TriggerType.MANUAL_START,
        TriggerType.BRIDGE_CHANGED,
    ],
)
def test_mms_disabled_holds_migrations_pending(type_: TriggerType) -> None:
    decision = decide(trig(type_), TenantSwitches(meeting_migration_enabled=False), None, None)
    assert isinstance(decision, Migrate)
    assert decision.held
    assert decision.message == MMS_DISABLED_MESSAGE
    assert "disabled" in decision.message


def test_mms_disabled_does_not_revive_switched_off_audio_triggers() -> None:
    switches = TenantSwitches(False, False, False)
    ignored(
        decide(trig(TriggerType.BRIDGE_CHANGED), switches, None, None),
        IgnoreReason.AUTOMATIC_MIGRATION_OFF,
    )


def test_every_trigger_type_is_decided_under_every_switch_combination() -> None:
    for type_, bits in itertools.product(TriggerType, itertools.product([False, True], repeat=3)):
        trigger = trig(type_, mode=TeamsUpgradeMode.TEAMS_ONLY, scope=PolicyScope.USER)
        decision = decide(trigger, TenantSwitches(*bits), THIRD_PARTY, THIRD_PARTY)
        assert isinstance(decision, Migrate | Ignore)


# ---- merge ---------------------------------------------------------------------

PAIRS: list[Pair] = [(s, t) for s in S for t in T]


@pytest.mark.parametrize(
    ("a", "b", "expected"),
    [
        ((S.SFB, T.TEAMS), (S.ALL, T.CURRENT), (S.ALL, T.TEAMS)),
        ((S.ALL, T.CURRENT), (S.SFB, T.TEAMS), (S.ALL, T.TEAMS)),
        ((S.ALL, T.CURRENT), (S.ALL, T.CURRENT), (S.ALL, T.CURRENT)),
        ((S.SFB, T.CURRENT), (S.TEAMS, T.CURRENT), (S.ALL, T.CURRENT)),
        ((S.SFB, T.TEAMS), (S.TEAMS, T.TEAMS), (S.ALL, T.TEAMS)),
        ((S.SFB, T.CURRENT), (S.SFB, T.TEAMS), (S.SFB, T.TEAMS)),
        # Converting Teams meetings to Teams is refreshing them: no SfB meeting converts.
        ((S.ALL, T.CURRENT), (S.TEAMS, T.TEAMS), (S.ALL, T.CURRENT)),
        ((S.TEAMS, T.TEAMS), (S.TEAMS, T.CURRENT), (S.TEAMS, T.TEAMS)),
        ((S.TEAMS, T.CURRENT), (S.TEAMS, T.TEAMS), (S.TEAMS, T.CURRENT)),
        ((S.SFB, T.TEAMS), (S.TEAMS, T.CURRENT), (S.ALL, T.TEAMS)),
    ],
)
def test_merge_examples(a: Pair, b: Pair, expected: Pair) -> None:
    assert merge(a, b) == expected


def _covers(result: Pair, wanted: Pair) -> bool:
    """Does ``result`` touch every meeting type ``wanted`` touches, converting where it converts?"""
    r_source, r_target = result
    w_source, w_target = wanted
    r_types = {S.SFB, S.TEAMS} if r_source is S.ALL else {r_source}
    w_types = {S.SFB, S.TEAMS} if w_source is S.ALL else {w_source}
    if not w_types <= r_types:
        return False
    return not (w_target is T.TEAMS and S.SFB in w_types and r_target is not T.TEAMS)


@pytest.mark.parametrize(("a", "b"), list(itertools.product(PAIRS, PAIRS)))
def test_merge_covers_both_and_is_order_independent(a: Pair, b: Pair) -> None:
    result = merge(a, b)
    assert _covers(result, a) and _covers(result, b)
    assert merge(result, a) == result and merge(result, b) == result
    swapped = merge(b, a)
    assert _covers(swapped, result) and _covers(result, swapped)


def test_merge_is_associative_in_meaning() -> None:
    for a, b, c in itertools.product(PAIRS, repeat=3):
        left, right = merge(merge(a, b), c), merge(a, merge(b, c))
        assert _covers(left, right) and _covers(right, left)
