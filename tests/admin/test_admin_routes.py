"""Every admin route of SPEC section 5 answers as the contract says (Unix socket listener)."""

from __future__ import annotations

import aiohttp
from admin_testkit import ALICE, BOB, CAROL, TENANT, FakeClock, RecordingService, seed
from conftest import Daemon

from mmsd.domain.model import SourceMeetingType, TargetMeetingType, TenantSwitches, TriggerFate
from mmsd.store import Store

BASE = f"/v1/tenants/{TENANT}"


async def test_health_and_readiness(api: aiohttp.ClientSession, daemon: Daemon) -> None:
    async with api.get("/healthz") as r:
        assert r.status == 200
        assert await r.json() == {"status": "ok", "time": "2026-03-01T09:00:00.000Z"}
    async with api.get("/readyz") as r:
        assert (r.status, await r.json()) == (200, {"status": "ready"})
    daemon.ready[0] = False
    async with api.get("/readyz") as r:
        assert (r.status, await r.json()) == (503, {"status": "notReady"})


async def test_tenants_and_openapi(api: aiohttp.ClientSession) -> None:
    async with api.get("/v1/tenants") as r:
        assert await r.json() == {"value": [{"name": TENANT}]}
    async with api.get("/v1/openapi.json") as r:
        doc = await r.json()
    assert doc["openapi"] == "3.1.0"
    assert BASE.replace(TENANT, "{tenant}") + "/migrations/{identity}/preview" in doc["paths"]


async def test_summary_counts_every_state(
    api: aiohttp.ClientSession, store: Store, clock: FakeClock
) -> None:
    async with api.get(BASE + "/migrations/summary") as r:
        assert await r.json() == {
            "value": [
                {"state": "Pending", "userCount": 0},
                {"state": "InProgress", "userCount": 0},
                {"state": "Succeeded", "userCount": 0},
                {"state": "Failed", "userCount": 0},
            ]
        }
    await seed(store, clock)
    async with api.get(BASE + "/migrations/summary") as r:
        counts = {row["state"]: row["userCount"] for row in (await r.json())["value"]}
    assert counts == {"Pending": 1, "InProgress": 0, "Succeeded": 1, "Failed": 0}


async def test_status_records_and_filters(
    api: aiohttp.ClientSession, store: Store, clock: FakeClock
) -> None:
    ids = await seed(store, clock)
    async with api.get(BASE + "/migrations") as r:
        records = (await r.json())["value"]
    assert [(x["userPrincipalName"], x["state"]) for x in records] == [
        (ALICE[1], "Succeeded"),
        (BOB[1], "Pending"),
    ]
    alice = records[0]
    assert alice["correlationId"] == ids["alice"]
    assert alice["migrationType"] == "ToSameType"
    assert (alice["totalMeeting"], alice["succeededMeeting"], alice["skippedMeeting"]) == (2, 1, 1)
    assert alice["invitesUpdate"] == 3
    assert alice["createDate"] == "2026-03-01T09:00:00.000Z"
    assert records[1]["migrationType"] == "SfbToTeams"

    async def value(**query: str) -> list[str]:
        async with api.get(BASE + "/migrations", params=query) as resp:
            assert resp.status == 200, await resp.text()
            return [x["userId"] for x in (await resp.json())["value"]]

    assert await value(identity=BOB[1].upper()) == [BOB[0]]
    assert await value(identity=ALICE[0]) == [ALICE[0]]
    assert await value(state="Pending") == [BOB[0]]
    # both ends inclusive, on createDate
    assert await value(startTime="2026-03-01T10:00:00Z") == [BOB[0]]
    assert await value(endTime="2026-03-01T09:00:00Z") == [ALICE[0]]
    assert await value(startTime="2026-03-01T09:00:00Z", endTime="2026-03-01T10:00:00+00:00") == [
        ALICE[0],
        BOB[0],
    ]
    # a user with a record, filtered away, is an empty list, not a 404
    assert await value(identity=ALICE[1], state="Failed") == []


async def test_start_migration_and_join_pending(
    api: aiohttp.ClientSession, service: RecordingService, store: Store
) -> None:
    body = {"identity": CAROL[1], "sourceMeetingType": "SfB", "targetMeetingType": "Teams"}
    async with api.post(BASE + "/migrations", json=body) as r:
        assert r.status == 202
        first = (await r.json())["correlationId"]
    async with api.post(BASE + "/migrations", json={"identity": CAROL[0]}) as r:
        assert r.status == 202
        assert (await r.json())["correlationId"] == first  # already Pending: the same one
    assert service.calls == [
        ("start_migration", TENANT, CAROL[1], SourceMeetingType.SFB, TargetMeetingType.TEAMS),
        ("start_migration", TENANT, CAROL[0], SourceMeetingType.ALL, TargetMeetingType.CURRENT),
    ]
    (record,) = await store.status(TENANT, identity=CAROL[0])
    assert record.correlation_id == first


