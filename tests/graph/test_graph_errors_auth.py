"""Typed Graph outcomes, Retry-After parsing, and building credentials from config."""

from __future__ import annotations

import asyncio
import time
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime
from pathlib import Path

import pytest
from azure.core.credentials import AccessToken

from mmsd.graph.auth import CachingCredential, build_credential
from mmsd.graph.errors import (
    GraphError,
    MailboxNotEnabled,
    NotFound,
    PreconditionFailed,
    TransportError,
    is_transient,
    make_error,
    parse_retry_after,
)

NOW = datetime(2026, 1, 5, 9, 0, tzinfo=UTC)


@pytest.mark.parametrize(
    ("header", "seconds"),
    [
        ("5", 5.0),
        (" 2.128 ", 2.128),
        ("0", 0.0),
        ("", None),
        (None, None),
        ("soon", None),
        ("-3", None),
    ],
)
def test_retry_after_seconds(header: str | None, seconds: float | None) -> None:
    assert parse_retry_after(header, NOW) == seconds


def test_retry_after_http_date() -> None:
    assert parse_retry_after(format_datetime(NOW + timedelta(seconds=90), usegmt=True), NOW) == 90.0
    assert parse_retry_after(format_datetime(NOW - timedelta(seconds=90), usegmt=True), NOW) == 0.0


def test_error_classes_and_transience() -> None:
    on_prem = b'{"error":{"code":"MailboxNotEnabledForRESTAPI","message":"REST API is not yet supported for this mailbox."}}'
    assert type(make_error(404, on_prem, operation="list_events")) is MailboxNotEnabled
    assert type(make_error(400, on_prem, operation="get_event")) is MailboxNotEnabled
    assert (
        type(make_error(404, b"", operation="list_events", mailbox_call=True)) is MailboxNotEnabled
    )
    assert type(make_error(404, b"", operation="get_user")) is NotFound
    gone = {"error": {"code": "ErrorItemNotFound", "message": "x"}}
    assert type(make_error(404, gone, operation="get_event", mailbox_call=True)) is NotFound
    stale = make_error(412, b"not json", operation="patch_event")
    assert type(stale) is PreconditionFailed and stale.code == ""
    throttled = make_error(429, b"{}", operation="x", retry_after=3.0)
    assert throttled.transient and is_transient(throttled) and throttled.retry_after == 3.0
    assert not is_transient(GraphError(400, "BadRequest", "bad"))
    assert is_transient(TransportError("x", "ReadTimeout")) and is_transient(504)
    assert not is_transient(ValueError())


def _config(tmp_path: Path, **extra: object) -> dict[str, object]:
    secret = tmp_path / "secret"
    secret.write_text("s3cret\n")
    return {"tenant_id": "t", "client_id": "c", "client_secret_file": str(secret), **extra}


def test_client_secret_credential_is_cached_wrapper(tmp_path: Path) -> None:
    credential = build_credential(_config(tmp_path, authority="https://127.0.0.1:9443"))
    assert isinstance(credential, CachingCredential)


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        ({"managed_identity": True}, "exactly one"),
        ({"client_secret_file": None}, "exactly one"),
        ({"tenant_id": None}, "tenant_id is required"),
        ({"authority": "http://127.0.0.1:1"}, "https://"),
        ({"ca_file": "/nonexistent/ca.pem"}, "does not exist"),
        ({"client_secret_file": "/nonexistent/secret"}, "cannot read"),
    ],
)
def test_bad_credential_config_is_refused_clearly(
    tmp_path: Path, extra: dict[str, object], message: str
) -> None:
    with pytest.raises(ValueError, match=message):
        build_credential(_config(tmp_path, **extra))


def test_managed_identity_builds_without_secret() -> None:
    assert isinstance(build_credential({"managed_identity": True}), CachingCredential)


class _Inner:
    def __init__(self, lifetime_s: int) -> None:
        self.lifetime_s = lifetime_s
        self.calls = 0
        self.closed = False

    async def get_token(self, *scopes: str, **kwargs: object) -> AccessToken:
        self.calls += 1
        return AccessToken(f"t{self.calls}", int(time.time()) + self.lifetime_s)

    async def close(self) -> None:
        self.closed = True


async def test_token_reused_until_near_expiry_and_claims_force_a_fetch() -> None:
    long_lived = _Inner(3600)
    cache = CachingCredential(long_lived)
    tokens = await asyncio.gather(*(cache.get_token("scope") for _ in range(20)))
    assert {t.token for t in tokens} == {"t1"} and long_lived.calls == 1
    assert (await cache.get_token("scope", claims="challenge")).token == "t2"
    async with cache:  # a library's `async with credential` must not close it
        pass
    assert not long_lived.closed
    short_lived = _Inner(60)  # inside the refresh margin: fetched every time
    cache = CachingCredential(short_lived)
    await cache.get_token("scope")
    await cache.get_token("scope")
    assert short_lived.calls == 2
    await cache.close()
    assert short_lived.closed
