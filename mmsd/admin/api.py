"""The admin HTTP API of SPEC section 5 as an aiohttp application.

Every request is validated in full before the engine is called, so a refused
request changes nothing. Reads (status, summary, history, triggers) go
straight to the store, which is the truth; writes go through the
:class:`~mmsd.engine.api.MigrationService`. Errors are always
``{"error": {"code", "message"}}``; messages name the offending field and
never echo identities (a UPN is an e-mail address).
"""

from __future__ import annotations

import asyncio
import hmac
import json
import logging
import re
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import replace
from datetime import datetime, timedelta
from typing import Any, NoReturn

from aiohttp import web

from mmsd.admin.openapi import openapi_document
from mmsd.clock import Clock, format_rfc3339, parse_rfc3339
from mmsd.domain.model import JSON, MigrationState, TenantSwitches
from mmsd.domain.triggers import ValidationError, parse_migration_request, parse_trigger
from mmsd.engine.api import EngineError, MigrationService, Preview
from mmsd.store import Store

log = logging.getLogger("mmsd.admin")

MAX_BODY_BYTES = 64 * 1024
"""Request bodies above this get 413 (SPEC section 5)."""

SERVICE_KEY = web.AppKey("service", MigrationService)
STORE_KEY = web.AppKey("store", Store)
CLOCK_KEY = web.AppKey("clock", Clock)
READINESS_KEY: web.AppKey[Callable[[], bool]] = web.AppKey("readiness")
TOKEN_KEY = web.AppKey("token", bytes)
OPENAPI_KEY = web.AppKey("openapi", bytes)

_UNAUTHENTICATED_PATHS = frozenset({"/healthz", "/readyz"})
_IDENTITY = re.compile(r"[^\s\x00-\x1f\x7f]{1,320}")
_RFC3339 = re.compile(
    r"[0-9]{4}-[0-9]{2}-[0-9]{2}[Tt][0-9]{2}:[0-9]{2}:[0-9]{2}(\.[0-9]{1,9})?([Zz]|[+-][0-9]{2}:[0-9]{2})"
)
_LAST_MICROS = timedelta(microseconds=999)
_BEARER = re.compile(r"Bearer +(\S+)", re.IGNORECASE)

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


class SwitchLocks:
    """One lock per tenant around the read-merge-write of a switches PATCH.

    A PATCH names only some switches; the others are read and written back.
    Without the lock two PATCHes of different switches (configuration and
    dial-in settings, say) can interleave and the later write restores the
    field the earlier one changed. Both listeners must share one instance.
    """

    def __init__(self) -> None:
        """No tenant has a lock until its first PATCH."""
        self._locks: dict[str, asyncio.Lock] = {}

    def __call__(self, tenant: str) -> asyncio.Lock:
        """The tenant's lock (created on first use)."""
        lock = self._locks.get(tenant)
        if lock is None:
            lock = self._locks[tenant] = asyncio.Lock()
        return lock


SWITCH_LOCKS_KEY = web.AppKey("switch_locks", SwitchLocks)


class ApiError(Exception):
    """A request the API refuses, rendered as ``{"error": {"code", "message"}}``."""

    def __init__(self, status: int, code: str, message: str) -> None:
        """Remember the HTTP status, the machine code and the human message."""
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message


def error_response(status: int, code: str, message: str) -> web.Response:
    """The JSON error body every refusal carries."""
    headers = {"WWW-Authenticate": 'Bearer realm="mmsd"'} if status == 401 else None
    return web.json_response(
        {"error": {"code": code, "message": message}}, status=status, headers=headers
    )


def _invalid(message: str) -> NoReturn:
    raise ApiError(400, "invalidRequest", message)


# ------------------------------------------------------------------ middlewares


