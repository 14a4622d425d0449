"""The Graph simulator as a running thing: :class:`Simulator` (in-process API) and its aiohttp apps.

Two loopback listeners: Graph over plain HTTP at ``http://127.0.0.1:P/v1.0`` (with
the ``/_sim/`` control surface beside it, see :mod:`mmsd.sim.control`) and the
OAuth2 authority (:class:`~mmsd.sim.auth.SimAuthority`) over HTTPS on a second
port. Every Graph request is checked for a valid bearer token (401
``InvalidAuthenticationToken`` otherwise, unless auth is off), may draw a fault
from the :class:`~mmsd.sim.faults.FaultPlan`, and then runs through
:func:`mmsd.sim.graph_http.dispatch` (routing, throttling, latency, handler).

Tokens expire by real time (azure-identity caches them by the client's wall clock),
so moving the simulated clock forward through ``/_sim/clock/advance`` never makes a
client's cached token invalid.

Latency: each Graph answer takes about ``latency_ms`` (default
:data:`DEFAULT_LATENCY_MS` = 80 ms, a typical median of Graph calendar calls from
inside Azure; +-25 % jitter from a generator seeded by the tenant seed), spent
*inside* the throttling window, so that a request holds its mailbox's concurrency
slot while it "runs".

Faults (only when rates are set through ``/_sim/faults``; each part of a ``$batch``
draws its own, see :mod:`mmsd.sim.routes_batch`):
``http503`` answers 503 ``serviceNotAvailable`` with ``Retry-After: 1``; ``http504``
answers 504 ``UnknownError``; ``slow`` answers correctly after ``slowSeconds``
(default 3 s) more; ``timeout`` answers nothing for ``timeoutSeconds`` (default
120 s, or until the simulator stops) and then drops the connection; ``reset``
aborts the connection before anything is applied; ``lostPatchAnswer`` applies the
PATCH and then aborts the connection instead of answering.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import shutil
import tempfile
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from types import TracebackType

from aiohttp import web

from mmsd.clock import SimulatedClock
from mmsd.sim.auth import SimAuthority
from mmsd.sim.delivery import Mailer, OutgoingMessage
from mmsd.sim.faults import FaultKind, FaultPlan
from mmsd.sim.graph_http import (
    GraphError,
    GraphRequest,
    GraphResponse,
    Router,
    SimContext,
    SimCounters,
    dispatch,
    error_response,
)
from mmsd.sim.limits import LimitsProfile
from mmsd.sim.model import TenantState
from mmsd.sim.routes_batch import add_batch_route
from mmsd.sim.routes_events import add_event_routes
from mmsd.sim.routes_meetings import add_meeting_routes
from mmsd.sim.routes_users import add_user_routes
from mmsd.sim.sending import SendingLimiter
from mmsd.sim.throttle import Throttler

DEFAULT_LATENCY_MS = 80.0
log = logging.getLogger("mmsd.sim")


@dataclass(frozen=True)
class SimConfig:
    """How to start a simulator: listener port, tenant size and seed, clock, latency, limits."""

    port: int = 0
    users: int = 20
    meetings: int = 10
    seed: int = 1
    now: datetime | None = None  # None -> the real current time
    latency_ms: float = DEFAULT_LATENCY_MS
    limits: LimitsProfile = field(default_factory=LimitsProfile)
    auth: bool = True
    work_dir: Path | None = None  # where the CA file goes (a temporary directory if None)


@dataclass
class FaultTimes:
    """How long the ``slow`` and ``timeout`` faults take (``/_sim/faults`` knobs)."""

    slow_s: float = 3.0
    timeout_s: float = 120.0


def build_router() -> Router:
    """Every Graph route of the simulator."""
    router = Router()
    add_batch_route(router)
    add_user_routes(router)
    add_event_routes(router)
    add_meeting_routes(router)
    return router


class Simulator:
    """One simulated tenant behind Graph and token endpoints on loopback."""

    def __init__(self, config: SimConfig, *, state: TenantState | None = None) -> None:
        """Generate the tenant (or take ``state``, a ready-made one) and build the apps."""
        self.config = config
        start = config.now or datetime.now(UTC)
        if start.tzinfo is None:
            start = start.replace(tzinfo=UTC)
        self.clock = SimulatedClock(start)
        if state is None:
            from mmsd.sim.generator import generate_tenant

            state = generate_tenant(config.seed, start, config.users, config.meetings)
        self.state: TenantState = state
        self._tmp: Path | None = None
        if config.work_dir is None:
            self._tmp = Path(tempfile.mkdtemp(prefix="mmsd-sim-"))
        work_dir = config.work_dir or self._tmp
        assert work_dir is not None
        work_dir.mkdir(parents=True, exist_ok=True)
        # Tokens live by real time, not the simulated clock: clients cache tokens by
        # their own wall clock, so advancing the simulated clock must not expire them.
        self.authority_server = SimAuthority(self.state.tenant_id, work_dir)
        self.tenant_id = self.state.tenant_id
        self.client_id = self.authority_server.client_id
        self.client_secret = self.authority_server.client_secret
        self.ca_file = self.authority_server.ca_file
        self.throttler = Throttler(config.limits, self.clock)
        self.sender: SendingLimiter[OutgoingMessage] = SendingLimiter(config.limits, self.clock)
        self.faults = FaultPlan(config.seed)
        self.fault_times = FaultTimes()
        self.ctx = SimContext(
            state=self.state,
            clock=self.clock,
            throttler=self.throttler,
            sender=self.sender,
            faults=self.faults,
            limits=config.limits,
            latency_ms=config.latency_ms,
            seed=config.seed,
        )
        self.ctx.mailer = Mailer(self.ctx)
        self.counters: SimCounters = self.ctx.counters
        self.router = build_router()
        self.graph_base_url = ""
        self.authority = ""
        self._runners: list[web.AppRunner] = []
        self._stopping = asyncio.Event()
        self._tick: asyncio.Task[None] | None = None

    # --- lifecycle -----------------------------------------------------------

    async def start(self) -> None:
        """Start both listeners; afterwards the URLs and :meth:`ready_line` are valid."""
        from mmsd.sim.control import make_control_app

        graph = web.Application(client_max_size=256 * 1024 * 1024)
        graph.add_subapp("/_sim/", make_control_app(self))
        graph.router.add_route("*", "/v1.0/{tail:.*}", self._handle)
        graph_runner = web.AppRunner(graph, access_log=None, handle_signals=False)
        await graph_runner.setup()
        self._runners.append(graph_runner)
        graph_site = web.TCPSite(graph_runner, "127.0.0.1", self.config.port, backlog=1024)
        await graph_site.start()
        graph_port = _port(graph_runner)
        self.graph_base_url = f"http://127.0.0.1:{graph_port}/v1.0"
        self.ctx.base_url = self.graph_base_url

        auth_runner = web.AppRunner(
            self.authority_server.app(), access_log=None, handle_signals=False
        )
        await auth_runner.setup()
        self._runners.append(auth_runner)
        auth_site = web.TCPSite(
            auth_runner, "127.0.0.1", 0, ssl_context=self.authority_server.server_ssl_context()
        )
        await auth_site.start()
        self.authority = f"https://127.0.0.1:{_port(auth_runner)}"
        self._tick = asyncio.create_task(self._deliver_loop(), name="mmsd-sim-delivery")
        log.info("simulator listening: graph port %d", graph_port)

    async def stop(self) -> None:
        """Release holds, end hung requests, close both listeners, remove the temporary dir."""
        self._stopping.set()
        self.faults.release_all()
        if self._tick is not None:
            self._tick.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._tick
            self._tick = None
        for runner in reversed(self._runners):
            await runner.cleanup()
        self._runners.clear()
        if self._tmp is not None:
            shutil.rmtree(self._tmp, ignore_errors=True)
            self._tmp = None

    async def __aenter__(self) -> Simulator:
        await self.start()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.stop()

    def ready_line(self) -> dict[str, str]:
        """The six keys ``mmsd sim`` prints once both listeners listen (SPEC section 8)."""
        return {
            "graphBaseUrl": self.graph_base_url,
            "authority": self.authority,
            "tenantId": self.tenant_id,
            "clientId": self.client_id,
            "clientSecret": self.client_secret,
            "caFile": str(self.ca_file),
        }

    # --- knobs used by /_sim/ ------------------------------------------------

    def set_limits(self, profile: LimitsProfile) -> None:
        """Replace the limits at run time (throttler, sending limiter, batch and attendee caps)."""
        self.throttler.set_profile(profile)
        self.sender.set_profile(profile)
        self.ctx.limits = profile

    async def _deliver_loop(self) -> None:
        while True:
            await asyncio.sleep(0.2)
            self.ctx.deliver_due()

    # --- the Graph HTTP handler ------------------------------------------------

    async def _handle(self, request: web.Request) -> web.StreamResponse:
        ctx = self.ctx
        headers = request.headers
        path = "/" + request.match_info["tail"]
        greq = GraphRequest(request.method, path, dict(request.query), headers)
        if self.config.auth:
            problem = self.authority_server.bearer_problem(headers.get("Authorization"))
            if problem is not None:
                return _to_web(
                    error_response(
                        GraphError(401, "InvalidAuthenticationToken", problem.message),
                        greq,
                        ctx.now(),
                    )
                )
        if request.body_exists:
            greq.body = await request.read()
        fault: FaultKind | None = None
        if self.faults.rates:
            fault = self.faults.decide(request.method, "/v1.0" + path)
            if fault is not None:
                ctx.counters.faults[str(fault)] += 1
                early = await self._early_fault(fault, request, greq)
                if early is not None:
                    return early
        response = await dispatch(ctx, self.router, greq)
        if fault is FaultKind.LOST_PATCH_ANSWER and response.status < 300:
            return _abort(request)
        return _to_web(response)

    async def _early_fault(
        self, fault: FaultKind, request: web.Request, greq: GraphRequest
    ) -> web.StreamResponse | None:
        now = self.ctx.now()
        if fault is FaultKind.HTTP_503:
            err = GraphError(
                503,
                "serviceNotAvailable",
                "Service is temporarily unavailable. Please retry.",
                {"Retry-After": "1"},
            )
            return _to_web(error_response(err, greq, now))
        if fault is FaultKind.HTTP_504:
            err = GraphError(504, "UnknownError", "The gateway did not receive a timely response.")
            return _to_web(error_response(err, greq, now))
        if fault is FaultKind.SLOW:
            await asyncio.sleep(self.fault_times.slow_s)
            return None
        if fault is FaultKind.TIMEOUT:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._stopping.wait(), self.fault_times.timeout_s)
            return _abort(request)
        if fault is FaultKind.RESET:
            return _abort(request)
        return None  # LOST_PATCH_ANSWER: applied first, then the connection drops


def _to_web(resp: GraphResponse) -> web.Response:
    return web.Response(status=resp.status, body=resp.body, headers=resp.headers)


class _Dropped(web.HTTPException):
    """Raised after aborting the transport: aiohttp writes nothing more."""

    status_code = 499


def _abort(request: web.Request) -> web.StreamResponse:
    transport = request.transport
    if transport is not None:
        transport.abort()
    raise _Dropped()


def _port(runner: web.AppRunner) -> int:
    server = runner.addresses
    for addr in server:
        if isinstance(addr, tuple) and len(addr) >= 2:
            return int(addr[1])
    raise RuntimeError("listener has no TCP address")
