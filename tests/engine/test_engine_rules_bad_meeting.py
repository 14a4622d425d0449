"""One bad meeting fails that meeting, not the user: the others are updated, the user retried.

The simulator is made to refuse every PATCH of one chosen event with a
permanent ``400`` (its Graph router's PATCH handler wrapped for that event ID),
or only the first one.
"""

from __future__ import annotations

import dataclasses
from typing import Any

import pytest
from engine_checks import expected_updates, message_delta, patch_delta, trigger, updated_events
from engine_testkit import TENANT, Harness

from mmsd.domain.model import MeetingOutcome, MigrationState
from mmsd.sim.graph_http import GraphError, GraphRequest, GraphResponse, Router, SimContext
from mmsd.sim.model import CopyKind


def _refuse_patches_of(router: Router, event_id: str, times: int | None) -> list[int]:
    """Make PATCHes of ``event_id`` answer 400 (the first ``times``, or all); a refusal count."""
    refused = [0]
    routes: list[Any] = router._routes
    for i, route in enumerate(routes):
        if route.method != "PATCH" or route.name != "events/{id}":
            continue
        inner = route.handler

        async def handler(
            ctx: SimContext, req: GraphRequest, params: dict[str, str], inner: Any = inner
        ) -> GraphResponse:
            if params.get("event") == event_id and (times is None or refused[0] < times):
                refused[0] += 1
                raise GraphError(400, "ErrorInvalidRequest", "The request is invalid.")
            result: GraphResponse = await inner(ctx, req, params)
            return result

        routes[i] = dataclasses.replace(route, handler=handler)
    return refused


def _bad_event(h: Harness, user: str) -> str:
    """A future online single meeting the user organizes (one the migration updates)."""
    now = h.sim.clock.now().isoformat()[:19]
    for event_id, event in h.sim.state.mailbox_events(user).items():
        data = event.data
        if (
            event.copy is CopyKind.ORGANIZER
            and data.get("type") == "singleInstance"
            and data.get("isOnlineMeeting")
            and data["start"]["dateTime"][:19] > now
            and data.get("attendees")
        ):
            return event_id
    raise AssertionError("no future online single meeting")


@pytest.mark.parametrize("refusals", [None, 1], ids=["always", "once"])
async def test_one_bad_meeting_fails_alone(harness: Harness, refusals: int | None) -> None:
    h = harness
    user = (await h.users("ordinary"))[0]["id"]
    bad = _bad_event(h, user)
    refused = _refuse_patches_of(h.sim.router, bad, refusals)
    before = await h.counters()
    engine = await h.start()
    await engine.submit_trigger(TENANT, trigger(h, {"type": "userMovedToOnline", "identity": user}))
    record = await h.wait_state(user, MigrationState.SUCCEEDED, MigrationState.FAILED)
    after = await h.counters()
    assert h.store is not None
    history = {t.event_id: t for t in await h.store.history(TENANT, user)}
    updated = await updated_events(h, user)

    # the other meetings were updated, each PATCHed once over all attempts
    assert updated - {bad}, "the user's other meetings were updated"
    patches = patch_delta(before, after)
    assert set(patches) == updated and set(patches.values()) == {1}
    assert message_delta(before, after) == await expected_updates(h, user, updated)
    assert record.retry_count >= 1, "the user was retried"
    assert len(await h.store.status(TENANT, identity=user, latest_only=False)) == 1
    if refusals is None:
        # every attempt refused it: the user ends Failed, that meeting failed, the rest updated
        assert record.state is MigrationState.FAILED
        assert record.retry_count == len(h.config.retry_delays_seconds)
        assert refused[0] == record.retry_count + 1  # tried once per attempt, no more
        assert bad not in patches
        assert history[bad].outcome is MeetingOutcome.FAILED
        assert record.failed_meeting == 1
        assert record.succeeded_meeting == len(updated)
        assert record.last_message is not None and "could not be updated" in record.last_message
    else:
        # refused once: the retry updates it, and the user succeeds
        assert record.state is MigrationState.SUCCEEDED, record.last_message
        assert record.retry_count == 1
        assert refused[0] == 1
        assert bad in updated and patches[bad] == 1
        assert record.failed_meeting == 0
