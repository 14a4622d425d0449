"""AiohttpTransport against a real aiohttp server on loopback: what httpx sees is what was sent.

The Graph client tells "surely not sent" (ConnectError, ConnectTimeout, PoolTimeout) from
"outcome unknown" (any other transport error) to keep PATCHes exactly-once, so these tests
pin which httpx exception each network failure becomes, besides the round trip itself.
"""

from __future__ import annotations

import asyncio
import gzip
import socket
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field

import httpx
import pytest
from aiohttp import web

from mmsd.graph.transport import AiohttpTransport

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]

_PROXY_VARS = ("http_proxy", "https_proxy", "all_proxy", "no_proxy", "request_method")


@dataclass
class Seen:
    """One request as the server received it."""

    method: str
    path_qs: str
    raw_path: str
    headers: dict[str, list[str]]
    body: bytes
    peer: object


@dataclass
class Server:
    """A loopback aiohttp server whose single catch-all route runs ``handler``."""

    handler: Handler
    seen: list[Seen] = field(default_factory=list)
    port: int = 0
    runner: web.AppRunner | None = None

    @property
    def base(self) -> str:
        """The server's root URL."""
        return f"http://127.0.0.1:{self.port}"

    async def _route(self, request: web.Request) -> web.StreamResponse:
        headers: dict[str, list[str]] = {}
        for key, value in request.headers.items():
            headers.setdefault(key.lower(), []).append(value)
        transport = request.transport
        self.seen.append(
            Seen(
                request.method,
                request.path_qs,
                request.raw_path,
                headers,
                await request.read(),
                transport.get_extra_info("peername") if transport is not None else None,
            )
        )
        return await self.handler(request)

    async def start(self) -> None:
        """Listen on 127.0.0.1, a free port."""
        app = web.Application()
        app.router.add_route("*", "/{tail:.*}", self._route)
        self.runner = web.AppRunner(app, handle_signals=False)
        await self.runner.setup()
        site = web.TCPSite(self.runner, "127.0.0.1", 0)
        await site.start()
        self.port = self.runner.addresses[0][1]

    async def stop(self) -> None:
        """Stop listening and close the connections."""
        if self.runner is not None:
            await self.runner.cleanup()


@pytest.fixture(autouse=True)
def _no_env_proxy(monkeypatch: pytest.MonkeyPatch) -> None:
    """No proxy variable from the machine reaches these tests unless a test sets one."""
    for name in _PROXY_VARS:
        monkeypatch.delenv(name, raising=False)
        monkeypatch.delenv(name.upper(), raising=False)


@pytest.fixture
async def serve() -> AsyncIterator[Callable[[Handler], Awaitable[Server]]]:
    """Start loopback servers for a test; all are stopped afterwards."""
    servers: list[Server] = []

    async def start(handler: Handler) -> Server:
        server = Server(handler)
        await server.start()
        servers.append(server)
        return server

    yield start
    for server in servers:
        await server.stop()


async def _ok(request: web.Request) -> web.StreamResponse:
    return web.Response(text="ok")


