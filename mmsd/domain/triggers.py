"""Strict parsing of trigger bodies (SPEC section 2) and manual starts (SPEC section 5).

The admin API hands a decoded JSON value here and answers 400 with the
returned :class:`ValidationError`'s message when the body is not acceptable:
unknown fields, wrong types, bad enum values, a missing ``identity``. Error
messages name the offending field and never echo free-text values (an
identity may be an e-mail address, which must stay out of logs).
"""

from __future__ import annotations

import enum
import re
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any, TypeVar
from urllib.parse import urlsplit

from mmsd.domain.model import (
    AudioConferencingProvider,
    ConferencingProfile,
    PolicyScope,
    SourceMeetingType,
    TargetMeetingType,
    TeamsUpgradeMode,
    Trigger,
    TriggerType,
)

_E = TypeVar("_E", bound=enum.StrEnum)


@dataclass(frozen=True)
class ValidationError:
    """Why a request body was refused: the field (a dotted path, "" for the body) and a message."""

    field: str
    message: str

    def __str__(self) -> str:
        return self.message


class _Invalid(Exception):
    """Internal: carries a ValidationError out of nested checks."""

    def __init__(self, error: ValidationError) -> None:
        super().__init__(error.message)
        self.error = error


def _fail(field: str, message: str) -> _Invalid:
    return _Invalid(ValidationError(field, message))


_COMMON_FIELDS = frozenset({"type", "identity", "conferencing"})
_TYPE_FIELDS: dict[TriggerType, frozenset[str]] = {
    TriggerType.TEAMS_UPGRADE_POLICY_GRANTED: frozenset({"mode", "scope"}),
    TriggerType.MANUAL_START: frozenset({"sourceMeetingType", "targetMeetingType"}),
}
_TENANT_SCOPED_TYPES = frozenset({TriggerType.TENANT_MEETING_URL_UPDATED})

_IDENTITY = re.compile(r"[^\s\x00-\x1f\x7f]{1,320}")
_DIGITS = re.compile(r"[0-9]{1,32}")
_PHONE = re.compile(r"\+?[0-9][0-9 ()\-.]{2,40}")
_NO_SPACE = re.compile(r"[^\s\x00-\x1f\x7f]{1,320}")
_MAX_NUMBERS = 50


