"""The demo's wave of triggers: which change each generated user gets, and firing it.

The plan is a pure function of the simulator's user list (kinds in ``GET /users``
order), so the same seed gives the same wave. It covers SPEC section 2:

- dial-in changes made in the simulator (conference ID reset, new bridge, a bridge
  number unassigned, dial-in off, dial-in off then on again), whose trigger bodies
  the simulator returns and the demo posts to mmsd, as a provisioning system would;
- licence changes made in the simulator (assigned, removed, a disabled plan
  enabled), posted with the user's profile like the others *and* visible to mmsd
  in ``users/delta``: the duplicate it detects itself must join the posted one
  (one migration, one update per meeting), and the profile is what tells mmsd
  that a user's audio conferencing comes from a third party (the ACP rule);
- moves posted as triggers (``userMovedToOnline``, ``teamsUpgradePolicyGranted``
  for one user), some for users whose mailbox is on Exchange on-premises;
- non-triggers (``sipAddressChanged``, ``userMovedToOnPremises``, tenant-scoped
  changes) and third-party ACP users (the ACP rule, with the default switch);
- coalescing: two or three triggers for one user, back to back.

What each user's triggers should lead to is decided in :mod:`mmsd.demo.checks`
from the fired types and the user's kind, never by asking mmsd.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from mmsd.demo.snapshot import SimReader

JSON = dict[str, Any]
PostTrigger = Callable[[JSON], Awaitable[None]]

LICENCE_TYPES = frozenset({"audioConferencingLicenseAssigned", "audioConferencingLicenseRemoved"})
PROFILE_KEYS = (
    "audioConferencingProvider",
    "sipAddress",
    "meetUrlBase",
    "conferenceId",
    "tollNumbers",
    "tollFreeNumbers",
    "dialInUrl",
)


@dataclass(frozen=True)
class Change:
    """One step for one user: a simulator admin change, or a trigger posted as is.

    ``sim_path`` names a ``POST /_sim/users/{id}/…`` route; the simulator answers
    with the trigger body of the change, which is posted to mmsd when ``post`` is
    true (false: mmsd must detect the change through ``users/delta``). Without
    ``sim_path`` the trigger ``trigger_type`` (plus ``extra`` fields) is built from
    the user's current profile and posted.
    """

    label: str
    sim_path: str | None = None
    sim_body: JSON = field(default_factory=dict)
    post: bool = True
    trigger_type: str | None = None
    extra: JSON = field(default_factory=dict)


@dataclass(frozen=True)
class UserSteps:
    """The changes one user gets, in order."""

    user_id: str
    kind: str
    changes: tuple[Change, ...]


@dataclass(frozen=True)
class WavePlan:
    """The whole wave: per-user steps plus tenant-scoped triggers."""

    users: tuple[UserSteps, ...]
    tenant_triggers: tuple[JSON, ...]


@dataclass(frozen=True)
class FiredTrigger:
    """A trigger the wave caused: its type, for whom, and whether the demo posted it."""

    user_id: str | None
    type: str
    posted: bool
    body: JSON


@dataclass(frozen=True)
class FiredWave:
    """Every trigger the wave caused, in firing order."""

    triggers: tuple[FiredTrigger, ...]

    def types_for(self, user_id: str) -> tuple[str, ...]:
        """The trigger types fired for one user (SPEC types, with their scope fields)."""
        return tuple(t.type for t in self.triggers if t.user_id == user_id)

    def bodies_for(self, user_id: str) -> tuple[JSON, ...]:
        """The trigger bodies fired for one user."""
        return tuple(t.body for t in self.triggers if t.user_id == user_id)

    def by_user(self) -> dict[str, tuple[str, ...]]:
        """Trigger types per user (tenant-scoped triggers left out)."""
        out: dict[str, tuple[str, ...]] = {}
        for t in self.triggers:
            if t.user_id is not None:
                out[t.user_id] = (*out.get(t.user_id, ()), t.type)
        return out

    @property
    def posted(self) -> int:
        """How many triggers the demo posted to mmsd."""
        return sum(1 for t in self.triggers if t.posted)

    @property
    def in_delta(self) -> int:
        """How many of the changes mmsd also sees itself (licences, through ``users/delta``)."""
        return sum(1 for t in self.triggers if t.type in LICENCE_TYPES)


def _sim(label: str, path: str, body: JSON | None = None, *, post: bool = True) -> Change:
    return Change(label=label, sim_path=path, sim_body=body or {}, post=post)


def _trigger(label: str, trigger_type: str, **extra: Any) -> Change:
    return Change(label=label, trigger_type=trigger_type, extra=dict(extra))


RESET = _sim("conferenceIdReset", "conference-id/reset")
BRIDGE = _sim("bridgeChanged", "bridge")
UNASSIGN = _sim("bridgeNumberUnassigned", "bridge-number/unassign")
DIAL_OFF = _sim("dialInConferencingDisabled", "dial-in", {"enabled": False})
DIAL_ON = _sim("dialInConferencingEnabled", "dial-in", {"enabled": True})
LICENCE_ON = _sim("audioConferencingLicenseAssigned", "license", {"assigned": True})
LICENCE_OFF = _sim("audioConferencingLicenseRemoved", "license", {"assigned": False})
MOVED_ONLINE = _trigger("userMovedToOnline", "userMovedToOnline")
TEAMS_UPGRADE = _trigger(
    "teamsUpgradePolicyGranted", "teamsUpgradePolicyGranted", mode="TeamsOnly", scope="user"
)
SIP_CHANGED = _trigger("sipAddressChanged", "sipAddressChanged")
MOVED_ON_PREMISES = _sim("userMovedToOnPremises", "mailbox", {"location": "onPremises"})

ORDINARY_ROTATION: tuple[tuple[Change, ...], ...] = (
    (RESET,),
    (BRIDGE, RESET),  # two triggers, one migration
    (DIAL_OFF,),
    (LICENCE_OFF,),
    (SIP_CHANGED,),  # a non-trigger
    (UNASSIGN,),
    (DIAL_OFF, DIAL_ON),  # off and on again: one migration, current details
    (MOVED_ONLINE,),
    (),  # left alone
)
KIND_ROTATION: dict[str, tuple[tuple[Change, ...], ...]] = {
    "ordinary": ORDINARY_ROTATION,
    "onPremisesMailbox": ((MOVED_ONLINE,), (MOVED_ON_PREMISES,)),
    "thirdPartyAcp": ((LICENCE_ON,),),
    "noAudioConferencing": ((LICENCE_ON,),),
    "audioConferencingDisabledPlan": ((LICENCE_ON,),),
    "sfbUser": ((TEAMS_UPGRADE,), (BRIDGE,)),
    "delegateBoss": ((RESET,),),
    "delegate": ((DIAL_OFF,), ()),
    "largeMeetings": ((BRIDGE,),),
}
TENANT_TRIGGERS: tuple[JSON, ...] = (
    {"type": "tenantMeetingUrlUpdated"},
    {"type": "teamsUpgradePolicyGranted", "mode": "TeamsOnly", "scope": "tenant"},
)


def plan_wave(users: Sequence[JSON]) -> WavePlan:
    """The wave for a generated tenant: each kind cycles through its own list of changes."""
    seen: dict[str, int] = {}
    steps: list[UserSteps] = []
    for user in users:
        kind = str(user.get("kind", "ordinary"))
        rotation = KIND_ROTATION.get(kind, ((),))
        index = seen.get(kind, 0)
        seen[kind] = index + 1
        changes = rotation[index % len(rotation)]
        if changes:
            steps.append(UserSteps(str(user["id"]), kind, changes))
    return WavePlan(users=tuple(steps), tenant_triggers=TENANT_TRIGGERS)


def without_empty_values(body: JSON) -> JSON:
    """``body`` with empty strings left out of ``conferencing``.

    The simulator writes ``""`` for what a user does not have (no conference ID,
    no dial-in URL); a provisioning system omits such fields, and mmsd rejects an
    empty conference ID.
    """
    profile = body.get("conferencing")
    if not isinstance(profile, dict):
        return body
    return {**body, "conferencing": {k: v for k, v in profile.items() if v != ""}}


def trigger_body(trigger_type: str, user: JSON, extra: JSON) -> JSON:
    """A trigger for ``user`` as a provisioning system would post it, with its profile."""
    profile = user.get("conferencing") or {}
    return without_empty_values(
        {
            "type": trigger_type,
            "identity": str(user["id"]),
            **extra,
            "conferencing": {k: profile[k] for k in PROFILE_KEYS if k in profile},
        }
    )


async def fire_wave(reader: SimReader, plan: WavePlan, post: PostTrigger) -> FiredWave:
    """Make every change of ``plan`` in the simulator and post the triggers mmsd should get."""
    fired: list[FiredTrigger] = []
    for steps in plan.users:
        for change in steps.changes:
            if change.sim_path is not None:
                answer = await reader.post(
                    f"users/{steps.user_id}/{change.sim_path}", change.sim_body
                )
                body: JSON = without_empty_values(answer["trigger"])
            else:
                assert change.trigger_type is not None
                user = await reader.get(f"users/{steps.user_id}")
                body = trigger_body(change.trigger_type, user, change.extra)
            if change.post:
                await post(body)
            fired.append(FiredTrigger(steps.user_id, str(body["type"]), change.post, body))
    for body in plan.tenant_triggers:
        await post(dict(body))
        fired.append(FiredTrigger(None, str(body["type"]), True, dict(body)))
    return FiredWave(tuple(fired))
