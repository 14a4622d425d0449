"""``mmsctl`` end to end: the real CLI against the real API and engine, Unix socket and TCP."""

from __future__ import annotations

import asyncio
import json
import socket
import sys
from pathlib import Path

import pytest
from admin_testkit import ALICE, BOB, CAROL, GHOST, TENANT, RecordingService, wait_state
from conftest import Daemon

from mmsd.admin import start_admin_listeners
from mmsd.admin.ctl import main
from mmsd.clock import SimulatedClock
from mmsd.config import Config
from mmsd.domain.model import MigrationState, TenantSwitches, TriggerType
from mmsd.store import Store


class Ctl:
    """Runs ``mmsctl`` in a worker thread (it is synchronous) and captures its output."""

    def __init__(self, daemon: Daemon, capsys: pytest.CaptureFixture[str]) -> None:
        self.daemon = daemon
        self.capsys = capsys

    async def __call__(self, *argv: str, socket_path: bool = True) -> tuple[int, str, str]:
        args = ["--socket", str(self.daemon.socket), *argv] if socket_path else list(argv)
        self.capsys.readouterr()
        code = await asyncio.to_thread(main, args)
        out, err = self.capsys.readouterr()
        return code, out, err


@pytest.fixture
def ctl(daemon: Daemon, capsys: pytest.CaptureFixture[str]) -> Ctl:
    return Ctl(daemon, capsys)


async def test_status_summary_table_and_json(seeded: dict[str, str], ctl: Ctl) -> None:
    code, out, _ = await ctl("status", "--summary")
    assert code == 0
    lines = out.splitlines()
    assert lines[0].split() == ["STATE", "USERS"]
    assert [line.split() for line in lines[1:]] == [
        ["Pending", "1"],
        ["InProgress", "0"],
        ["Succeeded", "1"],
        ["Failed", "0"],
    ]
    code, out, _ = await ctl("status", "--summary", "--json")
    assert code == 0
    assert json.loads(out)["value"][2] == {"state": "Succeeded", "userCount": 1}


async def test_status_with_filters(seeded: dict[str, str], ctl: Ctl) -> None:
    code, out, _ = await ctl("status")
    assert code == 0
    assert out.splitlines()[0].split()[:3] == ["USER", "STATE", "TYPE"]
    assert ALICE[1] in out and BOB[1] in out
    code, out, _ = await ctl("status", "--state", "Pending", "--json")
    assert [r["userId"] for r in json.loads(out)["value"]] == [BOB[0]]
    # a date alone is midnight UTC; both ends inclusive
    code, out, _ = await ctl(
        "status", "--start-time", "2026-03-01", "--end-time", "2026-03-01T09:30:00", "--json"
    )
    assert (code, [r["userId"] for r in json.loads(out)["value"]]) == (0, [ALICE[0]])
    code, out, _ = await ctl("status", "--identity", ALICE[1], "--json")
    assert [r["state"] for r in json.loads(out)["value"]] == ["Succeeded"]
    code, _, err = await ctl("status", "--identity", GHOST)
    assert code == 1 and "userNotFound" in err
    code, _, err = await ctl("status", "--start-time", "tomorrow")
    assert code == 2 and "ISO 8601" in err
    code, _, err = await ctl("status", "--summary", "--state", "Pending")
    assert code == 2


async def test_start_and_history(seeded: dict[str, str], ctl: Ctl, store: Store) -> None:
    code, out, _ = await ctl(
        "start", CAROL[1], "--source-meeting-type", "All", "--target-meeting-type", "Current"
    )
    assert code == 0
    record = await wait_state(store, CAROL[0], MigrationState.SUCCEEDED, MigrationState.FAILED)
    assert record.correlation_id in out
    assert str(record.migration_type) == "ToSameType"
    assert record.state is MigrationState.SUCCEEDED, record.last_message
    code, out, _ = await ctl("start", BOB[0], "--json")
    assert json.loads(out) == {"correlationId": seeded["bob"]}  # already Pending
    code, _, err = await ctl("start", GHOST)
    assert code == 1 and "404 userNotFound" in err
    code, _, err = await ctl("start", CAROL[0], "--target-meeting-type", "Skype")
    assert code == 2 and "invalid choice" in err

    code, out, _ = await ctl("history", ALICE[1], "--correlation-id", seeded["alice"])
    assert code == 0
    assert "evt-a1" in out and "skipped" in out and "noBlock" in out
    code, out, _ = await ctl("history", ALICE[0], "--json")
    assert {r["eventId"] for r in json.loads(out)["value"]} == {"evt-a1", "evt-a2"}
    code, out, _ = await ctl("history", CAROL[0], "--json")
    assert {r["eventId"] for r in json.loads(out)["value"]} == {
        t.event_id for t in await store.history(TENANT, CAROL[0])
    }
    code, _, err = await ctl("history", ALICE[0], "--correlation-id", "corr-none")
    assert code == 1 and "migrationNotFound" in err


