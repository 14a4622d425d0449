"""The rules of SPEC section 2: which trigger migrates what, under which tenant switches.

:func:`decide` is the table of section 2 as a pure function; :func:`merge`
combines the (source, target) pairs of several triggers that coalesce into one
migration, so that attendees get one update carrying the right final block.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass

from mmsd.domain.model import (
    AUDIO_CONFERENCING_TRIGGERS,
    MEETING_UPGRADE_MODES,
    AudioConferencingProvider,
    ConferencingProfile,
    IgnoreReason,
    PolicyScope,
    SourceMeetingType,
    TargetMeetingType,
    TenantSwitches,
    Trigger,
    TriggerType,
)

MMS_DISABLED_MESSAGE = (
    "Meeting migration is disabled for this tenant (meetingMigrationEnabled is false); "
    "this migration will run when it is enabled again."
)
"""The ``lastMessage`` of a migration held Pending because the tenant switched MMS off."""

Pair = tuple[SourceMeetingType, TargetMeetingType]


@dataclass(frozen=True)
class Migrate:
    """The trigger migrates the user's meetings from ``source`` to ``target``.

    ``held`` is true when MMS is disabled for the tenant: the migration is
    recorded ``Pending`` with ``message`` as its ``lastMessage`` and runs once
    the switch is on again.
    """

    source: SourceMeetingType
    target: TargetMeetingType
    message: str
    held: bool = False


@dataclass(frozen=True)
class Ignore:
    """The trigger migrates nothing, for ``reason``; ``message`` says it for an admin."""

    reason: IgnoreReason
    message: str


Decision = Migrate | Ignore

_ALL_TO_CURRENT: Pair = (SourceMeetingType.ALL, TargetMeetingType.CURRENT)

_NEVER: dict[TriggerType, Ignore] = {
    TriggerType.SIP_ADDRESS_CHANGED: Ignore(
        IgnoreReason.NON_TRIGGER, "A SIP address change does not migrate meetings."
    ),
    TriggerType.TENANT_MEETING_URL_UPDATED: Ignore(
        IgnoreReason.TENANT_SCOPE, "A tenant meeting URL update does not migrate meetings."
    ),
    TriggerType.CVI_PARTNER_CHANGED: Ignore(
        IgnoreReason.MANUAL_START_REQUIRED,
        "A CVI partner change does not migrate automatically; start the users by hand.",
    ),
    TriggerType.USER_MOVED_TO_ON_PREMISES: Ignore(
        IgnoreReason.NOT_RUNNABLE,
        "The user moved to on-premises; mmsd cannot reach on-premises meetings.",
    ),
}


def _wanted(
    trigger: Trigger,
    switches: TenantSwitches,
    before: ConferencingProfile | None,
    after: ConferencingProfile | None,
) -> Pair | Ignore:
    """The (source, target) the trigger asks for, or why it asks for nothing."""
    type_ = trigger.type
    if type_ in _NEVER:
        return _NEVER[type_]
    if type_ is TriggerType.USER_MOVED_TO_ONLINE:
        return _ALL_TO_CURRENT
    if type_ is TriggerType.MANUAL_START:
        return (
            trigger.source or SourceMeetingType.ALL,
            trigger.target or TargetMeetingType.CURRENT,
        )
    if type_ is TriggerType.TEAMS_UPGRADE_POLICY_GRANTED:
        if trigger.scope is not PolicyScope.USER:
            return Ignore(
                IgnoreReason.TENANT_SCOPE,
                "A tenant-scoped Teams upgrade policy does not migrate meetings; "
                "start the users by hand.",
            )
        if trigger.mode not in MEETING_UPGRADE_MODES:
            return Ignore(
                IgnoreReason.NON_TRIGGER,
                f"Teams upgrade mode {trigger.mode} does not move meetings to Teams.",
            )
        return (SourceMeetingType.SFB, TargetMeetingType.TEAMS)
    assert type_ in AUDIO_CONFERENCING_TRIGGERS, type_
    if not switches.automatically_migrate_user_meetings:
        return Ignore(
            IgnoreReason.AUTOMATIC_MIGRATION_OFF,
            "automaticallyMigrateUserMeetings is false: audio-conferencing changes "
            "do not migrate meetings.",
        )
    if type_ is TriggerType.AUDIO_CONFERENCING_LICENSE_ASSIGNED:
        # The provider that matters is the one the meetings carry: the one
        # before the change. A profile first seen with this trigger stands in.
        profile = before if before is not None else after
        provider = None if profile is None else profile.audio_conferencing_provider
        if (
            provider is AudioConferencingProvider.THIRD_PARTY
            and not switches.automatically_replace_acp_provider
        ):
            return Ignore(
                IgnoreReason.ACP_RULE,
                "The user's audio conferencing provider is a third party and "
                "automaticallyReplaceAcpProvider is false.",
            )
    return _ALL_TO_CURRENT


def decide(
    trigger: Trigger,
    switches: TenantSwitches,
    profile_before: ConferencingProfile | None,
    profile_after: ConferencingProfile | None,
) -> Decision:
    """Apply SPEC section 2's table and the tenant switches to one trigger.

    ``profile_before``/``profile_after`` are the user's stored conferencing
    profile before and after this trigger's ``conferencing`` was merged in
    (``None`` when unknown). A user-not-found trigger is the caller's to ignore:
    it needs Graph, and this function is pure.
    """
    wanted = _wanted(trigger, switches, profile_before, profile_after)
    if isinstance(wanted, Ignore):
        return wanted
    source, target = wanted
    if not switches.meeting_migration_enabled:
        return Migrate(source, target, MMS_DISABLED_MESSAGE, held=True)
    return Migrate(source, target, f"Queued by trigger {trigger.type}.")


class _Action(enum.IntEnum):
    """What a migration does to meetings of one type; a larger value includes a smaller one."""

    NONE = 0
    REFRESH = 1  # re-render the block in the meeting's own type
    TO_TEAMS = 2  # convert to a Teams meeting (for a Teams meeting: refresh it)


def _actions(pair: Pair) -> tuple[_Action, _Action]:
    """(action on SfB meetings, action on Teams meetings) for a (source, target) pair."""
    source, target = pair
    act = _Action.TO_TEAMS if target is TargetMeetingType.TEAMS else _Action.REFRESH
    sfb = act if source in (SourceMeetingType.ALL, SourceMeetingType.SFB) else _Action.NONE
    # Turning a Teams meeting into a Teams meeting is refreshing it.
    teams = (
        _Action.REFRESH
        if source in (SourceMeetingType.ALL, SourceMeetingType.TEAMS)
        else (_Action.NONE)
    )
    return sfb, teams


def merge(a: Pair, b: Pair) -> Pair:
    """Combine two triggers' (source, target) into the one migration that satisfies both.

    Each pair says, per meeting type, nothing / refresh / convert to Teams; the
    merge takes the larger action for each type. So SfB -> Teams (an upgrade)
    with All -> Current (a dial-in change) gives All -> Teams: SfB meetings
    become Teams meetings, which carry the current dial-in, and Teams meetings
    are refreshed — one update, the right final block, in either order. When
    the result means the same as ``a`` (or else ``b``), that pair is returned
    unchanged, so equivalent spellings such as Teams -> Current and
    Teams -> Teams keep the one already recorded.
    """
    a_sfb, a_teams = _actions(a)
    b_sfb, b_teams = _actions(b)
    wanted = (max(a_sfb, b_sfb), max(a_teams, b_teams))
    for pair in (a, b):
        if _actions(pair) == wanted:
            return pair
    sfb, teams = wanted
    target = TargetMeetingType.TEAMS if sfb is _Action.TO_TEAMS else TargetMeetingType.CURRENT
    if sfb is _Action.NONE:
        source = SourceMeetingType.TEAMS
    elif teams is _Action.NONE:
        source = SourceMeetingType.SFB
    else:
        source = SourceMeetingType.ALL
    return (source, target)
