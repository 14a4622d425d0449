"""Licence polling: Audio Conferencing assigned or removed, seen through ``users/delta`` (SPEC section 2).

Every ``delta_poll_seconds`` the poller follows its delta link. The first sync
is a baseline and triggers nothing; afterwards a user whose Audio Conferencing
plan (``MCOMEETADV``, servicePlanId :data:`AUDIO_CONFERENCING_PLAN_ID`, also
inside bundles) went from off to on makes an ``audioConferencingLicenseAssigned``
trigger, on to off an ``audioConferencingLicenseRemoved``. The plan is on when
``assignedPlans`` holds it ``Enabled`` and no ``assignedLicenses[].disabledPlans``
lists it.

The delta link and each user's licence state live in the store (schema v2),
not in memory: a restart resumes from the last completed round's link, so a
change made while mmsd was down is seen as a change, and a large tenant costs
no memory between rounds. A baseline is processed page by page (each page's
states committed as it comes, the link with the last page). In a later round,
triggers are submitted (recorded) first and the round's states and new link
committed after, so a crash in between repeats the round rather than losing a
change; the repeated trigger is ``coalesced`` like any duplicate (below).

Triggers the poller makes carry IDs that start with :data:`DETECTED_ID_PREFIX`
(:func:`is_detected`), so that intake can tell a change mmsd saw itself from
one an admin or a provisioning system posted: the same licence change usually
arrives both ways, and the detected copy must not start a second migration
(the rule is in :mod:`mmsd.engine.intake`). Posted trigger IDs are UUIDs that
clients cannot choose, so the prefix cannot be forged through the admin API.
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
from mmsd.store import Store

log = logging.getLogger(__name__)

AUDIO_CONFERENCING_PLAN_ID = "3e26ee1f-8a5f-4d52-aee2-b81ce45c8f40"
DELTA_SELECT = ("id", "userPrincipalName", "assignedLicenses", "assignedPlans")

DETECTED_ID_PREFIX = "delta-"
"""How the ID of a trigger mmsd detected itself (``users/delta``) begins."""

Submit = Callable[[Trigger], Awaitable[object]]


def detected_trigger_id() -> str:
    """A fresh trigger ID that marks the trigger as detected by the poller."""
    return DETECTED_ID_PREFIX + new_trigger_id()


def is_detected(trigger: Trigger) -> bool:
    """True for a trigger the licence poller made, False for a posted one or a manual start."""
    return trigger.id.startswith(DETECTED_ID_PREFIX)


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
        self,
        tenant: str,
        client: GraphClient,
        submit: Submit,
        clock: Clock,
        interval: float,
        store: Store,
    ) -> None:
        """``submit`` records and hands over a trigger (the engine's ``submit_trigger``)."""
        self.tenant = tenant
        self.client = client
        self.submit = submit
        self.clock = clock
        self.interval = interval
        self.store = store
        self._link: str | None = None
        self._loaded = False

    @property
    def baselined(self) -> bool:
        """True once a baseline is complete (in this process or before a restart)."""
        return self._link is not None

    async def _current_link(self) -> str | None:
        if not self._loaded:
            self._link = await self.store.delta_link(self.tenant)
            self._loaded = True
        return self._link

    async def poll_once(self) -> list[Trigger]:
        """One delta round; returns the triggers it submitted."""
        link = await self._current_link()
        baseline = link is None
        seen: dict[str, bool] = {}
        before: dict[str, bool] = {}
        new_link: str | None = None
        async for users, page_link in self.client.users_delta_pages(link, DELTA_SELECT):
            page: dict[str, bool] = {}
            for user in users:
                if "@removed" in user or not isinstance(user.get("id"), str):
                    continue
                state = has_audio_conferencing(user)
                if state is not None:
                    page[user["id"]] = state
            if baseline:
                await self.store.save_licence_round(self.tenant, page, page_link)
            else:
                fresh = [uid for uid in page if uid not in seen]
                before.update(await self.store.licence_states(self.tenant, fresh))
                seen.update(page)
            new_link = page_link
        triggers: list[Trigger] = []
        for user_id, state in seen.items():
            old = before.get(user_id)
            if old is None or old == state:
                continue
            kind = (
                TriggerType.AUDIO_CONFERENCING_LICENSE_ASSIGNED
                if state
                else TriggerType.AUDIO_CONFERENCING_LICENSE_REMOVED
            )
            triggers.append(
                Trigger(
                    id=detected_trigger_id(),
                    tenant=self.tenant,
                    type=kind,
                    identity=user_id,
                    received_at=self.clock.now(),
                )
            )
        for trigger in triggers:
            await self.submit(trigger)
        if not baseline:
            await self.store.save_licence_round(self.tenant, seen, new_link)
        self._link = new_link
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
