"""The metrics of SPEC section 6: names, zero-initialized label sets, buckets, observers,
the scrape-time queue and actor collectors, and the plain metrics listener."""

from __future__ import annotations

import math
from collections.abc import Iterable

import aiohttp
from prometheus_client.parser import text_string_to_metric_families
from prometheus_client.samples import Sample

from mmsd.actors import KindStats, SystemStats
from mmsd.domain.model import MigrationState, SkipReason, TriggerType
from mmsd.engine.api import EngineObserver
from mmsd.graph.client import GraphObserver, RequestEvent
from mmsd.metrics import GRAPH_OPERATIONS, GRAPH_STATUS_CLASSES, Metrics, MetricsServer
from mmsd.metrics.registry import package_version
from mmsd.metrics.server import parse_listen
from mmsd.store import QueueMetrics

TENANTS = ["contoso", "fabrikam"]


def samples(metrics: Metrics) -> list[Sample]:
    """Every sample of the exposition, parsed back with prometheus_client's parser."""
    text = metrics.exposition().decode()
    return [s for family in text_string_to_metric_families(text) for s in family.samples]


def value(metrics: Metrics, name: str, **labels: str) -> float:
    """The one sample named ``name`` whose labels include ``labels``."""
    found = [s for s in samples(metrics) if s.name == name and labels.items() <= s.labels.items()]
    assert len(found) == 1, (name, labels, found)
    return found[0].value


def label_sets(metrics: Metrics, name: str, keys: Iterable[str]) -> set[tuple[str, ...]]:
    """The distinct values of ``keys`` among the samples named ``name``."""
    keys = list(keys)
    return {tuple(s.labels[k] for k in keys) for s in samples(metrics) if s.name == name}


class FakeStore:
    """A queue source with fixed figures per tenant; counts its reads."""

    def __init__(self, figures: dict[str, QueueMetrics]) -> None:
        self.figures = figures
        self.reads = 0

    async def queue_metrics(self, tenant: str) -> QueueMetrics:
        self.reads += 1
        return self.figures[tenant]


class FakeActors:
    """An actor-stats source."""

    def __init__(self, stats: SystemStats) -> None:
        self.value = stats

    def stats(self) -> SystemStats:
        return self.value


def queue(pending: int = 0, running: int = 0, failed: int = 0, **kw: float) -> QueueMetrics:
    return QueueMetrics(
        users_by_state={
            MigrationState.PENDING: pending,
            MigrationState.IN_PROGRESS: running,
            MigrationState.SUCCEEDED: 0,
            MigrationState.FAILED: failed,
        },
        oldest_pending_seconds=float(kw.get("oldest_pending", 0.0)),
        oldest_in_progress_seconds=float(kw.get("oldest_running", 0.0)),
        pending_waiting_for_quota=int(kw.get("quota", 0)),
        pending_total=pending,
    )


def test_metric_names_follow_conventions() -> None:
    m = Metrics(TENANTS)
    text = m.exposition().decode()
    families = {f.name: f for f in text_string_to_metric_families(text)}
    expected = {
        "mmsd_build_info": "gauge",
        "mmsd_migrations_started": "counter",
        "mmsd_migrations_finished": "counter",
        "mmsd_migrations_rescheduled": "counter",
        "mmsd_migration_duration_seconds": "histogram",
        "mmsd_migration_queue_wait_seconds": "histogram",
        "mmsd_meetings": "counter",
        "mmsd_invites_sent": "counter",
        "mmsd_triggers": "counter",
        "mmsd_graph_requests": "counter",
        "mmsd_graph_request_duration_seconds": "histogram",
        "mmsd_graph_throttled": "counter",
        "mmsd_graph_retries": "counter",
        "mmsd_graph_retry_after_seconds": "histogram",
        "mmsd_migration_users": "gauge",
        "mmsd_oldest_pending_migration_age_seconds": "gauge",
        "mmsd_oldest_in_progress_migration_age_seconds": "gauge",
        "mmsd_migrations_waiting_for_quota": "gauge",
        "mmsd_queue_eta_seconds": "gauge",
        "mmsd_actors": "gauge",
        "mmsd_actor_mailbox_depth": "gauge",
    }
    for name, kind in expected.items():
        assert name in families, name
        assert families[name].type == kind, name
    for family in families.values():
        assert family.name.startswith("mmsd_"), family.name
        assert family.documentation, family.name
        for sample in family.samples:
            assert "user" not in {k.lower() for k in sample.labels}, sample
            assert not sample.name.endswith("_created"), sample.name
            if family.type == "counter":
                assert sample.name.endswith("_total"), sample.name
    assert "# TYPE mmsd_meetings_total counter" in text


