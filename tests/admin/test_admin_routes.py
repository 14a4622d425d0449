"""Every admin route of SPEC section 5 answers as the contract says, served by the real engine."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import aiohttp
from admin_testkit import ALICE, BOB, CAROL, TENANT, eventually, snapshot, wait_state
from conftest import Daemon

from mmsd.clock import SimulatedClock, format_rfc3339
from mmsd.domain.model import MigrationState, TenantSwitches
from mmsd.engine.service import Engine
from mmsd.store import Store

BASE = f"/v1/tenants/{TENANT}"


async def test_health_and_readiness(
    api: aiohttp.ClientSession, daemon: Daemon, clock: SimulatedClock
) -> None:
    before = clock.now()
    async with api.get("/healthz") as r:
        assert r.status == 200
        body = await r.json()
    assert body["status"] == "ok"
    assert format_rfc3339(before) <= body["time"] <= format_rfc3339(clock.now())  # the sim's clock
    assert body["time"].startswith("2026-03-01T09:")
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


async def test_summary_of_an_empty_store_has_every_state(api: aiohttp.ClientSession) -> None:
    async with api.get(BASE + "/migrations/summary") as r:
        assert await r.json() == {
            "value": [
                {"state": "Pending", "userCount": 0},
                {"state": "InProgress", "userCount": 0},
                {"state": "Succeeded", "userCount": 0},
                {"state": "Failed", "userCount": 0},
            ]
        }


async def test_summary_counts_each_user_once(
    seeded: dict[str, str], api: aiohttp.ClientSession
) -> None:
    async with api.get(BASE + "/migrations/summary") as r:
        counts = {row["state"]: row["userCount"] for row in (await r.json())["value"]}
    assert counts == {"Pending": 1, "InProgress": 0, "Succeeded": 1, "Failed": 0}


async def test_status_records_and_filters(
    seeded: dict[str, str], api: aiohttp.ClientSession
) -> None:
    async with api.get(BASE + "/migrations") as r:
        records = (await r.json())["value"]
    assert [(x["userPrincipalName"], x["state"]) for x in records] == [
        (ALICE[1], "Succeeded"),
        (BOB[1], "Pending"),
    ]
    alice = records[0]
    assert alice["correlationId"] == seeded["alice"]
    assert alice["migrationType"] == "ToSameType"
    assert (alice["totalMeeting"], alice["succeededMeeting"], alice["skippedMeeting"]) == (2, 1, 1)
    assert alice["invitesUpdate"] == 3
    assert alice["createDate"].startswith("2026-03-01T09:00:")  # the simulator's clock
    assert records[1]["migrationType"] == "SfbToTeams"

    async def value(**query: str) -> list[str]:
        async with api.get(BASE + "/migrations", params=query) as resp:
            assert resp.status == 200, await resp.text()
            return [x["userId"] for x in (await resp.json())["value"]]

    assert await value(identity=BOB[1].upper()) == [BOB[0]]
    assert await value(identity=ALICE[0]) == [ALICE[0]]
    assert await value(state="Pending") == [BOB[0]]
    # on createDate, both ends inclusive (Alice at 09:00, Bob at 10:00, by the sim's clock)
    assert await value(startTime="2026-03-01T09:30:00Z") == [BOB[0]]
    assert await value(endTime="2026-03-01T09:30:00Z") == [ALICE[0]]
    assert await value(startTime=alice["createDate"], endTime=alice["createDate"]) == [ALICE[0]]
    assert await value(startTime="2026-03-01T09:00:00Z", endTime="2026-03-01T11:00:00+00:00") == [
        ALICE[0],
        BOB[0],
    ]
    # a user with a record, filtered away, is an empty list, not a 404
    assert await value(identity=ALICE[1], state="Failed") == []


async def test_start_migration_runs_and_joins_pending(
    api: aiohttp.ClientSession, store: Store
) -> None:
    body = {"identity": CAROL[1], "sourceMeetingType": "All", "targetMeetingType": "Current"}
    async with api.post(BASE + "/migrations", json=body) as r:
        assert r.status == 202
        first = (await r.json())["correlationId"]
    record = await wait_state(store, CAROL[0], MigrationState.SUCCEEDED, MigrationState.FAILED)
    assert record.correlation_id == first
    assert record.state is MigrationState.SUCCEEDED, record.last_message
    assert record.succeeded_meeting > 0  # the engine really migrated Carol's meetings
    async with api.get(f"{BASE}/migrations/{CAROL[1]}/history") as r:
        rows = (await r.json())["value"]
    assert {row["outcome"] for row in rows} >= {"updated"}


async def test_start_joins_the_pending_migration(
    seeded: dict[str, str], api: aiohttp.ClientSession, store: Store
) -> None:
    async with api.post(BASE + "/migrations", json={"identity": BOB[0]}) as r:
        assert r.status == 202
        assert (await r.json())["correlationId"] == seeded["bob"]  # already Pending
    records = await store.status(TENANT, identity=BOB[0], latest_only=False)
    assert [x.correlation_id for x in records] == [seeded["bob"]]


async def test_history_per_meeting(seeded: dict[str, str], api: aiohttp.ClientSession) -> None:
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
    assert updated["patchedAt"].startswith("2026-03-01T09:00:")
    async with api.get(
        f"{BASE}/migrations/{ALICE[0]}/history", params={"correlationId": seeded["alice"]}
    ) as r:
        assert len((await r.json())["value"]) == 2
    async with api.get(f"{BASE}/migrations/{BOB[0]}/history") as r:
        assert (r.status, await r.json()) == (200, {"value": []})  # Pending: no meetings yet


async def test_preview_lists_the_users_meetings(api: aiohttp.ClientSession, store: Store) -> None:
    async with api.post(f"{BASE}/migrations/{ALICE[1]}/preview") as r:
        assert r.status == 200
        body = await r.json()
    assert (body["userId"], body["userPrincipalName"]) == ALICE
    assert (body["sourceMeetingType"], body["targetMeetingType"]) == ("All", "Current")
    migrate = [m for m in body["value"] if m["classification"] == "migrate"]
    assert migrate, "an ordinary user has meetings to migrate"
    assert all(m["oldBlock"] and m["newBlock"] and m["oldJoinUrl"] for m in migrate)
    async with api.post(f"{BASE}/migrations/{ALICE[1]}/preview", json={}) as r:
        assert r.status == 200  # an empty object is as good as no body
        assert (await r.json())["value"] == body["value"]
    assert await store.status(TENANT) == []  # records nothing


async def test_configuration_and_dial_in_settings(api: aiohttp.ClientSession, store: Store) -> None:
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


async def test_mms_off_holds_a_start_and_on_runs_it(
    api: aiohttp.ClientSession, store: Store
) -> None:
    async with api.patch(BASE + "/configuration", json={"meetingMigrationEnabled": False}) as r:
        assert r.status == 200
    async with api.post(BASE + "/migrations", json={"identity": CAROL[0]}) as r:
        assert r.status == 202
    (record,) = await store.status(TENANT, identity=CAROL[0])
    assert record.state is MigrationState.PENDING
    async with api.patch(BASE + "/configuration", json={"meetingMigrationEnabled": True}) as r:
        assert r.status == 200
    record = await wait_state(store, CAROL[0], MigrationState.SUCCEEDED, MigrationState.FAILED)
    assert record.state is MigrationState.SUCCEEDED, record.last_message


async def test_triggers_post_and_list_with_fate(
    api: aiohttp.ClientSession, store: Store, clock: SimulatedClock
) -> None:
    body = {
        "type": "bridgeChanged",
        "identity": BOB[1],
        "conferencing": {"conferenceId": "123456", "tollNumbers": ["+1 206 555 0100"]},
    }
    async with api.post(BASE + "/triggers", json=body) as r:
        assert r.status == 202
        trigger_id = (await r.json())["triggerId"]
    received = clock.now()
    clock.advance(300)
    async with api.post(BASE + "/triggers", json={"type": "tenantMeetingUrlUpdated"}) as r:
        assert r.status == 202
    unknown = {"type": "bridgeChanged", "identity": "nobody@x.example"}
    async with api.post(BASE + "/triggers", json=unknown) as r:
        assert r.status == 202  # accepted for any identity, resolved later

    async def decided() -> list[dict[str, Any]] | None:
        async with api.get(BASE + "/triggers") as resp:
            listed: list[dict[str, Any]] = (await resp.json())["value"]
        return None if any(t["fate"] == "pending" for t in listed) else listed

    listed = await eventually(decided, "every trigger decided")
    assert [(t["type"], t["fate"], t["reason"]) for t in listed] == [
        ("bridgeChanged", "migrated", None),
        ("tenantMeetingUrlUpdated", "ignored", "tenantScope"),
        ("bridgeChanged", "ignored", "userNotFound"),
    ]
    assert listed[0]["triggerId"] == trigger_id
    assert listed[0]["correlationId"]
    assert listed[0]["conferencing"]["conferenceId"] == "123456"
    assert "2026-03-01T09:00:00.000Z" < listed[0]["receivedAt"] <= format_rfc3339(received)
    async with api.get(BASE + "/triggers", params={"identity": BOB[1]}) as r:
        assert [t["triggerId"] for t in (await r.json())["value"]] == [trigger_id]
    async with api.get(BASE + "/triggers", params={"since": listed[1]["receivedAt"]}) as r:
        assert [t["type"] for t in (await r.json())["value"]] == [
            "tenantMeetingUrlUpdated",
            "bridgeChanged",
        ]
    async with api.get(BASE + "/triggers", params={"identity": "nobody@x.example"}) as r:
        assert [t["reason"] for t in (await r.json())["value"]] == ["userNotFound"]
    async with api.get(BASE + "/triggers", params={"identity": "none@x.example"}) as r:
        assert (r.status, await r.json()) == (200, {"value": []})


async def test_a_draining_engine_answers_503_and_records_nothing(
    api: aiohttp.ClientSession, service: Engine, store: Store, db_path: Path
) -> None:
    await service.shutdown()
    before = snapshot(db_path)
    for method, path, body in [
        ("POST", BASE + "/migrations", {"identity": CAROL[0]}),
        ("POST", BASE + "/triggers", {"type": "bridgeChanged", "identity": CAROL[0]}),
        ("PATCH", BASE + "/configuration", {"meetingMigrationEnabled": False}),
        ("POST", f"{BASE}/migrations/{CAROL[0]}/preview", None),
    ]:
        async with api.request(method, path, json=body) as r:
            assert r.status == 503, path
            assert (await r.json())["error"]["code"] == "serviceUnavailable"
    assert snapshot(db_path) == before
    async with api.get(BASE + "/migrations/summary") as r:
        assert r.status == 200  # reads come from the store, which is still open
