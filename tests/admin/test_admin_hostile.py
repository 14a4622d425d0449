"""Hostile and malformed input, route by route: the right status, a clear message, no change.

The table runs against one daemon stack for the module: the simulator, the real
engine, the real listeners and a seeded Store (Alice Succeeded, Bob Pending).
The whole database is compared before and after each case (nothing is
half-applied), and the simulator's counters too (a refused request reaches no
mailbox and creates nothing in Graph). Every answer — status and body — is also
validated against the OpenAPI document (``openapi_document()``), so each refusal
the API can give is documented. The last test drains the engine and checks the
503 of every route that needs it (it must stay last: the stack is per module).
"""

from __future__ import annotations

import shutil
import tempfile
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp
import pytest
import pytest_asyncio
from admin_testkit import (
    ALICE,
    GHOST,
    TENANT,
    new_ids,
    running_engine,
    seed,
    sim_config,
    snapshot,
    wait_until_idle,
)
from schema_check import response_errors

from mmsd.admin import start_admin_listeners
from mmsd.admin.openapi import openapi_document
from mmsd.config import Config
from mmsd.engine.service import Engine
from mmsd.sim.server import Simulator
from mmsd.store import Store

pytestmark = pytest.mark.asyncio(loop_scope="module")

B = f"/v1/tenants/{TENANT}"
X = "/v1/tenants/fabrikam"
BIG = b'{"identity": "' + b"a" * (64 * 1024) + b'"}'
JSON_CT = {"Content-Type": "application/json"}


@dataclass(frozen=True)
class Case:
    """One hostile request and what it must get."""

    name: str
    method: str
    path: str
    status: int
    code: str
    says: str  # a fragment the message must contain
    body: bytes | None = None
    headers: dict[str, str] = field(default_factory=lambda: dict(JSON_CT))
    params: dict[str, str] | None = None


def _j(text: str) -> bytes:
    return text.encode()


_BODY_ROUTES = [
    ("POST", B + "/migrations"),
    ("PATCH", B + "/configuration"),
    ("PATCH", B + "/dialInConferencingSettings"),
    ("POST", B + "/triggers"),
    ("POST", f"{B}/migrations/{ALICE[0]}/preview"),
]

