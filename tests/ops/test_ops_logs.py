"""JSON logs (SPEC section 6): one object a line, allowed identifiers only, secrets redacted."""

from __future__ import annotations

import asyncio
import io
import json
import logging
from collections.abc import Iterator

import pytest

from mmsd.logs import JsonFormatter, log_context, redact, setup_logging


@pytest.fixture
def logged() -> Iterator[tuple[logging.Logger, io.StringIO]]:
    """A logger writing JSON lines into a buffer; the root logger is restored after."""
    root = logging.getLogger()
    saved = (list(root.handlers), root.level)
    buffer = io.StringIO()
    setup_logging("debug", stream=buffer)
    yield logging.getLogger("mmsd.test"), buffer
    for handler in list(root.handlers):
        root.removeHandler(handler)
    for handler in saved[0]:
        root.addHandler(handler)
    root.setLevel(saved[1])


def lines(buffer: io.StringIO) -> list[dict[str, object]]:
    text = buffer.getvalue()
    assert text.endswith("\n")
    return [json.loads(line) for line in text.splitlines()]


def test_one_json_object_per_line(logged: tuple[logging.Logger, io.StringIO]) -> None:
    log, buffer = logged
    log.info("first\nsecond line of the same record")
    log.warning("done %d of %d", 3, 4)
    first, second = lines(buffer)
    assert first["message"] == "first\nsecond line of the same record"
    assert first["level"] == "info" and first["logger"] == "mmsd.test"
    assert str(first["time"]).endswith("+00:00")
    assert second == {**second, "level": "warning", "message": "done 3 of 4"}


def test_only_allowed_identifiers_pass(logged: tuple[logging.Logger, io.StringIO]) -> None:
    log, buffer = logged
    log.info(
        "patched",
        extra={
            "tenant": "contoso",
            "correlation_id": "c0ffee",
            "user_id": "9f1c2d4e-0000-4000-8000-000000000001",
            "event_id": "AAMkAD=",
            "subject": "Quarterly layoffs",
            "body": "<html>secret plans</html>",
            "upn": "alice@contoso.com",
        },
    )
    (line,) = lines(buffer)
    assert line["tenant"] == "contoso"
    assert line["correlationId"] == "c0ffee"
    assert line["userId"] == "9f1c2d4e-0000-4000-8000-000000000001"
    assert line["eventId"] == "AAMkAD="
    raw = buffer.getvalue()
    for leaked in ("Quarterly", "secret plans", "alice", "subject", "body", "upn"):
        assert leaked not in raw


def test_log_context_binds_identifiers_for_tasks(
    logged: tuple[logging.Logger, io.StringIO],
) -> None:
    log, buffer = logged

    async def work() -> None:
        with log_context(tenant="contoso", correlation_id="abc"):
            await asyncio.gather(child("e1"), child("e2"))
        log.info("outside")

    async def child(event_id: str) -> None:
        with log_context(event_id=event_id):
            await asyncio.sleep(0)
            log.info("meeting")

    asyncio.run(work())
    records = [r for r in lines(buffer) if r["logger"] == "mmsd.test"]
    assert {(r["eventId"], r["correlationId"], r["tenant"]) for r in records[:2]} == {
        ("e1", "abc", "contoso"),
        ("e2", "abc", "contoso"),
    }
    assert "tenant" not in records[2]
    with pytest.raises(ValueError, match="subject"):
        with log_context(subject="x"):
            pass


@pytest.mark.parametrize(
    ("text", "gone", "kept"),
    [
        ("user alice.o'neil+tag@mail.contoso.co.uk not found", "alice", "user [email] not found"),
        ("Authorization: Bearer eyJ0eXAi.eyJhdWQi.c2ln", "eyJ", "Authorization: "),
        ("header bearer abc.def-ghi_jkl", "abc.def", "header bearer [redacted]"),
        ("token eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiIxIn0.sig-nature here", "eyJhbG", "here"),
        ("client_secret=s3cr3t&grant_type=client_credentials", "s3cr3t", "grant_type"),
        ('{"access_token": "abc123", "expires_in": 3599}', "abc123", "expires_in"),
        ("password: hunter2", "hunter2", "password: [redacted]"),
    ],
)
def test_redaction(text: str, gone: str, kept: str) -> None:
    out = redact(text)
    assert gone not in out
    assert kept in out


def test_redaction_leaves_identifiers_alone() -> None:
    text = "user 9f1c2d4e-0000-4000-8000-000000000001 event AAMkADk= tenant contoso 429 in 7s"
    assert redact(text) == text


@pytest.mark.parametrize(
    "text",
    ["bearer token required", "missing Basic credentials", "Bearer realm for the admin API"],
)
def test_redaction_leaves_prose_about_tokens_alone(text: str) -> None:
    assert redact(text) == text


def test_a_long_letters_only_bearer_value_is_still_redacted() -> None:
    assert redact("Bearer abcdefghijklmnopqrstuvwx") == "Bearer [redacted]"


def test_messages_identifiers_and_tracebacks_are_redacted(
    logged: tuple[logging.Logger, io.StringIO],
) -> None:
    log, buffer = logged
    try:
        raise RuntimeError("GET /users/bob@contoso.com failed, Authorization: Bearer abc.def")
    except RuntimeError:
        log.exception("call for %s failed", "carol@contoso.com", extra={"user_id": "dan@x.org"})
    (line,) = lines(buffer)
    raw = buffer.getvalue()
    for leaked in ("bob@", "carol@", "dan@", "abc.def"):
        assert leaked not in raw
    assert line["exception"] == "RuntimeError"
    assert "[email]" in str(line["traceback"])
    assert line["userId"] == "[email]"


def test_formatter_survives_a_bad_format_string() -> None:
    record = logging.LogRecord("x", logging.INFO, __file__, 1, "%d items", ("many",), None)
    line = json.loads(JsonFormatter().format(record))
    assert line["message"] == "%d items"
