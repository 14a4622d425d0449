"""The simulator's transport-free Graph request pipeline: requests, answers, errors, routing.

Graph calls reach the simulator two ways: as HTTP requests, and as the parts of a
``$batch``. Both go through :func:`dispatch` with a :class:`GraphRequest`, so that
each request of a batch is routed, counted, throttled and delayed exactly like a
direct one. Handlers are plain coroutines ``(ctx, request, params) -> GraphResponse``;
the aiohttp layer (``server.py``) only converts to and from HTTP and adds auth and
faults.
"""

from __future__ import annotations

import asyncio
import enum
import json
import random
import re
import uuid
from collections import Counter
from collections.abc import Awaitable, Callable, Iterator, Mapping
from contextlib import AbstractAsyncContextManager, nullcontext
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qsl, urlencode

from mmsd.clock import SimulatedClock, format_rfc3339
from mmsd.sim.model import JSON, MailboxLocation, SimUser, TenantState

if TYPE_CHECKING:
    from mmsd.sim.delivery import Mailer, OutgoingMessage
    from mmsd.sim.faults import FaultPlan
    from mmsd.sim.limits import LimitsProfile
    from mmsd.sim.sending import SendingLimiter
    from mmsd.sim.throttle import Throttler

JSON_CONTENT_TYPE = (
    "application/json;odata.metadata=minimal;odata.streaming=true;"
    "IEEE754Compatible=false;charset=utf-8"
)


ENTITY_CACHE_SIZE = 20_000


class Resource(enum.StrEnum):
    """Which of Graph's throttling families a route belongs to."""

    DIRECTORY = "directory"  # users, delta: only the overall app limit
    OUTLOOK = "outlook"  # events, calendarView, instances, messages: per mailbox
    TEAMS = "teams"  # onlineMeetings: per tenant
    BATCH = "batch"  # $batch itself; its parts are throttled on their own


@dataclass
class GraphRequest:
    """One Graph request, from HTTP or from a ``$batch``; ``path`` is relative to /v1.0."""

    method: str
    path: str
    query: dict[str, str]
    headers: Mapping[str, str]
    body: bytes = b""
    in_batch: bool = False

    def header(self, name: str) -> str | None:
        """A header value, case-insensitively."""
        value = self.headers.get(name)
        if value is None:
            low = name.lower()
            for key, val in self.headers.items():
                if key.lower() == low:
                    return val
        return value

    def json(self) -> Any:
        """The body parsed as JSON (400 ``BadRequest`` when it is not)."""
        if not self.body:
            raise GraphError(400, "BadRequest", "Empty Payload. JSON content expected.")
        try:
            return json.loads(self.body)
        except (ValueError, UnicodeDecodeError) as exc:
            raise GraphError(400, "BadRequest", "Unable to read JSON request payload.") from exc

    def json_object(self) -> JSON:
        """The body as a JSON object (400 when it is anything else)."""
        data = self.json()
        if not isinstance(data, dict):
            raise GraphError(400, "BadRequest", "Unable to read JSON request payload.")
        return data

    def prefer(self) -> dict[str, str]:
        """The ``Prefer`` header's preferences, name -> value (quotes stripped)."""
        raw = self.header("Prefer")
        out: dict[str, str] = {}
        if not raw:
            return out
        for part in raw.split(","):
            name, _, value = part.strip().partition("=")
            if name:
                out[name.strip().lower()] = value.strip().strip('"')
        return out


@dataclass
class GraphResponse:
    """An answer before it becomes HTTP (or a ``$batch`` response item)."""

    status: int
    body: bytes = b""
    headers: dict[str, str] = field(default_factory=dict)
    hold_event_id: str | None = None  # a PATCH of this event was applied: maybe hold here
    payload: Any = None  # the JSON value of ``body`` when cheaply known (for $batch)
    drop_connection: bool = False  # lose the answer: close the connection instead (a $batch)


class AnswerLost(asyncio.CancelledError):
    """Raised by :func:`dispatch` to close the connection without an answer.

    A ``$batch`` part whose answer is lost (``reset``, ``lostPatchAnswer``) loses the
    whole batch's answer: the client cannot know which parts were applied. The
    pipeline has no transport at hand; aiohttp closes the connection, writing
    nothing, when a handler raises ``CancelledError`` — which this is.
    """