async def test_config_and_dialin(ctl: Ctl, store: Store) -> None:
    code, out, _ = await ctl("config", "get")
    assert (code, out.split()) == (0, ["meetingMigrationEnabled", "true"])
    code, out, _ = await ctl("config", "set", "--meeting-migration-enabled", "false", "--json")
    assert (code, json.loads(out)) == (0, {"meetingMigrationEnabled": False})
    code, out, _ = await ctl("dialin", "set", "--automatically-replace-acp-provider", "true")
    assert code == 0 and ["automaticallyReplaceAcpProvider", "true"] in [
        line.split() for line in out.splitlines()
    ]
    assert await store.get_switches(TENANT) == TenantSwitches(False, True, True)
    code, out, _ = await ctl("dialin", "get", "--json")
    assert json.loads(out)["automaticallyMigrateUserMeetings"] is True
    code, _, err = await ctl("dialin", "set")
    assert code == 2 and "at least one" in err
    code, _, _ = await ctl("config", "set", "--meeting-migration-enabled", "maybe")
    assert code == 2
    code, _, _ = await ctl("config", "set")
    assert code == 2
    assert await store.get_switches(TENANT) == TenantSwitches(False, True, True)


async def test_preview(ctl: Ctl, store: Store) -> None:
    code, text, _ = await ctl("preview", ALICE[1], "--blocks")
    assert code == 0
    assert "CLASSIFICATION" in text and "migrate" in text
    code, out, _ = await ctl("preview", ALICE[0], "--json")
    meetings = json.loads(out)["value"]
    migrate = [m for m in meetings if m["classification"] == "migrate"]
    assert migrate, "an ordinary user has meetings to migrate"
    for meeting in migrate:  # the table shows each block in full
        assert f"== {meeting['eventId']} (migrate)" in text
        assert meeting["oldBlock"] in text and meeting["newBlock"] in text
    code, out, _ = await ctl("preview", BOB[0], "--blocks")
    assert code == 0 and "migrate" in out
    code, _, err = await ctl("preview", GHOST)
    assert code == 1 and "userNotFound" in err
    assert await store.status(TENANT) == []  # preview records nothing


async def test_trigger_and_triggers(ctl: Ctl, store: Store, clock: SimulatedClock) -> None:
    code, out, _ = await ctl(
        "trigger",
        "teamsUpgradePolicyGranted",
        "--identity",
        BOB[1],
        "--mode",
        "TeamsOnly",
        "--scope",
        "user",
        "--conferencing",
        '{"conferenceId": "4711"}',
        "--json",
    )
    assert code == 0
    trigger_id = json.loads(out)["triggerId"]
    stored = await store.get_trigger(trigger_id)
    assert stored is not None and stored.type is TriggerType.TEAMS_UPGRADE_POLICY_GRANTED
    assert stored.conferencing is not None and stored.conferencing.conference_id == "4711"
    clock.advance(600)
    code, _, _ = await ctl("trigger", "sipAddressChanged", "--identity", ALICE[0])
    assert code == 0
    code, out, _ = await ctl("triggers")
    assert code == 0 and "teamsUpgradePolicyGranted" in out and "sipAddressChanged" in out
    code, out, _ = await ctl("triggers", "--identity", BOB[1], "--json")
    assert [t["triggerId"] for t in json.loads(out)["value"]] == [trigger_id]
    code, out, _ = await ctl("triggers", "--since", "2026-03-01T09:05:00", "--json")
    assert [t["type"] for t in json.loads(out)["value"]] == ["sipAddressChanged"]
    # refused by the daemon (identity missing) or by mmsctl (bad JSON, bad type)
    code, _, err = await ctl("trigger", "bridgeChanged")
    assert code == 1 and "'identity' is required" in err
    code, _, err = await ctl("trigger", "bridgeChanged", "--identity", "x", "--conferencing", "{")
    assert code == 2 and "JSON object" in err
    code, _, _ = await ctl("trigger", "noSuchType", "--identity", "x")
    assert code == 2
    assert len(await store.list_triggers(TENANT)) == 2


async def test_watch_once(seeded: dict[str, str], ctl: Ctl) -> None:
    code, out, _ = await ctl("watch", "--once")
    assert code == 0
    assert TENANT in out and "Pending 1" in out and "Succeeded 1" in out and "ETA" in out
    code, out, _ = await ctl("watch", "--once", "--json")
    (frame,) = json.loads(out)["value"]
    assert frame["users"] == {"Pending": 1, "InProgress": 0, "Succeeded": 1, "Failed": 0}
    assert frame["meetingsDone"] == 2
    assert frame["at"].startswith("2026-03-01T10:00:")  # the daemon's clock, not the terminal's