def _kind(value: object) -> str:
    """A JSON type name for a Python value, for error messages."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, int | float):
        return "a number"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, list):
        return "an array"
    if isinstance(value, dict):
        return "an object"
    return type(value).__name__


def _string(value: object, field: str) -> str:
    if not isinstance(value, str):
        raise _fail(field, f"'{field}' must be a string, got {_kind(value)}")
    return value


def _enum(value: object, field: str, enum_type: type[_E]) -> _E:
    text = _string(value, field)
    try:
        return enum_type(text)
    except ValueError:
        allowed = ", ".join(member.value for member in enum_type)
        shown = text if len(text) <= 40 else text[:40] + "..."
        raise _fail(field, f"'{field}' must be one of {allowed}; got {shown!r}") from None


def _matching(value: object, field: str, pattern: re.Pattern[str], what: str) -> str:
    text = _string(value, field)
    if not pattern.fullmatch(text):
        raise _fail(field, f"'{field}' must be {what}")
    return text


def _url(value: object, field: str) -> str:
    text = _matching(value, field, _NO_SPACE, "an http or https URL")
    parts = urlsplit(text)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise _fail(field, f"'{field}' must be an http or https URL")
    return text


def _phone_list(value: object, field: str) -> tuple[str, ...]:
    if not isinstance(value, list):
        raise _fail(field, f"'{field}' must be an array of phone numbers, got {_kind(value)}")
    if len(value) > _MAX_NUMBERS:
        raise _fail(field, f"'{field}' may hold at most {_MAX_NUMBERS} numbers")
    return tuple(
        _matching(item, f"{field}[{i}]", _PHONE, "a phone number such as +1 206 555 0100")
        for i, item in enumerate(value)
    )


def _bool(value: object, field: str) -> bool:
    if not isinstance(value, bool):
        raise _fail(field, f"'{field}' must be a boolean, got {_kind(value)}")
    return value


def _object(value: object, field: str) -> Mapping[str, Any]:
    if not isinstance(value, dict):
        what = "the body" if not field else f"'{field}'"
        raise _fail(field, f"{what} must be a JSON object, got {_kind(value)}")
    for key in value:
        if not isinstance(key, str):  # pragma: no cover - json.loads only makes str keys
            raise _fail(field, "object keys must be strings")
    return value


def _reject_unknown(body: Mapping[str, Any], allowed: frozenset[str], prefix: str) -> None:
    unknown = sorted(key for key in body if key not in allowed)
    if unknown:
        name = unknown[0] if len(unknown[0]) <= 40 else unknown[0][:40] + "..."
        path = f"{prefix}{name}"
        raise _fail(path, f"unknown field '{path}'")


_PROFILE_PARSERS: dict[str, tuple[str, Callable[[object, str], object]]] = {
    "audioConferencingProvider": (
        "audio_conferencing_provider",
        lambda v, f: _enum(v, f, AudioConferencingProvider),
    ),
    "sipAddress": ("sip_address", lambda v, f: _matching(v, f, _NO_SPACE, "a SIP address")),
    "meetUrlBase": ("meet_url_base", _url),
    "conferenceId": ("conference_id", lambda v, f: _matching(v, f, _DIGITS, "a string of digits")),
    "tollNumbers": ("toll_numbers", _phone_list),
    "tollFreeNumbers": ("toll_free_numbers", _phone_list),
    "dialInUrl": ("dial_in_url", _url),
    "bridgeId": ("bridge_id", lambda v, f: _matching(v, f, _NO_SPACE, "a non-empty string")),
    "dialInEnabled": ("dial_in_enabled", _bool),
}


def _conferencing(value: object, field: str = "conferencing") -> ConferencingProfile:
    body = _object(value, field)
    _reject_unknown(body, frozenset(_PROFILE_PARSERS), f"{field}.")
    values: dict[str, Any] = {}
    for key, (name, parse) in _PROFILE_PARSERS.items():
        if key in body:
            values[name] = parse(body[key], f"{field}.{key}")
    return ConferencingProfile(**values)


def _identity(body: Mapping[str, Any], required: bool, type_: TriggerType) -> str | None:
    if "identity" not in body or body["identity"] is None:
        if required:
            raise _fail("identity", f"'identity' is required for type '{type_}'")
        return None
    return _matching(
        body["identity"], "identity", _IDENTITY, "a user's object ID or UPN, without spaces"
    )


def _parse(body_value: object, tenant: str, received_at: datetime, trigger_id: str) -> Trigger:
    body = _object(body_value, "")
    if "type" not in body:
        raise _fail("type", "'type' is required")
    type_ = _enum(body["type"], "type", TriggerType)
    _reject_unknown(body, _COMMON_FIELDS | _TYPE_FIELDS.get(type_, frozenset()), "")

    mode: TeamsUpgradeMode | None = None
    scope: PolicyScope | None = None
    source: SourceMeetingType | None = None
    target: TargetMeetingType | None = None
    tenant_scoped = type_ in _TENANT_SCOPED_TYPES
    if type_ is TriggerType.TEAMS_UPGRADE_POLICY_GRANTED:
        for key in ("mode", "scope"):
            if key not in body:
                raise _fail(key, f"'{key}' is required for type '{type_}'")
        mode = _enum(body["mode"], "mode", TeamsUpgradeMode)
        scope = _enum(body["scope"], "scope", PolicyScope)
        tenant_scoped = scope is PolicyScope.TENANT
    elif type_ is TriggerType.MANUAL_START:
        source = _enum(
            body.get("sourceMeetingType", SourceMeetingType.ALL.value),
            "sourceMeetingType",
            SourceMeetingType,
        )
        target = _enum(
            body.get("targetMeetingType", TargetMeetingType.CURRENT.value),
            "targetMeetingType",
            TargetMeetingType,
        )

    identity = _identity(body, not tenant_scoped, type_)
    conferencing: ConferencingProfile | None = None
    if "conferencing" in body:
        if identity is None:
            raise _fail("conferencing", "'conferencing' needs an 'identity' to belong to")
        conferencing = _conferencing(body["conferencing"])
    return Trigger(
        id=trigger_id,
        tenant=tenant,
        type=type_,
        identity=identity,
        received_at=received_at,
        mode=mode,
        scope=scope,
        source=source,
        target=target,
        conferencing=conferencing,
    )


def new_trigger_id() -> str:
    """A fresh, unguessable trigger ID (the ``triggerId`` of ``POST /triggers``)."""
    return str(uuid.uuid4())


def parse_trigger(
    body: object,
    *,
    tenant: str,
    received_at: datetime,
    trigger_id: str | None = None,
) -> Trigger | ValidationError:
    """Turn a decoded ``POST /triggers`` body into a pending :class:`Trigger`, or say what is wrong.

    ``tenant`` and ``received_at`` come from the request, not the body; the ID
    is fresh unless given. ``manualStart`` is accepted too (with optional
    ``sourceMeetingType``/``targetMeetingType``, defaulting to All -> Current).
    """
    try:
        return _parse(body, tenant, received_at, trigger_id or new_trigger_id())
    except _Invalid as invalid:
        return invalid.error


def parse_migration_request(
    body: object,
    *,
    tenant: str,
    received_at: datetime,
    trigger_id: str | None = None,
) -> Trigger | ValidationError:
    """Parse ``POST /migrations`` (``{identity, sourceMeetingType?, targetMeetingType?}``).

    The result is a ``manualStart`` trigger, so a manual start is recorded and
    decided like every other trigger.
    """
    try:
        fields = _object(body, "")
        _reject_unknown(
            fields, frozenset({"identity", "sourceMeetingType", "targetMeetingType"}), ""
        )
        as_trigger = {"type": TriggerType.MANUAL_START.value, **fields}
        return _parse(as_trigger, tenant, received_at, trigger_id or new_trigger_id())
    except _Invalid as invalid:
        return invalid.error


def parse_conferencing(value: object) -> ConferencingProfile | ValidationError:
    """Validate a ``conferencing`` object on its own (e.g. a profile set by an admin tool)."""
    try:
        return _conferencing(value)
    except _Invalid as invalid:
        return invalid.error
