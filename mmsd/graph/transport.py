"""httpx's network transport replaced by aiohttp's client, under msgraph's pipeline.

The Graph client sends every request through msgraph-sdk's request adapter
(kiota's ``HttpxRequestAdapter``: the azure-identity auth provider, the SDK's
middleware, its telemetry). That adapter speaks to an ``httpx.AsyncClient``;
below the client, httpx hands the request to a *transport*, by default
httpcore's pool on anyio and h11. Measured on the CPU benchmark
(``bench/bench_engine.py cpu``, py-spy on the daemon), httpcore, anyio and h11
were about a quarter of the daemon's main-thread CPU: the pool scans its
sockets twice a request, every lock and cancel scope asks sniffio which event
loop runs, and h11 parses headers in Python. aiohttp, one of mmsd's own
dependencies, parses HTTP in C and pools keep-alive connections without
polling them, so :class:`AiohttpTransport` sends what httpx prepared through an
``aiohttp.ClientSession`` and gives httpx back an ``httpx.Response``. The same
pattern is what ``httpx-aiohttp`` offers other SDKs built on httpx.

Everything above the socket stays httpx's and the SDK's: headers (httpx's own
``Accept-Encoding``; the body is handed back still encoded and httpx decodes
it), timeouts (httpx's per-request ``timeout`` extension becomes aiohttp's
connect and read timeouts), and errors: aiohttp's exceptions become the httpx
exceptions the Graph client tells apart, because "surely not sent"
(:class:`httpx.ConnectError`, :class:`httpx.ConnectTimeout`,
:class:`httpx.PoolTimeout`) lets a PATCH be retried and anything else after the
request left makes its outcome unknown (the exactly-once rule).

HTTP/2 is not spoken (aiohttp has HTTP/1.1 only); keep-alive connections are
pooled per host up to ``max_connections``. Proxies come from the environment
(``HTTPS_PROXY`` …) as with httpx's default ``trust_env``.
"""

from __future__ import annotations

import ssl
from collections.abc import Mapping
from typing import Any
from urllib.request import getproxies, proxy_bypass

import aiohttp
import httpx


class AiohttpTransport(httpx.AsyncBaseTransport):
    """An ``httpx`` transport over one ``aiohttp.ClientSession`` (created on first use)."""

    def __init__(
        self,
        *,
        max_connections: int = 8,
        verify: ssl.SSLContext | bool = True,
        trust_env: bool = True,
    ) -> None:
        if max_connections < 1:
            raise ValueError("max_connections must be at least 1")
        self._max_connections = max_connections
        self._verify = verify
        self._trust_env = trust_env
        self._session: aiohttp.ClientSession | None = None
        # Each host's proxy from the environment, looked up once: aiohttp's own
        # trust_env looks it up on a worker thread for every request.
        self._proxies: dict[tuple[str, str, int | None], str | None] = {}

    def _open(self) -> aiohttp.ClientSession:
        session = self._session
        if session is None or session.closed:
            # The trust store httpx would use (certifi's bundle, SSL_CERT_FILE/DIR).
            ssl_arg: ssl.SSLContext | bool = (
                httpx.create_ssl_context(verify=self._verify, trust_env=self._trust_env)
                if self._verify is not False
                else False
            )
            connector = aiohttp.TCPConnector(
                limit=self._max_connections,
                limit_per_host=self._max_connections,
                ssl=ssl_arg,
                enable_cleanup_closed=False,
            )
            session = self._session = aiohttp.ClientSession(
                connector=connector,
                auto_decompress=False,  # httpx decodes by Content-Encoding
                trust_env=False,  # the environment's proxy is looked up once a host
                skip_auto_headers=("Accept-Encoding", "User-Agent", "Content-Type"),
                cookie_jar=aiohttp.DummyCookieJar(),
                timeout=aiohttp.ClientTimeout(total=None),
            )
        return session

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        """Send ``request`` over aiohttp; answer with its status, headers and raw body."""
        session = self._open()
        body = await request.aread()
        connect, read, pool = _timeouts(request.extensions.get("timeout"))
        timeout = aiohttp.ClientTimeout(
            total=None, connect=pool, sock_connect=connect, sock_read=read
        )
        headers = [
            (k.decode("latin-1"), v.decode("latin-1"))
            for k, v in request.headers.raw
            if k.lower() not in (b"host", b"content-length", b"transfer-encoding")
        ]
        proxy = self._proxy(request.url)
        sent = False
        try:
            async with session.request(
                request.method,
                str(request.url),
                headers=headers,
                data=body if body else None,
                allow_redirects=False,
                timeout=timeout,
                compress=None,
                proxy=proxy,
            ) as answer:
                sent = True
                content = await answer.read()
                status = answer.status
                raw_headers = [(k, v) for k, v in answer.raw_headers]
        except TimeoutError as exc:
            if not sent and isinstance(exc, aiohttp.ConnectionTimeoutError):
                raise httpx.ConnectTimeout(str(exc) or "connect timeout", request=request) from exc
            raise httpx.ReadTimeout(str(exc) or "read timeout", request=request) from exc
        except aiohttp.ClientConnectorError as exc:
            raise httpx.ConnectError(str(exc), request=request) from exc
        except aiohttp.ServerDisconnectedError as exc:
            raise httpx.RemoteProtocolError(
                str(exc) or "server disconnected", request=request
            ) from exc
        except aiohttp.ClientPayloadError as exc:
            raise httpx.ReadError(str(exc), request=request) from exc
        except aiohttp.ClientResponseError as exc:
            raise httpx.RemoteProtocolError(str(exc), request=request) from exc
        except aiohttp.ClientOSError as exc:
            raise httpx.ReadError(str(exc), request=request) from exc
        except aiohttp.ClientError as exc:
            raise httpx.TransportError(str(exc), request=request) from exc
        return httpx.Response(
            status,
            headers=raw_headers,
            stream=httpx.ByteStream(content),
            request=request,
            extensions={"http_version": b"HTTP/1.1"},
        )

    def _proxy(self, url: httpx.URL) -> str | None:
        """The proxy ``HTTP(S)_PROXY``/``NO_PROXY`` give for ``url``'s host (None: direct)."""
        key = (url.scheme, url.host, url.port)
        if key not in self._proxies:
            proxy = getproxies().get(url.scheme) if self._trust_env else None
            if proxy and proxy_bypass(url.host):
                proxy = None
            self._proxies[key] = proxy or None
        return self._proxies[key]

    async def aclose(self) -> None:
        """Close the session and its pooled connections."""
        session, self._session = self._session, None
        if session is not None and not session.closed:
            await session.close()


def _timeouts(raw: Any) -> tuple[float | None, float | None, float | None]:
    """httpx's ``timeout`` extension as (connect, read, pool) seconds (None: no limit)."""
    if not isinstance(raw, Mapping):
        return None, None, None

    def pick(key: str) -> float | None:
        value = raw.get(key)
        return float(value) if isinstance(value, int | float) else None

    return pick("connect"), pick("read"), pick("pool")
