"""The OpenAPI 3.1 description of the admin API, served at ``/v1/openapi.json``.

Kept true by ``tests/admin/test_admin_openapi.py``, which calls every
operation listed here against the running API and validates each answer
against the schema given for its status, and by ``tests/admin/test_admin_hostile.py``,
which does the same for every refusal. Answers to requests that match no operation
(404 ``notFound``, 405 ``methodNotAllowed``) are listed under ``x-unmatchedRequests``.
"""

from __future__ import annotations

import copy
from typing import Any

from mmsd.domain.model import (
    IgnoreReason,
    MeetingOutcome,
    MigrationState,
    MigrationType,
    PolicyScope,
    SkipReason,
    SourceMeetingType,
    TargetMeetingType,
    TeamsUpgradeMode,
    TriggerFate,
    TriggerType,
)

Schema = dict[str, Any]


def _ref(name: str) -> Schema:
    return {"$ref": f"#/components/schemas/{name}"}


def _obj(props: dict[str, Schema], required: list[str] | None = None) -> Schema:
    return {
        "type": "object",
        "properties": props,
        "required": sorted(props) if required is None else required,
        "additionalProperties": False,
    }


def _collection(item: str) -> Schema:
    return _obj({"value": {"type": "array", "items": _ref(item)}})


def _values(enum_type: Any) -> list[str]:
    return [member.value for member in enum_type]


_STR: Schema = {"type": "string"}
_NSTR: Schema = {"type": ["string", "null"]}
_INT: Schema = {"type": "integer", "minimum": 0}
_BOOL: Schema = {"type": "boolean"}
_TIME: Schema = {"type": "string", "format": "date-time"}
_NTIME: Schema = {"type": ["string", "null"], "format": "date-time"}

_PROFILE: Schema = {
    "type": "object",
    "description": "The user's conferencing profile after the change (SPEC section 2).",
    "properties": {
        "audioConferencingProvider": {"enum": ["microsoft", "thirdParty"]},
        "sipAddress": _STR,
        "meetUrlBase": {"type": "string", "format": "uri"},
        "conferenceId": {"type": "string", "pattern": "^[0-9]{1,32}$"},
        "tollNumbers": {"type": "array", "items": _STR, "maxItems": 50},
        "tollFreeNumbers": {"type": "array", "items": _STR, "maxItems": 50},
        "dialInUrl": {"type": "string", "format": "uri"},
        "bridgeId": _STR,
        "dialInEnabled": _BOOL,
    },
    "additionalProperties": False,
}

