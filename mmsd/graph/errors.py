"""Typed outcomes of Graph calls, so that callers branch on types, not on status codes.

The engine needs to tell apart: a call that failed for good (``GraphError`` and its
subclasses), a mailbox Graph cannot reach (``MailboxNotEnabled``: fail the user at
once), a stale ETag (``PreconditionFailed``: re-read and redo), a call whose effect is
unknown (``OutcomeUnknown``: read the event back, never resend blindly), and a quota
that will only free up later (``QuotaExhausted``: wait, spending no attempt).
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from typing import Any

#: Statuses mmsd retries with back-off (SPEC section 3).
TRANSIENT_STATUSES = frozenset({429, 503, 504})

#: Codes Graph gives for a mailbox on Exchange on-premises or otherwise not reachable.
MAILBOX_NOT_ENABLED_CODES = frozenset(
    {"MailboxNotEnabledForRESTAPI", "MailboxNotSupportedForRESTAPI"}
)

#: Codes of a 404 that mean "this item is gone", not "this mailbox is unreachable".
ITEM_NOT_FOUND_CODES = frozenset({"ErrorItemNotFound", "itemNotFound"})


class GraphError(Exception):
    """A Graph call that ended with an error status (after mmsd's own retries)."""

    def __init__(
        self,
        status: int,
        code: str,
        message: str,
        *,
        retry_after: float | None = None,
        operation: str = "",
    ) -> None:
        super().__init__(f"{operation or 'graph'}: {status} {code}: {message}")
        self.status = status
        self.code = code
        self.message = message
        self.retry_after = retry_after
        self.operation = operation

    @property
    def transient(self) -> bool:
        """True when a later attempt may succeed (throttling, unavailable, gateway timeout)."""
        return is_transient(self.status)


class MailboxNotEnabled(GraphError):
    """The organizer's mailbox is not reachable through Graph (on-premises or inactive)."""


class NotFound(GraphError):
    """The user, event or online meeting does not exist (404 that is not a mailbox problem)."""


class PreconditionFailed(GraphError):
    """412: the ETag sent in ``If-Match`` is stale; re-read the event and redo the change."""


class OutcomeUnknown(Exception):
    """A non-idempotent call may or may not have been applied (timeout, reset, 504).

    It is never retried blindly: the caller reads the resource back to find out.
    """

    def __init__(self, operation: str, cause: str) -> None:
        super().__init__(f"{operation}: outcome unknown ({cause})")
        self.operation = operation
        self.cause = cause


class QuotaExhausted(Exception):
    """A quota (online meetings a month, recipients a day) is spent until ``until``."""

    def __init__(self, scope: str, until: datetime) -> None:
        super().__init__(f"{scope} quota exhausted until {until.isoformat()}")
        self.scope = scope
        self.until = until


class TransportError(Exception):
    """A request that never got an answer after every attempt (connect failures, resets)."""

    def __init__(self, operation: str, cause: str) -> None:
        super().__init__(f"{operation}: no answer ({cause})")
        self.operation = operation
        self.cause = cause

    @property
    def transient(self) -> bool:
        """Always true: the network may come back; the engine retries the user later."""
        return True


def is_transient(status_or_error: int | BaseException) -> bool:
    """Whether a status code or an exception is worth another attempt later."""
    if isinstance(status_or_error, int):
        return status_or_error in TRANSIENT_STATUSES
    if isinstance(status_or_error, GraphError):
        return status_or_error.transient
    return isinstance(status_or_error, TransportError)


def parse_retry_after(value: str | None, now: datetime | None = None) -> float | None:
    """Seconds to wait from a ``Retry-After`` header: integer/decimal seconds or an HTTP-date."""
    if value is None:
        return None
    text = value.strip()
    if not text:
        return None
    try:
        seconds = float(text)
    except ValueError:
        try:
            when = parsedate_to_datetime(text)
        except (TypeError, ValueError, IndexError):
            return None
        if when.tzinfo is None:
            when = when.replace(tzinfo=UTC)
        reference = now if now is not None else datetime.now(UTC)
        return max(0.0, (when - reference).total_seconds())
    if seconds != seconds or seconds < 0:  # NaN or negative
        return None
    return seconds


def error_fields(body: bytes | dict[str, Any] | None) -> tuple[str, str]:
    """The ``(code, message)`` of a Graph error body; empty strings when it has none."""
    data: Any = body
    if isinstance(body, bytes | bytearray):
        try:
            data = json.loads(body) if body else None
        except ValueError:
            return "", ""
    if not isinstance(data, dict):
        return "", ""
    error = data.get("error")
    if not isinstance(error, dict):
        return "", ""
    code = error.get("code")
    message = error.get("message")
    return (code if isinstance(code, str) else ""), (message if isinstance(message, str) else "")


def make_error(
    status: int,
    body: bytes | dict[str, Any] | None,
    *,
    operation: str,
    retry_after: float | None = None,
    mailbox_call: bool = False,
) -> GraphError:
    """Build the right ``GraphError`` subclass for an error answer.

    ``mailbox_call`` says the request addressed an Outlook resource of a user; there a
    404 whose code is not "item not found" means the mailbox itself is not reachable.
    """
    code, message = error_fields(body)
    cls: type[GraphError] = GraphError
    if code in MAILBOX_NOT_ENABLED_CODES:
        cls = MailboxNotEnabled
    elif status == 404:
        cls = MailboxNotEnabled if mailbox_call and code not in ITEM_NOT_FOUND_CODES else NotFound
    elif status == 412:
        cls = PreconditionFailed
    return cls(status, code, message, retry_after=retry_after, operation=operation)