def _free_closed_port() -> int:
    """A port that was free a moment ago and on which nobody listens now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
    return port


async def test_get_round_trip_carries_method_path_query_and_headers(
    serve: Callable[[Handler], Awaitable[Server]],
) -> None:
    async def handler(request: web.Request) -> web.StreamResponse:
        response = web.Response(status=203, body=b"\x00answer\xff", content_type="text/plain")
        response.headers["X-Answer"] = "42"
        response.headers.add("Set-Cookie", "a=1")
        response.headers.add("Set-Cookie", "b=2")
        return response

    server = await serve(handler)
    async with httpx.AsyncClient(transport=AiohttpTransport()) as client:
        response = await client.get(
            f"{server.base}/v1.0/users/u1/events?$select=id,subject&top=5",
            headers={"X-Custom": "abc", "Authorization": "Bearer t0k"},
        )

    assert len(server.seen) == 1
    seen = server.seen[0]
    assert seen.method == "GET"
    assert seen.path_qs == "/v1.0/users/u1/events?$select=id,subject&top=5"
    assert seen.headers["x-custom"] == ["abc"]
    assert seen.headers["authorization"] == ["Bearer t0k"]
    assert seen.headers["host"] == [f"127.0.0.1:{server.port}"]
    # httpx's own headers, once each; aiohttp adds none of its own.
    assert seen.headers["user-agent"] == [f"python-httpx/{httpx.__version__}"]
    assert len(seen.headers["accept-encoding"]) == 1
    assert "gzip" in seen.headers["accept-encoding"][0]
    assert "content-type" not in seen.headers
    assert seen.body == b""

    assert response.status_code == 203
    assert response.content == b"\x00answer\xff"
    assert response.headers["x-answer"] == "42"
    assert response.headers.get_list("set-cookie") == ["a=1", "b=2"]
    assert response.http_version == "HTTP/1.1"
    assert response.request.url.path == "/v1.0/users/u1/events"


async def test_post_body_arrives_byte_exact(serve: Callable[[Handler], Awaitable[Server]]) -> None:
    async def handler(request: web.Request) -> web.StreamResponse:
        return web.json_response({"responses": []}, status=200)

    body = bytes(range(256)) * 300 + '{"ü":"€"}'.encode()
    server = await serve(handler)
    async with httpx.AsyncClient(transport=AiohttpTransport()) as client:
        response = await client.post(
            f"{server.base}/v1.0/$batch",
            content=body,
            headers={"Content-Type": "application/json", "X-Custom": "v"},
        )

    seen = server.seen[0]
    assert seen.method == "POST"
    assert seen.path_qs == "/v1.0/$batch"
    assert seen.body == body
    assert seen.headers["content-length"] == [str(len(body))]
    assert seen.headers["content-type"] == ["application/json"]
    assert seen.headers["x-custom"] == ["v"]
    assert "transfer-encoding" not in seen.headers
    assert response.status_code == 200
    assert response.json() == {"responses": []}


async def test_gzip_answer_is_decoded_once(serve: Callable[[Handler], Awaitable[Server]]) -> None:
    text = '{"value": "' + "meeting " * 500 + '"}'

    async def handler(request: web.Request) -> web.StreamResponse:
        return web.Response(
            body=gzip.compress(text.encode()),
            headers={"Content-Encoding": "gzip", "Content-Type": "application/json"},
        )

    server = await serve(handler)
    async with httpx.AsyncClient(transport=AiohttpTransport()) as client:
        response = await client.get(f"{server.base}/v1.0/me")

    assert response.headers["content-encoding"] == "gzip"
    assert response.text == text
    assert response.json() == {"value": "meeting " * 500}


async def test_chunked_gzip_answer_is_joined_and_decoded(
    serve: Callable[[Handler], Awaitable[Server]],
) -> None:
    text = "chunk " * 2000
    packed = gzip.compress(text.encode())

    async def handler(request: web.Request) -> web.StreamResponse:
        response = web.StreamResponse(headers={"Content-Encoding": "gzip"})
        response.enable_chunked_encoding()
        await response.prepare(request)
        for start in range(0, len(packed), 1000):
            await response.write(packed[start : start + 1000])
        await response.write_eof()
        return response

    server = await serve(handler)
    async with httpx.AsyncClient(transport=AiohttpTransport()) as client:
        response = await client.get(f"{server.base}/chunked")
    assert response.text == text


async def test_no_content_answer(serve: Callable[[Handler], Awaitable[Server]]) -> None:
    async def handler(request: web.Request) -> web.StreamResponse:
        return web.Response(status=204)

    server = await serve(handler)
    async with httpx.AsyncClient(transport=AiohttpTransport()) as client:
        response = await client.delete(f"{server.base}/v1.0/x")
    assert response.status_code == 204
    assert response.content == b""
    assert server.seen[0].method == "DELETE"


async def test_connection_refused_is_connect_error() -> None:
    port = _free_closed_port()
    async with httpx.AsyncClient(transport=AiohttpTransport()) as client:
        with pytest.raises(httpx.ConnectError) as caught:
            await client.post(f"http://127.0.0.1:{port}/v1.0/$batch", content=b"{}")
    assert caught.value.request.url.port == port


async def test_abort_after_request_is_outcome_unknown(
    serve: Callable[[Handler], Awaitable[Server]],
) -> None:
    async def handler(request: web.Request) -> web.StreamResponse:
        await request.read()
        assert request.transport is not None
        request.transport.abort()
        return web.Response(text="never delivered")

    server = await serve(handler)
    async with httpx.AsyncClient(transport=AiohttpTransport()) as client:
        with pytest.raises(httpx.TransportError) as caught:
            await client.patch(f"{server.base}/v1.0/users/u/events/e", content=b'{"a":1}')

    assert not isinstance(
        caught.value, httpx.ConnectError | httpx.ConnectTimeout | httpx.PoolTimeout
    )
    assert [s.body for s in server.seen] == [b'{"a":1}']  # it did arrive, exactly once


async def test_slow_server_is_read_timeout(serve: Callable[[Handler], Awaitable[Server]]) -> None:
    release = asyncio.Event()

    async def handler(request: web.Request) -> web.StreamResponse:
        await release.wait()
        return web.Response(text="late")

    server = await serve(handler)
    try:
        async with httpx.AsyncClient(
            transport=AiohttpTransport(), timeout=httpx.Timeout(5.0, read=0.2)
        ) as client:
            loop = asyncio.get_running_loop()
            started = loop.time()
            with pytest.raises(httpx.ReadTimeout):
                await client.get(f"{server.base}/slow")
            assert loop.time() - started < 3.0
    finally:
        release.set()
    assert len(server.seen) == 1


async def test_pool_exhausted_is_connect_timeout_not_sent(
    serve: Callable[[Handler], Awaitable[Server]],
) -> None:
    release = asyncio.Event()
    holding = asyncio.Event()

    async def handler(request: web.Request) -> web.StreamResponse:
        if request.path == "/hold":
            holding.set()
            await release.wait()
        return web.Response(text="ok")

    server = await serve(handler)
    transport = AiohttpTransport(max_connections=1)
    async with httpx.AsyncClient(transport=transport) as client:
        holder = asyncio.create_task(client.get(f"{server.base}/hold"))
        await asyncio.wait_for(holding.wait(), 5.0)  # the only connection is now busy
        try:
            with pytest.raises((httpx.ConnectTimeout, httpx.PoolTimeout)):
                await client.get(f"{server.base}/queued", timeout=httpx.Timeout(5.0, pool=0.1))
        finally:
            release.set()
        assert (await holder).status_code == 200
    assert [s.path_qs for s in server.seen] == ["/hold"]  # the queued request never left


async def test_sequential_requests_reuse_one_connection(
    serve: Callable[[Handler], Awaitable[Server]],
) -> None:
    server = await serve(_ok)
    async with httpx.AsyncClient(transport=AiohttpTransport()) as client:
        for n in range(5):
            response = await client.get(f"{server.base}/n/{n}")
            assert response.text == "ok"
    assert len(server.seen) == 5
    assert len({s.peer for s in server.seen}) == 1


async def test_max_connections_bounds_concurrent_requests(
    serve: Callable[[Handler], Awaitable[Server]],
) -> None:
    gate = asyncio.Event()
    changed = asyncio.Condition()
    active = 0
    most = 0

    async def handler(request: web.Request) -> web.StreamResponse:
        nonlocal active, most
        async with changed:
            active += 1
            most = max(most, active)
            changed.notify_all()
        await gate.wait()
        async with changed:
            active -= 1
        return web.Response(text=request.path)

    server = await serve(handler)
    async with httpx.AsyncClient(transport=AiohttpTransport(max_connections=2)) as client:
        tasks = [asyncio.create_task(client.get(f"{server.base}/c/{n}")) for n in range(6)]
        try:
            async with changed:
                await asyncio.wait_for(changed.wait_for(lambda: active >= 2), 5.0)
            # Proving a negative needs a moment: the other four could connect now if unbounded.
            await asyncio.sleep(0.1)
            assert active == 2
        finally:
            gate.set()
        responses = await asyncio.gather(*tasks)

    assert sorted(r.text for r in responses) == [f"/c/{n}" for n in range(6)]
    assert most == 2
    assert len({s.peer for s in server.seen}) == 2


async def test_aclose_closes_session_and_next_request_reopens(
    serve: Callable[[Handler], Awaitable[Server]],
) -> None:
    server = await serve(_ok)
    transport = AiohttpTransport()
    async with httpx.AsyncClient(transport=transport) as client:
        await client.get(f"{server.base}/before")
        session = transport._session
        assert session is not None and not session.closed
        await asyncio.wait_for(transport.aclose(), 5.0)
        assert session.closed
        await transport.aclose()  # twice is harmless
        response = await asyncio.wait_for(client.get(f"{server.base}/after"), 5.0)
        assert response.text == "ok"
        reopened = transport._session
        assert reopened is not None and reopened is not session
    # The client's aclose closes the transport's session too.
    assert reopened.closed
    # A fresh session means a fresh connection.
    assert [s.path_qs for s in server.seen] == ["/before", "/after"]
    assert server.seen[0].peer != server.seen[1].peer


async def test_env_proxy_receives_absolute_url(
    serve: Callable[[Handler], Awaitable[Server]], monkeypatch: pytest.MonkeyPatch
) -> None:
    proxy = await serve(_ok)
    monkeypatch.setenv("HTTP_PROXY", proxy.base)
    async with httpx.AsyncClient(transport=AiohttpTransport()) as client:
        response = await client.get("http://graph.invalid/v1.0/x?a=1", headers={"X-C": "1"})

    assert response.text == "ok"
    assert len(proxy.seen) == 1
    assert proxy.seen[0].raw_path == "http://graph.invalid/v1.0/x?a=1"
    assert proxy.seen[0].headers["host"] == ["graph.invalid"]
    assert proxy.seen[0].headers["x-c"] == ["1"]


@pytest.mark.parametrize("no_proxy", ["graph.invalid", ".invalid", "*", "other.test,graph.invalid"])
def test_no_proxy_covering_host_means_direct(
    monkeypatch: pytest.MonkeyPatch, no_proxy: str
) -> None:
    monkeypatch.setenv("HTTP_PROXY", "http://127.0.0.1:9")
    monkeypatch.setenv("NO_PROXY", no_proxy)
    transport = AiohttpTransport()
    assert transport._proxy(httpx.URL("http://graph.invalid/v1.0/x")) is None


def test_proxy_lookup_by_scheme_and_trust_env(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HTTP_PROXY", "http://127.0.0.1:9")
    monkeypatch.setenv("NO_PROXY", "elsewhere.test")
    assert AiohttpTransport()._proxy(httpx.URL("http://graph.invalid/x")) == "http://127.0.0.1:9"
    assert AiohttpTransport()._proxy(httpx.URL("https://graph.invalid/x")) is None
    assert AiohttpTransport(trust_env=False)._proxy(httpx.URL("http://graph.invalid/x")) is None


def test_max_connections_must_be_positive() -> None:
    with pytest.raises(ValueError):
        AiohttpTransport(max_connections=0)
