"""A move and a licence change within the coalescing window: one update per attendee, either order."""

from __future__ import annotations

from typing import Any

import pytest
from engine_checks import expected_updates, message_delta, patch_delta, trigger, updated_events
from engine_testkit import TENANT, Harness

from mmsd.domain.model import MigrationState, SourceMeetingType, TargetMeetingType, TriggerFate


@pytest.mark.parametrize(
    "licence_first", [False, True], ids=["move-then-licence", "licence-then-move"]
)
async def test_move_and_licence_change_make_one_update(
    harness: Harness, licence_first: bool
) -> None:
    h = harness
    user = (await h.users("ordinary"))[0]["id"]
    before = await h.counters()
    engine = await h.start(coalesce_seconds=1.0)
    move: dict[str, Any] = {"type": "userMovedToOnline", "identity": user}

    async def licence() -> dict[str, Any]:
        change = await h.send("POST", f"/users/{user}/license", {"assigned": False})
        body: dict[str, Any] = change["trigger"]
        assert body["type"] == "audioConferencingLicenseRemoved"
        return body

    assert h.store is not None
    store = h.store
    ids: list[str] = []
    # the second change is made once the first trigger is decided: the order is the admin's
    for make in (licence, None) if licence_first else (None, licence):
        body = move if make is None else await make()
        trigger_id = await engine.submit_trigger(TENANT, trigger(h, body))
        ids.append(trigger_id)

        async def decided(tid: str = trigger_id) -> bool:
            found = await store.get_trigger(tid)
            return found is not None and found.fate is not TriggerFate.PENDING

        await h.wait_for(decided, 15, "the trigger's fate")

    record = await h.wait_state(user, MigrationState.SUCCEEDED, MigrationState.FAILED)
    assert record.state is MigrationState.SUCCEEDED, record.last_message
    assert len(await h.store.status(TENANT, identity=user, latest_only=False)) == 1
    fates = [await h.store.get_trigger(i) for i in ids]
    assert [(f.fate, f.correlation_id) for f in fates if f is not None] == [
        (TriggerFate.MIGRATED, record.correlation_id),
        (TriggerFate.COALESCED, record.correlation_id),
    ]
    # both ask All -> Current: the merged migration is the same, whatever the order
    assert (record.source_meeting_type, record.target_meeting_type) == (
        SourceMeetingType.ALL,
        TargetMeetingType.CURRENT,
    )

    after = await h.counters()
    updated = await updated_events(h, user)
    assert updated, "the user's future meetings were updated"
    patches = patch_delta(before, after)
    assert set(patches) == updated
    assert set(patches.values()) == {1}, "a meeting was PATCHed twice"
    expected = await expected_updates(h, user, updated)
    assert expected, "some attendees are in the tenant"
    assert message_delta(before, after) == expected  # one update per attendee per meeting
