"""Coalescing within the window, and licence changes seen through ``users/delta``."""

from __future__ import annotations

from engine_checks import (
    expected_updates,
    message_delta,
    patch_delta,
    trigger,
    updated_events,
)
from engine_testkit import TENANT, Harness

from mmsd.domain.model import MigrationState, TriggerFate, TriggerType


async def test_a_move_and_a_dial_in_change_in_the_window_make_one_update(
    harness: Harness,
) -> None:
    h = harness
    user = (await h.users("ordinary"))[0]["id"]
    before = await h.counters()
    engine = await h.start(coalesce_seconds=1.0)
    first = await engine.submit_trigger(
        TENANT, trigger(h, {"type": "userMovedToOnline", "identity": user})
    )
    change = await h.send("POST", f"/users/{user}/dial-in", {"enabled": False})
    second = await engine.submit_trigger(
        TENANT, trigger(h, {**change["trigger"], "identity": user})
    )
    record = await h.wait_state(user, MigrationState.SUCCEEDED, MigrationState.FAILED)
    assert record.state is MigrationState.SUCCEEDED, record.last_message
    assert h.store is not None
    assert len(await h.store.status(TENANT, identity=user, latest_only=False)) == 1
    fates = [await h.store.get_trigger(t) for t in (first, second)]
    assert [f.fate for f in fates if f is not None] == [
        TriggerFate.MIGRATED,
        TriggerFate.COALESCED,
    ]
    after = await h.counters()
    updated = await updated_events(h, user)
    patches = patch_delta(before, after)
    assert set(patches) == updated and set(patches.values()) == {1}
    assert message_delta(before, after) == await expected_updates(h, user, updated)


async def test_licence_changes_after_the_baseline_make_triggers(harness: Harness) -> None:
    h = harness
    user = (await h.users("noAudioConferencing"))[0]["id"]
    engine = await h.start(poll_licences=True, delta_poll_seconds=3600.0, coalesce_seconds=3600.0)
    poller = engine.poller(TENANT)
    assert poller is not None

    async def baselined() -> bool:
        return poller.baselined

    await h.wait_for(baselined, 15, "the baseline delta sync")
    assert await poller.poll_once() == []  # nothing changed since the baseline
    await h.send("POST", f"/users/{user}/license", {"assigned": True})
    (assigned,) = await poller.poll_once()
    assert assigned.type is TriggerType.AUDIO_CONFERENCING_LICENSE_ASSIGNED
    assert assigned.identity == user
    await h.send("POST", f"/users/{user}/license", {"assigned": False})
    (removed,) = await poller.poll_once()
    assert removed.type is TriggerType.AUDIO_CONFERENCING_LICENSE_REMOVED
    assert h.store is not None
    stored = await h.store.get_trigger(assigned.id)
    assert stored is not None
