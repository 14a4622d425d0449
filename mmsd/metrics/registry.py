"""Every Prometheus metric of SPEC section 6, on mmsd's own registry.

:class:`Metrics` owns a dedicated :class:`~prometheus_client.CollectorRegistry` (never
the process-global one) and is at once the engine's ``EngineObserver`` and the Graph
client's ``GraphObserver``: the engine and the client call it as they work, and it
turns the calls into counters and histograms. Queue figures (users per state, oldest
pending and in-progress ages, the ETA) come from the store; a periodic task
(:meth:`Metrics.run_refresher`) reads them every few seconds into a cache, and a
collector serves the cache at scrape time, so a scrape never waits on SQLite.
Actor figures are read from :meth:`mmsd.actors.ActorSystem.stats` at scrape time
(cheap and synchronous; the metrics listener runs in the event loop's thread).

Conventions (prometheus.io "Metric and label naming"): ``mmsd_`` prefix, base units,
``_total`` on counters, a ``tenant`` label and never a per-user one, and every label
set that can be known in advance initialized to zero.
"""

from __future__ import annotations

import asyncio
import importlib.metadata
import logging
import math
import platform
import time
from collections import deque
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Protocol

from prometheus_client import (
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    disable_created_metrics,
    generate_latest,
)
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from mmsd.actors import SystemStats
from mmsd.domain.model import MeetingOutcome, MigrationState, SkipReason, TriggerFate, TriggerType

if TYPE_CHECKING:  # the Graph stack and aiosqlite are heavy; metrics need only the shapes
    from mmsd.graph.client import RequestEvent
    from mmsd.store import QueueMetrics

log = logging.getLogger(__name__)


def package_version() -> str:
    """mmsd's installed version (from the package metadata), or ``unknown``."""
    try:
        return importlib.metadata.version("mmsd")
    except importlib.metadata.PackageNotFoundError:
        return "unknown"


#: Bucket edges for migration duration and queue wait: the alerting and dashboard marks
#: (10 min, 1 h, 12 h) and the 24 h retry horizon are all edges.
MIGRATION_BUCKETS: tuple[float, ...] = (60.0, 600.0, 3600.0, 7200.0, 21600.0, 43200.0, 86400.0)
#: Bucket edges for one Graph request's latency, in seconds.
GRAPH_LATENCY_BUCKETS: tuple[float, ...] = (
    0.025,
    0.05,
    0.1,
    0.25,
    0.5,
    1.0,
    2.5,
    5.0,
    10.0,
    30.0,
    60.0,
)
#: Bucket edges for the ``Retry-After`` of a throttled answer, in seconds.
RETRY_AFTER_BUCKETS: tuple[float, ...] = (1.0, 2.0, 5.0, 10.0, 30.0, 60.0, 120.0, 300.0, 600.0)

#: The Graph client's operation names (``RequestEvent.operation``), pre-initialized.
GRAPH_OPERATIONS: tuple[str, ...] = (
    "get_user",
    "users_delta",
    "list_events",
    "get_event",
    "patch_event",
    "list_instances",
    "find_online_meeting",
    "create_online_meeting",
    "batch",
    "batch_item",
)
#: ``RequestEvent.status_class`` values; ``error`` means no answer (timeout, reset).
GRAPH_STATUS_CLASSES: tuple[str, ...] = ("2xx", "3xx", "4xx", "5xx", "error")
#: Trigger fates the engine reports (``pending`` is not a decision).
DECIDED_FATES: tuple[str, ...] = tuple(str(f) for f in TriggerFate if f is not TriggerFate.PENDING)
#: End states a migration can finish in.
FINISHED_STATES: tuple[str, ...] = tuple(str(s) for s in MigrationState if s.finished)
#: The ``reason`` label of meetings that were not skipped.
NO_REASON = "none"
#: The ``reason`` label of a skip whose reason is not a :class:`SkipReason`.
OTHER_REASON = "other"
#: Why a migration went back to Pending (``mmsd_migrations_rescheduled_total``).
RESCHEDULE_REASONS: tuple[str, ...] = ("retry", "quota")
#: How long the completion-rate window behind the ETA is, in seconds.
ETA_WINDOW_S = 900.0


