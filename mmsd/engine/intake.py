"""Deciding a trigger (SPEC section 2): resolve the user, keep the profile, apply the rules.

A trigger is recorded (fate ``pending``) before anyone is told about it; this
module gives it its fate:

* triggers the rules ignore whoever the user is (non-triggers, tenant scope,
  automatic migration off) are ignored without asking Graph;
* otherwise the identity is resolved with ``GET /users/{identity}`` — an
  unknown user makes the trigger ``ignored: userNotFound``;
* the trigger's ``conferencing`` is merged into the stored profile, giving the
  profile before and after the change for :func:`~mmsd.domain.rules.decide`;
* a migration is enqueued with ``not_before`` = the trigger's arrival + the
  coalescing window (manual starts: at once). A user's Pending migration is
  joined instead (the store merges source and target and marks the trigger
  ``coalesced``), so changes within the window make one update per attendee.
  With MMS disabled the migration is Pending with the SPEC's message and runs
  once the switch is on.

Duplicates from the licence poller. A licence change is usually posted (by the
admin's tooling) *and* seen by the ``users/delta`` poll up to
``delta_poll_seconds`` later; by then the posted trigger's migration may have
run, and joining is no longer possible. The rule, for a trigger mmsd detected
itself (:func:`~mmsd.engine.delta.is_detected`) that would migrate:

  look at the user's triggers of the same family (licence assigned / removed)
  received in the window ``[T - (delta_poll_seconds + coalesce_seconds), T]``,
  where T is the detected trigger's arrival, other than itself. If the latest
  of them has the *same type* (the same direction) and was decided
  ``migrated`` or ``coalesced``, the detected trigger reports that change
  again: it is ``coalesced`` into that trigger's migration (whatever its state
  now), and nothing new is queued.

The window is the longest a poll can lag behind a change, plus the window in
which the posted trigger's migration waited. Taking only the *latest* trigger
of the family means a change back and forth (assigned, then removed, then
assigned again) is never mistaken for the first one. Otherwise the detected
trigger migrates like any other. Posted triggers are never de-duplicated this
way: an admin who posts a change again means it. A detected trigger decided
before the posted one (a poll faster than the post) is joined by the posted one
through the ordinary Pending join.

A transient Graph failure leaves the trigger ``pending``; the caller retries it.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from mmsd.domain.model import (
    ConferencingProfile,
    IgnoreReason,
    Trigger,
    TriggerFate,
    TriggerType,
)
from mmsd.domain.rules import Ignore, decide
from mmsd.engine.api import EngineObserver
from mmsd.engine.delta import is_detected
from mmsd.engine.settings import EngineSettings
from mmsd.graph import GraphClient, NotFound
from mmsd.store import Store

log = logging.getLogger(__name__)

USER_NOT_FOUND_MESSAGE = "Graph does not know this identity."

SAME_CHANGE_FAMILIES: tuple[frozenset[TriggerType], ...] = (
    frozenset(
        {
            TriggerType.AUDIO_CONFERENCING_LICENSE_ASSIGNED,
            TriggerType.AUDIO_CONFERENCING_LICENSE_REMOVED,
        }
    ),
)
"""Trigger types that undo each other: the latest of a family says the user's current state."""

_CARRIED = (TriggerFate.MIGRATED, TriggerFate.COALESCED)


def duplicate_window(settings: EngineSettings) -> timedelta:
    """How far back a detected trigger looks for the same change: one poll plus one window."""
    return timedelta(seconds=settings.delta_poll_seconds + settings.coalesce_seconds)


def earlier_same_change(
    trigger: Trigger, recent: Sequence[Trigger], window: timedelta
) -> Trigger | None:
    """The trigger that already carried the change ``trigger`` reports, or None (module rule).

    ``recent`` are the user's triggers, oldest first (as the store lists them);
    the latest one of ``trigger``'s family received within ``window`` before it
    decides: it must have the same type and have been migrated or coalesced.
    """
    family = next((f for f in SAME_CHANGE_FAMILIES if trigger.type in f), {trigger.type})
    earliest = trigger.received_at - window
    latest: Trigger | None = None
    for other in recent:
        if other.id == trigger.id or other.type not in family:
            continue
        if not earliest <= other.received_at <= trigger.received_at:
            continue
        if latest is None or other.received_at >= latest.received_at:
            latest = other
    if latest is None or latest.type is not trigger.type:
        return None
    if latest.fate not in _CARRIED or latest.correlation_id is None:
        return None
    return latest


