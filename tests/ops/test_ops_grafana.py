"""grafana/: the dashboard is in sync with its generator, valid against Grafana's
dashboard schema and complete, its queries are valid PromQL; the alert rules pass
``promtool check`` and ``test``.

Two checks of the dashboard model. :func:`grafana_schema.schema_errors` checks it
against Grafana's own schema, as the models of the ``grafana-foundation-sdk`` package
(generated from Grafana's CUE schema; a dev dependency) carry it: no field the schema
lacks, every value of the schema's type and enum, panel options and custom field
config per panel plugin, Prometheus queries (the test is skipped, saying why, if the
package is missing). :func:`check_dashboard_model` adds what those models cannot tell,
from what an import relies on: required top-level fields, panel ids, grid positions
inside the 24-column grid without overlaps, targets with unique refIds, thresholds in
ascending order, unique variable names.
"""

from __future__ import annotations

import json
import re
import subprocess
from pathlib import Path
from typing import Any

import pytest
from ops_testkit import (
    ALERTS,
    ALERTS_TEST,
    DASHBOARD,
    load_builder,
    panel_queries,
    substitute,
    tool,
)

PANEL_TYPES = {"row", "timeseries", "stat", "heatmap", "bargauge", "gauge", "table", "text"}
VARIABLE_TYPES = {"query", "datasource", "custom", "constant", "interval", "textbox"}


def check_dashboard_model(d: dict[str, Any]) -> None:
    """Assert the subset of Grafana's dashboard model that import and rendering rely on."""
    for key, kind in {
        "title": str,
        "uid": str,
        "schemaVersion": int,
        "version": int,
        "panels": list,
        "templating": dict,
        "time": dict,
        "tags": list,
        "editable": bool,
        "annotations": dict,
    }.items():
        assert isinstance(d.get(key), kind), key
    assert 0 < len(d["uid"]) <= 40
    assert d["schemaVersion"] >= 36  # the model of Grafana 9 and later
    assert set(d["time"]) == {"from", "to"}
    assert "id" not in d or d["id"] is None  # an id would clash on import

    ids: set[int] = set()
    cells: set[tuple[int, int]] = set()
    for panel in d["panels"]:
        assert panel["type"] in PANEL_TYPES, panel["type"]
        assert isinstance(panel["id"], int) and panel["id"] not in ids
        ids.add(panel["id"])
        assert isinstance(panel["title"], str) and panel["title"]
        pos = panel["gridPos"]
        assert set(pos) == {"h", "w", "x", "y"} and all(isinstance(v, int) for v in pos.values())
        assert pos["w"] >= 1 and pos["h"] >= 1 and pos["x"] >= 0 and pos["y"] >= 0
        assert pos["x"] + pos["w"] <= 24
        for x in range(pos["x"], pos["x"] + pos["w"]):
            for y in range(pos["y"], pos["y"] + pos["h"]):
                assert (x, y) not in cells, f"{panel['title']} overlaps another panel"
                cells.add((x, y))
        if panel["type"] == "row":
            assert isinstance(panel["collapsed"], bool) and isinstance(panel["panels"], list)
            continue
        assert panel["datasource"] == {"type": "prometheus", "uid": "${datasource}"}
        refs = [t["refId"] for t in panel["targets"]]
        assert refs and len(refs) == len(set(refs))
        for target in panel["targets"]:
            assert isinstance(target["expr"], str) and target["expr"]
            assert target["datasource"] == panel["datasource"]
        defaults = panel["fieldConfig"]["defaults"]
        assert isinstance(panel["fieldConfig"]["overrides"], list)
        steps = defaults["thresholds"]["steps"]
        assert defaults["thresholds"]["mode"] in {"absolute", "percentage"}
        assert steps[0]["value"] is None
        values = [s["value"] for s in steps[1:]]
        assert values == sorted(values) and all(isinstance(v, int | float) for v in values)
        assert all(isinstance(s["color"], str) for s in steps)
        assert isinstance(panel["options"], dict)

    variables = d["templating"]["list"]
    names = [v["name"] for v in variables]
    assert len(names) == len(set(names))
    for variable in variables:
        assert variable["type"] in VARIABLE_TYPES


def alert_blocks(text: str) -> dict[str, str]:
    """Each alert rule's name and its YAML text (the project has no YAML parser)."""
    parts = re.split(r"^ +- alert: (\w+)$", text, flags=re.M)
    return dict(zip(parts[1::2], parts[2::2], strict=True))