def test_build_info() -> None:
    m = Metrics(TENANTS)
    assert package_version() != "unknown"
    assert value(m, "mmsd_build_info", version=package_version()) == 1.0


def test_label_sets_start_at_zero_for_every_tenant() -> None:
    m = Metrics(TENANTS)
    triggers = label_sets(m, "mmsd_triggers_total", ["tenant", "type", "fate"])
    assert triggers == {
        (t, str(tt), fate)
        for t in TENANTS
        for tt in TriggerType
        for fate in ("migrated", "coalesced", "ignored")
    }
    meetings = label_sets(m, "mmsd_meetings_total", ["tenant", "outcome", "reason"])
    assert meetings == {
        (t, o, r)
        for t in TENANTS
        for o, r in [("updated", "none"), ("failed", "none")]
        + [("skipped", str(reason)) for reason in SkipReason]
    }
    graph = label_sets(m, "mmsd_graph_requests_total", ["tenant", "operation", "status_class"])
    assert graph == {
        (t, op, sc) for t in TENANTS for op in GRAPH_OPERATIONS for sc in GRAPH_STATUS_CLASSES
    }
    finished = label_sets(m, "mmsd_migrations_finished_total", ["tenant", "state"])
    assert finished == {(t, s) for t in TENANTS for s in ("Succeeded", "Failed")}
    users = label_sets(m, "mmsd_migration_users", ["tenant", "state"])
    assert users == {(t, str(s)) for t in TENANTS for s in MigrationState}
    for s in samples(m):
        if s.name != "mmsd_build_info" and s.name != "mmsd_queue_eta_seconds":
            assert s.value == 0.0, s


def test_histogram_buckets_carry_the_alert_marks() -> None:
    m = Metrics(["contoso"])
    for name in ("mmsd_migration_duration_seconds", "mmsd_migration_queue_wait_seconds"):
        edges = {
            s.labels["le"]
            for s in samples(m)
            if s.name == f"{name}_bucket" and s.labels["tenant"] == "contoso"
        }
        assert edges == {
            "60.0",
            "600.0",
            "3600.0",
            "7200.0",
            "21600.0",
            "43200.0",
            "86400.0",
            "+Inf",
        }


def test_engine_observer_updates_the_right_series() -> None:
    m = Metrics(TENANTS)
    observer: EngineObserver = m  # the protocol is satisfied
    observer.trigger_decided("contoso", "bridgeChanged", "coalesced")
    observer.migration_started("contoso", 700.0)
    observer.migration_finished("contoso", "Failed", 4000.0)
    observer.migration_rescheduled("contoso", waiting_for_quota=True)
    observer.migration_rescheduled("contoso", waiting_for_quota=False)
    observer.meeting_outcome("contoso", "skipped", "noBlock")
    observer.meeting_outcome("contoso", "skipped", "something new")
    observer.meeting_outcome("contoso", "failed", "Graph said 500 on /users/x@y.com")
    observer.meeting_outcome("contoso", "updated", None)
    observer.invites_sent("contoso", 12)

    assert (
        value(m, "mmsd_triggers_total", tenant="contoso", type="bridgeChanged", fate="coalesced")
        == 1
    )
    assert (
        value(m, "mmsd_triggers_total", tenant="fabrikam", type="bridgeChanged", fate="coalesced")
        == 0
    )
    assert value(m, "mmsd_migrations_started_total", tenant="contoso") == 1
    assert value(m, "mmsd_migrations_finished_total", tenant="contoso", state="Failed") == 1
    assert value(m, "mmsd_migrations_finished_total", tenant="contoso", state="Succeeded") == 0
    wait = "mmsd_migration_queue_wait_seconds_bucket"
    assert value(m, wait, tenant="contoso", le="600.0") == 0
    assert value(m, wait, tenant="contoso", le="3600.0") == 1
    duration = "mmsd_migration_duration_seconds_bucket"
    assert value(m, duration, tenant="contoso", state="Failed", le="3600.0") == 0
    assert value(m, duration, tenant="contoso", state="Failed", le="7200.0") == 1
    resched = "mmsd_migrations_rescheduled_total"
    assert value(m, resched, tenant="contoso", reason="quota") == 1
    assert value(m, resched, tenant="contoso", reason="retry") == 1
    meetings = "mmsd_meetings_total"
    assert value(m, meetings, tenant="contoso", outcome="skipped", reason="noBlock") == 1
    assert value(m, meetings, tenant="contoso", outcome="skipped", reason="other") == 1
    assert value(m, meetings, tenant="contoso", outcome="failed", reason="none") == 1
    assert value(m, meetings, tenant="contoso", outcome="updated", reason="none") == 1
    assert value(m, "mmsd_invites_sent_total", tenant="contoso") == 12
    assert "x@y.com" not in m.exposition().decode()  # free text never becomes a label


