"""``mmsd demo`` end to end: the real daemon on a small tenant, and a daemon that does nothing."""

from __future__ import annotations

import importlib.util
import json
import subprocess
import sys
from pathlib import Path

import pytest

from mmsd.demo import parse_options
from mmsd.demo.runner import DAEMON_CHECK, DemoOptions, run_demo

FAKE_DAEMON = Path(__file__).with_name("demo_fake_daemon.py")
CHECK_NAMES = {
    "eligible meetings updated once",
    "meetings carry the current details",
    "nothing else updated",
    "organizer text unchanged",
    "one attendee update per PATCH",
    "no Unicode garbling",
    DAEMON_CHECK,
}


def _assert_shape(doc: dict[str, object]) -> None:
    assert set(doc) == {"summary", "meetings", "checks", "seconds"}
    summary = doc["summary"]
    assert isinstance(summary, dict)
    assert set(summary) == {"Pending", "InProgress", "Succeeded", "Failed"}
    meetings = doc["meetings"]
    assert isinstance(meetings, dict)
    assert set(meetings) == {"updated", "skipped", "failed"}
    assert isinstance(meetings["skipped"], dict)
    checks = doc["checks"]
    assert isinstance(checks, list)
    for check in checks:
        assert set(check) == {"name", "ok", "detail"}
        assert isinstance(check["ok"], bool)
    assert isinstance(doc["seconds"], int | float)


@pytest.mark.slow
@pytest.mark.skipif(importlib.util.find_spec("mmsd.daemon") is None, reason="no daemon yet")
def test_small_demo_on_the_real_daemon_passes_every_check() -> None:
    proc = subprocess.run(
        [sys.executable, "-m", "mmsd", "demo", "--users", "8", "--meetings", "4", "--json"],
        capture_output=True,
        text=True,
        timeout=180,
        check=False,
    )
    doc = json.loads(proc.stdout)
    _assert_shape(doc)
    failed = [c for c in doc["checks"] if not c["ok"]]
    assert failed == [], failed
    assert proc.returncode == 0
    assert {c["name"] for c in doc["checks"]} == CHECK_NAMES
    assert doc["summary"]["Succeeded"] >= 5
    assert doc["summary"]["Failed"] == 1  # the user whose mailbox is on Exchange on-premises
    assert doc["meetings"]["updated"] > 0


async def test_a_daemon_that_does_nothing_fails_the_demo() -> None:
    options = DemoOptions(
        users=8,
        meetings=4,
        timeout=1.0,
        latency_ms=0,
        baseline_wait=0.2,
        daemon_command=(sys.executable, str(FAKE_DAEMON)),
    )
    result = await run_demo(options, None)
    doc = result.to_json()
    _assert_shape(doc)
    verdict = {c["name"]: c["ok"] for c in doc["checks"]}
    assert set(verdict) == CHECK_NAMES
    assert result.ok is False
    assert verdict["eligible meetings updated once"] is False
    assert verdict[DAEMON_CHECK] is False  # it never called users/delta
    assert verdict["nothing else updated"] is True


async def test_a_daemon_that_dies_at_start_fails_cleanly() -> None:
    options = DemoOptions(
        users=4,
        meetings=2,
        latency_ms=0,
        daemon_command=(sys.executable, "-c", "import sys; sys.exit(3)"),
    )
    result = await run_demo(options, None)
    assert result.ok is False
    daemon = next(c for c in result.checks if c.name == DAEMON_CHECK)
    assert "status 3" in daemon.detail


def test_options_and_usage_errors() -> None:
    opts = parse_options(["--users", "8", "--meetings", "4", "--seed", "7", "--json"])
    assert (opts.users, opts.meetings, opts.seed, opts.json) == (8, 4, 7, True)
    with pytest.raises(SystemExit) as exc:
        parse_options(["--users", "0"])
    assert exc.value.code == 2
