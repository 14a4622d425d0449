#!/usr/bin/env python3
"""Generate grafana/mmsd-dashboard.json, mmsd's Grafana dashboard, from code.

Run ``python grafana/build_dashboard.py`` after changing a panel and commit both
files; ``--check`` exits 1 when the committed JSON is out of date (a test runs the
same check). The dashboard is importable as is: it asks for a Prometheus data source
through the ``datasource`` variable, and every panel filters on the ``tenant``
variable. The migration window — 10 minutes, 1 hour, 12 hours — is drawn as
threshold lines on the duration and queue-wait panels, matching bucket edges of
``mmsd_migration_duration_seconds`` and ``mmsd_migration_queue_wait_seconds``.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

JSON = dict[str, Any]

OUTPUT = Path(__file__).with_name("mmsd-dashboard.json")
UID = "mmsd-overview"
TITLE = "mmsd — Meeting Migration Service"
SCHEMA_VERSION = 39
DATASOURCE: JSON = {"type": "prometheus", "uid": "${datasource}"}
T = 'tenant=~"$tenant"'
RI = "$__rate_interval"

#: The migration window marks, in seconds, with the colour each turns the area past it.
WINDOW_MARKS: tuple[tuple[float, str], ...] = ((600, "blue"), (3600, "yellow"), (43200, "red"))


def _thresholds(*steps: tuple[float, str], base: str = "green") -> JSON:
    return {
        "mode": "absolute",
        "steps": [{"color": base, "value": None}]
        + [{"color": color, "value": value} for value, color in steps],
    }


def _target(expr: str, legend: str, ref: str, *, fmt: str = "time_series") -> JSON:
    return {
        "datasource": DATASOURCE,
        "expr": expr,
        "legendFormat": legend,
        "refId": ref,
        "format": fmt,
        "range": True,
        "instant": False,
    }


class _Layout:
    """Places panels left to right on Grafana's 24-column grid, wrapping rows."""

    def __init__(self) -> None:
        self.x = 0
        self.y = 0
        self.row_h = 0
        self.next_id = 1

    def place(self, w: int, h: int) -> JSON:
        if self.x + w > 24:
            self.x, self.y, self.row_h = 0, self.y + self.row_h, 0
        pos = {"h": h, "w": w, "x": self.x, "y": self.y}
        self.x += w
        self.row_h = max(self.row_h, h)
        return pos

    def new_row(self) -> JSON:
        if self.x:
            self.x, self.y, self.row_h = 0, self.y + self.row_h, 0
        pos = {"h": 1, "w": 24, "x": 0, "y": self.y}
        self.y += 1
        return pos

    def id(self) -> int:
        self.next_id += 1
        return self.next_id - 1


def _row(layout: _Layout, title: str) -> JSON:
    return {
        "type": "row",
        "id": layout.id(),
        "title": title,
        "collapsed": False,
        "gridPos": layout.new_row(),
        "panels": [],
    }


def _panel(
    layout: _Layout,
    kind: str,
    title: str,
    description: str,
    targets: list[tuple[str, str]],
    *,
    unit: str = "short",
    w: int = 12,
    h: int = 8,
    thresholds: JSON | None = None,
    threshold_style: str = "off",
    log_scale: bool = False,
    stack: bool = False,
    options: JSON | None = None,
    fmt: str = "time_series",
) -> JSON:
    refs = "ABCDEFGHIJ"
    custom: JSON = {}
    if kind == "timeseries":
        custom = {
            "drawStyle": "line",
            "lineWidth": 1,
            "fillOpacity": 10,
            "showPoints": "never",
            "spanNulls": False,
            "stacking": {"mode": "normal" if stack else "none", "group": "A"},
            "thresholdsStyle": {"mode": threshold_style},
            "scaleDistribution": {"type": "log", "log": 10} if log_scale else {"type": "linear"},
        }
    panel: JSON = {
        "type": kind,
        "id": layout.id(),
        "title": title,
        "description": description,
        "datasource": DATASOURCE,
        "gridPos": layout.place(w, h),
        "targets": [
            _target(expr, legend, refs[i], fmt=fmt) for i, (expr, legend) in enumerate(targets)
        ],
        "fieldConfig": {
            "defaults": {
                "unit": unit,
                "thresholds": thresholds or _thresholds(),
                "custom": custom,
            },
            "overrides": [],
        },
        "options": options
        or {
            "legend": {"displayMode": "list", "placement": "bottom", "showLegend": True},
            "tooltip": {"mode": "multi", "sort": "desc"},
        },
    }
    return panel


