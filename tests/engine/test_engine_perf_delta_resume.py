"""Licence polling resumes after a restart: the delta link and licence states are in the store."""

from __future__ import annotations

from engine_testkit import TENANT, Harness

from mmsd.domain.model import Trigger, TriggerType
from mmsd.engine.delta import LicencePoller
from mmsd.graph import GraphClient
from mmsd.store import Store


def _poller(h: Harness, client: GraphClient, store: Store, seen: list[Trigger]) -> LicencePoller:
    async def submit(trigger: Trigger) -> None:
        await store.record_trigger(trigger)
        seen.append(trigger)

    return LicencePoller(TENANT, client, submit, h.sim.clock, 3600.0, store)


async def test_a_change_made_while_mmsd_was_down_is_seen_after_the_restart(
    harness: Harness,
) -> None:
    h = harness
    user = (await h.users("noAudioConferencing"))[0]["id"]
    path = h.tmp / "state" / "mmsd.sqlite3"
    settings = h.config.tenants[TENANT].graph_settings()
    seen: list[Trigger] = []

    store = await Store.open(path, clock=h.sim.clock)
    async with GraphClient.from_config(settings, tenant=TENANT, clock=h.sim.clock) as client:
        first = _poller(h, client, store, seen)
        assert not first.baselined
        assert await first.poll_once() == []  # the baseline triggers nothing
        assert first.baselined
        link = await store.delta_link(TENANT)
        assert link is not None
        assert await store.licence_states(TENANT, [user]) == {user: False}
    await store.close()

    # mmsd is down: the admin assigns the licence.
    await h.send("POST", f"/users/{user}/license", {"assigned": True})
    delta_calls = (await h.counters())["requests"].get("GET users/delta", 0)

    store = await Store.open(path, clock=h.sim.clock)
    try:
        async with GraphClient.from_config(settings, tenant=TENANT, clock=h.sim.clock) as client:
            second = _poller(h, client, store, seen)
            (assigned,) = await second.poll_once()  # resumed from the link: no new baseline
            assert assigned.type is TriggerType.AUDIO_CONFERENCING_LICENSE_ASSIGNED
            assert assigned.identity == user
            assert await store.get_trigger(assigned.id) is not None
            assert await store.licence_states(TENANT, [user]) == {user: True}
            assert await store.delta_link(TENANT) != link
            assert await second.poll_once() == []  # the round was committed: not repeated
        # Two rounds of one page each: the resumed poller never re-read the whole tenant.
        after = (await h.counters())["requests"].get("GET users/delta", 0)
        assert after - delta_calls == 2
    finally:
        await store.close()
