"""mmsd's one Graph client: msgraph-sdk's request stack, raw JSON, mmsd-owned retries.

Requests go through msgraph's ``GraphRequestAdapter`` (kiota's azure-identity
authentication, allowed hosts, msgraph_core's transport) with kiota's RetryHandler
and RedirectHandler left out of the middleware: every 429 reaches mmsd's pacers and
metrics, and a 3xx is an error rather than a silent re-send. Each call is a
``RequestInformation`` sent with ``send_primitive_async(info, "bytes", None)`` and a
response handler that hands back the raw ``httpx.Response``; bodies are parsed with
``json.loads`` — no typed models on the hot path.

Retries (SPEC section 3): 429/503/504, timeouts and connection resets are retried
with exponential back-off and seeded jitter, honouring ``Retry-After``, at most
``RetryPolicy.max_attempts`` attempts a call. A PATCH whose answer was lost (read
timeout, reset, 504) raises :class:`OutcomeUnknown` instead of being resent.

Identify users by object ID in every call: pacing is keyed by the ID given.
"""

from __future__ import annotations

import asyncio
import json
import random
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Protocol
from urllib.parse import quote, urlsplit

import httpx
from azure.core.exceptions import ClientAuthenticationError, ServiceRequestError

from mmsd.clock import Clock, SystemClock, format_rfc3339
from mmsd.graph.auth import CachingCredential, build_credential
from mmsd.graph.batch import (
    MAX_BATCH,
    BatchItem,
    BatchResult,
    RawItemResponse,
    chunks,
    encode_body,
)
from mmsd.graph.errors import (
    GraphError,
    OutcomeUnknown,
    QuotaExhausted,
    TransportError,
    error_fields,
    make_error,
    parse_retry_after,
)
from mmsd.graph.lane import BatchLane, SentBatch
from mmsd.graph.pacing import (
    AppPacer,
    GraphLimits,
    Permit,
    RequestCost,
    RetryPolicy,
    SendingPacer,
    TenantPacer,
    request_cost,
)
from mmsd.graph.transport import AiohttpTransport

GRAPH_SCOPE = "https://graph.microsoft.com/.default"
INSTANCES_PAGE_SIZE = 500
DEFAULT_BASE_URL = "https://graph.microsoft.com/v1.0"

JSON = dict[str, Any]
Sleep = Callable[[float], Awaitable[None]]

_NO_ANSWER = RawItemResponse(0, {}, None)

# Transport failures where the request surely never reached the server.
_NOT_SENT = (httpx.ConnectError, httpx.ConnectTimeout, httpx.PoolTimeout)


@dataclass(frozen=True)
class RequestEvent:
    """One Graph request as metrics see it (no user, no URL: nothing per-user)."""

    tenant: str
    operation: str
    status: int  # 0 when no answer came (timeout, reset)
    status_class: str  # "2xx", "3xx", "4xx", "5xx" or "error"
    latency_s: float
    throttled: bool
    retry_after_s: float | None
    attempt: int
    batched: bool = False


class GraphObserver(Protocol):
    """Called once per Graph request (and per item of a batch); the metrics module plugs in here."""

    def on_request(self, event: RequestEvent) -> None:
        """Record one request; must be fast and must not raise."""
        ...


@dataclass(frozen=True)
class RawResponse:
    """A Graph answer: status, headers, body bytes."""

    status: int
    headers: Mapping[str, str]
    content: bytes

    def json(self) -> Any:
        """The body parsed as JSON (None when empty)."""
        return json.loads(self.content) if self.content else None


@dataclass(frozen=True)
class DeltaResult:
    """Every user changed since the last delta link, and the next delta link."""

    users: list[JSON]
    delta_link: str


def _status_class(status: int) -> str:
    return f"{status // 100}xx" if 100 <= status < 600 else "error"


def _absolute(url: str) -> bool:
    return url.startswith(("https://", "http://"))


def _seg(value: str) -> str:
    return quote(value, safe="@=")


_QUERY_SAFE = "$,'():/@"


def _query(params: Mapping[str, str | None]) -> str:
    parts = [f"{k}={quote(v, safe=_QUERY_SAFE)}" for k, v in params.items() if v is not None]
    return ("?" + "&".join(parts)) if parts else ""