def _quantiles(metric: str, by: str = "") -> list[tuple[str, str]]:
    group = f"le{', ' + by if by else ''}"
    prefix = f"{{{{{by}}}}} " if by else ""
    return [
        (
            f"histogram_quantile({q}, sum by ({group}) (rate({metric}_bucket{{{T}}}[{RI}])))",
            f"{prefix}p{int(q * 100)}",
        )
        for q in (0.5, 0.9, 0.99)
    ]


def _window_share(metric: str) -> list[tuple[str, str]]:
    out = []
    # prometheus_client writes bucket edges as floats: le="600.0", not le="600".
    for edge, label in ((600.0, "≤ 10 min"), (3600.0, "≤ 1 h"), (43200.0, "≤ 12 h")):
        out.append(
            (
                f'sum(increase({metric}_bucket{{{T}, le="{edge!r}"}}[$__range])) / '
                f"sum(increase({metric}_count{{{T}}}[$__range]))",
                label,
            )
        )
    return out


def _panels() -> Iterator[JSON]:
    grid = _Layout()
    window = _thresholds(*WINDOW_MARKS)

    yield _row(grid, "Migrations")
    yield _panel(
        grid,
        "stat",
        "Users per state",
        "Users per migration state, each counted once by its latest record.",
        [(f"sum by (state) (mmsd_migration_users{{{T}}})", "{{state}}")],
        w=8,
        options={
            "reduceOptions": {"calcs": ["lastNotNull"], "fields": "", "values": False},
            "colorMode": "value",
            "graphMode": "none",
            "textMode": "value_and_name",
            "orientation": "horizontal",
        },
    )
    yield _panel(
        grid,
        "timeseries",
        "Users per state over time",
        "The same counts over time.",
        [(f"sum by (state) (mmsd_migration_users{{{T}}})", "{{state}}")],
        w=16,
    )
    yield _panel(
        grid,
        "timeseries",
        "Migrations started and finished",
        "Starts (each attempt) and ends by end state, per rate interval.",
        [
            (f"sum(increase(mmsd_migrations_started_total{{{T}}}[{RI}]))", "started"),
            (
                f"sum by (state) (increase(mmsd_migrations_finished_total{{{T}}}[{RI}]))",
                "finished {{state}}",
            ),
            (
                f"sum by (reason) (increase(mmsd_migrations_rescheduled_total{{{T}}}[{RI}]))",
                "rescheduled ({{reason}})",
            ),
        ],
    )
    yield _panel(
        grid,
        "timeseries",
        "Queue ETA",
        "Estimated time to finish each tenant's queue (Pending + InProgress users at the "
        "recent finish rate; empty while no rate is known).",
        [(f"mmsd_queue_eta_seconds{{{T}}}", "{{tenant}}")],
        unit="s",
        thresholds=window,
        threshold_style="dashed",
    )
    yield _panel(
        grid,
        "timeseries",
        "Oldest pending and in-progress migration",
        "Age of the oldest runnable Pending migration (alert at 2 h) and of the oldest "
        "InProgress one (alert at 12 h).",
        [
            (f"mmsd_oldest_pending_migration_age_seconds{{{T}}}", "pending {{tenant}}"),
            (f"mmsd_oldest_in_progress_migration_age_seconds{{{T}}}", "in progress {{tenant}}"),
        ],
        unit="s",
        thresholds=_thresholds((7200, "orange"), (43200, "red")),
        threshold_style="dashed",
    )
    yield _panel(
        grid,
        "timeseries",
        "Waiting for the sending quota",
        "Pending migrations waiting for an organizer's daily recipient quota (no alert).",
        [(f"mmsd_migrations_waiting_for_quota{{{T}}}", "{{tenant}}")],
    )

    yield _row(grid, "Duration and queue wait")
    for metric, what in (
        ("mmsd_migration_duration_seconds", "Migration duration (start to end)"),
        ("mmsd_migration_queue_wait_seconds", "Queue wait (first trigger to start)"),
    ):
        yield _panel(
            grid,
            "timeseries",
            f"{what}: quantiles",
            f"p50/p90/p99 of {metric}; dashed lines at 10 min, 1 h and 12 h.",
            _quantiles(metric),
            unit="s",
            w=8,
            thresholds=window,
            threshold_style="dashed",
            log_scale=True,
        )
        yield _panel(
            grid,
            "heatmap",
            f"{what}: distribution",
            f"Histogram of {metric} per rate interval (bucket edges 1 min to 24 h).",
            [(f"sum by (le) (increase({metric}_bucket{{{T}}}[{RI}]))", "{{le}}")],
            unit="s",
            w=8,
            fmt="heatmap",
            options={
                "calculate": False,
                "yAxis": {"unit": "s"},
                "cellGap": 1,
                "color": {"mode": "scheme", "scheme": "Oranges", "steps": 64},
                "tooltip": {"mode": "single", "yHistogram": True},
            },
        )
        yield _panel(
            grid,
            "bargauge",
            f"{what}: within the window",
            "Share of those in the dashboard's time range that took at most 10 min, 1 h, 12 h.",
            _window_share(metric),
            unit="percentunit",
            w=8,
            thresholds=_thresholds((0.5, "yellow"), (0.9, "green"), base="red"),
            options={
                "reduceOptions": {"calcs": ["lastNotNull"], "fields": "", "values": False},
                "orientation": "horizontal",
                "displayMode": "gradient",
                "minVizHeight": 10,
                "showUnfilled": True,
            },
        )

    yield _row(grid, "Meetings and triggers")
    yield _panel(
        grid,
        "timeseries",
        "Meetings by outcome",
        "Meetings updated, skipped and failed per rate interval.",
        [(f"sum by (outcome) (increase(mmsd_meetings_total{{{T}}}[{RI}]))", "{{outcome}}")],
        w=8,
        stack=True,
    )
    yield _panel(
        grid,
        "timeseries",
        "Skipped meetings by reason",
        "Why meetings were left alone (notOnlineMeeting, noBlock, ambiguousBlock, ...).",
        [
            (
                f'sum by (reason) (increase(mmsd_meetings_total{{{T}, outcome="skipped"}}[{RI}]))',
                "{{reason}}",
            )
        ],
        w=8,
        stack=True,
    )
    yield _panel(
        grid,
        "timeseries",
        "Attendee updates sent",
        "Meeting updates attendees received, per second.",
        [(f"sum(rate(mmsd_invites_sent_total{{{T}}}[{RI}]))", "updates/s")],
        unit="ops",
        w=8,
    )
    yield _panel(
        grid,
        "timeseries",
        "Triggers by fate",
        "Triggers migrated, coalesced into another, or ignored.",
        [(f"sum by (fate) (increase(mmsd_triggers_total{{{T}}}[{RI}]))", "{{fate}}")],
        stack=True,
    )
    yield _panel(
        grid,
        "timeseries",
        "Triggers by type",
        "Decided triggers by type.",
        [(f"sum by (type) (increase(mmsd_triggers_total{{{T}}}[{RI}]))", "{{type}}")],
        stack=True,
    )

    yield _row(grid, "Microsoft Graph")
    yield _panel(
        grid,
        "timeseries",
        "Graph requests by status class",
        "Requests per second (batch items counted on their own).",
        [
            (
                f"sum by (status_class) (rate(mmsd_graph_requests_total{{{T}}}[{RI}]))",
                "{{status_class}}",
            )
        ],
        unit="reqps",
        w=8,
        stack=True,
    )
    yield _panel(
        grid,
        "timeseries",
        "Graph requests by operation",
        "Requests per second by client operation.",
        [
            (
                f"sum by (operation) (rate(mmsd_graph_requests_total{{{T}}}[{RI}]))",
                "{{operation}}",
            )
        ],
        unit="reqps",
        w=8,
        stack=True,
    )
    yield _panel(
        grid,
        "timeseries",
        "Graph latency",
        "Request latency quantiles.",
        _quantiles("mmsd_graph_request_duration_seconds"),
        unit="s",
        w=8,
    )
    yield _panel(
        grid,
        "timeseries",
        "Graph throttling",
        "Share of Graph requests answered 429; the alert fires above 5 % over 15 min.",
        [
            (
                f"sum by (tenant) (rate(mmsd_graph_throttled_total{{{T}}}[{RI}])) / "
                f"sum by (tenant) (rate(mmsd_graph_requests_total{{{T}}}[{RI}]))",
                "{{tenant}}",
            )
        ],
        unit="percentunit",
        thresholds=_thresholds((0.05, "red")),
        threshold_style="dashed",
    )
    yield _panel(
        grid,
        "timeseries",
        "Retry-After",
        "Mean and p90 of the Retry-After Graph asked for.",
        [
            (
                f"sum(rate(mmsd_graph_retry_after_seconds_sum{{{T}}}[{RI}])) / "
                f"sum(rate(mmsd_graph_retry_after_seconds_count{{{T}}}[{RI}]))",
                "mean",
            ),
            (
                f"histogram_quantile(0.9, sum by (le) "
                f"(rate(mmsd_graph_retry_after_seconds_bucket{{{T}}}[{RI}])))",
                "p90",
            ),
        ],
        unit="s",
    )

    yield _row(grid, "Runtime")
    yield _panel(
        grid,
        "timeseries",
        "Live actors",
        "Actors alive, by kind (tenant actors, user actors).",
        [("sum by (kind) (mmsd_actors)", "{{kind}}")],
        w=8,
    )
    yield _panel(
        grid,
        "timeseries",
        "Mailbox depth",
        "Messages waiting in actor mailboxes, by kind.",
        [("sum by (kind) (mmsd_actor_mailbox_depth)", "{{kind}}")],
        w=8,
    )
    yield _panel(
        grid,
        "timeseries",
        "Actor restarts and failures",
        "Supervisor restarts and actors that exhausted their restart budget.",
        [
            (f"sum by (kind) (increase(mmsd_actor_restarts_total[{RI}]))", "restarts {{kind}}"),
            (f"sum by (kind) (increase(mmsd_actor_failures_total[{RI}]))", "failures {{kind}}"),
        ],
        w=8,
    )


