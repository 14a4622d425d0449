"""JSON logs for journald: one object a line on stdout, allowed identifiers only.

SPEC section 6: a log line may carry the tenant name, a correlation ID, a user
object ID and an event ID — and never a token, a secret, an e-mail address, a
subject or a body. :class:`JsonFormatter` enforces the first half by an allow-list:
of a record's ``extra`` fields (and of the identifiers bound with
:func:`log_context`) only those four pass, under fixed camelCase keys. It guards the
second half by redaction: the message, the identifiers and any traceback are
scrubbed of anything that looks like an e-mail address, a bearer token, a JWT or a
``secret=…`` pair. Subjects and bodies cannot be recognised by shape, so code must
never pass them to a logger; the redaction is the safety net, not the policy.
"""

from __future__ import annotations

import contextvars
import json
import logging
import re
import sys
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from datetime import UTC, datetime
from types import MappingProxyType
from typing import IO, Any

#: ``extra`` / context keys that may reach a log line, and the JSON key each becomes.
ALLOWED_FIELDS: Mapping[str, str] = {
    "tenant": "tenant",
    "correlation_id": "correlationId",
    "correlationId": "correlationId",
    "user_id": "userId",
    "userId": "userId",
    "event_id": "eventId",
    "eventId": "eventId",
}

EMAIL_MARK = "[email]"
TOKEN_MARK = "[redacted]"

_EMAIL = re.compile(r"[A-Za-z0-9._%+\-']+@[A-Za-z0-9\-]+(?:\.[A-Za-z0-9\-]+)+")
_TOKEN_CHARS = r"[A-Za-z0-9._~+/=\-]"
# A credential after "Bearer"/"Basic" looks like one: 16 characters or more, or shorter
# with a digit or punctuation in it ("abc.def"), so prose ("bearer token required") stays.
_BEARER = re.compile(
    rf"(?i)\b(bearer|basic)\s+(?={_TOKEN_CHARS}{{16}}|{_TOKEN_CHARS}*[0-9._~+/=\-])"
    rf"{_TOKEN_CHARS}+"
)
_JWT = re.compile(r"\beyJ[A-Za-z0-9_\-]+\.[A-Za-z0-9_\-]+\.[A-Za-z0-9_\-]*")
_SECRET_PAIR = re.compile(
    r"(?i)\b(client_secret|secret|password|passwd|access_token|refresh_token|id_token|"
    r"token|authorization|api[_-]?key|assertion)(\"?\s*[:=]\s*\"?)([^\s\"'&,;}]+)"
)

_context: contextvars.ContextVar[Mapping[str, str]] = contextvars.ContextVar(
    "mmsd_log_context", default=MappingProxyType({})
)


def redact(text: str) -> str:
    """``text`` with e-mail addresses, bearer tokens, JWTs and ``secret=…`` values masked."""
    text = _BEARER.sub(lambda m: f"{m.group(1)} {TOKEN_MARK}", text)
    text = _JWT.sub(TOKEN_MARK, text)
    text = _SECRET_PAIR.sub(lambda m: f"{m.group(1)}{m.group(2)}{TOKEN_MARK}", text)
    return _EMAIL.sub(EMAIL_MARK, text)


@contextmanager
def log_context(**ids: str | None) -> Iterator[None]:
    """Attach identifiers (``tenant``, ``correlation_id``, ``user_id``, ``event_id``) to
    every line logged in this context (this task and the tasks it starts).

    Unknown names raise ``ValueError`` at once, so a mistake shows in tests rather than
    as a silently dropped field.
    """
    unknown = [name for name in ids if name not in ALLOWED_FIELDS]
    if unknown:
        raise ValueError(f"not a loggable identifier: {', '.join(unknown)}")
    merged = {**_context.get(), **{k: v for k, v in ids.items() if v is not None}}
    token = _context.set(MappingProxyType(merged))
    try:
        yield
    finally:
        _context.reset(token)


class JsonFormatter(logging.Formatter):
    """One JSON object per record: time, level, logger, redacted message, allowed IDs."""

    def format(self, record: logging.LogRecord) -> str:
        """Render ``record`` as one line of JSON (no newline inside)."""
        out: dict[str, Any] = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": redact(self._message(record)),
        }
        ids: dict[str, str] = {}
        for source in (_context.get(), record.__dict__):
            for name, key in ALLOWED_FIELDS.items():
                value = source.get(name)
                if value is not None:
                    ids[key] = redact(str(value))
        out.update(ids)
        if record.exc_info:
            exc_type = record.exc_info[0]
            out["exception"] = exc_type.__name__ if exc_type is not None else None
            out["traceback"] = redact(self.formatException(record.exc_info))
        elif record.exc_text:
            out["traceback"] = redact(record.exc_text)
        if record.stack_info:
            out["stack"] = redact(self.formatStack(record.stack_info))
        return json.dumps(out, ensure_ascii=False, separators=(",", ":"), default=str)

    @staticmethod
    def _message(record: logging.LogRecord) -> str:
        try:
            return record.getMessage()
        except Exception:  # a bad format string must not lose the line
            return str(record.msg)


def setup_logging(level: str | int = "info", stream: IO[str] | None = None) -> logging.Handler:
    """Send every log record to ``stream`` (stdout) as JSON lines; returns the handler.

    Replaces the root logger's handlers, so it is idempotent; quiets the chatty
    third-party loggers (aiohttp access, azure, httpx) to warnings.
    """
    handler = logging.StreamHandler(stream if stream is not None else sys.stdout)
    handler.setFormatter(JsonFormatter())
    root = logging.getLogger()
    for old in list(root.handlers):
        root.removeHandler(old)
    root.addHandler(handler)
    root.setLevel(level.upper() if isinstance(level, str) else level)
    for noisy in ("aiohttp.access", "azure", "httpx", "httpcore", "msal", "kiota"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
    return handler