class GraphError(Exception):
    """A Graph error answer: status, code and message (body built by :func:`error_response`)."""

    def __init__(
        self, status: int, code: str, message: str, headers: dict[str, str] | None = None
    ) -> None:
        super().__init__(f"{status} {code}: {message}")
        self.status = status
        self.code = code
        self.message = message
        self.headers = headers or {}


def _request_ids(req: GraphRequest | None) -> tuple[str, str]:
    rid = str(uuid.uuid4())
    client = req.header("client-request-id") if req is not None else None
    return rid, client or rid


def error_json(code: str, message: str, req: GraphRequest | None, now: datetime) -> JSON:
    """Graph's error body: ``{"error": {"code", "message", "innerError": {...}}}``."""
    rid, client = _request_ids(req)
    return {
        "error": {
            "code": code,
            "message": message,
            "innerError": {
                "date": now.strftime("%Y-%m-%dT%H:%M:%S"),
                "request-id": rid,
                "client-request-id": client,
            },
        }
    }


def error_response(err: GraphError, req: GraphRequest | None, now: datetime) -> GraphResponse:
    """Render a :class:`GraphError` as an answer."""
    payload = error_json(err.code, err.message, req, now)
    headers = {"Content-Type": JSON_CONTENT_TYPE, **err.headers}
    return GraphResponse(err.status, json_bytes(payload), headers, payload=payload)


def json_bytes(payload: Any) -> bytes:
    """Serialize once, compactly, keeping Unicode as UTF-8 (never ``\\u`` escapes)."""
    return json.dumps(payload, ensure_ascii=False, separators=(",", ":")).encode()


def ok(payload: Any, status: int = 200, headers: dict[str, str] | None = None) -> GraphResponse:
    """A JSON answer."""
    hdrs = {"Content-Type": JSON_CONTENT_TYPE}
    if headers:
        hdrs.update(headers)
    return GraphResponse(status, json_bytes(payload), hdrs, payload=payload)


def not_found_user(key: str) -> GraphError:
    """Graph's answer for an unknown user."""
    return GraphError(
        404,
        "Request_ResourceNotFound",
        f"Resource '{key}' does not exist or one of its queried reference-property "
        "objects are not present.",
    )


def not_found_item() -> GraphError:
    """Exchange's answer for an unknown item (event, message)."""
    return GraphError(404, "ErrorItemNotFound", "The specified object was not found in the store.")


MAILBOX_NOT_ENABLED = GraphError(
    404, "MailboxNotEnabledForRESTAPI", "REST API is not yet supported for this mailbox."
)


@dataclass
class SimCounters:
    """What ``GET /_sim/counters`` reports (429s come from the throttler)."""

    requests: Counter[str] = field(default_factory=Counter)  # "GET events" -> n
    patches: Counter[str] = field(default_factory=Counter)  # event id -> successful PATCHes
    messages: Counter[str] = field(default_factory=Counter)  # mailbox id -> delivered
    online_meetings_created: int = 0
    faults: Counter[str] = field(default_factory=Counter)  # fault kind -> n
    statuses: Counter[str] = field(default_factory=Counter)  # "429" -> n (all answers)

    def to_json(self) -> JSON:
        """Counters as JSON."""
        return {
            "requests": dict(sorted(self.requests.items())),
            "patchesByEvent": dict(sorted(self.patches.items())),
            "messagesByMailbox": dict(sorted(self.messages.items())),
            "onlineMeetingsCreated": self.online_meetings_created,
            "faults": dict(sorted(self.faults.items())),
            "statuses": dict(sorted(self.statuses.items())),
        }