class _RawResponseHandler:
    """kiota response handler that returns the native ``httpx.Response`` untouched."""

    async def handle_response_async(self, response: Any, error_map: Any) -> Any:
        return response


class _CookiesIgnored(httpx.Cookies):
    """A cookie jar that keeps nothing: Graph's API needs no cookies."""

    def extract_cookies(self, response: httpx.Response) -> None:
        """Ignore ``Set-Cookie`` (httpx would parse it through ``http.cookiejar``)."""


class _GraphHttpClient(httpx.AsyncClient):
    """httpx's client for the SDK, without a cookie jar.

    httpx hands every response to ``http.cookiejar`` (building urllib request and
    response wrappers) to collect cookies; Graph's API is authorised by bearer
    token only, and that parsing was about 4 % of the daemon's CPU per request.
    """

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self._cookies = _CookiesIgnored()


def build_request_adapter(
    credential: Any,
    base_url: str,
    *,
    timeout_s: float = 60.0,
    connect_timeout_s: float = 10.0,
    max_connections: int = 8,
    transport: httpx.AsyncBaseTransport | None = None,
) -> Any:
    """msgraph's ``GraphRequestAdapter`` for ``base_url``, without kiota's retry and redirect.

    ``transport`` replaces httpx's network transport (benchmarks measuring client CPU).
    ``max_connections`` bounds httpx's pool: over plain HTTP/1.1 httpcore polls every idle
    pooled socket twice a request (``bench_engine.py cpu``: 17 % of the daemon's profiled
    CPU in the pool's scans with ~40 connections open, 7 % with 8). 8 keeps the pacing
    benchmark at its figure (4 queued requests and cost more); over HTTPS one HTTP/2
    connection multiplexes many requests.
    """
    from kiota_authentication_azure.azure_identity_authentication_provider import (
        AzureIdentityAuthenticationProvider,
    )
    from kiota_http.middleware import UserAgentHandler
    from msgraph import GraphRequestAdapter
    from msgraph._version import VERSION
    from msgraph_core import APIVersion, GraphClientFactory
    from msgraph_core.middleware import GraphTelemetryHandler
    from msgraph_core.middleware.options import GraphTelemetryHandlerOption

    host = urlsplit(base_url).hostname or ""
    auth = AzureIdentityAuthenticationProvider(
        credential, scopes=[GRAPH_SCOPE], allowed_hosts=[host]
    )
    http = _GraphHttpClient(
        timeout=httpx.Timeout(timeout_s, connect=connect_timeout_s),
        follow_redirects=False,
        transport=transport or AiohttpTransport(max_connections=max_connections),
    )
    middleware = [
        UserAgentHandler(),
        GraphTelemetryHandler(
            GraphTelemetryHandlerOption(api_version=APIVersion.v1, sdk_version=VERSION)
        ),
    ]
    http = GraphClientFactory.create_with_custom_middleware(middleware, client=http)
    adapter = GraphRequestAdapter(auth, client=http)
    # Spans carry no full URLs (they hold user IDs), and no URL is re-assembled per request.
    adapter.observability_options.include_euii_attributes = False
    adapter.base_url = base_url.rstrip("/")
    return adapter


