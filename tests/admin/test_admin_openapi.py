"""The OpenAPI document stays true: every operation is called and every answer validated."""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from typing import Any

import aiohttp
from admin_testkit import ALICE, BOB, CAROL, T0, TENANT
from conftest import Daemon
from schema_check import errors

from mmsd.admin.openapi import openapi_document
from mmsd.clock import SimulatedClock

T = "/v1/tenants/{tenant}"


@dataclass(frozen=True)
class Call:
    """One request against a documented operation."""

    template: str
    method: str
    path: str
    body: Any = None
    params: dict[str, str] | None = None


def _calls(ids: dict[str, str]) -> list[Call]:
    b = f"/v1/tenants/{TENANT}"
    return [
        Call("/healthz", "get", "/healthz"),
        Call("/readyz", "get", "/readyz"),
        Call("/v1/openapi.json", "get", "/v1/openapi.json"),
        Call("/v1/tenants", "get", "/v1/tenants"),
        Call(T + "/migrations/summary", "get", b + "/migrations/summary"),
        Call(T + "/migrations/summary", "get", "/v1/tenants/nope/migrations/summary"),
        Call(T + "/migrations", "get", b + "/migrations"),
        Call(T + "/migrations", "get", b + "/migrations", params={"identity": ALICE[1]}),
        Call(T + "/migrations", "get", b + "/migrations", params={"state": "x"}),
        Call(T + "/migrations", "get", b + "/migrations", params={"identity": "ghost"}),
        Call(T + "/migrations", "post", b + "/migrations", {"identity": CAROL[1]}),
        Call(
            T + "/migrations",
            "post",
            b + "/migrations",
            {"identity": BOB[0], "sourceMeetingType": "SfB", "targetMeetingType": "Teams"},
        ),
        Call(T + "/migrations", "post", b + "/migrations", {"identity": "ghost"}),
        Call(T + "/migrations", "post", b + "/migrations", {"identity": 1}),
        Call(T + "/migrations", "post", b + "/migrations", "x" * 70_000),
        Call(T + "/migrations/{identity}/history", "get", f"{b}/migrations/{ALICE[0]}/history"),
        Call(
            T + "/migrations/{identity}/history",
            "get",
            f"{b}/migrations/{ALICE[0]}/history",
            params={"correlationId": ids["alice"]},
        ),
        Call(T + "/migrations/{identity}/history", "get", f"{b}/migrations/ghost/history"),
        Call(T + "/migrations/{identity}/preview", "post", f"{b}/migrations/{ALICE[1]}/preview"),
        Call(T + "/migrations/{identity}/preview", "post", f"{b}/migrations/ghost/preview"),
        Call(T + "/configuration", "get", b + "/configuration"),
        Call(
            T + "/configuration", "patch", b + "/configuration", {"meetingMigrationEnabled": False}
        ),
        Call(T + "/configuration", "patch", b + "/configuration", {}),
        Call(T + "/dialInConferencingSettings", "get", b + "/dialInConferencingSettings"),
        Call(
            T + "/dialInConferencingSettings",
            "patch",
            b + "/dialInConferencingSettings",
            {"automaticallyMigrateUserMeetings": False, "automaticallyReplaceAcpProvider": True},
        ),
        Call(T + "/dialInConferencingSettings", "patch", b + "/dialInConferencingSettings", []),
        Call(
            T + "/triggers",
            "post",
            b + "/triggers",
            {
                "type": "teamsUpgradePolicyGranted",
                "identity": BOB[1],
                "mode": "TeamsOnly",
                "scope": "user",
                "conferencing": {
                    "audioConferencingProvider": "microsoft",
                    "conferenceId": "4711",
                    "tollNumbers": ["+1 425 555 0100"],
                    "meetUrlBase": "https://meet.contoso.example/bob",
                    "dialInEnabled": True,
                },
            },
        ),
        Call(T + "/triggers", "post", b + "/triggers", {"type": "tenantMeetingUrlUpdated"}),
        Call(T + "/triggers", "post", b + "/triggers", {"type": "nope"}),
        Call(T + "/triggers", "get", b + "/triggers"),
        Call(T + "/triggers", "get", b + "/triggers", params={"since": "bad"}),
    ]


async def test_every_operation_answers_as_documented(
    seeded: dict[str, str], api: aiohttp.ClientSession, daemon: Daemon
) -> None:
    ids = seeded
    doc = openapi_document()
    seen: set[tuple[str, str]] = set()
    statuses: set[tuple[str, str, int]] = set()
    for call in _calls(ids):
        operation = doc["paths"][call.template][call.method]
        good_request = True
        if isinstance(call.body, dict) and "requestBody" in operation:
            schema = operation["requestBody"]["content"]["application/json"]["schema"]
            good_request = errors(schema, call.body, doc) == []
        async with api.request(
            call.method.upper(), call.path, json=call.body, params=call.params
        ) as r:
            status, body = r.status, await r.json()
        documented = operation["responses"]
        assert str(status) in documented, (call, status, body)
        content = documented[str(status)]["content"]["application/json"]
        if "schema" in content:
            assert errors(content["schema"], body, doc) == [], (call, body)
        if status < 400:
            assert good_request, f"{call}: accepted a body the schema refuses"
        seen.add((call.template, call.method))
        statuses.add((call.template, call.method, status))
    documented_ops = {(p, m) for p, ops in doc["paths"].items() for m in ops}
    assert seen == documented_ops
    # every success status documented for an operation was seen at least once
    for path, ops in doc["paths"].items():
        for method, op in ops.items():
            for code in op["responses"]:
                if code.startswith("2") and not (path == "/readyz" and code == "503"):
                    assert (path, method, int(code)) in statuses, (path, method, code)


def test_the_document_lists_exactly_the_app_routes(daemon: Daemon) -> None:
    from mmsd.admin.api import make_admin_app

    app = make_admin_app(
        None,  # type: ignore[arg-type]
        None,  # type: ignore[arg-type]
        clock=SimulatedClock(T0),
        readiness=lambda: True,
    )
    routes = {
        (r.resource.canonical, r.method.lower())
        for r in app.router.routes()
        if r.resource is not None and r.method != "HEAD"
    }
    doc = openapi_document()
    assert routes == {(p, m) for p, ops in doc["paths"].items() for m in ops}


async def test_readyz_503_matches_its_schema(api: aiohttp.ClientSession, daemon: Daemon) -> None:
    daemon.ready[0] = False
    doc = openapi_document()
    async with api.get("/readyz") as r:
        assert r.status == 503
        schema = doc["paths"]["/readyz"]["get"]["responses"]["503"]["content"]["application/json"]
        assert errors(schema["schema"], await r.json(), doc) == []


def test_every_ref_resolves_and_every_schema_is_used() -> None:
    doc = openapi_document()
    assert doc["openapi"] == "3.1.0"
    text = json.dumps(doc)
    refs = set(re.findall(r'"#/components/schemas/([A-Za-z]+)"', text))
    assert refs == set(doc["components"]["schemas"])
