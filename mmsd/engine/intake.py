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

A transient Graph failure leaves the trigger ``pending``; the caller retries it.
"""

from __future__ import annotations

import logging
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
from mmsd.engine.settings import EngineSettings
from mmsd.graph import GraphClient, NotFound
from mmsd.store import Store

log = logging.getLogger(__name__)

USER_NOT_FOUND_MESSAGE = "Graph does not know this identity."


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
