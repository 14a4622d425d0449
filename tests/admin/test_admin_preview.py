"""Preview against the real engine: it changes nothing in Graph and foretells the migration.

For a Teams user (All -> Current), a Skype for Business user moved to Teams
(SfB -> Teams) and a Skype for Business user staying on Skype (All -> Current):
MMS is switched off, the migration is started (it waits, Pending), preview runs
and must leave the simulator exactly as it was — no message delivered, no event
modified, no online meeting created. MMS is switched on, the migration runs,
and its transaction history must list the same meetings with the same
classifications, and each old block preview showed is the one that went.
"""

from __future__ import annotations

from typing import Any

import aiohttp
import pytest
from admin_testkit import ALICE, BOB, TENANT, wait_state

from mmsd.domain.model import MigrationState
from mmsd.engine.preview import PLACEHOLDER_JOIN_URL
from mmsd.sim.server import Simulator
from mmsd.store import Store

BASE = f"/v1/tenants/{TENANT}"


async def graph_state(sim: Simulator, http: aiohttp.ClientSession) -> dict[str, Any]:
    """Everything a preview must not change: each mailbox's events, messages, meetings."""
    control = sim.graph_base_url.removesuffix("/v1.0") + "/_sim"
    async with http.get(control + "/users") as r:
        users = [u["id"] for u in (await r.json())["value"]]
    state: dict[str, Any] = {}
    for user in users:
        for what in ("events", "messages", "online-meetings"):
            async with http.get(f"{control}/{what}/{user}") as r:
                assert r.status == 200
                state[f"{what}/{user}"] = (await r.json())["value"]
    async with http.get(control + "/counters") as r:
        counters = await r.json()
    state["counters"] = {
        k: counters[k] for k in ("patchesByEvent", "messagesByMailbox", "onlineMeetingsCreated")
    }
    return state


def bodies(state: dict[str, Any], user_id: str) -> dict[str, str]:
    """The organizer's events' bodies by event ID."""
    return {
        e["data"]["id"]: e["data"]["body"]["content"]
        for e in state[f"events/{user_id}"]
        if e["copy"] == "organizer"
    }


@pytest.mark.parametrize(
    ("who", "source", "target", "migration_type"),
    [
        (ALICE, "All", "Current", "ToSameType"),
        (BOB, "SfB", "Teams", "SfbToTeams"),
        (BOB, "All", "Current", "ToSameType"),
    ],
    ids=["teams-user", "sfb-to-teams", "sfb-user"],
)
async def test_preview_changes_nothing_and_matches_the_migration(
    api: aiohttp.ClientSession,
    sim: Simulator,
    store: Store,
    who: tuple[str, str],
    source: str,
    target: str,
    migration_type: str,
) -> None:
    user_id, upn = who
    async with api.patch(BASE + "/configuration", json={"meetingMigrationEnabled": False}) as r:
        assert r.status == 200
    body = {"identity": upn, "sourceMeetingType": source, "targetMeetingType": target}
    async with api.post(BASE + "/migrations", json=body) as r:
        assert r.status == 202
        correlation_id = (await r.json())["correlationId"]

    async with aiohttp.ClientSession() as http:
        before = await graph_state(sim, http)
        records_before = await store.status(TENANT, latest_only=False)
        async with api.post(f"{BASE}/migrations/{upn}/preview") as r:
            assert r.status == 200, await r.text()
            preview = await r.json()
        assert await graph_state(sim, http) == before  # nothing sent, modified or created
        assert await store.status(TENANT, latest_only=False) == records_before  # nothing recorded

        assert (preview["sourceMeetingType"], preview["targetMeetingType"]) == (source, target)
        meetings = {m["eventId"]: m for m in preview["value"]}
        migrate = {e for e, m in meetings.items() if m["classification"] == "migrate"}
        assert migrate, "the user has meetings to migrate"

        async with api.patch(BASE + "/configuration", json={"meetingMigrationEnabled": True}) as r:
            assert r.status == 200
        record = await wait_state(store, user_id, MigrationState.SUCCEEDED, MigrationState.FAILED)
        assert record.state is MigrationState.SUCCEEDED, record.last_message
        assert str(record.migration_type) == migration_type
        after = await graph_state(sim, http)

    async with api.get(
        f"{BASE}/migrations/{user_id}/history", params={"correlationId": correlation_id}
    ) as r:
        history = {row["eventId"]: row for row in (await r.json())["value"]}
    assert set(history) == set(meetings)  # the same meetings
    for event_id, meeting in meetings.items():
        row = history[event_id]
        if meeting["classification"] == "migrate":
            assert row["outcome"] == "updated", row
            assert row["oldJoinUrl"] == meeting["oldJoinUrl"]
        else:
            assert (row["outcome"], row["reason"]) == ("skipped", meeting["classification"])

    old_bodies, new_bodies = bodies(before, user_id), bodies(after, user_id)
    assert set(after["counters"]["patchesByEvent"]) - set(before["counters"]["patchesByEvent"]) == (
        migrate
    )
    for event_id in migrate:
        meeting = meetings[event_id]
        assert meeting["oldBlock"] in old_bodies[event_id]  # the block preview showed ...
        assert meeting["oldBlock"] not in new_bodies[event_id]  # ... is the one that went
        if meeting["newJoinUrl"] == PLACEHOLDER_JOIN_URL:  # Graph assigned the real link
            assert history[event_id]["newJoinUrl"] not in (None, PLACEHOLDER_JOIN_URL)
            assert history[event_id]["newJoinUrl"] in new_bodies[event_id]
        else:  # nothing to assign: the block preview rendered is the one now in the body
            assert meeting["newBlock"] in new_bodies[event_id]
            assert history[event_id]["newJoinUrl"] == meeting["newJoinUrl"]
    if target == "Teams":
        assert (
            after["counters"]["onlineMeetingsCreated"] > before["counters"]["onlineMeetingsCreated"]
        )