class QueueSource(Protocol):
    """What the refresher reads per tenant: :meth:`mmsd.store.Store.queue_metrics`."""

    async def queue_metrics(self, tenant: str) -> QueueMetrics:
        """Users per state and the ages the alerts watch."""
        ...


class StatsSource(Protocol):
    """What the actor collector reads: :meth:`mmsd.actors.ActorSystem.stats`."""

    def stats(self) -> SystemStats:
        """Live actors and mailbox depth per kind."""
        ...


@dataclass
class _TenantQueue:
    """The cached queue figures of one tenant, and the finishes behind its ETA."""

    snapshot: QueueMetrics | None = None
    finishes: deque[float] = field(default_factory=deque)


def _meeting_label_sets() -> list[tuple[str, str]]:
    """Every (outcome, reason) pair the meetings counter starts at zero."""
    pairs = [(str(MeetingOutcome.UPDATED), NO_REASON), (str(MeetingOutcome.FAILED), NO_REASON)]
    pairs += [(str(MeetingOutcome.SKIPPED), str(reason)) for reason in SkipReason]
    return pairs


_SKIP_REASONS = frozenset(str(r) for r in SkipReason)


class Metrics:
    """mmsd's metrics: the registry, the engine and Graph observers, and the queue cache.

    Create one per daemon with the configured tenants; call :meth:`set_tenants` after a
    reload; run :meth:`run_refresher` as a background task once the store is open.
    """

    def __init__(
        self,
        tenants: Iterable[str] = (),
        *,
        store: QueueSource | None = None,
        actors: StatsSource | None = None,
        version: str | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        disable_created_metrics()  # type: ignore[no-untyped-call]  # no ``_created`` twin of every counter and histogram
        self.registry = CollectorRegistry(auto_describe=True)
        self.store = store
        self.actors = actors
        self._clock = clock
        self._tenants: list[str] = []
        self._queues: dict[str, _TenantQueue] = {}
        self._last_refresh: float | None = None
        # on_request's label children by (tenant, operation, status class)
        self._request_children: dict[tuple[str, str, str], tuple[Any, Any]] = {}
        r = self.registry

        self.build_info = Gauge(
            "mmsd_build_info",
            "Always 1; the labels say which mmsd and Python run.",
            ["version", "python"],
            registry=r,
        )
        self.build_info.labels(version or package_version(), platform.python_version()).set(1)

        self.migrations_started = Counter(
            "mmsd_migrations_started",
            "Migrations that went InProgress (first start and every retry attempt).",
            ["tenant"],
            registry=r,
        )
        self.migrations_finished = Counter(
            "mmsd_migrations_finished",
            "Migrations that ended, by end state (Succeeded or Failed).",
            ["tenant", "state"],
            registry=r,
        )
        self.migrations_rescheduled = Counter(
            "mmsd_migrations_rescheduled",
            "Migrations sent back to Pending: for a retry, or to wait for the sending quota.",
            ["tenant", "reason"],
            registry=r,
        )
        self.migration_duration = Histogram(
            "mmsd_migration_duration_seconds",
            "Time from a migration's start to its end, by end state.",
            ["tenant", "state"],
            buckets=MIGRATION_BUCKETS,
            registry=r,
        )
        self.queue_wait = Histogram(
            "mmsd_migration_queue_wait_seconds",
            "Time from a migration's first trigger to its start.",
            ["tenant"],
            buckets=MIGRATION_BUCKETS,
            registry=r,
        )
        self.meetings = Counter(
            "mmsd_meetings",
            "Meetings handled, by outcome (updated, skipped, failed) and skip reason.",
            ["tenant", "outcome", "reason"],
            registry=r,
        )
        self.invites = Counter(
            "mmsd_invites_sent",
            "Attendee meeting updates sent by successful PATCHes.",
            ["tenant"],
            registry=r,
        )
        self.triggers = Counter(
            "mmsd_triggers",
            "Triggers decided, by type and fate (migrated, coalesced, ignored).",
            ["tenant", "type", "fate"],
            registry=r,
        )
        self.graph_requests = Counter(
            "mmsd_graph_requests",
            "Graph requests (each batch item counted too), by operation and status class.",
            ["tenant", "operation", "status_class"],
            registry=r,
        )
        self.graph_latency = Histogram(
            "mmsd_graph_request_duration_seconds",
            "Latency of one Graph request, answer or failure.",
            ["tenant", "operation"],
            buckets=GRAPH_LATENCY_BUCKETS,
            registry=r,
        )
        self.graph_throttled = Counter(
            "mmsd_graph_throttled",
            "Graph answers with status 429 (throttled), by operation.",
            ["tenant", "operation"],
            registry=r,
        )
        self.graph_retries = Counter(
            "mmsd_graph_retries",
            "Graph requests that were a retry of an earlier attempt, by operation.",
            ["tenant", "operation"],
            registry=r,
        )
        self.graph_retry_after = Histogram(
            "mmsd_graph_retry_after_seconds",
            "Retry-After that Graph asked for on throttled or unavailable answers.",
            ["tenant"],
            buckets=RETRY_AFTER_BUCKETS,
            registry=r,
        )
        r.register(_QueueCollector(self))
        r.register(_ActorCollector(self))
        self.set_tenants(tenants)

    # -- tenants ---------------------------------------------------------------------

    @property
    def tenants(self) -> list[str]:
        """The tenants whose label sets are initialized, in configuration order."""
        return list(self._tenants)

    def set_tenants(self, tenants: Iterable[str]) -> None:
        """Initialize every label set of new tenants to zero; drop the series of removed ones."""
        wanted = list(dict.fromkeys(tenants))
        for gone in [t for t in self._tenants if t not in wanted]:
            self._remove_tenant(gone)
        for tenant in wanted:
            if tenant not in self._queues:
                self._init_tenant(tenant)
        self._tenants = wanted

    def _init_tenant(self, tenant: str) -> None:
        self._queues[tenant] = _TenantQueue()
        self.migrations_started.labels(tenant)
        self.invites.labels(tenant)
        self.queue_wait.labels(tenant)
        self.graph_retry_after.labels(tenant)
        for state in FINISHED_STATES:
            self.migrations_finished.labels(tenant, state)
            self.migration_duration.labels(tenant, state)
        for reason in RESCHEDULE_REASONS:
            self.migrations_rescheduled.labels(tenant, reason)
        for outcome, reason in _meeting_label_sets():
            self.meetings.labels(tenant, outcome, reason)
        for trigger_type in TriggerType:
            for fate in DECIDED_FATES:
                self.triggers.labels(tenant, str(trigger_type), fate)
        for operation in GRAPH_OPERATIONS:
            self.graph_latency.labels(tenant, operation)
            self.graph_throttled.labels(tenant, operation)
            self.graph_retries.labels(tenant, operation)
            for status_class in GRAPH_STATUS_CLASSES:
                self.graph_requests.labels(tenant, operation, status_class)

    def _remove_tenant(self, tenant: str) -> None:
        self._queues.pop(tenant, None)
        for key in [k for k in self._request_children if k[0] == tenant]:
            del self._request_children[key]
        for metric in (
            self.migrations_started,
            self.migrations_finished,
            self.migrations_rescheduled,
            self.migration_duration,
            self.queue_wait,
            self.meetings,
            self.invites,
            self.triggers,
            self.graph_requests,
            self.graph_latency,
            self.graph_throttled,
            self.graph_retries,
            self.graph_retry_after,
        ):
            metric.remove_by_labels({"tenant": tenant})

    # -- EngineObserver ----------------------------------------------------------------

    def trigger_decided(self, tenant: str, trigger_type: str, fate: str) -> None:
        """Count a decided trigger by type and fate."""
        self.triggers.labels(tenant, trigger_type, fate).inc()

    def migration_started(self, tenant: str, queue_wait_s: float) -> None:
        """Count a start and observe how long it queued."""
        self.migrations_started.labels(tenant).inc()
        self.queue_wait.labels(tenant).observe(max(0.0, queue_wait_s))

    def migration_finished(self, tenant: str, state: str, duration_s: float) -> None:
        """Count an end by state, observe its duration, and feed the tenant's ETA."""
        self.migrations_finished.labels(tenant, state).inc()
        self.migration_duration.labels(tenant, state).observe(max(0.0, duration_s))
        queue = self._queues.get(tenant)
        if queue is not None:
            queue.finishes.append(self._clock())
            self._trim(queue)

    def migration_rescheduled(self, tenant: str, waiting_for_quota: bool) -> None:
        """Count a migration sent back to Pending, for a retry or a quota wait."""
        self.migrations_rescheduled.labels(tenant, "quota" if waiting_for_quota else "retry").inc()

    def meeting_outcome(self, tenant: str, outcome: str, reason: str | None) -> None:
        """Count a meeting by outcome; skips by reason (free-text failure reasons are dropped)."""
        if outcome == MeetingOutcome.SKIPPED:
            label = reason if reason in _SKIP_REASONS else OTHER_REASON
        else:
            label = NO_REASON
        self.meetings.labels(tenant, outcome, label).inc()

    def invites_sent(self, tenant: str, count: int) -> None:
        """Count attendee updates a PATCH sent."""
        if count > 0:
            self.invites.labels(tenant).inc(count)

    # -- GraphObserver -----------------------------------------------------------------

    def on_request(self, event: RequestEvent) -> None:
        """Record one Graph request: status class, latency, throttling, Retry-After, retry."""
        tenant, operation = event.tenant, event.operation
        key = (tenant, operation, event.status_class)
        children = self._request_children.get(key)
        if children is None:  # label lookups cost more than the updates; once per label set
            children = self._request_children[key] = (
                self.graph_requests.labels(*key),
                self.graph_latency.labels(tenant, operation),
            )
        children[0].inc()
        children[1].observe(max(0.0, event.latency_s))
        if event.throttled:
            self.graph_throttled.labels(tenant, operation).inc()
        if event.attempt > 1:
            self.graph_retries.labels(tenant, operation).inc()
        if event.retry_after_s is not None:
            self.graph_retry_after.labels(tenant).observe(max(0.0, event.retry_after_s))

    # -- the queue cache ---------------------------------------------------------------

    async def refresh(self) -> None:
        """Read every tenant's queue figures from the store into the cache."""
        if self.store is None:
            return
        for tenant in list(self._tenants):
            snapshot = await self.store.queue_metrics(tenant)
            queue = self._queues.get(tenant)
            if queue is not None:  # the tenant may have gone during the await
                queue.snapshot = snapshot
        self._last_refresh = time.time()

    async def run_refresher(self, interval: float = 5.0) -> None:
        """Refresh the cache every ``interval`` seconds until cancelled; errors are logged."""
        while True:
            try:
                await self.refresh()
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("metrics refresh failed")
            await asyncio.sleep(interval)

    def eta_seconds(self, tenant: str) -> float:
        """Estimated seconds to finish the tenant's queue: remaining / recent finish rate.

        Remaining is Pending plus InProgress users from the latest snapshot; the rate is
        the migrations finished in the last :data:`ETA_WINDOW_S` seconds (or since the
        first finish, if sooner). 0 when nothing remains; NaN while no rate is known.
        """
        queue = self._queues.get(tenant)
        if queue is None or queue.snapshot is None:
            return math.nan
        counts = queue.snapshot.users_by_state
        remaining = counts.get(MigrationState.PENDING, 0) + counts.get(
            MigrationState.IN_PROGRESS, 0
        )
        if remaining == 0:
            return 0.0
        self._trim(queue)
        if not queue.finishes:
            return math.nan
        span = max(self._clock() - queue.finishes[0], 1.0)
        rate = len(queue.finishes) / span
        return remaining / rate

    def _trim(self, queue: _TenantQueue) -> None:
        horizon = self._clock() - ETA_WINDOW_S
        while queue.finishes and queue.finishes[0] < horizon:
            queue.finishes.popleft()

    def snapshots(self) -> Mapping[str, QueueMetrics | None]:
        """The cached snapshot of each tenant (None until the first refresh)."""
        return {t: self._queues[t].snapshot for t in self._tenants}

    @property
    def last_refresh(self) -> float | None:
        """Unix time of the last successful refresh, or None."""
        return self._last_refresh

    def exposition(self) -> bytes:
        """The registry in Prometheus' text format (what ``/metrics`` serves by default)."""
        return generate_latest(self.registry)


class _QueueCollector(Collector):
    """Serves the cached queue figures at scrape time (never touches the store)."""

    def __init__(self, metrics: Metrics) -> None:
        self._m = metrics

    def describe(self) -> Iterable[Metric]:
        return list(self._families())

    def collect(self) -> Iterable[Metric]:
        return list(self._families(fill=True))

    def _families(self, fill: bool = False) -> Iterator[Metric]:
        users = GaugeMetricFamily(
            "mmsd_migration_users",
            "Users per migration state (each user counted once, by its latest record).",
            labels=["tenant", "state"],
        )
        oldest_pending = GaugeMetricFamily(
            "mmsd_oldest_pending_migration_age_seconds",
            "Age of the oldest runnable Pending migration (quota waits and retry back-offs "
            "excluded); 0 when none.",
            labels=["tenant"],
        )
        oldest_running = GaugeMetricFamily(
            "mmsd_oldest_in_progress_migration_age_seconds",
            "Time since the oldest InProgress migration was started; 0 when none.",
            labels=["tenant"],
        )
        quota = GaugeMetricFamily(
            "mmsd_migrations_waiting_for_quota",
            "Pending migrations waiting for the organizer's daily sending quota.",
            labels=["tenant"],
        )
        eta = GaugeMetricFamily(
            "mmsd_queue_eta_seconds",
            "Estimated seconds to finish the tenant's queue (NaN while no finish rate is known).",
            labels=["tenant"],
        )
        refreshed = GaugeMetricFamily(
            "mmsd_queue_metrics_refreshed_timestamp_seconds",
            "Unix time the queue figures above were last read from the store.",
        )
        if fill:
            for tenant, snap in self._m.snapshots().items():
                counts = snap.users_by_state if snap is not None else {}
                for state in MigrationState:
                    users.add_metric([tenant, str(state)], float(counts.get(state, 0)))
                oldest_pending.add_metric(
                    [tenant], snap.oldest_pending_seconds if snap is not None else 0.0
                )
                oldest_running.add_metric(
                    [tenant], snap.oldest_in_progress_seconds if snap is not None else 0.0
                )
                quota.add_metric(
                    [tenant], float(snap.pending_waiting_for_quota) if snap is not None else 0.0
                )
                eta.add_metric([tenant], self._m.eta_seconds(tenant))
            last = self._m.last_refresh
            if last is not None:
                refreshed.add_metric([], last)
        yield from (users, oldest_pending, oldest_running, quota, eta, refreshed)


class _ActorCollector(Collector):
    """Reads live actors, mailbox depth and supervision counters at scrape time."""

    def __init__(self, metrics: Metrics) -> None:
        self._m = metrics

    def describe(self) -> Iterable[Metric]:
        return list(self._families(None))

    def collect(self) -> Iterable[Metric]:
        source = self._m.actors
        if source is None:
            return list(self._families(SystemStats()))
        try:
            return list(self._families(source.stats()))
        except Exception:  # a broken source must not fail the whole scrape
            log.exception("reading actor stats failed")
            return list(self._families(SystemStats()))

    @staticmethod
    def _families(stats: SystemStats | None) -> Iterator[Metric]:
        live = GaugeMetricFamily("mmsd_actors", "Live actors, by kind.", labels=["kind"])
        depth = GaugeMetricFamily(
            "mmsd_actor_mailbox_depth",
            "Messages waiting in the mailboxes of all actors of a kind.",
            labels=["kind"],
        )
        restarts = CounterMetricFamily(
            "mmsd_actor_restarts",
            "Actors restarted by their supervisor after a crash, by kind.",
            labels=["kind"],
        )
        failures = CounterMetricFamily(
            "mmsd_actor_failures",
            "Actors that crashed beyond their restart budget, by kind.",
            labels=["kind"],
        )
        passivations = CounterMetricFamily(
            "mmsd_actor_passivations",
            "Idle actors stopped to free memory, by kind.",
            labels=["kind"],
        )
        tasks = GaugeMetricFamily(
            "mmsd_background_tasks", "Background tasks the actor system tracks."
        )
        if stats is not None:
            for kind, figures in sorted(stats.kinds.items()):
                live.add_metric([kind], figures.live)
                depth.add_metric([kind], figures.mailbox_depth)
                restarts.add_metric([kind], figures.restarts_total)
                failures.add_metric([kind], figures.failures_total)
                passivations.add_metric([kind], figures.passivations_total)
            tasks.add_metric([], stats.tasks)
        yield from (live, depth, restarts, failures, passivations, tasks)