class SimContext:
    """Everything a handler may touch: tenant state, clock, limits machinery, counters."""

    def __init__(
        self,
        *,
        state: TenantState,
        clock: SimulatedClock,
        throttler: Throttler,
        sender: SendingLimiter[OutgoingMessage],
        faults: FaultPlan,
        limits: LimitsProfile,
        latency_ms: float,
        seed: int,
    ) -> None:
        self.state = state
        self.clock = clock
        self.throttler = throttler
        self.sender = sender
        self.faults = faults
        self.limits = limits
        self.latency_ms = latency_ms
        self.counters = SimCounters()
        self.base_url = "http://127.0.0.1/v1.0"
        self._jitter = random.Random(seed)
        self.deliver_due: Callable[[], None] = lambda: None  # set by the Mailer
        self.mailer: Mailer | None = None  # set by the server
        self.join_cache: dict[tuple[object, str], JSON] = {}  # joinInformation by meeting+dial-in
        self.entity_cache: dict[str, tuple[str, bytes]] = {}  # event id -> (etag, answer)

    def cache_entity(self, key: str, etag: str, raw: bytes) -> tuple[str, bytes]:
        """Remember a serialized answer for ``key`` at version ``etag`` (bounded, then reset)."""
        if len(self.entity_cache) >= ENTITY_CACHE_SIZE:
            self.entity_cache.clear()
        entry = (etag, raw)
        self.entity_cache[key] = entry
        return entry

    def now(self) -> datetime:
        """The simulated wall time."""
        return self.clock.now()

    def now_text(self) -> str:
        """The simulated wall time as Graph writes it (RFC 3339, ``Z``)."""
        return format_rfc3339(self.clock.now())

    def latency_s(self) -> float:
        """One request's simulated service time: ``latency_ms`` with +-25 % seeded jitter."""
        if self.latency_ms <= 0:
            return 0.0
        return self.latency_ms * (0.75 + 0.5 * self._jitter.random()) / 1000.0

    def require_user(self, key: str) -> SimUser:
        """The user named in the path, or 404 ``Request_ResourceNotFound``."""
        user = self.state.user(key)
        if user is None:
            raise not_found_user(key)
        return user

    def require_mailbox(self, key: str) -> SimUser:
        """The user, whose mailbox must be in Exchange Online (else MailboxNotEnabledForRESTAPI)."""
        user = self.require_user(key)
        if user.mailbox is not MailboxLocation.EXCHANGE_ONLINE:
            raise MAILBOX_NOT_ENABLED
        return user

    def next_link(self, req: GraphRequest, **changes: str | None) -> str:
        """An absolute ``@odata.nextLink`` for ``req`` with query parameters changed."""
        query = dict(req.query)
        for key, value in changes.items():
            name = "$" + key if not key.startswith("$") else key
            if value is None:
                query.pop(name, None)
            else:
                query[name] = value
        return f"{self.base_url}/{req.path.lstrip('/')}?{urlencode(query, safe='$()=,/')}"


Handler = Callable[[SimContext, GraphRequest, dict[str, str]], Awaitable[GraphResponse]]


@dataclass(frozen=True)
class Route:
    """One Graph route: method, path pattern, handler, counter name, throttling family."""

    method: str
    pattern: re.Pattern[str]
    handler: Handler
    name: str
    resource: Resource
    user_param: str | None = "user"  # the path parameter naming the mailbox / user


class Router:
    """Matches (method, path) to a route; paths are relative to ``/v1.0``."""

    def __init__(self) -> None:
        self._routes: list[Route] = []

    def add(
        self,
        method: str,
        template: str,
        handler: Handler,
        name: str,
        resource: Resource,
        user_param: str | None = "user",
    ) -> None:
        """Add a route; ``{name}`` in ``template`` matches one path segment."""
        parts = []
        for seg in template.strip("/").split("/"):
            if seg.startswith("{") and seg.endswith("}"):
                parts.append(f"(?P<{seg[1:-1]}>[^/]+)")
            else:
                parts.append(re.escape(seg))
        regex = "/" + "/".join(parts)
        self._routes.append(
            Route(
                method,
                re.compile(f"^{regex}/?$", re.IGNORECASE),
                handler,
                name,
                resource,
                user_param,
            )
        )

    def match(self, method: str, path: str) -> tuple[Route, dict[str, str]] | None:
        """The first matching route and its parameters, or None."""
        path_matched = False
        for route in self._routes:
            m = route.pattern.match(path)
            if m is None:
                continue
            path_matched = True
            if route.method == method:
                return route, m.groupdict()
        if path_matched:
            raise GraphError(405, "BadRequest", f"The HTTP method '{method}' is not allowed.")
        return None

    def __iter__(self) -> Iterator[Route]:
        return iter(self._routes)


