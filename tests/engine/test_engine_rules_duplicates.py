"""A licence change posted and also seen by ``users/delta`` migrates once (SPEC section 2).

The rule (``mmsd.engine.intake``): a trigger mmsd detected itself is ``coalesced``
into the migration of the user's latest licence trigger of the same type received
within ``delta_poll_seconds + coalesce_seconds`` before it; otherwise it migrates.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from engine_checks import patch_delta, trigger
from engine_testkit import NOW, TENANT, Harness

from mmsd.domain.model import MigrationState, Trigger, TriggerFate, TriggerType
from mmsd.engine.delta import LicencePoller, detected_trigger_id, is_detected
from mmsd.engine.intake import earlier_same_change
from mmsd.engine.service import Engine

ASSIGNED = TriggerType.AUDIO_CONFERENCING_LICENSE_ASSIGNED
REMOVED = TriggerType.AUDIO_CONFERENCING_LICENSE_REMOVED
WINDOW = timedelta(seconds=360)


def _t(
    type_: TriggerType,
    seconds: float,
    *,
    fate: TriggerFate = TriggerFate.MIGRATED,
    detected: bool = False,
    cid: str | None = "cid-1",
) -> Trigger:
    return Trigger(
        id=detected_trigger_id() if detected else f"posted-{type_}-{seconds}",
        tenant=TENANT,
        type=type_,
        identity="u1",
        received_at=NOW + timedelta(seconds=seconds),
        fate=fate,
        correlation_id=cid if fate is not TriggerFate.PENDING else None,
    )


def test_the_rule_on_its_own() -> None:
    detected = _t(ASSIGNED, 300, fate=TriggerFate.PENDING, detected=True)
    assert is_detected(detected) and not is_detected(_t(ASSIGNED, 0))
    # the same change, posted earlier and migrated (or coalesced): it is carried
    posted = _t(ASSIGNED, 0)
    assert earlier_same_change(detected, [posted, detected], WINDOW) == posted
    joined = _t(ASSIGNED, 0, fate=TriggerFate.COALESCED, cid="cid-2")
    assert earlier_same_change(detected, [joined, detected], WINDOW) == joined
    # the other direction, ignored, undecided, or outside the window: not carried
    assert earlier_same_change(detected, [_t(REMOVED, 0)], WINDOW) is None
    ignored = _t(ASSIGNED, 0, fate=TriggerFate.IGNORED, cid=None)
    assert earlier_same_change(detected, [ignored], WINDOW) is None
    assert (
        earlier_same_change(detected, [_t(ASSIGNED, 0, fate=TriggerFate.PENDING)], WINDOW) is None
    )
    assert earlier_same_change(detected, [_t(ASSIGNED, -61)], WINDOW) is None
    # received after the detected one: not what it saw
    assert earlier_same_change(detected, [_t(ASSIGNED, 301)], WINDOW) is None
    # assigned, removed, assigned again: only the latest of the family counts
    back_and_forth = [_t(ASSIGNED, 0), _t(REMOVED, 100, detected=True, cid="cid-2")]
    assert earlier_same_change(detected, back_and_forth, WINDOW) is None
    # a crash repeated a poll round: the first detection carries the change
    first = _t(ASSIGNED, 290, detected=True, cid="cid-3")
    assert earlier_same_change(detected, [_t(REMOVED, 10), first], WINDOW) == first
    # other trigger types are not de-duplicated against licence triggers
    moved = _t(TriggerType.USER_MOVED_TO_ONLINE, 0)
    assert earlier_same_change(detected, [moved], WINDOW) is None


async def _fate(h: Harness, trigger_id: str) -> Trigger:
    assert h.store is not None
    store = h.store

    async def decided() -> Trigger | None:
        found = await store.get_trigger(trigger_id)
        return found if found is not None and found.fate is not TriggerFate.PENDING else None

    result: Trigger = await h.wait_for(decided, 15, "a trigger's fate")
    return result


async def _started(h: Harness) -> tuple[Engine, LicencePoller]:
    engine = await h.start(poll_licences=True, delta_poll_seconds=3600.0)
    poller = engine.poller(TENANT)
    assert poller is not None

    async def baselined() -> bool:
        return poller.baselined

    await h.wait_for(baselined, 15, "the baseline delta sync")
    return engine, poller


async def _records(h: Harness, user: str) -> list[Any]:
    assert h.store is not None
    return await h.store.status(TENANT, identity=user, latest_only=False)


async def test_posted_then_detected_makes_one_migration(harness: Harness) -> None:
    h = harness
    user = (await h.users("ordinary"))[0]["id"]
    engine, poller = await _started(h)
    change = await h.send("POST", f"/users/{user}/license", {"assigned": False})
    posted = await engine.submit_trigger(TENANT, trigger(h, change["trigger"]))
    record = await h.wait_state(user, MigrationState.SUCCEEDED, MigrationState.FAILED)
    assert record.state is MigrationState.SUCCEEDED, record.last_message
    assert (await _fate(h, posted)).fate is TriggerFate.MIGRATED
    before = await h.counters()

    (detected,) = await poller.poll_once()
    assert detected.type is REMOVED and is_detected(detected)
    fate = await _fate(h, detected.id)
    assert fate.fate is TriggerFate.COALESCED
    assert fate.correlation_id == record.correlation_id
    assert len(await _records(h, user)) == 1, "the detected duplicate queued a migration"
    assert patch_delta(before, await h.counters()) == {}


async def test_detected_alone_migrates(harness: Harness) -> None:
    h = harness
    user = (await h.users("noAudioConferencing"))[0]["id"]
    _engine, poller = await _started(h)
    await h.send("POST", f"/users/{user}/license", {"assigned": True})
    (detected,) = await poller.poll_once()
    assert detected.type is ASSIGNED
    fate = await _fate(h, detected.id)
    assert fate.fate is TriggerFate.MIGRATED
    record = await h.wait_state(user, MigrationState.SUCCEEDED, MigrationState.FAILED)
    assert record.state is MigrationState.SUCCEEDED, record.last_message
    assert record.correlation_id == fate.correlation_id


async def test_detected_after_the_window_migrates_again(harness: Harness) -> None:
    h = harness
    user = (await h.users("ordinary"))[1]["id"]
    engine, poller = await _started(h)
    change = await h.send("POST", f"/users/{user}/license", {"assigned": False})
    await engine.submit_trigger(TENANT, trigger(h, change["trigger"]))
    first = await h.wait_state(user, MigrationState.SUCCEEDED, MigrationState.FAILED)
    assert first.state is MigrationState.SUCCEEDED, first.last_message
    h.sim.clock.advance(3600.0 + h.config.coalesce_seconds + 1.0)  # past poll + window
    (detected,) = await poller.poll_once()
    fate = await _fate(h, detected.id)
    assert fate.fate is TriggerFate.MIGRATED
    assert fate.correlation_id != first.correlation_id
    assert len(await _records(h, user)) == 2