def test_graph_observer_updates_the_right_series() -> None:
    m = Metrics(TENANTS)
    observer: GraphObserver = m
    ok = RequestEvent("contoso", "get_event", 200, "2xx", 0.07, False, None, 1)
    throttled = RequestEvent("contoso", "patch_event", 429, "4xx", 0.3, True, 7.0, 2)
    lost = RequestEvent("fabrikam", "list_events", 0, "error", 31.0, False, None, 1)
    for event in (ok, throttled, throttled, lost):
        observer.on_request(event)

    requests = "mmsd_graph_requests_total"
    assert value(m, requests, tenant="contoso", operation="get_event", status_class="2xx") == 1
    assert value(m, requests, tenant="contoso", operation="patch_event", status_class="4xx") == 2
    assert value(m, requests, tenant="fabrikam", operation="list_events", status_class="error") == 1
    assert value(m, "mmsd_graph_throttled_total", tenant="contoso", operation="patch_event") == 2
    assert value(m, "mmsd_graph_throttled_total", tenant="contoso", operation="get_event") == 0
    assert value(m, "mmsd_graph_retries_total", tenant="contoso", operation="patch_event") == 2
    latency = "mmsd_graph_request_duration_seconds_bucket"
    assert value(m, latency, tenant="contoso", operation="get_event", le="0.05") == 0
    assert value(m, latency, tenant="contoso", operation="get_event", le="0.1") == 1
    assert value(m, latency, tenant="fabrikam", operation="list_events", le="30.0") == 0
    assert value(m, latency, tenant="fabrikam", operation="list_events", le="60.0") == 1
    assert value(m, "mmsd_graph_retry_after_seconds_sum", tenant="contoso") == 14.0
    assert value(m, "mmsd_graph_retry_after_seconds_bucket", tenant="contoso", le="10.0") == 2


async def test_queue_figures_come_from_the_cache_not_the_scrape() -> None:
    store = FakeStore(
        {
            "contoso": queue(pending=3, running=1, failed=2, oldest_pending=42.0, quota=2),
            "fabrikam": queue(oldest_running=9000.0, running=1),
        }
    )
    m = Metrics(TENANTS, store=store)
    # Before the first refresh every tenant reads zero, and scraping reads no store.
    assert value(m, "mmsd_migration_users", tenant="contoso", state="Pending") == 0
    assert store.reads == 0
    await m.refresh()
    assert store.reads == 2
    m.exposition()
    m.exposition()
    assert store.reads == 2  # scrapes do not touch the store
    assert value(m, "mmsd_migration_users", tenant="contoso", state="Pending") == 3
    assert value(m, "mmsd_migration_users", tenant="contoso", state="Failed") == 2
    assert value(m, "mmsd_migration_users", tenant="fabrikam", state="InProgress") == 1
    assert value(m, "mmsd_oldest_pending_migration_age_seconds", tenant="contoso") == 42.0
    assert value(m, "mmsd_oldest_in_progress_migration_age_seconds", tenant="fabrikam") == 9000
    assert value(m, "mmsd_migrations_waiting_for_quota", tenant="contoso") == 2
    assert value(m, "mmsd_queue_metrics_refreshed_timestamp_seconds") > 0