def _variables() -> list[JSON]:
    return [
        {
            "type": "datasource",
            "name": "datasource",
            "label": "Data source",
            "query": "prometheus",
            "current": {},
            "hide": 0,
            "refresh": 1,
            "regex": "",
            "options": [],
        },
        {
            "type": "query",
            "name": "tenant",
            "label": "Tenant",
            "datasource": DATASOURCE,
            "query": {
                "query": "label_values(mmsd_migration_users, tenant)",
                "refId": "PrometheusVariableQueryEditor-VariableQuery",
            },
            "refresh": 2,
            "includeAll": True,
            "allValue": ".*",
            "multi": True,
            "current": {"selected": True, "text": ["All"], "value": ["$__all"]},
            "hide": 0,
            "sort": 1,
            "regex": "",
            "options": [],
        },
    ]


def build() -> JSON:
    """The dashboard model as a dict (Grafana's dashboard JSON)."""
    return {
        "__requires": [
            {"type": "grafana", "id": "grafana", "name": "Grafana", "version": "10.0.0"},
            {"type": "datasource", "id": "prometheus", "name": "Prometheus", "version": "1.0.0"},
        ],
        "uid": UID,
        "title": TITLE,
        "description": "mmsd migrations, meetings, triggers, Microsoft Graph and actors.",
        "tags": ["mmsd"],
        "timezone": "browser",
        "editable": True,
        "graphTooltip": 1,
        "schemaVersion": SCHEMA_VERSION,
        "version": 1,
        "refresh": "30s",
        "time": {"from": "now-24h", "to": "now"},
        "timepicker": {},
        "fiscalYearStartMonth": 0,
        "liveNow": False,
        "weekStart": "",
        "links": [
            {
                "title": "Runbooks",
                "type": "link",
                "url": "https://github.com/mmsd-project/mmsd/blob/main/README.md#runbooks",
                "targetBlank": True,
                "icon": "doc",
                "tags": [],
                "asDropdown": False,
                "includeVars": False,
                "keepTime": False,
                "tooltip": "",
            }
        ],
        "annotations": {
            "list": [
                {
                    "builtIn": 1,
                    "datasource": {"type": "grafana", "uid": "-- Grafana --"},
                    "enable": True,
                    "hide": True,
                    "iconColor": "rgba(0, 211, 255, 1)",
                    "name": "Annotations & Alerts",
                    "type": "dashboard",
                }
            ]
        },
        "templating": {"list": _variables()},
        "panels": list(_panels()),
    }


def render() -> str:
    """The dashboard as the committed file's text: sorted keys, two-space indent."""
    return json.dumps(build(), indent=2, sort_keys=True, ensure_ascii=False) + "\n"


def main(argv: list[str] | None = None) -> int:
    """Write the dashboard (default) or, with ``--check``, fail if the file is stale."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--check", action="store_true", help="exit 1 if the file is stale")
    parser.add_argument("--output", type=Path, default=OUTPUT)
    args = parser.parse_args(argv)
    text = render()
    if args.check:
        current = args.output.read_text(encoding="utf-8") if args.output.exists() else ""
        if current != text:
            print(f"{args.output} is stale: run python grafana/build_dashboard.py", file=sys.stderr)
            return 1
        return 0
    args.output.write_text(text, encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