CASES: list[Case] = [
    # unknown tenant, every route
    *[
        Case(f"tenant-{m}-{p}", m, X + p, 404, "tenantNotFound", "tenant", body)
        for m, p, body in [
            ("GET", "/migrations/summary", None),
            ("GET", "/migrations", None),
            ("POST", "/migrations", b'{"identity": "x"}'),
            ("GET", f"/migrations/{ALICE[0]}/history", None),
            ("POST", f"/migrations/{ALICE[0]}/preview", None),
            ("GET", "/configuration", None),
            ("PATCH", "/configuration", b'{"meetingMigrationEnabled": false}'),
            ("GET", "/dialInConferencingSettings", None),
            ("PATCH", "/dialInConferencingSettings", b'{"automaticallyReplaceAcpProvider": true}'),
            ("POST", "/triggers", b'{"type": "bridgeChanged", "identity": "x"}'),
            ("GET", "/triggers", None),
        ]
    ],
    # malformed JSON, oversized and non-JSON bodies, every body route
    *[
        c
        for m, p in _BODY_ROUTES
        for c in (
            Case(f"malformed-{m}-{p}", m, p, 400, "malformedJson", "malformed JSON", b'{"a": '),
            Case(f"dup-{m}-{p}", m, p, 400, "malformedJson", "duplicate", b'{"a": 1, "a": 2}'),
            Case(f"nan-{m}-{p}", m, p, 400, "malformedJson", "NaN", b'{"a": NaN}'),
            Case(f"latin1-{m}-{p}", m, p, 400, "malformedJson", "UTF-8", b'{"a": "\xe9"}'),
            Case(f"big-{m}-{p}", m, p, 413, "payloadTooLarge", "65536", BIG),
            Case(
                f"text-{m}-{p}",
                m,
                p,
                415,
                "unsupportedMediaType",
                "application/json",
                b"identity=x",
                {"Content-Type": "text/plain"},
            ),
            Case(
                f"form-{m}-{p}",
                m,
                p,
                415,
                "unsupportedMediaType",
                "application/json",
                b"identity=x",
                {"Content-Type": "application/x-www-form-urlencoded"},
            ),
        )
    ],
    Case("array-body", "POST", B + "/migrations", 400, "invalidRequest", "JSON object", b"[]"),
    Case("null-body", "POST", B + "/triggers", 400, "invalidRequest", "JSON object", b"null"),
    Case("empty-body", "POST", B + "/migrations", 400, "invalidRequest", "required", b""),
    Case("deep", "POST", B + "/triggers", 400, "malformedJson", "nested", b"[" * 50_000),
    # POST /migrations
    Case(
        "start-type",
        "POST",
        B + "/migrations",
        400,
        "invalidRequest",
        "'identity' must be a string",
        _j('{"identity": 5}'),
    ),
    Case(
        "start-missing",
        "POST",
        B + "/migrations",
        400,
        "invalidRequest",
        "'identity' is required",
        _j('{"sourceMeetingType": "All"}'),
    ),
    Case(
        "start-enum",
        "POST",
        B + "/migrations",
        400,
        "invalidRequest",
        "'sourceMeetingType' must be one of",
        _j('{"identity": "x", "sourceMeetingType": "Skype"}'),
    ),
    Case(
        "start-target",
        "POST",
        B + "/migrations",
        400,
        "invalidRequest",
        "'targetMeetingType' must be one of",
        _j('{"identity": "x", "targetMeetingType": "teams"}'),
    ),
    Case(
        "start-unknown",
        "POST",
        B + "/migrations",
        400,
        "invalidRequest",
        "unknown field 'force'",
        _j('{"identity": "x", "force": true}'),
    ),
    Case(
        "start-space",
        "POST",
        B + "/migrations",
        400,
        "invalidRequest",
        "'identity'",
        _j('{"identity": "a b"}'),
    ),
    Case(
        "start-nouser",
        "POST",
        B + "/migrations",
        404,
        "userNotFound",
        "Graph",
        _j(f'{{"identity": "{GHOST}"}}'),
    ),
    Case(
        "start-query",
        "POST",
        B + "/migrations",
        400,
        "invalidRequest",
        "unknown query parameter 'dry'",
        _j('{"identity": "x"}'),
        params={"dry": "1"},
    ),
    # GET /migrations
    Case(
        "status-state",
        "GET",
        B + "/migrations",
        400,
        "invalidRequest",
        "'state' must be one of",
        params={"state": "Done"},
    ),
    Case(
        "status-time",
        "GET",
        B + "/migrations",
        400,
        "invalidRequest",
        "'startTime' must be an RFC 3339",
        params={"startTime": "yesterday"},
    ),
    Case(
        "status-naive",
        "GET",
        B + "/migrations",
        400,
        "invalidRequest",
        "'endTime' must be an RFC 3339",
        params={"endTime": "2026-03-01T09:00:00"},
    ),
    Case(
        "status-date",
        "GET",
        B + "/migrations",
        400,
        "invalidRequest",
        "not a valid date",
        params={"endTime": "2026-02-30T09:00:00Z"},
    ),
    Case(
        "status-reversed",
        "GET",
        B + "/migrations",
        400,
        "invalidTimeRange",
        "'startTime' is after 'endTime'",
        params={"startTime": "2026-03-02T00:00:00Z", "endTime": "2026-03-01T00:00:00Z"},
    ),
    Case(
        "status-unknown-param",
        "GET",
        B + "/migrations",
        400,
        "invalidRequest",
        "unknown query parameter 'user'",
        params={"user": "x"},
    ),
    Case(
        "status-nouser",
        "GET",
        B + "/migrations",
        404,
        "userNotFound",
        "no migration record",
        params={"identity": GHOST},
    ),
    Case(
        "summary-param",
        "GET",
        B + "/migrations/summary",
        400,
        "invalidRequest",
        "unknown query parameter",
        params={"state": "Pending"},
    ),
    # history
    Case(
        "history-nouser",
        "GET",
        f"{B}/migrations/{GHOST}/history",
        404,
        "userNotFound",
        "no migration record",
    ),
    Case(
        "history-corr",
        "GET",
        f"{B}/migrations/{ALICE[0]}/history",
        404,
        "migrationNotFound",
        "no migration with that ID",
        params={"correlationId": "corr-9999"},
    ),
    Case(
        "history-param",
        "GET",
        f"{B}/migrations/{ALICE[0]}/history",
        400,
        "invalidRequest",
        "unknown query parameter",
        params={"since": "x"},
    ),
    Case(
        "history-space", "GET", f"{B}/migrations/a%20b/history", 400, "invalidRequest", "'identity'"
    ),
    # preview
    Case(
        "preview-field",
        "POST",
        f"{B}/migrations/{ALICE[0]}/preview",
        400,
        "invalidRequest",
        "unknown field 'dryRun'",
        _j('{"dryRun": true}'),
    ),
    Case(
        "preview-array",
        "POST",
        f"{B}/migrations/{ALICE[0]}/preview",
        400,
        "invalidRequest",
        "JSON object",
        _j("[1]"),
    ),
    Case(
        "preview-nouser",
        "POST",
        f"{B}/migrations/{GHOST}/preview",
        404,
        "userNotFound",
        "Graph",
    ),
    # configuration and dial-in settings
    Case(
        "config-type",
        "PATCH",
        B + "/configuration",
        400,
        "invalidRequest",
        "'meetingMigrationEnabled' must be a boolean",
        _j('{"meetingMigrationEnabled": "false"}'),
    ),
    Case(
        "config-unknown",
        "PATCH",
        B + "/configuration",
        400,
        "invalidRequest",
        "unknown field 'enabled'",
        _j('{"meetingMigrationEnabled": true, "enabled": true}'),
    ),
    Case(
        "config-empty",
        "PATCH",
        B + "/configuration",
        400,
        "invalidRequest",
        "at least one",
        _j("{}"),
    ),
    Case(
        "config-array",
        "PATCH",
        B + "/configuration",
        400,
        "invalidRequest",
        "JSON object",
        _j("[true]"),
    ),
    Case(
        "dialin-type",
        "PATCH",
        B + "/dialInConferencingSettings",
        400,
        "invalidRequest",
        "'automaticallyMigrateUserMeetings' must be a boolean",
        _j('{"automaticallyMigrateUserMeetings": 1}'),
    ),
    Case(
        "dialin-half",
        "PATCH",
        B + "/dialInConferencingSettings",
        400,
        "invalidRequest",
        "'automaticallyReplaceAcpProvider' must be a boolean",
        _j('{"automaticallyMigrateUserMeetings": false, "automaticallyReplaceAcpProvider": null}'),
    ),
    Case(
        "dialin-unknown",
        "PATCH",
        B + "/dialInConferencingSettings",
        400,
        "invalidRequest",
        "unknown field 'meetingMigrationEnabled'",
        _j('{"meetingMigrationEnabled": false}'),
    ),
    # triggers
    Case(
        "trigger-type",
        "POST",
        B + "/triggers",
        400,
        "invalidRequest",
        "'type' must be one of",
        _j('{"type": "userMoved", "identity": "x"}'),
    ),
    Case(
        "trigger-notype",
        "POST",
        B + "/triggers",
        400,
        "invalidRequest",
        "'type' is required",
        _j('{"identity": "x"}'),
    ),
    Case(
        "trigger-identity",
        "POST",
        B + "/triggers",
        400,
        "invalidRequest",
        "'identity' is required",
        _j('{"type": "bridgeChanged"}'),
    ),
    Case(
        "trigger-identity-type",
        "POST",
        B + "/triggers",
        400,
        "invalidRequest",
        "'identity' must be a string",
        _j('{"type": "bridgeChanged", "identity": ["x"]}'),
    ),
    Case(
        "trigger-mode",
        "POST",
        B + "/triggers",
        400,
        "invalidRequest",
        "'mode' must be one of",
        _j(
            '{"type": "teamsUpgradePolicyGranted", "identity": "x", "mode": "Teams", "scope": "user"}'
        ),
    ),
    Case(
        "trigger-scope",
        "POST",
        B + "/triggers",
        400,
        "invalidRequest",
        "'scope' is required",
        _j('{"type": "teamsUpgradePolicyGranted", "identity": "x", "mode": "TeamsOnly"}'),
    ),
    Case(
        "trigger-unknown",
        "POST",
        B + "/triggers",
        400,
        "invalidRequest",
        "unknown field 'extra'",
        _j('{"type": "bridgeChanged", "identity": "x", "extra": 1}'),
    ),
    Case(
        "trigger-mode-on-other",
        "POST",
        B + "/triggers",
        400,
        "invalidRequest",
        "unknown field 'mode'",
        _j('{"type": "bridgeChanged", "identity": "x", "mode": "TeamsOnly"}'),
    ),
    Case(
        "trigger-conf-field",
        "POST",
        B + "/triggers",
        400,
        "invalidRequest",
        "unknown field 'conferencing.pin'",
        _j('{"type": "bridgeChanged", "identity": "x", "conferencing": {"pin": "1"}}'),
    ),
    Case(
        "trigger-conf-type",
        "POST",
        B + "/triggers",
        400,
        "invalidRequest",
        "'conferencing.conferenceId' must be a string of digits",
        _j(
            '{"type": "conferenceIdReset", "identity": "x", "conferencing": {"conferenceId": "12a"}}'
        ),
    ),
    Case(
        "trigger-conf-provider",
        "POST",
        B + "/triggers",
        400,
        "invalidRequest",
        "'conferencing.audioConferencingProvider' must be one of",
        _j(
            '{"type": "bridgeChanged", "identity": "x", "conferencing": {"audioConferencingProvider": "acme"}}'
        ),
    ),
    Case(
        "triggers-since",
        "GET",
        B + "/triggers",
        400,
        "invalidRequest",
        "'since' must be an RFC 3339",
        params={"since": "1 hour ago"},
    ),
    Case(
        "triggers-param",
        "GET",
        B + "/triggers",
        400,
        "invalidRequest",
        "unknown query parameter 'fate'",
        params={"fate": "ignored"},
    ),
    Case(
        "config-get-param",
        "GET",
        B + "/configuration",
        400,
        "invalidRequest",
        "unknown query parameter 'tenant'",
        params={"tenant": "x"},
    ),
    Case(
        "dialin-get-param",
        "GET",
        B + "/dialInConferencingSettings",
        400,
        "invalidRequest",
        "unknown query parameter 'all'",
        params={"all": "1"},
    ),
    # routing
    Case("no-route", "GET", "/v1/nothing", 404, "notFound", "no such route"),
    Case("no-method", "DELETE", B + "/configuration", 405, "methodNotAllowed", "not allowed"),
    Case("tenants-param", "GET", "/v1/tenants", 400, "invalidRequest", "unknown query parameter"),
]
# the tenants route takes no query parameters
CASES[-1] = Case(
    "tenants-param",
    "GET",
    "/v1/tenants",
    400,
    "invalidRequest",
    "unknown query parameter",
    params={"all": "1"},
)