async def test_eta_is_remaining_over_the_recent_finish_rate() -> None:
    now = [1000.0]
    store = FakeStore({"contoso": queue(pending=8, running=2)})
    m = Metrics(["contoso"], store=store, clock=lambda: now[0])
    await m.refresh()
    assert math.isnan(m.eta_seconds("contoso"))  # no finish yet: unknown
    for _ in range(5):
        m.migration_finished("contoso", "Succeeded", 60.0)
        now[0] += 20.0
    # 5 finishes over 100 s: 0.05/s; 10 users left: 200 s.
    assert m.eta_seconds("contoso") == 200.0
    assert value(m, "mmsd_queue_eta_seconds", tenant="contoso") == 200.0
    store.figures["contoso"] = queue()
    await m.refresh()
    assert m.eta_seconds("contoso") == 0.0
    # Finishes older than the window no longer count.
    store.figures["contoso"] = queue(pending=1)
    await m.refresh()
    now[0] += 10_000.0
    assert math.isnan(m.eta_seconds("contoso"))


def test_actor_stats_are_read_at_scrape_time() -> None:
    actors = FakeActors(SystemStats(kinds={"tenant": KindStats(live=2, mailbox_depth=5)}))
    m = Metrics(["contoso"], actors=actors)
    assert value(m, "mmsd_actors", kind="tenant") == 2
    assert value(m, "mmsd_actor_mailbox_depth", kind="tenant") == 5
    actors.value = SystemStats(
        kinds={
            "tenant": KindStats(live=2, mailbox_depth=0),
            "user": KindStats(live=17, mailbox_depth=3, restarts_total=4),
        },
        tasks=6,
    )
    assert value(m, "mmsd_actors", kind="user") == 17
    assert value(m, "mmsd_actor_mailbox_depth", kind="tenant") == 0
    assert value(m, "mmsd_actor_restarts_total", kind="user") == 4
    assert value(m, "mmsd_background_tasks") == 6


def test_a_broken_actor_source_does_not_fail_the_scrape() -> None:
    class Broken:
        def stats(self) -> SystemStats:
            return object()  # type: ignore[return-value]  # the wrong shape, as a bug would

    m = Metrics(["contoso"], actors=Broken())
    assert not [s for s in samples(m) if s.name == "mmsd_actors"]
    assert value(m, "mmsd_migration_users", tenant="contoso", state="Failed") == 0


def test_set_tenants_adds_and_removes_series() -> None:
    m = Metrics(["contoso"])
    m.migration_started("contoso", 1.0)
    m.set_tenants(["contoso", "fabrikam"])
    assert value(m, "mmsd_migrations_started_total", tenant="contoso") == 1  # kept
    assert (
        value(m, "mmsd_triggers_total", tenant="fabrikam", type="manualStart", fate="migrated") == 0
    )
    m.set_tenants(["fabrikam"])
    assert m.tenants == ["fabrikam"]
    assert not [s for s in samples(m) if s.labels.get("tenant") == "contoso"]
    assert label_sets(m, "mmsd_migration_users", ["tenant"]) == {("fabrikam",)}


def test_parse_listen() -> None:
    assert parse_listen("127.0.0.1:9464") == ("127.0.0.1", 9464)
    assert parse_listen("[::1]:0") == ("::1", 0)
    for bad in ("9464", ":9464", "host:", "host:http", "host:70000"):
        try:
            parse_listen(bad)
        except ValueError:
            continue
        raise AssertionError(bad)


async def test_metrics_listener_serves_metrics_and_probes() -> None:
    m = Metrics(["contoso"])
    m.trigger_decided("contoso", "manualStart", "migrated")
    ready = [False]
    server = MetricsServer(m, "127.0.0.1:0", ready=lambda: ready[0])
    await server.start()
    try:
        assert server.port != 0
        async with aiohttp.ClientSession() as http:
            async with http.get(f"{server.url}/metrics") as resp:
                assert resp.status == 200
                assert resp.headers["Content-Type"].startswith("text/plain")
                body = await resp.text()
            assert (
                'mmsd_triggers_total{fate="migrated",tenant="contoso",type="manualStart"} 1.0'
                in body
            )
            headers = {"Accept": "application/openmetrics-text; version=1.0.0"}
            async with http.get(f"{server.url}/metrics", headers=headers) as resp:
                assert resp.headers["Content-Type"].startswith("application/openmetrics-text")
                assert (await resp.text()).endswith("# EOF\n")
            async with http.get(f"{server.url}/healthz") as resp:
                assert resp.status == 200
            async with http.get(f"{server.url}/readyz") as resp:
                assert resp.status == 503
            ready[0] = True
            async with http.get(f"{server.url}/readyz") as resp:
                assert resp.status == 200
                assert await resp.json() == {"status": "ok"}
    finally:
        await server.stop()
