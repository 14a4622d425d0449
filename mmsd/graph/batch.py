"""JSON batching (``POST /$batch``): the items mmsd sends and the results it gets back.

Raw JSON both ways — no typed models — because batching exists here to save CPU.
Graph answers each item on its own (and throttles each on its own), in any order;
:func:`decode_batch_response` maps answers back to the items by ``id``.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

#: Graph's maximum number of requests in one batch.
MAX_BATCH = 20


@dataclass(frozen=True)
class BatchItem:
    """One request inside a batch; ``url`` is relative to the version root (``/users/…``)."""

    method: str
    url: str
    body: Mapping[str, Any] | None = None
    headers: Mapping[str, str] = field(default_factory=dict)
    operation: str = "batch_item"

    @property
    def idempotent(self) -> bool:
        """True when resending cannot apply the request twice (GET, or createOrGet)."""
        method = self.method.upper()
        return method == "GET" or (
            method == "POST" and self.url.split("?")[0].endswith("/createOrGet")
        )


@dataclass(frozen=True)
class BatchResult:
    """The answer to one :class:`BatchItem`: status, headers (lower-case keys), parsed body.

    ``error`` is None on success, else a ``GraphError`` (or subclass), ``OutcomeUnknown``
    for a non-idempotent item whose effect is unknown, or ``TransportError``.
    """

    item: BatchItem
    status: int
    headers: Mapping[str, str]
    body: Any
    error: Exception | None = None

    @property
    def ok(self) -> bool:
        """True for a 2xx answer."""
        return self.error is None and 200 <= self.status < 300


@dataclass(frozen=True)
class RawItemResponse:
    """One decoded item of a batch answer, before classification."""

    status: int
    headers: Mapping[str, str]
    body: Any


def encode_body(item: BatchItem) -> bytes | None:
    """An item's body as it goes into the ``$batch`` (compact UTF-8 JSON); None without one.

    The client measures an item's upload size from these bytes and hands them to
    :func:`encode_batch`, so a body is encoded once however often it is sent.
    """
    if item.body is None:
        return None
    return json.dumps(item.body, separators=(",", ":"), ensure_ascii=False).encode()


def encode_batch(
    items: Sequence[tuple[str, BatchItem]], bodies: Sequence[bytes | None] | None = None
) -> bytes:
    """The ``$batch`` request body for ``(id, item)`` pairs (at most :data:`MAX_BATCH`).

    ``bodies``: the items' bodies already encoded by :func:`encode_body` (same order).
    """
    if len(items) > MAX_BATCH:
        raise ValueError(f"a batch holds at most {MAX_BATCH} requests")
    if bodies is not None and len(bodies) != len(items):
        raise ValueError("one encoded body per item")
    parts: list[bytes] = []
    for n, (request_id, item) in enumerate(items):
        entry: dict[str, Any] = {"id": request_id, "method": item.method.upper(), "url": item.url}
        headers = dict(item.headers)
        if item.body is not None and not any(k.lower() == "content-type" for k in headers):
            headers["Content-Type"] = "application/json"
        if headers:
            entry["headers"] = headers
        head = json.dumps(entry, separators=(",", ":"), ensure_ascii=False).encode()
        body = (bodies[n] if bodies is not None else None) or encode_body(item)
        parts.append(head if body is None else head[:-1] + b',"body":' + body + b"}")
    return b'{"requests":[' + b",".join(parts) + b"]}"


def decode_batch_response(content: bytes) -> dict[str, RawItemResponse]:
    """Map each item id to its answer; raise ``ValueError`` on a body that is not a batch answer."""
    data = json.loads(content)
    if not isinstance(data, dict) or not isinstance(data.get("responses"), list):
        raise ValueError("not a $batch answer")
    answers: dict[str, RawItemResponse] = {}
    for entry in data["responses"]:
        if (
            not isinstance(entry, dict)
            or "id" not in entry
            or not isinstance(entry.get("status"), int)
        ):
            raise ValueError("malformed $batch answer item")
        raw_headers = entry.get("headers") or {}
        headers = (
            {str(k).lower(): str(v) for k, v in raw_headers.items()}
            if isinstance(raw_headers, dict)
            else {}
        )
        answers[str(entry["id"])] = RawItemResponse(entry["status"], headers, entry.get("body"))
    return answers


def chunks(items: Sequence[Any], size: int = MAX_BATCH) -> list[list[Any]]:
    """Split ``items`` into lists of at most ``size``."""
    return [list(items[i : i + size]) for i in range(0, len(items), size)]