def split_url(url: str) -> tuple[str, dict[str, str]]:
    """Split a relative Graph URL (``/users/x/events?$top=5``) into path and query."""
    path, _, query = url.partition("?")
    if path.lower().startswith("/v1.0/"):
        path = path[5:]
    return "/" + path.lstrip("/"), dict(parse_qsl(query, keep_blank_values=True))


def _throttled(exc: Any, req: GraphRequest, now: datetime) -> GraphResponse:
    err = GraphError(429, exc.code, exc.message, {"Retry-After": str(int(exc.retry_after))})
    return error_response(err, req, now)


async def dispatch(ctx: SimContext, router: Router, req: GraphRequest) -> GraphResponse:
    """Route, count, throttle, delay and run one Graph request; never raises GraphError.

    Raises :class:`AnswerLost` for a top-level answer marked ``drop_connection``.
    """
    from mmsd.sim.throttle import Throttled

    now = ctx.now()
    try:
        found = router.match(req.method, req.path)
        if found is None:
            segment = req.path.strip("/").split("/")[-1] or req.path
            raise GraphError(400, "BadRequest", f"Resource not found for the segment '{segment}'.")
        route, params = found
        ctx.counters.requests[f"{req.method} {route.name}"] += 1
        guard: AbstractAsyncContextManager[Any] = nullcontext()
        batch = route.resource is Resource.BATCH
        try:
            if not batch:  # a batch's parts count, the batch itself does not
                ctx.throttler.app()
            if route.resource is Resource.OUTLOOK and route.user_param is not None:
                user = ctx.require_mailbox(params[route.user_param])
                upload = len(req.body) if req.method in ("POST", "PATCH", "PUT") else 0
                try:
                    guard = ctx.throttler.outlook(user.id, upload)
                except ValueError as exc:
                    raise GraphError(
                        413, "RequestEntityTooLarge", "The request body is too large."
                    ) from exc
            elif route.resource is Resource.TEAMS:
                ctx.throttler.teams()
            async with guard:
                delay = 0.0 if batch else ctx.latency_s()
                if delay > 0:
                    await asyncio.sleep(delay)
                response = await route.handler(ctx, req, params)
        except Throttled as exc:
            response = _throttled(exc, req, now)
    except GraphError as err:
        response = error_response(err, req, now)
    if response.hold_event_id is not None:
        await ctx.faults.maybe_hold(response.hold_event_id)
    rid, client = _request_ids(req)
    response.headers.setdefault("request-id", rid)
    response.headers.setdefault("client-request-id", client)
    ctx.counters.statuses[str(response.status)] += 1
    if response.drop_connection and not req.in_batch:
        raise AnswerLost("the answer is lost: the connection closes without it")
    return response


def parse_select(req: GraphRequest) -> list[str] | None:
    """The ``$select`` list, or None when absent."""
    raw = req.query.get("$select")
    if raw is None:
        return None
    return [s.strip() for s in raw.split(",") if s.strip()]


def parse_int(req: GraphRequest, name: str, default: int, maximum: int) -> int:
    """A non-negative integer query parameter such as ``$top`` (400 when malformed)."""
    raw = req.query.get(name)
    if raw is None:
        return default
    try:
        value = int(raw)
    except ValueError as exc:
        raise GraphError(400, "BadRequest", f"Invalid value '{raw}' for {name}.") from exc
    if value < 0:
        raise GraphError(400, "BadRequest", f"Invalid value '{raw}' for {name}.")
    return min(value, maximum)


def page_size(req: GraphRequest, default: int, maximum: int) -> int:
    """Page size from ``$top``, else ``Prefer: odata.maxpagesize``, else ``default``."""
    if "$top" in req.query:
        return max(1, parse_int(req, "$top", default, maximum))
    pref = req.prefer().get("odata.maxpagesize")
    if pref is not None and pref.isdigit() and int(pref) > 0:
        return min(int(pref), maximum)
    return default


def project(item: JSON, select: list[str] | None, always: tuple[str, ...]) -> JSON:
    """``item`` restricted to ``select`` (plus the ``always`` keys); ``item`` itself if None."""
    if select is None:
        return item
    out: JSON = {}
    for key in always:
        if key in item:
            out[key] = item[key]
    for key in select:
        if key in item:
            out[key] = item[key]
        else:
            for real in item:
                if real.lower() == key.lower():
                    out[real] = item[real]
                    break
    return out