def test_dashboard_is_in_sync_with_its_generator() -> None:
    builder = load_builder()
    assert DASHBOARD.read_text(encoding="utf-8") == builder.render(), (
        "grafana/mmsd-dashboard.json is stale: run python grafana/build_dashboard.py"
    )
    assert builder.main(["--check"]) == 0


def test_check_mode_catches_a_stale_file(tmp_path: Path) -> None:
    builder = load_builder()
    stale = tmp_path / "dashboard.json"
    stale.write_text(builder.render().replace("Users per state", "Users"), encoding="utf-8")
    assert builder.main(["--check", "--output", str(stale)]) == 1


def test_dashboard_model_is_valid() -> None:
    check_dashboard_model(json.loads(DASHBOARD.read_text(encoding="utf-8")))


def _schema_errors(dashboard: dict[str, Any]) -> list[str]:
    pytest.importorskip(
        "grafana_foundation_sdk", reason="grafana-foundation-sdk (a dev dependency) is missing"
    )
    from grafana_schema import schema_errors

    return schema_errors(dashboard)


def test_dashboard_is_valid_against_grafanas_schema() -> None:
    assert _schema_errors(json.loads(DASHBOARD.read_text(encoding="utf-8"))) == []


@pytest.mark.parametrize(
    ("where", "change", "says"),
    [
        ("top", lambda d: d.update(editable="yes"), "'yes' is not a boolean"),
        ("top", lambda d: d.update(graphTooltip=7), "7 not in [0, 1, 2]"),
        ("top", lambda d: d.update(refreshRate="5s"), "$.refreshRate: not a field"),
        ("panel", lambda p: p["gridPos"].update(w="wide"), "'wide' is not an integer"),
        ("panel", lambda p: p["targets"][0].update(exp="up"), ".targets[0].exp: not a field"),
        ("panel", lambda p: p["options"]["legend"].update(displayMode="huge"), "'huge' not in"),
        ("panel", lambda p: p["fieldConfig"]["defaults"].update(unit=3), "3 is not a string"),
        ("panel", lambda p: p["options"].update(tooltip={"show": True}), "tooltip.show: not a"),
        (
            "panel",
            lambda p: p["fieldConfig"]["defaults"]["custom"].update(lineWidth="thick"),
            "'thick' is not a number",
        ),
    ],
)
def test_the_schema_check_can_fail(where: str, change: Any, says: str) -> None:
    dashboard = json.loads(DASHBOARD.read_text(encoding="utf-8"))
    timeseries = next(p for p in dashboard["panels"] if p["type"] == "timeseries")
    change(dashboard if where == "top" else timeseries)
    found = _schema_errors(dashboard)
    assert any(says in error for error in found), found


def test_the_model_check_can_fail() -> None:
    dashboard = json.loads(DASHBOARD.read_text(encoding="utf-8"))
    dashboard["panels"][2]["gridPos"] = dict(dashboard["panels"][1]["gridPos"])
    try:
        check_dashboard_model(dashboard)
    except AssertionError:
        return
    raise AssertionError("overlapping panels passed the model check")


def test_tenant_variable_and_filters() -> None:
    dashboard = json.loads(DASHBOARD.read_text(encoding="utf-8"))
    tenant = next(v for v in dashboard["templating"]["list"] if v["name"] == "tenant")
    assert tenant["type"] == "query" and tenant["multi"] and tenant["includeAll"]
    assert tenant["allValue"] == ".*"
    assert tenant["query"]["query"] == "label_values(mmsd_migration_users, tenant)"
    for title, _, expr in panel_queries(dashboard):
        if "mmsd_actor" in expr:
            continue  # actor metrics are per kind, not per tenant
        assert 'tenant=~"$tenant"' in expr, (title, expr)


def test_every_panel_issue_6_asks_for() -> None:
    dashboard = json.loads(DASHBOARD.read_text(encoding="utf-8"))
    exprs = " ".join(expr for _, _, expr in panel_queries(dashboard))
    for needle in [
        "mmsd_migration_users",
        "mmsd_migrations_started_total",
        "mmsd_migrations_finished_total",
        "mmsd_migration_duration_seconds_bucket",
        "mmsd_migration_queue_wait_seconds_bucket",
        'outcome="skipped"',
        "sum by (outcome) (increase(mmsd_meetings_total",
        "sum by (fate) (increase(mmsd_triggers_total",
        "sum by (status_class) (rate(mmsd_graph_requests_total",
        "mmsd_graph_request_duration_seconds_bucket",
        "mmsd_graph_throttled_total",
        "mmsd_graph_retry_after_seconds",
        "mmsd_queue_eta_seconds",
        "mmsd_actors",
        "mmsd_actor_mailbox_depth",
    ]:
        assert needle in exprs, needle