async def test_common_options_before_or_after_and_env_socket(
    ctl: Ctl, daemon: Daemon, monkeypatch: pytest.MonkeyPatch
) -> None:
    code, out, _ = await ctl(
        "status", "--summary", "--socket", str(daemon.socket), "--json", socket_path=False
    )
    assert code == 0 and json.loads(out)["value"]
    monkeypatch.setenv("MMSD_ADMIN_SOCKET", str(daemon.socket.with_name("none.sock")))
    code, out, _ = await ctl("--json", "--tenant", TENANT, "config", "get", socket_path=False)
    assert code == 3  # $MMSD_ADMIN_SOCKET is where mmsctl looks without --socket
    monkeypatch.setenv("MMSD_ADMIN_SOCKET", str(daemon.socket))
    code, out, _ = await ctl("--json", "--tenant", TENANT, "config", "get", socket_path=False)
    assert (code, json.loads(out)) == (0, {"meetingMigrationEnabled": True})


async def test_tenant_choice(
    ctl: Ctl, store: Store, clock: SimulatedClock, short_dir: Path
) -> None:
    code, _, err = await ctl("config", "get", "--tenant", "fabrikam")
    assert code == 1 and "tenantNotFound" in err
    # Two tenants: the one state kept on the service double (the engine would need a
    # second simulated tenant just to list a name).
    double = RecordingService(store, [TENANT, "fabrikam"])
    config = Config(state_dir=short_dir, admin_socket=short_dir / "two.sock")
    listeners = await start_admin_listeners(
        config, double, store, clock=clock, readiness=lambda: True
    )
    try:
        two = ["--socket", str(config.admin_socket)]
        code, _, err = await ctl(*two, "config", "get", socket_path=False)
        assert code == 2 and "--tenant" in err
        code, _, _ = await ctl(*two, "config", "get", "--tenant", "fabrikam", socket_path=False)
        assert code == 0
    finally:
        await listeners.close()


async def test_tcp_with_token_file(
    ctl: Ctl, daemon: Daemon, token_file: Path, tmp_path: Path
) -> None:
    code, out, _ = await ctl(
        "status",
        "--summary",
        "--url",
        daemon.url,
        "--token-file",
        str(token_file),
        socket_path=False,
    )
    assert code == 0 and "Succeeded" in out
    wrong = tmp_path / "wrong"
    wrong.write_text("not-the-token-0123456789")
    code, _, err = await ctl(
        "status", "--summary", "--url", daemon.url, "--token-file", str(wrong), socket_path=False
    )
    assert code == 1 and "401 unauthorized" in err
    code, _, err = await ctl("status", "--url", daemon.url, socket_path=False)
    assert code == 2 and "--token-file" in err
    code, _, err = await ctl(
        "status", "--url", "ftp://x", "--token-file", str(token_file), socket_path=False
    )
    assert code == 2


async def test_unreachable_daemon_exits_3(ctl: Ctl, short_dir: Path, token_file: Path) -> None:
    code, _, err = await ctl("status", "--socket", str(short_dir / "none.sock"), socket_path=False)
    assert code == 3 and "is mmsd running" in err
    with socket.socket() as probe:  # a port nobody listens on
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    code, _, err = await ctl(
        "status",
        "--url",
        f"http://127.0.0.1:{port}",
        "--token-file",
        str(token_file),
        socket_path=False,
    )
    assert code == 3 and "cannot reach" in err


async def test_usage_errors_exit_2(ctl: Ctl) -> None:
    assert (await ctl())[0] == 2
    assert (await ctl("frobnicate"))[0] == 2
    assert (await ctl("start"))[0] == 2
    assert (await ctl("watch", "--interval", "0"))[0] == 2
    code, out, _ = await ctl("--help")
    assert code == 0 and "status" in out


async def test_installed_console_script(seeded: dict[str, str], daemon: Daemon) -> None:
    """The ``mmsctl`` entry point of pyproject, as a real process."""
    script = Path(sys.executable).with_name("mmsctl")
    if not script.exists():
        pytest.skip("mmsctl is not installed in this environment")
    proc = await asyncio.create_subprocess_exec(
        str(script),
        "--socket",
        str(daemon.socket),
        "status",
        "--summary",
        "--json",
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    out, err = await asyncio.wait_for(proc.communicate(), timeout=30)
    assert proc.returncode == 0, err
    assert json.loads(out)["value"][0] == {"state": "Pending", "userCount": 1}
    proc = await asyncio.create_subprocess_exec(
        str(script),
        "--socket",
        str(daemon.socket.with_name("gone.sock")),
        "status",
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    await asyncio.wait_for(proc.communicate(), timeout=30)
    assert proc.returncode == 3