@web.middleware
async def _errors(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Turn every refusal (ours, the engine's, aiohttp's routing) into a JSON error."""
    try:
        response = await handler(request)
    except ApiError as exc:
        response = error_response(exc.status, exc.code, exc.message)
    except EngineError as exc:
        response = error_response(exc.status, exc.code, str(exc) or exc.code)
    except web.HTTPRequestEntityTooLarge:
        response = error_response(
            413, "payloadTooLarge", f"the request body exceeds {MAX_BODY_BYTES} bytes"
        )
    except web.HTTPMethodNotAllowed as exc:
        allowed = ", ".join(sorted(exc.allowed_methods))
        response = error_response(
            405,
            "methodNotAllowed",
            f"method {request.method} not allowed here (allowed: {allowed})",
        )
        response.headers["Allow"] = ",".join(sorted(exc.allowed_methods))
    except web.HTTPNotFound:
        response = error_response(404, "notFound", "no such route; see /v1/openapi.json")
    except web.HTTPException as exc:
        response = error_response(exc.status, "httpError", exc.reason)
    except Exception:
        log.exception("admin API handler failed on %s %s", request.method, _route_name(request))
        response = error_response(500, "internalError", "internal error; see the daemon's log")
    log.debug("admin %s %s -> %d", request.method, _route_name(request), response.status)
    return response


def _route_name(request: web.Request) -> str:
    """The route's pattern (never the concrete path, which may hold a UPN)."""
    info = request.match_info.route.resource
    return info.canonical if info is not None else "(unmatched)"


@web.middleware
async def _bearer(request: web.Request, handler: Handler) -> web.StreamResponse:
    """On the TCP listener: a bearer token, compared in constant time, for all but health."""
    token = request.app.get(TOKEN_KEY)
    if token is not None and request.path not in _UNAUTHENTICATED_PATHS:
        match = _BEARER.fullmatch(request.headers.get("Authorization", "").strip())
        if match is None:
            raise ApiError(401, "unauthorized", "a bearer token is required")
        if not hmac.compare_digest(match.group(1).encode("utf-8", "replace"), token):
            raise ApiError(401, "unauthorized", "the bearer token is not valid")
    return await handler(request)


# --------------------------------------------------------------------- parsing


def _reject_duplicates(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in pairs:
        if key in out:
            raise ApiError(400, "malformedJson", f"duplicate field '{key[:40]}' in the JSON body")
        out[key] = value
    return out


def _no_constant(name: str) -> NoReturn:
    raise ApiError(400, "malformedJson", f"{name} is not valid JSON")


def _is_json(content_type: str) -> bool:
    return content_type == "application/json" or (
        content_type.startswith("application/") and content_type.endswith("+json")
    )


async def read_json(request: web.Request, *, optional: bool = False) -> object:
    """The decoded JSON body: 413 when too large, 415 when not JSON, 400 when malformed.

    With ``optional``, an empty body is ``None``.
    """
    if request.content_length is not None and request.content_length > MAX_BODY_BYTES:
        raise ApiError(413, "payloadTooLarge", f"the request body exceeds {MAX_BODY_BYTES} bytes")
    raw = await request.read()  # the app's client_max_size caps chunked bodies too
    if optional and not raw:
        return None  # an empty POST, whatever content type the client put on it
    declared = "Content-Type" in request.headers
    if declared and not _is_json(request.content_type):
        raise ApiError(
            415, "unsupportedMediaType", "the request body must be sent as application/json"
        )
    if not raw.strip():
        raise ApiError(400, "invalidRequest", "a JSON object body is required")
    if not declared:
        raise ApiError(
            415, "unsupportedMediaType", "the request body must be sent as application/json"
        )
    try:
        text = raw.decode("utf-8")
        return json.loads(text, object_pairs_hook=_reject_duplicates, parse_constant=_no_constant)
    except UnicodeDecodeError:
        raise ApiError(400, "malformedJson", "the body is not UTF-8") from None
    except json.JSONDecodeError as exc:
        raise ApiError(
            400, "malformedJson", f"malformed JSON at line {exc.lineno} column {exc.colno}"
        ) from None
    except RecursionError:
        raise ApiError(400, "malformedJson", "the JSON body is nested too deeply") from None


def _query(request: web.Request, allowed: frozenset[str]) -> dict[str, str]:
    """The query parameters, each at most once, none unknown."""
    out: dict[str, str] = {}
    for key, value in request.query.items():
        if key not in allowed:
            names = ", ".join(sorted(allowed)) or "none"
            _invalid(f"unknown query parameter '{key[:40]}' (allowed: {names})")
        if key in out:
            _invalid(f"query parameter '{key}' given more than once")
        out[key] = value
    return out


def parse_time(text: str, field: str) -> datetime:
    """An RFC 3339 instant with its offset (``2026-03-01T09:00:00Z``), or a 400."""
    if not _RFC3339.fullmatch(text):
        _invalid(f"'{field}' must be an RFC 3339 time with an offset, e.g. 2026-03-01T09:00:00Z")
    try:
        return parse_rfc3339(text)
    except ValueError:
        _invalid(f"'{field}' is not a valid date and time")


def _identity(value: str, field: str = "identity") -> str:
    if not _IDENTITY.fullmatch(value):
        _invalid(f"'{field}' must be a user's object ID or UPN, without spaces")
    return value


def _enum_value(value: str, field: str, enum_type: type[MigrationState]) -> MigrationState:
    try:
        return enum_type(value)
    except ValueError:
        allowed = ", ".join(m.value for m in enum_type)
        _invalid(f"'{field}' must be one of {allowed}")


def _tenant(request: web.Request) -> str:
    tenant = request.match_info["tenant"]
    if tenant not in request.app[SERVICE_KEY].tenants:
        raise ApiError(404, "tenantNotFound", "no tenant of that name in the configuration")
    return tenant


def _validated(result: object) -> Any:
    if isinstance(result, ValidationError):
        _invalid(result.message)
    return result


def _switch_patch(body: object, keys: Mapping[str, str]) -> dict[str, bool]:
    """A PATCH body of booleans: camelCase keys mapped to TenantSwitches field names."""
    if not isinstance(body, dict):
        _invalid("the body must be a JSON object")
    unknown = sorted(set(body) - set(keys))
    if unknown:
        _invalid(f"unknown field '{unknown[0][:40]}' (allowed: {', '.join(sorted(keys))})")
    if not body:
        _invalid(f"the body must set at least one of: {', '.join(sorted(keys))}")
    changes: dict[str, bool] = {}
    for key, value in body.items():
        if not isinstance(value, bool):
            _invalid(f"'{key}' must be a boolean (true or false)")
        changes[keys[key]] = value
    return changes


def _collection(items: list[JSON]) -> web.Response:
    return web.json_response({"value": items})


# -------------------------------------------------------------------- handlers


async def healthz(request: web.Request) -> web.Response:
    """Liveness: the process answers; ``time`` is the daemon's clock (mmsctl watch uses it)."""
    now = request.app[CLOCK_KEY].now()
    return web.json_response({"status": "ok", "time": format_rfc3339(now)})


async def readyz(request: web.Request) -> web.Response:
    """Readiness: 200 once the engine has recovered and runs, 503 before and while draining."""
    ready = request.app[READINESS_KEY]()
    return web.json_response(
        {"status": "ready" if ready else "notReady"}, status=200 if ready else 503
    )


async def openapi(request: web.Request) -> web.Response:
    """The OpenAPI 3.1 description of this API."""
    return web.Response(body=request.app[OPENAPI_KEY], content_type="application/json")


async def list_tenants(request: web.Request) -> web.Response:
    """The configured tenants (mmsctl's default ``--tenant`` is the only one)."""
    _query(request, frozenset())
    return _collection([{"name": name} for name in request.app[SERVICE_KEY].tenants])


async def summary(request: web.Request) -> web.Response:
    """``Get-CsMeetingMigrationStatus -SummaryOnly``: users per state, all four states."""
    tenant = _tenant(request)
    _query(request, frozenset())
    counts = await request.app[STORE_KEY].summary(tenant)
    return _collection(
        [{"state": str(state), "userCount": counts.get(state, 0)} for state in MigrationState]
    )


async def list_migrations(request: web.Request) -> web.Response:
    """``Get-CsMeetingMigrationStatus``: each user's latest record, filtered."""
    tenant = _tenant(request)
    query = _query(request, frozenset({"identity", "state", "startTime", "endTime"}))
    identity = _identity(query["identity"]) if "identity" in query else None
    state = _enum_value(query["state"], "state", MigrationState) if "state" in query else None
    start = parse_time(query["startTime"], "startTime") if "startTime" in query else None
    end = parse_time(query["endTime"], "endTime") if "endTime" in query else None
    if end is not None:
        # Times are rendered to the millisecond; an inclusive end covers its whole
        # millisecond, so a record's own createDate passed back finds the record.
        end = end.replace(microsecond=end.microsecond - end.microsecond % 1000) + _LAST_MICROS
    if start is not None and end is not None and start > end:
        raise ApiError(400, "invalidTimeRange", "'startTime' is after 'endTime'")
    store = request.app[STORE_KEY]
    records = await store.status(
        tenant, identity=identity, state=state, start_time=start, end_time=end
    )
    if identity is not None and not records:
        if not await store.status(tenant, identity=identity, limit=1):
            raise ApiError(404, "userNotFound", "no migration record for this identity")
    return _collection([record.to_json() for record in records])


async def start_migration(request: web.Request) -> web.Response:
    """``Start-CsExMeetingMigration``: 202 with the correlation ID (the Pending one if any)."""
    tenant = _tenant(request)
    _query(request, frozenset())
    body = await read_json(request)
    now = request.app[CLOCK_KEY].now()
    trigger = _validated(parse_migration_request(body, tenant=tenant, received_at=now))
    correlation_id = await request.app[SERVICE_KEY].start_migration(
        tenant, trigger.identity, trigger.source, trigger.target
    )
    return web.json_response({"correlationId": correlation_id}, status=202)


async def history(request: web.Request) -> web.Response:
    """``Get-CsMeetingMigrationTransactionHistory``: one row per meeting."""
    tenant = _tenant(request)
    identity = _identity(request.match_info["identity"])
    query = _query(request, frozenset({"correlationId"}))
    correlation_id = query.get("correlationId")
    if correlation_id is not None and not _IDENTITY.fullmatch(correlation_id):
        _invalid("'correlationId' must be a correlation ID, without spaces")
    store = request.app[STORE_KEY]
    records = await store.status(tenant, identity=identity, latest_only=False)
    if not records:
        raise ApiError(404, "userNotFound", "no migration record for this identity")
    if correlation_id is not None and correlation_id not in {r.correlation_id for r in records}:
        raise ApiError(404, "migrationNotFound", "this user has no migration with that ID")
    rows = await store.history(tenant, identity, correlation_id=correlation_id)
    return _collection([row.to_json() for row in rows])


def preview_json(preview: Preview) -> JSON:
    """The body of ``POST .../preview``: the user, the types, and each meeting as ``value``."""
    return {
        "userId": preview.user_id,
        "userPrincipalName": preview.user_principal_name,
        "sourceMeetingType": str(preview.source_meeting_type),
        "targetMeetingType": str(preview.target_meeting_type),
        "value": [
            {
                "eventId": m.event_id,
                "subject": m.subject,
                "start": m.start,
                "classification": m.classification,
                "oldBlock": m.old_block,
                "newBlock": m.new_block,
                "oldJoinUrl": m.old_join_url,
                "newJoinUrl": m.new_join_url,
            }
            for m in preview.meetings
        ],
    }


async def preview(request: web.Request) -> web.Response:
    """A dry run of the user's migration: sends nothing, creates nothing, records nothing."""
    tenant = _tenant(request)
    identity = _identity(request.match_info["identity"])
    _query(request, frozenset())
    body = await read_json(request, optional=True)
    if body is not None:
        if not isinstance(body, dict):
            _invalid("the body must be a JSON object (or empty)")
        if body:
            _invalid(f"unknown field '{sorted(body)[0][:40]}' (preview takes no fields)")
    result = await request.app[SERVICE_KEY].preview(tenant, identity)
    return web.json_response(preview_json(result))


_CONFIGURATION_KEYS = {"meetingMigrationEnabled": "meeting_migration_enabled"}
_DIAL_IN_KEYS = {
    "automaticallyMigrateUserMeetings": "automatically_migrate_user_meetings",
    "automaticallyReplaceAcpProvider": "automatically_replace_acp_provider",
}


async def _patch_switches(request: web.Request, keys: Mapping[str, str]) -> TenantSwitches:
    tenant = _tenant(request)
    _query(request, frozenset())
    changes = _switch_patch(await read_json(request), keys)
    service = request.app[SERVICE_KEY]
    async with request.app[SWITCH_LOCKS_KEY](tenant):
        current = await service.get_switches(tenant)
        return await service.set_switches(tenant, replace(current, **changes))


async def get_configuration(request: web.Request) -> web.Response:
    """``Get-CsTenantMigrationConfiguration``."""
    tenant = _tenant(request)
    _query(request, frozenset())
    switches = await request.app[SERVICE_KEY].get_switches(tenant)
    return web.json_response(switches.configuration_json())


async def patch_configuration(request: web.Request) -> web.Response:
    """``Set-CsTenantMigrationConfiguration -MeetingMigrationEnabled``."""
    switches = await _patch_switches(request, _CONFIGURATION_KEYS)
    return web.json_response(switches.configuration_json())


async def get_dial_in(request: web.Request) -> web.Response:
    """``Get-CsOnlineDialInConferencingTenantSettings`` (the two switches mmsd uses)."""
    tenant = _tenant(request)
    _query(request, frozenset())
    switches = await request.app[SERVICE_KEY].get_switches(tenant)
    return web.json_response(switches.dial_in_json())


async def patch_dial_in(request: web.Request) -> web.Response:
    """``Set-CsOnlineDialInConferencingTenantSettings``."""
    switches = await _patch_switches(request, _DIAL_IN_KEYS)
    return web.json_response(switches.dial_in_json())


async def post_trigger(request: web.Request) -> web.Response:
    """Record a trigger (SPEC section 2): 202 with its ID; its fate is decided later."""
    tenant = _tenant(request)
    _query(request, frozenset())
    body = await read_json(request)
    now = request.app[CLOCK_KEY].now()
    trigger = _validated(parse_trigger(body, tenant=tenant, received_at=now))
    trigger_id = await request.app[SERVICE_KEY].submit_trigger(tenant, trigger)
    return web.json_response({"triggerId": trigger_id}, status=202)


async def list_triggers(request: web.Request) -> web.Response:
    """Every trigger received, with what became of it."""
    tenant = _tenant(request)
    query = _query(request, frozenset({"identity", "since"}))
    identity = _identity(query["identity"]) if "identity" in query else None
    since = parse_time(query["since"], "since") if "since" in query else None
    triggers = await request.app[STORE_KEY].list_triggers(tenant, identity=identity, since=since)
    return _collection([trigger.to_json() for trigger in triggers])


# ------------------------------------------------------------------------- app


def make_admin_app(
    service: MigrationService,
    store: Store,
    *,
    clock: Clock,
    readiness: Callable[[], bool],
    token: bytes | None = None,
    switch_locks: SwitchLocks | None = None,
) -> web.Application:
    """The admin API; with ``token`` every route but /healthz and /readyz needs that bearer.

    Apps serving the same engine (the Unix and TCP listeners) must share ``switch_locks``.
    """
    middlewares = [_errors] if token is None else [_errors, _bearer]
    app = web.Application(client_max_size=MAX_BODY_BYTES, middlewares=middlewares)
    app[SERVICE_KEY] = service
    app[STORE_KEY] = store
    app[CLOCK_KEY] = clock
    app[READINESS_KEY] = readiness
    app[SWITCH_LOCKS_KEY] = switch_locks if switch_locks is not None else SwitchLocks()
    app[OPENAPI_KEY] = json.dumps(openapi_document(), indent=1).encode()
    if token is not None:
        app[TOKEN_KEY] = token
    base = "/v1/tenants/{tenant}"
    app.router.add_get("/healthz", healthz)
    app.router.add_get("/readyz", readyz)
    app.router.add_get("/v1/openapi.json", openapi)
    app.router.add_get("/v1/tenants", list_tenants)
    app.router.add_get(base + "/migrations/summary", summary)
    app.router.add_get(base + "/migrations", list_migrations)
    app.router.add_post(base + "/migrations", start_migration)
    app.router.add_get(base + "/migrations/{identity}/history", history)
    app.router.add_post(base + "/migrations/{identity}/preview", preview)
    app.router.add_get(base + "/configuration", get_configuration)
    app.router.add_patch(base + "/configuration", patch_configuration)
    app.router.add_get(base + "/dialInConferencingSettings", get_dial_in)
    app.router.add_patch(base + "/dialInConferencingSettings", patch_dial_in)
    app.router.add_post(base + "/triggers", post_trigger)
    app.router.add_get(base + "/triggers", list_triggers)
    return app