def test_the_migration_window_is_drawn_as_thresholds() -> None:
    dashboard = json.loads(DASHBOARD.read_text(encoding="utf-8"))
    for metric in ("mmsd_migration_duration_seconds", "mmsd_migration_queue_wait_seconds"):
        panels = [
            p
            for p in dashboard["panels"]
            if p["type"] == "timeseries" and any(metric in t["expr"] for t in p["targets"])
        ]
        assert panels, metric
        for panel in panels:
            defaults = panel["fieldConfig"]["defaults"]
            marks = [s["value"] for s in defaults["thresholds"]["steps"][1:]]
            assert marks == [600, 3600, 43200], panel["title"]
            assert defaults["custom"]["thresholdsStyle"]["mode"] in {"line", "dashed"}


def test_panel_queries_are_valid_promql(tmp_path: Path) -> None:
    promtool = tool("promtool")
    dashboard = json.loads(DASHBOARD.read_text(encoding="utf-8"))
    rules = [
        {"record": f"mmsd_dashboard:query_{i}", "expr": substitute(expr)}
        for i, (_, _, expr) in enumerate(panel_queries(dashboard))
    ]
    assert len(rules) >= 20
    path = tmp_path / "queries.yml"
    path.write_text(json.dumps({"groups": [{"name": "dashboard", "rules": rules}]}))  # JSON is YAML
    done = subprocess.run([promtool, "check", "rules", str(path)], capture_output=True, text=True)
    assert done.returncode == 0, done.stdout + done.stderr
    # The check rejects what is not PromQL, so the pass above means something.
    bad = {"record": "bad", "expr": "sum by (le (rate(x[1m]))"}
    path.write_text(json.dumps({"groups": [{"name": "x", "rules": [bad]}]}))
    done = subprocess.run([promtool, "check", "rules", str(path)], capture_output=True, text=True)
    assert done.returncode != 0


def test_alert_rules_are_valid_and_annotated() -> None:
    promtool = tool("promtool")
    done = subprocess.run([promtool, "check", "rules", str(ALERTS)], capture_output=True, text=True)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "SUCCESS: 5 rules found" in done.stdout
    rules = alert_blocks(ALERTS.read_text())
    assert list(rules) == [
        "MmsdMigrationFailed",
        "MmsdMigrationStuck",
        "MmsdPendingTooLong",
        "MmsdGraphThrottlingSustained",
        "MmsdDown",
    ]
    for alert, block in rules.items():
        assert re.search(r"^ +summary: \S", block, re.M), alert
        assert re.search(r"^ +description: \S", block, re.M), alert
        url = f"https://github.com/mmsd-project/mmsd/blob/main/README.md#runbook-{alert.lower()}"
        assert re.search(rf"^ +runbook_url: {re.escape(url)}$", block, re.M), alert
        assert re.search(r"^ +severity: (warning|critical)$", block, re.M), alert


def test_alert_unit_tests_pass() -> None:
    promtool = tool("promtool")
    done = subprocess.run(
        [promtool, "test", "rules", str(ALERTS_TEST)], capture_output=True, text=True
    )
    assert done.returncode == 0, done.stdout + done.stderr
    cases = re.split(r"^ +- eval_time: ", ALERTS_TEST.read_text(), flags=re.M)[1:]
    for alert in alert_blocks(ALERTS.read_text()):
        mine = [c for c in cases if re.search(rf"alertname: {alert}$", c, re.M)]
        firing = [c for c in mine if "exp_alerts: []" not in c]
        assert firing, f"{alert}: no case that fires"
        assert len(firing) < len(mine), f"{alert}: no case that does not fire"
        for case in firing:
            assert "exp_labels:" in case and "exp_annotations:" in case
            for key in ("summary", "description", "runbook_url"):
                assert re.search(rf"^ +{key}: \S", case, re.M), (alert, key)


def test_alert_unit_tests_catch_a_changed_threshold(tmp_path: Path) -> None:
    promtool = tool("promtool")
    (tmp_path / "alerts.yml").write_text(ALERTS.read_text().replace("> 43200", "> 50000"))
    (tmp_path / "alerts_test.yml").write_text(ALERTS_TEST.read_text())
    done = subprocess.run(
        [promtool, "test", "rules", str(tmp_path / "alerts_test.yml")],
        capture_output=True,
        text=True,
    )
    assert done.returncode != 0
    assert "MmsdMigrationStuck" in done.stdout + done.stderr
