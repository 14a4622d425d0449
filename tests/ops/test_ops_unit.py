"""systemd/: the unit verifies clean, its exposure is at most 2.0, and its settings match
what the daemon does (notify, watchdog, reload, stop budget, directories, socket mode).

``systemd-analyze verify`` insists that the ``ExecStart=`` binary exists. The unit says
``/usr/bin/mmsd``; when that is installed (CI installs it) the unit itself is verified,
and always a copy of the unit whose ``ExecStart=`` points at an executable in tmp_path.
"""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import pytest
from ops_testkit import SYSTEMD

from mmsd.config import parse_config

UNIT = SYSTEMD / "mmsd.service"
EXEC_START = "/usr/bin/mmsd"


def analyze() -> str:
    path = shutil.which("systemd-analyze")
    if path is None:
        pytest.skip("systemd-analyze is not installed")
    return path


def settings(text: str) -> dict[str, list[str]]:
    """Every ``Key=value`` of a unit file, values in order (sections merged)."""
    out: dict[str, list[str]] = {}
    for line in text.splitlines():
        line = line.strip()
        if not line or line.startswith(("#", ";", "[")):
            continue
        key, _, value = line.partition("=")
        out.setdefault(key, []).append(value)
    return out


def unit_copy(tmp_path: Path, text: str | None = None) -> Path:
    """The unit (or ``text``) as tmp_path/mmsd.service, ExecStart at a tmp executable."""
    binary = tmp_path / "bin" / "mmsd"
    binary.parent.mkdir(exist_ok=True)
    binary.write_text("#!/bin/sh\nexit 0\n")
    binary.chmod(0o755)
    unit = tmp_path / "mmsd.service"
    unit.write_text((text or UNIT.read_text()).replace(EXEC_START + " ", f"{binary} "))
    return unit


def verify(unit: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([analyze(), "verify", str(unit)], capture_output=True, text=True)


def test_unit_verifies_clean(tmp_path: Path) -> None:
    done = verify(unit_copy(tmp_path))
    assert done.returncode == 0, done.stderr
    assert done.stdout == "" and done.stderr == ""  # no warnings either


def test_installed_unit_verifies_clean() -> None:
    if not Path(EXEC_START).exists():
        pytest.skip(f"{EXEC_START} is not installed (CI installs it)")
    done = verify(UNIT)
    assert done.returncode == 0 and done.stderr == "", done.stderr


def test_verify_catches_mistakes(tmp_path: Path) -> None:
    typo = verify(unit_copy(tmp_path, UNIT.read_text().replace("WatchdogSec=", "WatchDogSec=")))
    assert "Unknown key" in typo.stderr
    missing = tmp_path / "missing.service"
    missing.write_text(UNIT.read_text())  # ExecStart at /usr/bin/mmsd
    if not Path(EXEC_START).exists():
        assert verify(missing).returncode != 0


def test_security_exposure_is_at_most_2(tmp_path: Path) -> None:
    done = subprocess.run(
        [analyze(), "security", "--offline=true", "--no-pager", str(unit_copy(tmp_path))],
        capture_output=True,
        text=True,
    )
    match = re.search(r"Overall exposure level for mmsd\.service: (\d+\.\d+)", done.stdout)
    assert match, done.stdout + done.stderr
    exposure = float(match.group(1))
    assert exposure <= 2.0, done.stdout


def test_unit_settings_match_the_daemon() -> None:
    s = settings(UNIT.read_text())
    assert s["Type"] == ["notify"]
    assert s["ExecStart"] == [f"{EXEC_START} run --config /etc/mmsd/mmsd.toml"]
    assert s["ExecReload"] == ["/bin/kill -HUP $MAINPID"]
    assert s["NotifyAccess"] == ["main"]
    assert s["User"] == ["mmsd"] and s["Group"] == ["mmsd"]
    for key in ("StateDirectory", "RuntimeDirectory", "ConfigurationDirectory"):
        assert s[key] == ["mmsd"], key
    assert s["ProtectSystem"] == ["strict"]
    assert s["NoNewPrivileges"] == ["yes"]
    assert "@system-service" in s["SystemCallFilter"]
    assert s["RestrictAddressFamilies"] == ["AF_UNIX AF_INET AF_INET6"]
    # The watchdog pings at half WatchdogSec; a 30 s budget tolerates a 15 s stall.
    assert s["WatchdogSec"] == ["30s"]
    # The drain budget (stop_timeout_seconds, default from the config) must end before
    # systemd's SIGKILL.
    stop = int(s["TimeoutStopSec"][0].removesuffix("s"))
    default_drain = parse_config({}, env={}).stop_timeout_seconds
    assert stop >= default_drain + 15
    # The admin socket is 0660: a UMask must not strip group read/write.
    umask = int(s["UMask"][0], 8)
    assert 0o660 & ~umask == 0o660
    assert umask & 0o007 == 0o007  # and others get nothing
    # The group may traverse the runtime directory, not the state directory.
    assert s["RuntimeDirectoryMode"] == ["0750"] and s["StateDirectoryMode"] == ["0700"]


def test_sysusers_creates_a_static_user_and_group(tmp_path: Path) -> None:
    sysusers = shutil.which("systemd-sysusers")
    if sysusers is None:
        pytest.skip("systemd-sysusers is not installed")
    (tmp_path / "etc").mkdir()
    done = subprocess.run(
        [sysusers, f"--root={tmp_path}", str(SYSTEMD / "mmsd.sysusers")],
        capture_output=True,
        text=True,
    )
    assert done.returncode == 0, done.stderr
    passwd = (tmp_path / "etc" / "passwd").read_text()
    group = (tmp_path / "etc" / "group").read_text()
    user = next(line for line in passwd.splitlines() if line.startswith("mmsd:"))
    _, _, uid, gid, _, home, shell = user.split(":")
    assert int(uid) < 1000 and home == "/var/lib/mmsd" and shell.endswith("nologin")
    assert f"mmsd:x:{gid}:" in group


def test_example_configuration_loads() -> None:
    import tomllib

    raw = tomllib.loads((SYSTEMD / "mmsd.toml.example").read_text())
    config = parse_config(raw, base=SYSTEMD, env={})
    assert config.metrics_listen == "127.0.0.1:9464"
    assert list(config.tenants) == ["contoso"]
    stop = int(settings(UNIT.read_text())["TimeoutStopSec"][0].removesuffix("s"))
    assert config.stop_timeout_seconds < stop