async def test_history_per_meeting(
    api: aiohttp.ClientSession, store: Store, clock: FakeClock
) -> None:
    ids = await seed(store, clock)
    async with api.get(f"{BASE}/migrations/{ALICE[1]}/history") as r:
        rows = (await r.json())["value"]
    # oldest migration first, then by start (a meeting without a start first)
    assert [(x["eventId"], x["outcome"], x["reason"]) for x in rows] == [
        ("evt-a2", "updated", None),
        ("evt-a1", "skipped", "noBlock"),
    ]
    updated = next(x for x in rows if x["eventId"] == "evt-a2")
    assert updated["newJoinUrl"] == "https://teams.example/new"
    assert updated["invites"] == 3
    assert updated["patchedAt"] == "2026-03-01T09:00:00.000Z"
    async with api.get(
        f"{BASE}/migrations/{ALICE[0]}/history", params={"correlationId": ids["alice"]}
    ) as r:
        assert len((await r.json())["value"]) == 2
    async with api.get(f"{BASE}/migrations/{BOB[0]}/history") as r:
        assert (r.status, await r.json()) == (200, {"value": []})  # Pending: no meetings yet


async def test_preview_answers_the_service_preview(
    api: aiohttp.ClientSession, service: RecordingService, db_path: object
) -> None:
    async with api.post(f"{BASE}/migrations/{ALICE[1]}/preview") as r:
        assert r.status == 200
        body = await r.json()
    assert body["userId"] == ALICE[0]
    assert [m["classification"] for m in body["value"]] == ["migrate", "noBlock"]
    assert body["value"][0]["oldBlock"] == "<div>old block</div>"
    async with api.post(f"{BASE}/migrations/{ALICE[1]}/preview", json={}) as r:
        assert r.status == 200  # an empty object is as good as no body
    assert service.calls == [("preview", TENANT, ALICE[1])] * 2


async def test_configuration_and_dial_in_settings(
    api: aiohttp.ClientSession, service: RecordingService, store: Store
) -> None:
    async with api.get(BASE + "/configuration") as r:
        assert await r.json() == {"meetingMigrationEnabled": True}
    async with api.get(BASE + "/dialInConferencingSettings") as r:
        assert await r.json() == {
            "automaticallyMigrateUserMeetings": True,
            "automaticallyReplaceAcpProvider": False,
        }
    async with api.patch(BASE + "/configuration", json={"meetingMigrationEnabled": False}) as r:
        assert (r.status, await r.json()) == (200, {"meetingMigrationEnabled": False})
    async with api.patch(
        BASE + "/dialInConferencingSettings", json={"automaticallyReplaceAcpProvider": True}
    ) as r:
        assert await r.json() == {
            "automaticallyMigrateUserMeetings": True,
            "automaticallyReplaceAcpProvider": True,
        }
    assert await store.get_switches(TENANT) == TenantSwitches(False, True, True)
    async with api.get(BASE + "/configuration") as r:
        assert await r.json() == {"meetingMigrationEnabled": False}


async def test_triggers_post_and_list_with_fate(
    api: aiohttp.ClientSession, service: RecordingService, store: Store, clock: FakeClock
) -> None:
    body = {
        "type": "bridgeChanged",
        "identity": BOB[1],
        "conferencing": {"conferenceId": "123456", "tollNumbers": ["+1 206 555 0100"]},
    }
    async with api.post(BASE + "/triggers", json=body) as r:
        assert r.status == 202
        trigger_id = (await r.json())["triggerId"]
    await store.set_trigger_fate(trigger_id, TriggerFate.MIGRATED, correlation_id="corr-x")
    clock.advance(minutes=5)
    async with api.post(BASE + "/triggers", json={"type": "tenantMeetingUrlUpdated"}) as r:
        assert r.status == 202
    async with api.get(BASE + "/triggers") as r:
        listed = (await r.json())["value"]
    assert [(t["type"], t["fate"]) for t in listed] == [
        ("bridgeChanged", "migrated"),
        ("tenantMeetingUrlUpdated", "pending"),
    ]
    assert listed[0]["triggerId"] == trigger_id
    assert listed[0]["correlationId"] == "corr-x"
    assert listed[0]["conferencing"]["conferenceId"] == "123456"
    assert listed[0]["receivedAt"] == "2026-03-01T09:00:00.000Z"
    async with api.get(BASE + "/triggers", params={"identity": BOB[1]}) as r:
        assert [t["triggerId"] for t in (await r.json())["value"]] == [trigger_id]
    async with api.get(BASE + "/triggers", params={"since": "2026-03-01T09:01:00Z"}) as r:
        assert [t["type"] for t in (await r.json())["value"]] == ["tenantMeetingUrlUpdated"]
    async with api.get(BASE + "/triggers", params={"identity": "nobody@x.example"}) as r:
        assert (r.status, await r.json()) == (200, {"value": []})
