"""The demo's checker against the simulator alone: it fails when nothing (or the wrong thing)
was done, and passes on a correct migration applied by hand through Graph."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import aiohttp
import pytest
from demo_handmigrate import hand_migrate, patch_event

from mmsd.demo.checks import Outcome, expectations, run_checks
from mmsd.demo.snapshot import SimReader, SimSnapshot
from mmsd.demo.wave import FiredWave, fire_wave, plan_wave
from mmsd.sim.server import SimConfig, Simulator

JSON = dict[str, Any]
NOW = datetime(2030, 1, 7, 9, 0, tzinfo=UTC)


@dataclass
class World:
    """A simulator after the wave (no daemon), with its before-snapshot."""

    sim: Simulator
    http: aiohttp.ClientSession
    reader: SimReader
    before: SimSnapshot
    wave: FiredWave
    posted: list[JSON]

    @property
    def graph(self) -> str:
        return self.sim.graph_base_url

    async def verdict(self) -> dict[str, bool]:
        await self.reader.post("clock/advance", {"seconds": 3600})
        after = await self.reader.snapshot()
        return {c.name: c.ok for c in run_checks(self.before, after, self.wave)}


@pytest.fixture
async def world() -> AsyncIterator[World]:
    sim = Simulator(SimConfig(users=18, meetings=4, seed=3, now=NOW, latency_ms=0, auth=False))
    await sim.start()
    try:
        async with aiohttp.ClientSession() as http:
            reader = SimReader.for_graph_base(http, sim.graph_base_url)
            before = await reader.snapshot()
            posted: list[JSON] = []

            async def post(body: JSON) -> None:
                posted.append(body)

            wave = await fire_wave(reader, plan_wave(before.users), post)
            yield World(sim, http, reader, before, wave, posted)
    finally:
        await sim.stop()


ALL_OK = {
    "eligible meetings updated once": True,
    "meetings carry the current details": True,
    "nothing else updated": True,
    "organizer text unchanged": True,
    "one attendee update per PATCH": True,
    "no Unicode garbling": True,
}


async def test_wave_covers_every_outcome_and_posts_what_mmsd_cannot_see(world: World) -> None:
    exp = expectations(world.before, world.wave)
    assert set(exp.outcomes.values()) == set(Outcome)
    assert len(exp.eligible) > 20
    reasons = set(exp.untouched.values())
    assert {"past", "attendeeCopy", "delegateCopy", "userNotMigrating", "onPremises"} <= reasons
    assert {"notOnlineMeeting", "noBlock", "tooManyAttendees"} & reasons
    types = {b["type"] for b in world.posted}
    assert "audioConferencingLicenseAssigned" in types  # also seen by mmsd in users/delta
    assert world.wave.in_delta >= 3
    assert {"conferenceIdReset", "teamsUpgradePolicyGranted", "sipAddressChanged"} <= types


async def test_no_daemon_fails_the_checks(world: World) -> None:
    verdict = await world.verdict()
    assert verdict["eligible meetings updated once"] is False
    assert verdict["meetings carry the current details"] is False
    assert verdict["nothing else updated"] is True


async def test_a_correct_migration_by_hand_passes(world: World) -> None:
    done = await hand_migrate(world.http, world.graph, world.before, world.wave)
    assert done
    assert await world.verdict() == ALL_OK


async def test_a_second_patch_fails(world: World) -> None:
    done = await hand_migrate(world.http, world.graph, world.before, world.wave)
    mailbox, event_id = done[0]
    ev = world.before.event(mailbox, event_id)
    assert ev is not None
    await patch_event(world.http, world.graph, mailbox, event_id, {"subject": ev.data["subject"]})
    verdict = await world.verdict()
    assert verdict["eligible meetings updated once"] is False
    assert verdict["one attendee update per PATCH"] is False


async def test_patching_a_past_or_non_migrating_meeting_fails(world: World) -> None:
    await hand_migrate(world.http, world.graph, world.before, world.wave)
    exp = expectations(world.before, world.wave)
    mailbox, event_id = next(k for k, r in exp.untouched.items() if r == "past")
    await patch_event(world.http, world.graph, mailbox, event_id, {"importance": "high"})
    assert (await world.verdict())["nothing else updated"] is False


async def test_text_outside_the_block_changed_or_garbled_fails(world: World) -> None:
    done = await hand_migrate(world.http, world.graph, world.before, world.wave)
    after = await world.reader.snapshot()
    found = [
        (mailbox, event_id, ev)
        for mailbox, event_id in done
        if (ev := after.event(mailbox, event_id)) is not None
        and any(ord(c) > 0x2000 for c in ev.body)
    ]
    mailbox, event_id, ev = found[0]
    body = ev.body
    # the way a broken service mangles UTF-8: every non-ASCII character becomes U+FFFD
    garbled = "".join(c if ord(c) < 128 else "\ufffd" for c in body)
    assert garbled != body
    await patch_event(
        world.http,
        world.graph,
        mailbox,
        event_id,
        {"body": {"contentType": ev.data["body"]["contentType"], "content": garbled}},
    )
    verdict = await world.verdict()
    assert verdict["organizer text unchanged"] is False
    assert verdict["no Unicode garbling"] is False


async def test_stale_details_fail(world: World) -> None:
    exp = expectations(world.before, world.wave)
    reset = next(
        t.user_id for t in world.wave.triggers if t.type == "conferenceIdReset" and t.user_id
    )
    # A migration that rewrote the bodies without taking the new conference ID.
    async with world.http.get(world.graph.replace("/v1.0", f"/_sim/users/{reset}")) as resp:
        user = await resp.json()
    old_id = world.before.user(reset)["conferencing"]["conferenceId"]
    async with world.http.put(
        world.graph.replace("/v1.0", f"/_sim/users/{reset}/conferencing"),
        json={"conferenceId": old_id},
    ) as resp:
        assert resp.status == 200
    await hand_migrate(world.http, world.graph, world.before, world.wave)
    async with world.http.put(
        world.graph.replace("/v1.0", f"/_sim/users/{reset}/conferencing"),
        json={"conferenceId": user["conferencing"]["conferenceId"]},
    ) as resp:
        assert resp.status == 200
    assert any(m == reset for m, _ in exp.eligible)
    verdict = await world.verdict()
    assert verdict["meetings carry the current details"] is False
    assert verdict["eligible meetings updated once"] is True
