"""The Graph client's own retries, typed outcomes, pacing hooks and token caching.

Each test scripts the HTTP answers with httpx's ``MockTransport`` (no network, no
Graph semantics): the point is what the client does with a 429, a lost answer or
a 412, through the real msgraph/kiota request stack.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime
from typing import Any

import httpx
import pytest
from azure.core.credentials import AccessToken
from graph_testkit import ManualClock, RecordingSleep

from mmsd.graph import (
    BatchItem,
    GraphClient,
    GraphError,
    GraphLimits,
    MailboxNotEnabled,
    NotFound,
    OutcomeUnknown,
    PreconditionFailed,
    QuotaExhausted,
    RequestEvent,
    RetryPolicy,
    TenantPacer,
    TransportError,
)
from mmsd.graph.auth import CachingCredential
from mmsd.graph.client import build_request_adapter

BASE = "http://127.0.0.1:9/v1.0"
Handler = Callable[[httpx.Request], Any]


class StubCredential:
    """An async credential that counts token fetches and closes."""

    def __init__(self) -> None:
        self.fetches = 0
        self.closed = 0

    async def get_token(self, *scopes: str, **kwargs: Any) -> AccessToken:
        self.fetches += 1
        await asyncio.sleep(0)
        return AccessToken(f"token-{self.fetches}", int(time.time()) + 3600)

    async def close(self) -> None:
        self.closed += 1


class Recorder:
    """A GraphObserver that keeps every event."""

    def __init__(self) -> None:
        self.events: list[RequestEvent] = []

    def on_request(self, event: RequestEvent) -> None:
        self.events.append(event)


def answer(status: int, body: Any = None, headers: dict[str, str] | None = None) -> httpx.Response:
    content = json.dumps(body).encode() if body is not None else b""
    return httpx.Response(
        status, content=content, headers={"Content-Type": "application/json", **(headers or {})}
    )


def throttled(retry_after: str = "2", code: str = "ApplicationThrottled") -> httpx.Response:
    message = "Application is over its MailboxConcurrency limit."
    return answer(429, {"error": {"code": code, "message": message}}, {"Retry-After": retry_after})


class Script:
    """Answers requests from a list of responses (or exceptions), recording each request."""

    def __init__(self, *steps: httpx.Response | Exception | Handler) -> None:
        self.steps = list(steps)
        self.requests: list[httpx.Request] = []

    def __call__(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        step = self.steps.pop(0) if len(self.steps) > 1 else self.steps[0]
        if isinstance(step, Exception):
            raise step
        if isinstance(step, httpx.Response):
            return step
        result: httpx.Response = step(request)
        return result


def make_client(
    handler: Handler,
    clock: ManualClock,
    sleep: RecordingSleep,
    *,
    limits: GraphLimits | None = None,
    retry: RetryPolicy | None = None,
    observer: Recorder | None = None,
    batch_reads: bool = False,
) -> tuple[GraphClient, StubCredential]:
    """A client on a scripted transport; ``batch_reads`` off by default.

    Most tests here are about one call's retries and errors (``_call``), which the
    reads exercise most simply one request at a time; the batched reads the daemon
    uses (``batch_reads=True``) have their own tests below.
    """
    inner = StubCredential()
    credential = CachingCredential(inner)
    adapter = build_request_adapter(credential, BASE, transport=httpx.MockTransport(handler))
    pacer = TenantPacer(clock, limits, sleep=sleep)
    client = GraphClient(
        adapter,
        pacer,
        tenant="contoso",
        retry=retry or RetryPolicy(max_attempts=4),
        observer=observer,
        seed=3,
        sleep=sleep,
        credential=credential,
        batch_reads=batch_reads,
    )
    return client, inner


EVENT = {
    "id": "AAMk=",
    "@odata.etag": 'W/"ck1"',
    "subject": "Planning ✓ – ü",
    "body": {"contentType": "html", "content": "<p>x</p>"},
}


async def test_get_event_sends_auth_prefer_and_parses_raw_json(
    clock: ManualClock, sleep: RecordingSleep
) -> None:
    script = Script(answer(200, EVENT))
    client, _ = make_client(script, clock, sleep)
    async with client:
        event = await client.get_event("u-1", "AAMk=", body_type="text")
    assert event == EVENT
    request = script.requests[0]
    assert request.url.path == "/v1.0/users/u-1/events/AAMk="
    assert request.headers["Authorization"] == "Bearer token-1"
    assert request.headers["Prefer"] == 'outlook.body-content-type="text"'


async def test_one_token_for_many_concurrent_requests_and_credential_kept_open(
    clock: ManualClock, sleep: RecordingSleep
) -> None:
    client, inner = make_client(Script(answer(200, {"id": "u"})), clock, sleep)
    await asyncio.gather(*(client.get_user(f"user-{i}") for i in range(40)))
    await asyncio.gather(*(client.get_user(f"user-{i}") for i in range(10)))
    assert inner.fetches == 1
    assert inner.closed == 0  # kiota-python #528: not closed after a token fetch
    await client.aclose()
    assert inner.closed == 1


async def test_429_honours_integer_retry_after_and_pauses_the_mailbox(
    clock: ManualClock, sleep: RecordingSleep
) -> None:
    recorder = Recorder()
    script = Script(throttled("7"), answer(200, EVENT))
    client, _ = make_client(script, clock, sleep, observer=recorder)
    await client.get_event("u-1", "AAMk=")
    assert len(script.requests) == 2
    assert sleep.total >= 7.0
    assert [e.status for e in recorder.events] == [429, 200]
    assert recorder.events[0].throttled and recorder.events[0].retry_after_s == 7.0
    assert recorder.events[0].operation == "get_event" and recorder.events[0].status_class == "4xx"
    mailbox = client.pacer.mailbox("u-1")
    # A MailboxConcurrency 429 says nothing about the request rate (Graph counted
    # nothing): only the concurrency is lowered, and the window is just paused. It
    # used to halve the rate too, which cost the "limits at half" benchmark a third
    # of its throughput. The request was alone in flight, so Graph ran at most 0 of
    # mmsd's others: the limit is learned as 1 (never below), not merely 4 - 1.
    assert mailbox.requests.factor() == 1.0
    assert mailbox.concurrency.limit() == 1


async def test_request_window_429_lowers_the_rate_not_the_concurrency(
    clock: ManualClock, sleep: RecordingSleep
) -> None:
    body = {
        "error": {
            "code": "ApplicationThrottled",
            "message": "Application is over its MailboxRequests limit.",
        }
    }
    script = Script(
        *([answer(200, EVENT)] * 5), answer(429, body, {"Retry-After": "9"}), answer(200, EVENT)
    )
    limits = GraphLimits(outlook_requests=40, outlook_window_s=600.0, recovery_s=6000.0)
    client, _ = make_client(script, clock, sleep, limits=limits)
    for _ in range(5):
        await client.get_event("u-1", "AAMk=")
    assert sleep.calls == []
    await client.get_event("u-1", "AAMk=")  # 429, then 200
    mailbox = client.pacer.mailbox("u-1")
    assert mailbox.concurrency.limit() == 4  # a request-window 429 leaves concurrency alone
    # Graph admitted 5 in its window and refused the 6th: the count is learned as 5
    # (not 40 * 0.5 = 20), so after the Retry-After the retry still waits until the
    # first of those 5 leaves the window, 600 s after its answer.
    assert sleep.calls[0] == 9.0
    assert sleep.total == pytest.approx(600.0)
    assert mailbox.requests.capacity() < 10  # still low: it climbs back over recovery_s


async def test_429_honours_http_date_retry_after(clock: ManualClock, sleep: RecordingSleep) -> None:
    when = format_datetime(clock.now() + timedelta(seconds=30), usegmt=True)
    script = Script(throttled(when), answer(200, {"id": "u"}))
    client, _ = make_client(script, clock, sleep)
    await client.get_user("u-1")
    assert 29.0 <= sleep.total <= 31.0


async def test_503_backs_off_with_growing_delays_then_gives_up_typed(
    clock: ManualClock, sleep: RecordingSleep
) -> None:
    script = Script(answer(503, {"error": {"code": "serviceNotAvailable", "message": "busy"}}))
    client, _ = make_client(
        script, clock, sleep, retry=RetryPolicy(max_attempts=4, base_delay_s=1.0)
    )
    with pytest.raises(GraphError) as info:
        await client.get_user("u-1")
    assert info.value.status == 503 and info.value.transient
    assert len(script.requests) == 4
    assert len(sleep.calls) == 3
    assert 0.5 <= sleep.calls[0] <= 1.0 <= sleep.calls[1] <= 2.0 <= sleep.calls[2] <= 4.0


async def test_retry_after_beyond_the_cap_surfaces_at_once(
    clock: ManualClock, sleep: RecordingSleep
) -> None:
    script = Script(throttled("3600"))
    client, _ = make_client(script, clock, sleep, retry=RetryPolicy(max_retry_after_s=300))
    with pytest.raises(GraphError) as info:
        await client.get_user("u-1")
    assert info.value.status == 429 and info.value.retry_after == 3600.0
    assert len(script.requests) == 1


async def test_patch_read_timeout_is_outcome_unknown_and_not_resent(
    clock: ManualClock, sleep: RecordingSleep
) -> None:
    script = Script(httpx.ReadTimeout("lost"))
    client, _ = make_client(script, clock, sleep)
    with pytest.raises(OutcomeUnknown):
        await client.patch_event(
            "u-1", "AAMk=", {"body": {"contentType": "html", "content": "x"}}, 'W/"ck1"'
        )
    assert len(script.requests) == 1


async def test_patch_reset_and_504_are_outcome_unknown(
    clock: ManualClock, sleep: RecordingSleep
) -> None:
    for failure in (
        httpx.RemoteProtocolError("reset"),
        answer(504, {"error": {"code": "UnknownError", "message": ""}}),
    ):
        script = Script(failure)
        client, _ = make_client(script, clock, sleep)
        with pytest.raises(OutcomeUnknown):
            await client.patch_event("u-1", "AAMk=", {"subject": "s"})
        assert len(script.requests) == 1


async def test_patch_connect_error_is_safe_to_retry(
    clock: ManualClock, sleep: RecordingSleep
) -> None:
    script = Script(httpx.ConnectError("refused"), answer(200, EVENT))
    client, _ = make_client(script, clock, sleep)
    assert await client.patch_event("u-1", "AAMk=", {"subject": "s"}) == EVENT
    assert len(script.requests) == 2


async def test_patch_sends_if_match_and_unicode_body_unchanged(
    clock: ManualClock, sleep: RecordingSleep
) -> None:
    script = Script(answer(200, EVENT))
    client, _ = make_client(script, clock, sleep)
    patch = {"body": {"contentType": "html", "content": "<p>Grüße ✓ 会議 \U0001f600</p>"}}
    await client.patch_event("u-1", "AAMk=", patch, if_match='W/"ck1"')
    request = script.requests[0]
    assert request.method == "PATCH"
    assert request.headers["If-Match"] == 'W/"ck1"'
    assert json.loads(request.content) == patch


async def test_get_timeouts_are_retried_then_reported(
    clock: ManualClock, sleep: RecordingSleep
) -> None:
    script = Script(httpx.ReadTimeout("slow"))
    client, _ = make_client(script, clock, sleep, retry=RetryPolicy(max_attempts=3))
    with pytest.raises(TransportError):
        await client.get_event("u-1", "AAMk=")
    assert len(script.requests) == 3


async def test_typed_errors(clock: ManualClock, sleep: RecordingSleep) -> None:
    cases: list[tuple[str, httpx.Response, type[Exception]]] = [
        (
            "patch",
            answer(412, {"error": {"code": "ErrorIrresolvableConflict", "message": "stale"}}),
            PreconditionFailed,
        ),
        (
            "event",
            answer(
                404,
                {
                    "error": {
                        "code": "MailboxNotEnabledForRESTAPI",
                        "message": "REST API is not yet supported for this mailbox.",
                    }
                },
            ),
            MailboxNotEnabled,
        ),
        (
            "event",
            answer(404, {"error": {"code": "ErrorItemNotFound", "message": "gone"}}),
            NotFound,
        ),
        ("list", answer(404, None), MailboxNotEnabled),
        (
            "user",
            answer(404, {"error": {"code": "Request_ResourceNotFound", "message": "no user"}}),
            NotFound,
        ),
        ("user", answer(400, {"error": {"code": "BadRequest", "message": "bad"}}), GraphError),
        ("user", answer(302, None, {"Location": "http://127.0.0.1:9/elsewhere"}), GraphError),
    ]
    for kind, response, expected in cases:
        script = Script(response)
        client, _ = make_client(script, clock, sleep)
        with pytest.raises(expected) as info:
            if kind == "patch":
                await client.patch_event("u-1", "e", {"subject": "s"}, 'W/"old"')
            elif kind == "event":
                await client.get_event("u-1", "e")
            elif kind == "list":
                async for _ in client.list_events("u-1"):
                    pass
            else:
                await client.get_user("u-1")
        assert type(info.value) is expected
        assert len(script.requests) == 1  # not retried, redirects not followed


async def test_no_kiota_retry_or_redirect_handler_in_the_pipeline(
    clock: ManualClock, sleep: RecordingSleep
) -> None:
    from kiota_http.middleware import RedirectHandler, RetryHandler

    client, _ = make_client(Script(answer(200, {})), clock, sleep)
    transport = client._adapter._http_client._transport
    middleware = transport.pipeline._first_middleware
    seen = []
    while middleware is not None:
        seen.append(type(middleware))
        middleware = middleware.next
    assert seen and RetryHandler not in seen and RedirectHandler not in seen


async def test_list_events_follows_next_links_with_page_size(
    clock: ManualClock, sleep: RecordingSleep
) -> None:
    next_link = f"{BASE}/users/u-1/events?$skiptoken=abc"
    script = Script(
        answer(200, {"value": [{"id": "1"}, {"id": "2"}], "@odata.nextLink": next_link}),
        answer(200, {"value": [{"id": "3"}]}),
    )
    client, _ = make_client(script, clock, sleep)
    ids = [
        e["id"]
        async for e in client.list_events(
            "u-1", "start/dateTime ge '2026-01-05T00:00:00'", ["id", "subject"], 2
        )
    ]
    assert ids == ["1", "2", "3"]
    first = script.requests[0]
    assert first.url.params["$filter"] == "start/dateTime ge '2026-01-05T00:00:00'"
    assert first.url.params["$select"] == "id,subject"
    assert first.headers["Prefer"] == "odata.maxpagesize=2"
    assert str(script.requests[1].url) == next_link


async def test_users_delta_pages_to_the_delta_link(
    clock: ManualClock, sleep: RecordingSleep
) -> None:
    script = Script(
        answer(
            200, {"value": [{"id": "a"}], "@odata.nextLink": f"{BASE}/users/delta?$skiptoken=1"}
        ),
        answer(
            200, {"value": [{"id": "b"}], "@odata.deltaLink": f"{BASE}/users/delta?$deltatoken=2"}
        ),
    )
    client, _ = make_client(script, clock, sleep)
    result = await client.users_delta(None, ["id", "assignedPlans"])
    assert [u["id"] for u in result.users] == ["a", "b"]
    assert result.delta_link.endswith("$deltatoken=2")
    assert script.requests[0].url.params["$select"] == "id,assignedPlans"


async def test_find_online_meeting_escapes_the_filter(
    clock: ManualClock, sleep: RecordingSleep
) -> None:
    script = Script(answer(200, {"value": []}))
    client, _ = make_client(script, clock, sleep)
    assert (
        await client.find_online_meeting_by_join_url("u-1", "https://teams.example/l/o'k") is None
    )
    assert (
        script.requests[0].url.params["$filter"] == "JoinWebUrl eq 'https://teams.example/l/o''k'"
    )


async def test_create_or_get_spends_the_monthly_quota_only_on_create(
    clock: ManualClock, sleep: RecordingSleep
) -> None:
    limits = GraphLimits(online_meetings_per_user=2)
    script = Script(
        answer(200, {"id": "existing"}), answer(201, {"id": "m1"}), answer(201, {"id": "m2"})
    )
    client, _ = make_client(script, clock, sleep, limits=limits)
    start = datetime(2026, 2, 1, 10, tzinfo=UTC)
    for ext in ("x0", "x1", "x2"):
        await client.create_or_get_online_meeting(
            "u-1", ext, "s", start, start + timedelta(hours=1)
        )
    with pytest.raises(QuotaExhausted) as info:
        await client.create_or_get_online_meeting(
            "u-1", "x3", "s", start, start + timedelta(hours=1)
        )
    assert info.value.until > clock.now()
    assert len(script.requests) == 3  # the fourth never reached Graph
    body = json.loads(script.requests[0].content)
    assert body["externalId"] == "x0" and body["startDateTime"] == "2026-02-01T10:00:00.000Z"


def _batch_handler(
    inner: Callable[[dict[str, Any], int], tuple[int, dict[str, str], Any]],
) -> Script:
    """A $batch answerer: ``inner(request_item, call_number)`` gives each item's answer."""
    calls = {"n": 0}

    def handle(request: httpx.Request) -> httpx.Response:
        calls["n"] += 1
        assert request.url.path == "/v1.0/$batch"
        payload = json.loads(request.content)
        assert len(payload["requests"]) <= 20
        responses = []
        for item in reversed(payload["requests"]):  # any order
            status, headers, body = inner(item, calls["n"])
            responses.append({"id": item["id"], "status": status, "headers": headers, "body": body})
        return answer(200, {"responses": responses})

    return Script(handle)