DOC = openapi_document()


async def test_every_case_is_documented_with_its_status() -> None:
    """The table's statuses are the document's: each one listed for its operation."""
    for case in CASES:
        assert response_errors(DOC, case.method, case.path, case.status, _error_body()) == [], case
    # and the check can fail: an undocumented status, a wrong body, a wrong unmatched status
    assert response_errors(DOC, "GET", "/v1/tenants", 503, _error_body())
    assert response_errors(DOC, "GET", B + "/configuration", 400, {"error": {"code": "x"}})
    assert response_errors(DOC, "DELETE", B + "/configuration", 404, _error_body())
    assert response_errors(DOC, "GET", "/v1/nothing", 405, _error_body())


def _error_body() -> dict[str, Any]:
    return {"error": {"code": "x", "message": "y"}}


@dataclass
class Stack:
    """The module's daemon: a client on its Unix socket, its store and its simulator."""

    api: aiohttp.ClientSession
    store: Store
    db_path: Path
    sim: Simulator
    engine: Engine


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def stack(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[Stack]:
    work = tmp_path_factory.mktemp("hostile")
    short = Path(tempfile.mkdtemp(prefix="mmsd-h-", dir="/tmp"))
    db_path = work / "state" / "mmsd.sqlite3"
    try:
        async with Simulator(sim_config()) as sim:
            ids = new_ids()
            store = await Store.open(db_path, clock=sim.clock, new_id=lambda: next(ids))
            try:
                await seed(store, sim.clock)
                async with running_engine(sim, store, work) as engine:
                    config = Config(state_dir=short, admin_socket=short / "admin.sock")
                    listeners = await start_admin_listeners(
                        config, engine, store, clock=sim.clock, readiness=lambda: True
                    )
                    connector = aiohttp.UnixConnector(path=str(config.admin_socket))
                    try:
                        async with aiohttp.ClientSession(
                            base_url="http://localhost", connector=connector
                        ) as api:
                            await wait_until_idle(store)
                            yield Stack(api, store, db_path, sim, engine)
                    finally:
                        await listeners.close()
            finally:
                await store.close()
    finally:
        shutil.rmtree(short, ignore_errors=True)


def _sim_counters(sim: Simulator) -> tuple[Any, ...]:
    counters = sim.counters
    return (dict(counters.patches), dict(counters.messages), counters.online_meetings_created)


@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
async def test_hostile_input_is_refused_and_changes_nothing(case: Case, stack: Stack) -> None:
    before = snapshot(stack.db_path)
    graph_before = _sim_counters(stack.sim)
    kwargs: dict[str, Any] = {"headers": case.headers, "params": case.params}
    if case.body is not None:
        kwargs["data"] = case.body
    async with stack.api.request(case.method, case.path, **kwargs) as r:
        status, body = r.status, await r.json()
    assert status == case.status, body
    assert response_errors(DOC, case.method, case.path, status, body) == []
    assert set(body) == {"error"} and set(body["error"]) == {"code", "message"}
    assert body["error"]["code"] == case.code
    assert case.says in body["error"]["message"]
    assert GHOST not in body["error"]["message"]  # identities not echoed
    assert ALICE[1] not in body["error"]["message"]
    assert snapshot(stack.db_path) == before
    assert _sim_counters(stack.sim) == graph_before


async def test_chunked_oversized_body_is_413(stack: Stack) -> None:
    async def chunks() -> Any:
        for _ in range(80):
            yield b"x" * 1024

    before = snapshot(stack.db_path)
    async with stack.api.post(B + "/triggers", data=chunks(), headers=JSON_CT) as r:
        assert r.status == 413
        body = await r.json()
    assert body["error"]["code"] == "payloadTooLarge"
    assert response_errors(DOC, "POST", B + "/triggers", 413, body) == []
    assert snapshot(stack.db_path) == before


async def test_body_without_content_type_is_415(stack: Stack) -> None:
    async with stack.api.post(
        B + "/triggers",
        data=b'{"type": "bridgeChanged", "identity": "x"}',
        skip_auto_headers=["Content-Type"],
    ) as r:
        assert r.status == 415
        assert response_errors(DOC, "POST", B + "/triggers", 415, await r.json()) == []


async def test_json_with_charset_and_vendor_types_is_accepted(stack: Stack) -> None:
    for content_type in ("application/json; charset=utf-8", "application/merge-patch+json"):
        async with stack.api.patch(
            B + "/configuration",
            data=b'{"meetingMigrationEnabled": true}',
            headers={"Content-Type": content_type},
        ) as r:
            assert r.status == 200, content_type


DRAINING: list[tuple[str, str, bytes | None]] = [
    ("POST", B + "/migrations", b'{"identity": "x"}'),
    ("POST", f"{B}/migrations/{ALICE[0]}/preview", None),
    ("GET", B + "/configuration", None),
    ("PATCH", B + "/configuration", b'{"meetingMigrationEnabled": false}'),
    ("GET", B + "/dialInConferencingSettings", None),
    ("PATCH", B + "/dialInConferencingSettings", b'{"automaticallyReplaceAcpProvider": true}'),
    ("POST", B + "/triggers", b'{"type": "bridgeChanged", "identity": "x"}'),
]


async def test_zz_a_draining_engine_answers_503_as_documented(stack: Stack) -> None:
    """Last in the module: drains the engine, then every route that needs it says 503."""
    await stack.engine.shutdown()
    before = snapshot(stack.db_path)
    graph_before = _sim_counters(stack.sim)
    for method, path, body in DRAINING:
        async with stack.api.request(method, path, data=body, headers=JSON_CT) as r:
            status, answer = r.status, await r.json()
        assert status == 503, (method, path, answer)
        assert answer["error"]["code"] == "serviceUnavailable"
        assert "shutting down" in answer["error"]["message"]
        assert response_errors(DOC, method, path, status, answer) == []
    assert snapshot(stack.db_path) == before
    assert _sim_counters(stack.sim) == graph_before
    async with stack.api.get(B + "/migrations/summary") as r:
        assert r.status == 200  # reads come from the store, which stays open
