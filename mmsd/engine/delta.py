"""Licence polling: Audio Conferencing assigned or removed, seen through ``users/delta`` (SPEC section 2).

Every ``delta_poll_seconds`` the poller follows its delta link. The first sync
is a baseline and triggers nothing; afterwards a user whose Audio Conferencing
plan (``MCOMEETADV``, servicePlanId :data:`AUDIO_CONFERENCING_PLAN_ID`, also
inside bundles) went from off to on makes an ``audioConferencingLicenseAssigned``
trigger, on to off an ``audioConferencingLicenseRemoved``. The plan is on when
``assignedPlans`` holds it ``Enabled`` and no ``assignedLicenses[].disabledPlans``
lists it.

The licence state per user is kept in memory (about 100 bytes a user) and the
delta link is not persisted: after a daemon restart the first sync is a
baseline again, so a change made while mmsd was down is not seen (the store
has no place for the link yet).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Mapping
from typing import Any

from mmsd.clock import Clock
from mmsd.domain.model import Trigger, TriggerType
from mmsd.domain.triggers import new_trigger_id
from mmsd.graph import GraphClient, GraphError, TransportError

log = logging.getLogger(__name__)

AUDIO_CONFERENCING_PLAN_ID = "3e26ee1f-8a5f-4d52-aee2-b81ce45c8f40"
DELTA_SELECT = ("id", "userPrincipalName", "assignedLicenses", "assignedPlans")

Submit = Callable[[Trigger], Awaitable[object]]


def has_audio_conferencing(user: Mapping[str, Any]) -> bool | None:
    """Whether the user's Audio Conferencing plan is on; None when the record does not say."""
    if "assignedPlans" not in user and "assignedLicenses" not in user:
        return None
    for licence in user.get("assignedLicenses") or ():
        if AUDIO_CONFERENCING_PLAN_ID in ((licence or {}).get("disabledPlans") or ()):
            return False
    return any(
        (plan or {}).get("servicePlanId") == AUDIO_CONFERENCING_PLAN_ID
        and (plan or {}).get("capabilityStatus") == "Enabled"
        for plan in user.get("assignedPlans") or ()
    )


class LicencePoller:
    """Polls one tenant's ``users/delta`` and submits licence triggers."""

    def __init__(
        self, tenant: str, client: GraphClient, submit: Submit, clock: Clock, interval: float
    ) -> None:
        """``submit`` records and hands over a trigger (the engine's ``submit_trigger``)."""
        self.tenant = tenant
        self.client = client
        self.submit = submit
        self.clock = clock
        self.interval = interval
        self._link: str | None = None
        self._known: dict[str, bool] = {}

    @property
    def baselined(self) -> bool:
        """True once the first (baseline) sync finished."""
        return self._link is not None

    async def poll_once(self) -> list[Trigger]:
        """One delta round; returns the triggers it submitted."""
        result = await self.client.users_delta(self._link, DELTA_SELECT)
        baseline = self._link is None
        triggers: list[Trigger] = []
        for user in result.users:
            if "@removed" in user or not isinstance(user.get("id"), str):
                continue
            state = has_audio_conferencing(user)
            if state is None:
                continue
            user_id = user["id"]
            before = self._known.get(user_id)
            self._known[user_id] = state
            if baseline or before is None or before == state:
                continue
            kind = (
                TriggerType.AUDIO_CONFERENCING_LICENSE_ASSIGNED
                if state
                else TriggerType.AUDIO_CONFERENCING_LICENSE_REMOVED
            )
            triggers.append(
                Trigger(
                    id=new_trigger_id(),
                    tenant=self.tenant,
                    type=kind,
                    identity=user_id,
                    received_at=self.clock.now(),
                )
            )
        self._link = result.delta_link
        for trigger in triggers:
            await self.submit(trigger)
        return triggers

    async def run(self) -> None:
        """Poll forever (until cancelled); Graph failures are logged and retried next round."""
        while True:
            try:
                await self.poll_once()
            except (GraphError, TransportError) as exc:
                log.warning(
                    "users/delta failed: %s", type(exc).__name__, extra={"tenant": self.tenant}
                )
            await asyncio.sleep(self.interval)