SCHEMAS: dict[str, Schema] = {
    "Error": _obj({"error": _obj({"code": _STR, "message": _STR})}),
    "Health": _obj({"status": {"enum": ["ok"]}, "time": _TIME}),
    "Ready": _obj({"status": {"enum": ["ready", "notReady"]}}),
    "Tenant": _obj({"name": _STR}),
    "TenantList": _collection("Tenant"),
    "StateCount": _obj({"state": {"enum": _values(MigrationState)}, "userCount": _INT}),
    "Summary": _collection("StateCount"),
    "StatusRecord": _obj(
        {
            "userId": _STR,
            "userPrincipalName": _NSTR,
            "state": {"enum": _values(MigrationState)},
            "migrationType": {"enum": _values(MigrationType)},
            "correlationId": _STR,
            "createDate": _TIME,
            "modifiedDate": _TIME,
            "retryCount": _INT,
            "lastMessage": _NSTR,
            "totalMeeting": _INT,
            "succeededMeeting": _INT,
            "failedMeeting": _INT,
            "invitesUpdate": _INT,
            "skippedMeeting": _INT,
            "sourceMeetingType": {"enum": _values(SourceMeetingType)},
            "targetMeetingType": {"enum": _values(TargetMeetingType)},
        }
    ),
    "StatusList": _collection("StatusRecord"),
    "MigrationRequest": _obj(
        {
            "identity": {"type": "string", "description": "object ID or UPN"},
            "sourceMeetingType": {"enum": _values(SourceMeetingType), "default": "All"},
            "targetMeetingType": {"enum": _values(TargetMeetingType), "default": "Current"},
        },
        ["identity"],
    ),
    "MigrationAccepted": _obj({"correlationId": _STR}),
    "HistoryEntry": _obj(
        {
            "correlationId": _STR,
            "eventId": _STR,
            "subject": _NSTR,
            "start": _NTIME,
            "outcome": {"enum": _values(MeetingOutcome)},
            "reason": {"type": ["string", "null"], "description": "a skip reason or why it failed"},
            "oldJoinUrl": _NSTR,
            "newJoinUrl": _NSTR,
            "invites": _INT,
            "createDate": _TIME,
            "modifiedDate": _TIME,
            "patchedAt": _NTIME,
        }
    ),
    "History": _collection("HistoryEntry"),
    "PreviewMeeting": _obj(
        {
            "eventId": _STR,
            "subject": _NSTR,
            "start": _NSTR,
            "classification": {"enum": ["migrate", *_values(SkipReason)]},
            "oldBlock": _NSTR,
            "newBlock": _NSTR,
            "oldJoinUrl": _NSTR,
            "newJoinUrl": {
                "type": ["string", "null"],
                "description": "a placeholder where Graph would assign a link",
            },
        }
    ),
    "Preview": _obj(
        {
            "userId": _STR,
            "userPrincipalName": _NSTR,
            "sourceMeetingType": {"enum": _values(SourceMeetingType)},
            "targetMeetingType": {"enum": _values(TargetMeetingType)},
            "value": {"type": "array", "items": _ref("PreviewMeeting")},
        }
    ),
    "Configuration": _obj({"meetingMigrationEnabled": _BOOL}),
    "ConfigurationPatch": {**_obj({"meetingMigrationEnabled": _BOOL}, []), "minProperties": 1},
    "DialInSettings": _obj(
        {"automaticallyMigrateUserMeetings": _BOOL, "automaticallyReplaceAcpProvider": _BOOL}
    ),
    "DialInSettingsPatch": {
        **_obj(
            {"automaticallyMigrateUserMeetings": _BOOL, "automaticallyReplaceAcpProvider": _BOOL},
            [],
        ),
        "minProperties": 1,
    },
    "TriggerRequest": _obj(
        {
            "type": {"enum": _values(TriggerType)},
            "identity": {
                "type": ["string", "null"],
                "description": "object ID or UPN; absent only for tenant-scoped types",
            },
            "mode": {"enum": _values(TeamsUpgradeMode)},
            "scope": {"enum": _values(PolicyScope)},
            "sourceMeetingType": {"enum": _values(SourceMeetingType)},
            "targetMeetingType": {"enum": _values(TargetMeetingType)},
            "conferencing": _PROFILE,
        },
        ["type"],
    ),
    "TriggerAccepted": _obj({"triggerId": _STR}),
    "Trigger": _obj(
        {
            "triggerId": _STR,
            "type": {"enum": _values(TriggerType)},
            "identity": _NSTR,
            "receivedAt": _TIME,
            "fate": {"enum": _values(TriggerFate)},
            "reason": {"enum": [*_values(IgnoreReason), None]},
            "correlationId": _NSTR,
            "userId": _NSTR,
            "message": _NSTR,
            "decidedAt": _NTIME,
            "mode": {"enum": _values(TeamsUpgradeMode)},
            "scope": {"enum": _values(PolicyScope)},
            "sourceMeetingType": {"enum": _values(SourceMeetingType)},
            "targetMeetingType": {"enum": _values(TargetMeetingType)},
            "conferencing": _PROFILE,
        },
        [
            "triggerId",
            "type",
            "identity",
            "receivedAt",
            "fate",
            "reason",
            "correlationId",
            "userId",
            "message",
            "decidedAt",
        ],
    ),
    "TriggerList": _collection("Trigger"),
}


def _error(description: str) -> Schema:
    return {
        "description": description,
        "content": {"application/json": {"schema": _ref("Error")}},
    }


def _ok(name: str, description: str = "OK") -> Schema:
    return {"description": description, "content": {"application/json": {"schema": _ref(name)}}}


def _param(name: str, where: str, description: str, schema: Schema | None = None) -> Schema:
    return {
        "name": name,
        "in": where,
        "required": where == "path",
        "description": description,
        "schema": schema or _STR,
    }


_TENANT = _param("tenant", "path", "the tenant's name in the configuration")
_IDENTITY = _param("identity", "path", "the user's object ID or UPN")
_E400 = _error("malformed JSON, wrong types, bad enum values, unknown fields, bad times")
_E401 = _error("missing or bad bearer token (TCP listener only)")
_E404T = _error("unknown tenant")
_E404U = _error("unknown tenant, or no such user")
_E400Q = _error("an unknown or repeated query parameter")
_E413 = _error("body over 64 KiB")
_E415 = _error("body not JSON")
_E503 = _error("mmsd is draining (shutting down) or Graph cannot be reached right now")


# The errors every JSON-body write route can answer.
_WRITE_ERRORS = {"400": _E400, "404": _E404T, "413": _E413, "415": _E415, "503": _E503}


def _body(name: str, required: bool = True) -> Schema:
    return {"required": required, "content": {"application/json": {"schema": _ref(name)}}}


def _op(summary: str, responses: dict[str, Schema], **extra: Any) -> Schema:
    return {"summary": summary, "responses": {**responses, "401": _E401}, **extra}