async def test_batch_splits_keeps_order_and_retries_throttled_items(
    clock: ManualClock, sleep: RecordingSleep
) -> None:
    recorder = Recorder()
    throttled_once: set[str] = set()

    def inner(item: dict[str, Any], call: int) -> tuple[int, dict[str, str], Any]:
        if item["url"].endswith("/e7") and "e7" not in throttled_once:
            throttled_once.add("e7")
            return (
                429,
                {"Retry-After": "5"},
                {"error": {"code": "ApplicationThrottled", "message": "over"}},
            )
        return 200, {"ETag": 'W/"x"'}, {"id": item["url"].rsplit("/", 1)[1]}

    script = _batch_handler(inner)
    client, _ = make_client(script, clock, sleep, observer=recorder)
    items = [
        BatchItem("GET", f"/users/u-{i % 3}/events/e{i}", operation="get_event") for i in range(25)
    ]
    results = await client.batch(items)
    assert [r.body["id"] for r in results] == [f"e{i}" for i in range(25)]
    assert all(r.ok for r in results)
    assert results[0].headers["etag"] == 'W/"x"'
    sent = [json.loads(r.content)["requests"] for r in script.requests]
    assert all(len(batch) <= 20 for batch in sent)
    assert sum(len(batch) for batch in sent) == 26  # every item once, e7 twice
    # Until Graph has run a mailbox's full concurrency without a 429, a $batch carries
    # no more of its items than mmsd holds slots for (a first batch cannot draw a storm
    # of concurrency 429s); once confirmed, batches fill up again.
    first = [item["url"].split("/")[2] for item in sent[0]]
    assert max(first.count(m) for m in set(first)) == 4
    assert any(
        max([i["url"].split("/")[2] for i in batch].count(m) for m in ("u-0", "u-1", "u-2")) > 4
        for batch in sent[1:]
    )
    assert len(script.requests) <= 6
    assert sleep.total >= 5.0
    inner_events = [e for e in recorder.events if e.batched]
    assert len(inner_events) == 26 and sum(e.throttled for e in inner_events) == 1