@dataclass(frozen=True)
class Decided:
    """A trigger's fate, and when the migration it queued may start (None: nothing queued)."""

    fate: TriggerFate
    correlation_id: str | None = None
    not_before: datetime | None = None


class TriggerIntake:
    """Gives recorded triggers their fate for one tenant."""

    def __init__(
        self,
        tenant: str,
        store: Store,
        client: GraphClient,
        settings: EngineSettings,
        observer: EngineObserver,
    ) -> None:
        """All collaborators of one tenant."""
        self.tenant = tenant
        self.store = store
        self.client = client
        self.settings = settings
        self.observer = observer

    async def _ignore(self, trigger: Trigger, decision: Ignore, user_id: str | None) -> Decided:
        await self.store.set_trigger_fate(
            trigger.id,
            TriggerFate.IGNORED,
            reason=decision.reason,
            message=decision.message,
            user_id=user_id,
        )
        self.observer.trigger_decided(self.tenant, str(trigger.type), str(TriggerFate.IGNORED))
        return Decided(TriggerFate.IGNORED)

    async def _earlier_same_change(self, trigger: Trigger, user_id: str) -> Trigger | None:
        window = duplicate_window(self.settings)
        recent = await self.store.list_triggers(
            self.tenant, identity=user_id, since=trigger.received_at - window
        )
        return earlier_same_change(trigger, recent, window)

    async def _coalesce_into(self, trigger: Trigger, earlier: Trigger, user_id: str) -> Decided:
        """Record a detected duplicate as ``coalesced`` into the earlier trigger's migration."""
        assert earlier.correlation_id is not None
        await self.store.set_trigger_fate(
            trigger.id,
            TriggerFate.COALESCED,
            correlation_id=earlier.correlation_id,
            message=f"The same change as trigger {earlier.id}; already in its migration.",
            user_id=user_id,
        )
        self.observer.trigger_decided(self.tenant, str(trigger.type), str(TriggerFate.COALESCED))
        log.info(
            "detected trigger coalesced into an earlier migration",
            extra={
                "tenant": self.tenant,
                "correlationId": earlier.correlation_id,
                "userId": user_id,
            },
        )
        return Decided(TriggerFate.COALESCED, earlier.correlation_id)

    async def decide(self, trigger: Trigger) -> Decided:
        """Resolve, record the profile, apply the rules, enqueue or ignore (all committed)."""
        switches = await self.store.get_switches(self.tenant)
        blind = decide(trigger, switches, None, None)
        if isinstance(blind, Ignore) or trigger.identity is None:
            if isinstance(blind, Ignore):
                return await self._ignore(trigger, blind, None)
            return await self._ignore(
                trigger, Ignore(IgnoreReason.TENANT_SCOPE, "The trigger names no user."), None
            )
        try:
            user = await self.client.get_user(trigger.identity, ["id", "userPrincipalName"])
        except NotFound:
            return await self._ignore(
                trigger, Ignore(IgnoreReason.USER_NOT_FOUND, USER_NOT_FOUND_MESSAGE), None
            )
        user_id = str(user["id"])
        upn = user.get("userPrincipalName")
        upn = upn if isinstance(upn, str) else None
        before: ConferencingProfile | None
        after: ConferencingProfile | None
        if trigger.conferencing is not None:
            before, after = await self.store.update_profile(
                self.tenant, user_id, trigger.conferencing
            )
        else:
            before = after = await self.store.get_profile(self.tenant, user_id)
        decision = decide(trigger, switches, before, after)
        if isinstance(decision, Ignore):
            return await self._ignore(trigger, decision, user_id)
        if is_detected(trigger):
            earlier = await self._earlier_same_change(trigger, user_id)
            if earlier is not None:
                return await self._coalesce_into(trigger, earlier, user_id)
        if trigger.type is TriggerType.MANUAL_START:
            not_before = trigger.received_at
        else:
            not_before = trigger.received_at + timedelta(seconds=self.settings.coalesce_seconds)
        enqueued = await self.store.enqueue_migration(
            self.tenant,
            user_id,
            upn,
            decision.source,
            decision.target,
            decision.message,
            trigger_id=trigger.id,
            not_before=not_before,
        )
        fate = TriggerFate.MIGRATED if enqueued.created else TriggerFate.COALESCED
        self.observer.trigger_decided(self.tenant, str(trigger.type), str(fate))
        log.info(
            "trigger %s",
            fate,
            extra={
                "tenant": self.tenant,
                "correlationId": enqueued.correlation_id,
                "userId": user_id,
            },
        )
        return Decided(fate, enqueued.correlation_id, not_before)
