"""Shared helpers for the ops tests: the dashboard's queries and the Prometheus tools."""

from __future__ import annotations

import importlib.util
import re
import shutil
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parents[2]
GRAFANA = ROOT / "grafana"
SYSTEMD = ROOT / "systemd"
DASHBOARD = GRAFANA / "mmsd-dashboard.json"
ALERTS = GRAFANA / "alerts.yml"
ALERTS_TEST = GRAFANA / "alerts_test.yml"

#: What Grafana would put in place of its variables when a query runs.
SUBSTITUTIONS = {"$tenant": ".*", "$__rate_interval": "1m", "$__range": "1m"}


def load_builder() -> ModuleType:
    """grafana/build_dashboard.py as a module (it is a script, not part of the package)."""
    spec = importlib.util.spec_from_file_location(
        "mmsd_build_dashboard", GRAFANA / "build_dashboard.py"
    )
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def panel_queries(dashboard: dict[str, Any]) -> list[tuple[str, str, str]]:
    """(panel title, refId, expr) of every query of every panel, rows' panels included."""
    out = []
    for panel in dashboard["panels"]:
        for inner in [panel, *panel.get("panels", [])]:
            for target in inner.get("targets", []):
                out.append((inner["title"], target["refId"], target["expr"]))
    return out


def substitute(expr: str) -> str:
    """``expr`` with Grafana's variables replaced as a query run would replace them."""
    for name, value in sorted(SUBSTITUTIONS.items(), key=lambda kv: -len(kv[0])):
        expr = expr.replace(name, value)
    assert not re.search(r"\$\w", expr), f"unsubstituted variable in {expr}"
    return expr


def tool(name: str) -> str:
    """The path of a Prometheus tool, or skip the test when it is not installed."""
    path = shutil.which(name)
    if path is None:
        pytest.skip(f"{name} is not installed (Debian package 'prometheus')")
    return path