async def test_batch_patch_504_is_unknown_and_not_retried(
    clock: ManualClock, sleep: RecordingSleep
) -> None:
    def inner(item: dict[str, Any], call: int) -> tuple[int, dict[str, str], Any]:
        if item["method"] == "PATCH":
            return 504, {}, {"error": {"code": "UnknownError", "message": ""}}
        return 200, {}, {"id": "ok"}

    script = _batch_handler(inner)
    client, _ = make_client(script, clock, sleep)
    items = [
        BatchItem("PATCH", "/users/u-1/events/e1", body={"subject": "s"}, operation="patch_event"),
        BatchItem("GET", "/users/u-1/events/e2", operation="get_event"),
    ]
    results = await client.batch(items)
    assert isinstance(results[0].error, OutcomeUnknown)
    assert results[1].ok
    assert len(script.requests) == 1
    sent = json.loads(script.requests[0].content)["requests"]
    patch = next(r for r in sent if r["method"] == "PATCH")
    assert patch["headers"]["Content-Type"] == "application/json" and patch["body"] == {
        "subject": "s"
    }


async def test_batch_lost_answer_reports_patches_unknown_and_retries_gets(
    clock: ManualClock, sleep: RecordingSleep
) -> None:
    def retried(request: httpx.Request) -> httpx.Response:
        (only,) = json.loads(request.content)["requests"]  # Graph echoes each item's id
        return answer(200, {"responses": [{"id": only["id"], "status": 200, "body": {"id": "e2"}}]})

    script = Script(httpx.ReadTimeout("lost"), retried)
    client, _ = make_client(script, clock, sleep)
    items = [
        BatchItem("PATCH", "/users/u-1/events/e1", body={"subject": "s"}),
        BatchItem("GET", "/users/u-1/events/e2"),
    ]
    results = await client.batch(items)
    assert isinstance(results[0].error, OutcomeUnknown)
    assert results[1].ok and results[1].body == {"id": "e2"}
    assert len(json.loads(script.requests[1].content)["requests"]) == 1