class GraphClient:
    """The Graph calls the engine needs, raw dicts in and out, paced and retried by mmsd."""

    def __init__(
        self,
        adapter: Any,
        pacer: TenantPacer,
        *,
        tenant: str = "",
        retry: RetryPolicy | None = None,
        observer: GraphObserver | None = None,
        seed: int | None = None,
        sleep: Sleep = asyncio.sleep,
        credential: CachingCredential | None = None,
        batch_in_flight: int = 8,
        batch_reads: bool = True,
    ) -> None:
        self._adapter = adapter
        self._batch_reads = batch_reads
        self.pacer = pacer
        self.tenant = tenant
        self.retry = retry or RetryPolicy()
        self._observer = observer
        self._rng = random.Random(seed)
        self._sleep = sleep
        self._clock: Clock = pacer.clock
        self.credential = credential
        self.base_url: str = adapter.base_url.rstrip("/")
        self._lane = BatchLane(
            self._send_batch_request,
            max_items=min(MAX_BATCH, pacer.limits.batch_max_requests),
            max_in_flight=batch_in_flight,
            # With a quarter of the slots in flight, a part waits for others to fill its
            # batch (bench_engine.py cpu: 355 -> 284 $batch; pacing efficiency kept).
            eager_below=max(1, batch_in_flight // 4),
        )

    @classmethod
    def from_config(
        cls,
        config: Mapping[str, Any],
        *,
        tenant: str = "",
        clock: Clock | None = None,
        app_pacer: AppPacer | None = None,
        limits: GraphLimits | None = None,
        retry: RetryPolicy | None = None,
        observer: GraphObserver | None = None,
        seed: int | None = None,
    ) -> GraphClient:
        """A client for one tenant's config table (credential keys, ``graph_base_url``)."""
        clock = clock or SystemClock()
        credential = build_credential(config)
        base_url = str(config.get("graph_base_url") or DEFAULT_BASE_URL)
        adapter = build_request_adapter(credential, base_url)
        pacer = TenantPacer(clock, limits, app_pacer)
        return cls(
            adapter,
            pacer,
            tenant=tenant,
            retry=retry,
            observer=observer,
            seed=seed,
            credential=credential,
        )

    async def aclose(self) -> None:
        """Close the HTTP client and the credential."""
        await self._lane.aclose()
        http = self._adapter._http_client
        await http.aclose()
        # msgraph_core's AsyncGraphTransport wraps the network transport and does not
        # close it; the aiohttp session under it must be closed here.
        network = getattr(http._transport, "transport", None)
        if isinstance(network, httpx.AsyncBaseTransport):
            await network.aclose()
        if self.credential is not None:
            await self.credential.close()

    async def __aenter__(self) -> GraphClient:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()

    def sending(self, user: str) -> SendingPacer:
        """The sending pacer of an organizer's mailbox (messages a minute, recipients a day)."""
        return self.pacer.sending(user)

    # -- transport -------------------------------------------------------------------

    def _observe(
        self,
        operation: str,
        status: int,
        latency: float,
        retry_after: float | None,
        attempt: int,
        batched: bool = False,
    ) -> None:
        if self._observer is None:
            return
        try:
            self._observer.on_request(
                RequestEvent(
                    tenant=self.tenant,
                    operation=operation,
                    status=status,
                    status_class=_status_class(status),
                    latency_s=latency,
                    throttled=status == 429,
                    retry_after_s=retry_after,
                    attempt=attempt,
                    batched=batched,
                )
            )
        except Exception:  # metrics must never break a call
            pass

    async def send_raw(
        self,
        method: str,
        url: str,
        content: bytes | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> RawResponse:
        """Send one request through the SDK's adapter, once: no pacing, no retry."""
        from kiota_abstractions.method import Method
        from kiota_abstractions.request_information import RequestInformation
        from kiota_http.middleware.options import ResponseHandlerOption

        info = RequestInformation()
        info.http_method = Method(method.upper())
        info.url = url if _absolute(url) else self.base_url + url
        info.headers.try_add("Accept", "application/json")
        for key, value in (headers or {}).items():
            info.headers.add(key, value)
        if content is not None:
            info.headers.try_add("Content-Type", "application/json")
            info.content = content
        info.add_request_options([ResponseHandlerOption(_RawResponseHandler())])
        try:
            response: httpx.Response = await self._adapter.send_primitive_async(info, "bytes", None)
        except ServiceRequestError as exc:
            # The token endpoint could not be reached: the Graph request was never sent.
            raise httpx.ConnectError(f"token endpoint: {type(exc).__name__}") from exc
        except ClientAuthenticationError as exc:
            raise GraphError(401, "authenticationFailed", "no token for Graph") from exc
        return RawResponse(response.status_code, response.headers, response.content)

    def _relative_path(self, url: str) -> str:
        """The path of ``url`` below the version root (``/users/…``), for pacing."""
        if not _absolute(url):
            return url
        path = urlsplit(url).path
        root = urlsplit(self.base_url).path
        return path[len(root) :] if root and path.startswith(root + "/") else path

    def _batch_url(self, url: str) -> str | None:
        """``url`` as a batch item's URL (below the version root, query kept); None if elsewhere."""
        if not _absolute(url):
            return url if url.startswith("/") else None
        root = self.base_url + "/"
        return url[len(root) - 1 :] if url.startswith(root) else None

    def _backoff(self, attempt: int) -> float:
        return self.retry.backoff(attempt, self._rng.uniform)

    async def _call(
        self,
        operation: str,
        method: str,
        url: str,
        *,
        body: Mapping[str, Any] | None = None,
        headers: Mapping[str, str] | None = None,
        idempotent: bool | None = None,
    ) -> RawResponse:
        """One paced call with mmsd's retries; returns a 2xx answer or raises a typed error."""
        content = (
            json.dumps(body, separators=(",", ":"), ensure_ascii=False).encode()
            if body is not None
            else None
        )
        cost = request_cost(self._relative_path(url), len(content) if content else 0)
        if idempotent is None:
            idempotent = method.upper() == "GET"
        attempt = 0
        while True:
            attempt += 1
            permit = await self.pacer.acquire([cost])
            started = time.perf_counter()
            try:
                response = await self.send_raw(method, url, content, headers)
            except httpx.TransportError as exc:
                permit.release()  # never hold a mailbox slot while backing off
                self._observe(operation, 0, time.perf_counter() - started, None, attempt)
                cause = type(exc).__name__
                if not idempotent and not isinstance(exc, _NOT_SENT):
                    raise OutcomeUnknown(operation, cause) from exc
                if attempt >= self.retry.max_attempts:
                    raise TransportError(operation, cause) from exc
                await self._sleep(self._backoff(attempt))
                continue
            except BaseException:
                permit.release()
                raise
            # A 429 counts in no window at Graph, so it does not in mmsd's either.
            permit.release(refused=[cost] if response.status == 429 else ())
            status = response.status
            if status != 429 or "concurrency" not in error_fields(response.content)[1].lower():
                permit.answered()
            retry_after = parse_retry_after(response.headers.get("retry-after"), self._clock.now())
            self._observe(operation, status, time.perf_counter() - started, retry_after, attempt)
            if status < 300:
                return response
            error = self._classify(
                operation,
                status,
                response.content,
                retry_after,
                cost,
                idempotent,
                permit.peak_in_flight(cost.mailbox),
            )
            if error is None:
                delay = retry_after if retry_after is not None else self._backoff(attempt)
                if attempt < self.retry.max_attempts and delay <= self.retry.max_retry_after_s:
                    await self._sleep(delay)
                    continue
                raise make_error(
                    status,
                    response.content,
                    operation=operation,
                    retry_after=retry_after,
                    mailbox_call=cost.mailbox is not None,
                )
            raise error

    def _classify(
        self,
        operation: str,
        status: int,
        content: bytes | Any,
        retry_after: float | None,
        cost: RequestCost,
        idempotent: bool,
        peak_in_flight: int | None = None,
    ) -> Exception | None:
        """None when the answer is worth a retry; else the error to raise (or report).

        ``peak_in_flight``: the most requests of the mailbox mmsd had in flight while
        this one was out; a concurrency 429 learns the mailbox's limit from it.
        """
        if status == 429:
            _, message = error_fields(content)
            pause = retry_after if retry_after is not None else self.retry.base_delay_s
            self.pacer.throttled(cost, pause, message, peak_in_flight)
            return None
        if status == 504 and not idempotent:
            return OutcomeUnknown(operation, "504 gateway timeout")
        if status in (503, 504):
            return None
        return make_error(
            status,
            content,
            operation=operation,
            retry_after=retry_after,
            mailbox_call=cost.mailbox is not None,
        )

    async def _get_json(
        self,
        operation: str,
        url: str,
        headers: Mapping[str, str] | None = None,
        *,
        batched: bool = False,
    ) -> Any:
        """A GET's parsed answer; ``batched``: sent as an item of the lane's next ``$batch``.

        A GET inside a ``$batch`` shares one request's fixed cost with everything
        else leaving at that moment (the per-user reads: the user, the first page of
        their events), paced and retried as any batch item.
        """
        relative = self._batch_url(url) if batched and self._batch_reads else None
        if relative is None:
            return (await self._call(operation, "GET", url, headers=headers)).json()
        item = BatchItem("GET", relative, headers=dict(headers or {}), operation=operation)
        (result,) = await self.batch([item])
        if result.error is not None:
            raise result.error
        return result.body

    async def _pages(
        self, operation: str, url: str, headers: Mapping[str, str] | None = None
    ) -> AsyncIterator[JSON]:
        """Every page of a collection, following ``@odata.nextLink`` as given."""
        next_url: str | None = url
        while next_url:
            page = await self._get_json(operation, next_url, headers, batched=True)
            if not isinstance(page, dict):
                raise GraphError(200, "", "collection page is not an object", operation=operation)
            yield page
            link = page.get("@odata.nextLink")
            next_url = link if isinstance(link, str) and link else None

    # -- the engine's calls -------------------------------------------------------------

    async def get_user(self, id_or_upn: str, select: Sequence[str] | None = None) -> JSON:
        """One directory user (``NotFound`` when Graph does not know them)."""
        query = _query({"$select": ",".join(select) if select else None})
        data: JSON = await self._get_json(
            "get_user", f"/users/{_seg(id_or_upn)}{query}", batched=True
        )
        return data

    async def users_delta_pages(
        self, delta_link: str | None, select: Sequence[str]
    ) -> AsyncIterator[tuple[list[JSON], str | None]]:
        """Each page of users changed since ``delta_link`` (None: a baseline), one at a time.

        Yields ``(users, None)`` for every page but the last and ``(users, delta_link)``
        for the last, so a baseline of a large tenant is never held in memory at once.
        """
        url = (
            delta_link or f"/users/delta{_query({'$select': ','.join(select) if select else None})}"
        )
        next_url: str | None = url
        while next_url:
            page = await self._get_json("users_delta", next_url)
            users = list(page.get("value", []))
            if isinstance(page.get("@odata.deltaLink"), str):
                yield users, page["@odata.deltaLink"]
                return
            link = page.get("@odata.nextLink")
            next_url = link if isinstance(link, str) and link else None
            yield users, None
        raise GraphError(200, "", "users/delta ended without a deltaLink", operation="users_delta")

    async def users_delta(self, delta_link: str | None, select: Sequence[str]) -> DeltaResult:
        """Users changed since ``delta_link`` (None: a full baseline), paging to the new delta link."""
        url = (
            delta_link or f"/users/delta{_query({'$select': ','.join(select) if select else None})}"
        )
        users: list[JSON] = []
        next_url: str | None = url
        while next_url:
            page = await self._get_json("users_delta", next_url)
            users.extend(page.get("value", []))
            if isinstance(page.get("@odata.deltaLink"), str):
                return DeltaResult(users, page["@odata.deltaLink"])
            link = page.get("@odata.nextLink")
            next_url = link if isinstance(link, str) and link else None
        raise GraphError(200, "", "users/delta ended without a deltaLink", operation="users_delta")

    async def list_events(
        self,
        user: str,
        filter: str | None = None,
        select: Sequence[str] | None = None,
        page_size: int = 50,
        body_type: str | None = None,
    ) -> AsyncIterator[JSON]:
        """The user's events (single instances and series masters) matching ``filter``."""
        query = _query({"$filter": filter, "$select": ",".join(select) if select else None})
        prefer = [f"odata.maxpagesize={page_size}"]
        if body_type:
            prefer.append(f'outlook.body-content-type="{body_type}"')
        headers = {"Prefer": ", ".join(prefer)}
        async for page in self._pages("list_events", f"/users/{_seg(user)}/events{query}", headers):
            for event in page.get("value", []):
                yield event

    async def get_event(
        self, user: str, event_id: str, body_type: str = "html", select: Sequence[str] | None = None
    ) -> JSON:
        """One event with its body in ``body_type`` ("html" or "text") and its ``@odata.etag``."""
        query = _query({"$select": ",".join(select) if select else None})
        headers = {"Prefer": f'outlook.body-content-type="{body_type}"'}
        data: JSON = await self._get_json(
            "get_event",
            f"/users/{_seg(user)}/events/{_seg(event_id)}{query}",
            headers,
            batched=True,
        )
        return data

    async def patch_event(
        self, user: str, event_id: str, patch: Mapping[str, Any], if_match: str | None = None
    ) -> JSON:
        """PATCH an event (sends the update to attendees); never resent after a lost answer.

        Raises ``PreconditionFailed`` on a stale ``if_match`` and ``OutcomeUnknown`` when
        the PATCH may have been applied without mmsd seeing the answer.
        """
        headers = {"If-Match": if_match} if if_match else None
        response = await self._call(
            "patch_event",
            "PATCH",
            f"/users/{_seg(user)}/events/{_seg(event_id)}",
            body=patch,
            headers=headers,
        )
        data = response.json()
        return data if isinstance(data, dict) else {}

    async def list_instances(
        self,
        user: str,
        event_id: str,
        start: datetime,
        end: datetime,
        select: Sequence[str] | None = None,
    ) -> list[JSON]:
        """The occurrences and exceptions of a series between ``start`` and ``end``."""
        query = _query(
            {
                "startDateTime": format_rfc3339(start),
                "endDateTime": format_rfc3339(end),
                "$select": ",".join(select) if select else None,
            }
        )
        url = f"/users/{_seg(user)}/events/{_seg(event_id)}/instances{query}"
        # Graph's default page is 10 occurrences: a weekly series over a year would
        # cost six requests of the mailbox's budget instead of one.
        headers = {"Prefer": f"odata.maxpagesize={INSTANCES_PAGE_SIZE}"}
        found: list[JSON] = []
        async for page in self._pages("list_instances", url, headers):
            found.extend(page.get("value", []))
        return found

    async def find_online_meeting_by_join_url(
        self, user: str, url: str, select: Sequence[str] | None = None
    ) -> JSON | None:
        """The user's online meeting whose join URL is ``url`` (``select``: its fields), or None."""
        literal = url.replace("'", "''")
        query = _query(
            {
                "$filter": f"JoinWebUrl eq '{literal}'",
                "$select": ",".join(select) if select else None,
            }
        )
        page = await self._get_json(
            "find_online_meeting", f"/users/{_seg(user)}/onlineMeetings{query}"
        )
        values = page.get("value", []) if isinstance(page, dict) else []
        return values[0] if values else None

    async def create_or_get_online_meeting(
        self, user: str, external_id: str, subject: str, start: datetime, end: datetime
    ) -> JSON:
        """``createOrGet`` an online meeting keyed by ``external_id`` (safe to repeat).

        Raises ``QuotaExhausted`` without calling Graph when the user has created their
        monthly allowance of online meetings.
        """
        quota = self.pacer.meeting_quota(user)
        until = quota.reserve(1)
        if until is not None:
            raise QuotaExhausted("onlineMeetings", until)
        body = {
            "externalId": external_id,
            "subject": subject,
            "startDateTime": format_rfc3339(start),
            "endDateTime": format_rfc3339(end),
        }
        try:
            response = await self._call(
                "create_online_meeting",
                "POST",
                f"/users/{_seg(user)}/onlineMeetings/createOrGet",
                body=body,
                idempotent=True,
            )
        except BaseException:
            quota.refund(1)
            raise
        if response.status != 201:  # 200: it existed already, nothing was created
            quota.refund(1)
        data = response.json()
        return data if isinstance(data, dict) else {}

    # -- batching -----------------------------------------------------------------------

    async def batch(self, items: Sequence[BatchItem]) -> list[BatchResult]:
        """Send ``items`` as ``$batch`` requests of at most 20; results in ``items`` order.

        Each item is paced in its own scope; throttled or unavailable items are retried
        (in later batches, after their scope's pause) up to the retry policy's attempts.
        Non-idempotent items whose answer was lost come back with ``OutcomeUnknown``.
        """
        results: dict[int, BatchResult] = {}
        attempts = dict.fromkeys(range(len(items)), 0)
        pending = list(range(len(items)))
        bodies = [encode_body(item) for item in items]  # encoded once, sized from what is sent
        costs = [
            request_cost(item.url, 0 if body is None else len(body))
            for item, body in zip(items, bodies, strict=True)
        ]
        size = min(MAX_BATCH, self.pacer.limits.batch_max_requests)
        round_no = 0
        while pending:
            round_no += 1
            pending.sort(key=lambda i: (costs[i].mailbox or "", i))
            groups = chunks(pending, self._batch_size(pending, costs, size))
            if len(groups) == 1:
                outcomes = [await self._send_group(groups[0], items, bodies, costs, attempts)]
            else:
                outcomes = await asyncio.gather(
                    *(self._send_group(group, items, bodies, costs, attempts) for group in groups)
                )
            retry: list[int] = []
            delays: list[float] = []
            for group_retry, group_results, group_delay in outcomes:
                retry.extend(group_retry)
                results.update(group_results)
                delays.append(group_delay)
            pending = retry
            if pending:
                await self._sleep(max(delays))
        return [results[i] for i in range(len(items))]

    def _batch_size(self, pending: Sequence[int], costs: Sequence[RequestCost], size: int) -> int:
        """Items per ``$batch``: fewer when a mailbox's concurrency was lowered by 429s.

        Graph runs ``batch_outlook_parallel`` Outlook items of a batch at once; a
        mailbox found to allow fewer concurrent requests gets batches no larger
        than that, so a batch never exceeds the concurrency on its own.
        """
        parallel = self.pacer.limits.batch_outlook_parallel
        for mailbox in {costs[i].mailbox for i in pending if costs[i].mailbox is not None}:
            assert mailbox is not None
            allowed = self.pacer.mailbox(mailbox).concurrency.limit()
            if allowed < parallel:
                size = min(size, allowed)
        return max(1, size)

    async def _send_group(
        self,
        group: list[int],
        items: Sequence[BatchItem],
        bodies: Sequence[bytes | None],
        costs: Sequence[RequestCost],
        attempts: dict[int, int],
    ) -> tuple[list[int], dict[int, BatchResult], float]:
        """Send ``group`` once, as ``$batch`` requests of the items the pacers admit now.

        Each ``$batch`` carries the items that fit every window at once and no more of
        a mailbox than its (learned) concurrency allows; the rest follow in the next
        ``$batch`` as soon as they fit. Returns what :meth:`_send_batch` does, merged.
        """
        retry: list[int] = []
        results: dict[int, BatchResult] = {}
        delay = 0.0
        remaining = list(group)
        while remaining:
            permit = await self.pacer.acquire([costs[i] for i in remaining], partial=True)
            picked = set(permit.chosen)
            chosen = [remaining[k] for k in permit.chosen]
            remaining = [i for k, i in enumerate(remaining) if k not in picked]
            part_retry, part_results, part_delay = await self._send_batch(
                chosen, items, bodies, costs, attempts, permit
            )
            retry.extend(part_retry)
            results.update(part_results)
            delay = max(delay, part_delay)
        return retry, results, delay

    async def _send_batch(
        self,
        group: list[int],
        items: Sequence[BatchItem],
        bodies: Sequence[bytes | None],
        costs: Sequence[RequestCost],
        attempts: dict[int, int],
        permit: Permit,
    ) -> tuple[list[int], dict[int, BatchResult], float]:
        """Send one ``$batch`` under ``permit``; return items to retry, final results, retry delay."""
        for i in group:
            attempts[i] += 1
        attempt = max(attempts[i] for i in group)
        try:
            sent = await self._lane.send([(str(i), items[i], bodies[i]) for i in group], attempt)
        except BaseException:
            permit.release()
            raise
        if sent.error is not None:
            permit.release()
            return self._whole_batch_failed(
                group,
                items,
                attempts,
                not isinstance(sent.error, _NOT_SENT),
                TransportError("batch", type(sent.error).__name__),
            )
        latency = sent.latency_s
        outer_retry_after = parse_retry_after(sent.headers.get("retry-after"), self._clock.now())
        answers: dict[str, RawItemResponse] = {}
        if sent.status == 200:
            if sent.answers is None:
                permit.release()
                batch_error = GraphError(200, "", "unreadable $batch answer", operation="batch")
                return self._whole_batch_failed(group, items, attempts, True, batch_error)
            answers = sent.answers
            refused = [i for i in group if (answers.get(str(i)) or _NO_ANSWER).status == 429]
            permit.release(refused=[costs[i] for i in refused])
            permit.answered(
                costs[i].mailbox or ""
                for i in refused
                if "concurrency" in error_fields(answers[str(i)].body)[1].lower()
            )
        else:
            permit.release(refused=[costs[i] for i in group] if sent.status == 429 else ())
        if sent.status != 200:
            batch_error = make_error(
                sent.status, sent.content, operation="batch", retry_after=outer_retry_after
            )
            if sent.status in (429, 503, 504):
                if sent.status == 429:
                    self.pacer.throttled(
                        RequestCost(),
                        outer_retry_after or self.retry.base_delay_s,
                        batch_error.message,
                    )
                return self._whole_batch_failed(
                    group, items, attempts, sent.status == 504, batch_error, outer_retry_after
                )
            return (
                [],
                {i: BatchResult(items[i], sent.status, {}, None, batch_error) for i in group},
                0.0,
            )
        retry: list[int] = []
        results: dict[int, BatchResult] = {}
        delay = 0.0
        for i in group:
            item = items[i]
            answer = answers.get(str(i)) or RawItemResponse(0, {}, None)
            header = answer.headers.get("retry-after")
            retry_after = None if header is None else parse_retry_after(header, self._clock.now())
            self._observe(
                item.operation, answer.status, latency, retry_after, attempts[i], batched=True
            )
            if 200 <= answer.status < 300:
                results[i] = BatchResult(item, answer.status, answer.headers, answer.body)
                continue
            if answer.status == 0:
                error: Exception | None = (
                    None
                    if item.idempotent
                    else OutcomeUnknown(item.operation, "missing from $batch answer")
                )
            else:
                error = self._classify(
                    item.operation,
                    answer.status,
                    answer.body,
                    retry_after,
                    costs[i],
                    item.idempotent,
                    permit.peak_in_flight(costs[i].mailbox),
                )
            if error is None:
                wait = retry_after if retry_after is not None else self._backoff(attempts[i])
                if attempts[i] < self.retry.max_attempts and wait <= self.retry.max_retry_after_s:
                    retry.append(i)
                    delay = max(delay, wait)
                    continue
                error = make_error(
                    answer.status,
                    answer.body,
                    operation=item.operation,
                    retry_after=retry_after,
                    mailbox_call=costs[i].mailbox is not None,
                )
            results[i] = BatchResult(item, answer.status, answer.headers, answer.body, error)
        return retry, results, delay

    async def _send_batch_request(self, body: bytes, attempt: int) -> SentBatch:
        """One ``$batch`` HTTP request for the lane (every part merged into it), observed once."""
        started = time.perf_counter()
        try:
            response = await self.send_raw("POST", "/$batch", body)
        except httpx.TransportError:
            self._observe("batch", 0, time.perf_counter() - started, None, attempt)
            raise
        retry_after = parse_retry_after(response.headers.get("retry-after"), self._clock.now())
        self._observe("batch", response.status, time.perf_counter() - started, retry_after, attempt)
        return SentBatch(response.status, response.headers, response.content)

    def _whole_batch_failed(
        self,
        group: list[int],
        items: Sequence[BatchItem],
        attempts: dict[int, int],
        maybe_applied: bool,
        error: Exception,
        retry_after: float | None = None,
    ) -> tuple[list[int], dict[int, BatchResult], float]:
        """The batch got no usable answer: retry what is safe, report the rest."""
        retry: list[int] = []
        results: dict[int, BatchResult] = {}
        for i in group:
            item = items[i]
            if maybe_applied and not item.idempotent:
                results[i] = BatchResult(
                    item, 0, {}, None, OutcomeUnknown(item.operation, str(error))
                )
            elif attempts[i] < self.retry.max_attempts:
                retry.append(i)
            else:
                status = error.status if isinstance(error, GraphError) else 0
                results[i] = BatchResult(item, status, {}, None, error)
        delay = (
            retry_after
            if retry_after is not None
            else self._backoff(max(attempts[i] for i in group))
        )
        return retry, results, delay