def openapi_document() -> dict[str, Any]:
    """The whole OpenAPI 3.1 document (a fresh dict on each call)."""
    base = "/v1/tenants/{tenant}"
    paths: dict[str, Any] = {
        "/healthz": {
            "get": {
                "summary": "Liveness; no token needed",
                "responses": {"200": _ok("Health")},
                "security": [],
            }
        },
        "/readyz": {
            "get": {
                "summary": "Readiness; no token needed",
                "responses": {"200": _ok("Ready"), "503": _ok("Ready", "not ready")},
                "security": [],
            }
        },
        "/v1/openapi.json": {
            "get": _op(
                "This document",
                {"200": {"description": "OK", "content": {"application/json": {}}}},
            )
        },
        "/v1/tenants": {
            "get": _op("The configured tenants", {"200": _ok("TenantList"), "400": _E400Q})
        },
        base + "/migrations/summary": {
            "get": _op(
                "Get-CsMeetingMigrationStatus -SummaryOnly",
                {"200": _ok("Summary"), "400": _E400Q, "404": _E404T},
                parameters=[_TENANT],
            )
        },
        base + "/migrations": {
            "get": _op(
                "Get-CsMeetingMigrationStatus",
                {"200": _ok("StatusList"), "400": _E400, "404": _E404U},
                parameters=[
                    _TENANT,
                    _param("identity", "query", "object ID or UPN"),
                    _param("state", "query", "a state", {"enum": _values(MigrationState)}),
                    _param("startTime", "query", "createDate >= (inclusive)", _TIME),
                    _param("endTime", "query", "createDate <= (inclusive)", _TIME),
                ],
            ),
            "post": _op(
                "Start-CsExMeetingMigration",
                {
                    "202": _ok("MigrationAccepted", "queued (the Pending one if any)"),
                    "400": _E400,
                    "404": _E404U,
                    "413": _E413,
                    "415": _E415,
                    "503": _E503,
                },
                parameters=[_TENANT],
                requestBody=_body("MigrationRequest"),
            ),
        },
        base + "/migrations/{identity}/history": {
            "get": _op(
                "Get-CsMeetingMigrationTransactionHistory",
                {"200": _ok("History"), "400": _E400, "404": _E404U},
                parameters=[_TENANT, _IDENTITY, _param("correlationId", "query", "one migration")],
            )
        },
        base + "/migrations/{identity}/preview": {
            "post": _op(
                "Dry run: sends nothing, creates nothing, records nothing",
                {
                    "200": _ok("Preview"),
                    "400": _E400,
                    "404": _E404U,
                    "413": _E413,
                    "415": _E415,
                    "503": _E503,
                },
                parameters=[_TENANT, _IDENTITY],
            )
        },
        base + "/configuration": {
            "get": _op(
                "Get-CsTenantMigrationConfiguration",
                {"200": _ok("Configuration"), "400": _E400Q, "404": _E404T, "503": _E503},
                parameters=[_TENANT],
            ),
            "patch": _op(
                "Set-CsTenantMigrationConfiguration",
                {
                    "200": _ok("Configuration"),
                    **_WRITE_ERRORS,
                },
                parameters=[_TENANT],
                requestBody=_body("ConfigurationPatch"),
            ),
        },
        base + "/dialInConferencingSettings": {
            "get": _op(
                "Get-CsOnlineDialInConferencingTenantSettings",
                {"200": _ok("DialInSettings"), "400": _E400Q, "404": _E404T, "503": _E503},
                parameters=[_TENANT],
            ),
            "patch": _op(
                "Set-CsOnlineDialInConferencingTenantSettings",
                {
                    "200": _ok("DialInSettings"),
                    **_WRITE_ERRORS,
                },
                parameters=[_TENANT],
                requestBody=_body("DialInSettingsPatch"),
            ),
        },
        base + "/triggers": {
            "post": _op(
                "Post a trigger (SPEC section 2); its fate is decided later",
                {
                    "202": _ok("TriggerAccepted"),
                    **_WRITE_ERRORS,
                },
                parameters=[_TENANT],
                requestBody=_body("TriggerRequest"),
            ),
            "get": _op(
                "Triggers received, each with what became of it",
                {"200": _ok("TriggerList"), "400": _E400, "404": _E404T},
                parameters=[
                    _TENANT,
                    _param("identity", "query", "object ID or UPN"),
                    _param("since", "query", "received at or after", _TIME),
                ],
            ),
        },
    }
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "mmsd admin API",
            "version": "1",
            "description": "The Meeting Migration Service's admin API (SPEC section 5).",
        },
        "paths": paths,
        "x-unmatchedRequests": {
            "description": "Answers to a request no operation above matches",
            "404": {"$ref": "#/components/responses/NotFound"},
            "405": {"$ref": "#/components/responses/MethodNotAllowed"},
        },
        "components": {
            "schemas": copy.deepcopy(SCHEMAS),
            "responses": {
                "NotFound": _error("no such route (error code notFound)"),
                "MethodNotAllowed": _error(
                    "the path exists but not with this method (error code methodNotAllowed; "
                    "the Allow header lists the methods)"
                ),
            },
            "securitySchemes": {
                "bearer": {
                    "type": "http",
                    "scheme": "bearer",
                    "description": "TCP listener only; the Unix socket relies on its mode and group",
                }
            },
        },
        "security": [{}, {"bearer": []}],
    }