async def test_no_mailbox_slot_is_held_while_backing_off(
    clock: ManualClock, sleep: RecordingSleep
) -> None:
    script = Script(httpx.ReadError("reset"), throttled("1"), answer(200, EVENT))
    client, _ = make_client(script, clock, sleep)
    held_while_sleeping: list[int] = []

    async def watching_sleep(seconds: float) -> None:
        held_while_sleeping.append(client.pacer.mailbox("u-1").concurrency.in_flight)
        await sleep(seconds)

    client._sleep = watching_sleep
    assert await client.get_event("u-1", "AAMk=") == EVENT
    assert held_while_sleeping and set(held_while_sleeping) == {0}


# ---------------------------------------------------------------- batched reads


async def test_batched_read_goes_in_a_batch_with_its_headers_and_parses_raw_json(
    clock: ManualClock, sleep: RecordingSleep
) -> None:
    event = {"id": "e1", "subject": "s", "body": {"contentType": "html", "content": "<p>x</p>"}}
    script = _batch_handler(lambda item, n: (200, {}, event))
    client, _ = make_client(script, clock, sleep, batch_reads=True)
    got = await client.get_event("u-1", "e1", body_type="text", select=["id", "body"])
    assert got == event
    (request,) = script.requests
    assert request.method == "POST" and request.url.path == "/v1.0/$batch"
    assert request.headers["Authorization"].startswith("Bearer ")
    (item,) = json.loads(request.content)["requests"]
    assert item["method"] == "GET"
    assert item["url"] == "/users/u-1/events/e1?$select=id,body"
    assert item["headers"]["Prefer"] == 'outlook.body-content-type="text"'


async def test_batched_read_raises_the_typed_error_of_its_item(
    clock: ManualClock, sleep: RecordingSleep
) -> None:
    missing = {"error": {"code": "ErrorItemNotFound", "message": "gone"}}
    script = _batch_handler(lambda item, n: (404, {}, missing))
    client, _ = make_client(script, clock, sleep, batch_reads=True)
    with pytest.raises(NotFound):
        await client.get_event("u-1", "e-gone")
    assert len(script.requests) == 1  # a 404 is not retried


async def test_batched_listing_follows_next_links_as_relative_batch_urls(
    clock: ManualClock, sleep: RecordingSleep
) -> None:
    next_link = f"{BASE}/users/u-1/events?$skiptoken=abc"

    def inner(item: dict[str, Any], n: int) -> tuple[int, dict[str, str], Any]:
        if "skiptoken" in item["url"]:
            return 200, {}, {"value": [{"id": "3"}]}
        return 200, {}, {"value": [{"id": "1"}, {"id": "2"}], "@odata.nextLink": next_link}

    script = _batch_handler(inner)
    client, _ = make_client(script, clock, sleep, batch_reads=True)
    ids = [e["id"] async for e in client.list_events("u-1", None, ["id"], page_size=2)]
    assert ids == ["1", "2", "3"]
    urls = [json.loads(r.content)["requests"][0]["url"] for r in script.requests]
    assert urls[1] == "/users/u-1/events?$skiptoken=abc"


async def test_concurrent_reads_of_different_users_share_one_batch(
    clock: ManualClock, sleep: RecordingSleep
) -> None:
    script = _batch_handler(lambda item, n: (200, {}, {"id": item["url"].split("/")[2]}))
    client, _ = make_client(script, clock, sleep, batch_reads=True)
    users = [f"u-{n}" for n in range(5)]
    found = await asyncio.gather(*(client.get_user(u) for u in users))
    assert [f["id"] for f in found] == users
    assert len(script.requests) == 1
    assert len(json.loads(script.requests[0].content)["requests"]) == 5
