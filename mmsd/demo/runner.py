"""``mmsd demo``: the simulator in-process, the real daemon as a subprocess, a wave, a verdict.

1. Start the Graph simulator **in this process** (its state can be snapshotted
   while the daemon works on it) and snapshot it.
2. Write a configuration in a temporary directory (short coalescing window,
   quick ``users/delta`` polling and retries, metrics on a free loopback port, the
   admin API on a Unix socket) and start ``python -m mmsd run --config …`` — the
   same daemon an SRE runs. Wait for ``/readyz`` and for its first ``users/delta``
   call (the baseline), so that licence changes made next are seen as changes.
3. Fire the wave (:mod:`mmsd.demo.wave`), then show live progress from the
   daemon's admin API until every expected migration has ended.
4. Collect the daemon's report (summary, per-meeting history), stop it with
   SIGTERM (it must exit 0), let the simulator deliver delayed mail, snapshot
   again and run the checks (:mod:`mmsd.demo.checks`) on the simulator alone.
"""

from __future__ import annotations

import asyncio
import contextlib
import grp
import json
import os
import shutil
import signal
import socket
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TextIO

import aiohttp

from mmsd.demo.checks import Check, Outcome, expectations, run_checks
from mmsd.demo.progress import STATES, ProgressSample, ProgressView, format_duration
from mmsd.demo.snapshot import SimReader
from mmsd.demo.wave import FiredWave, fire_wave, plan_wave
from mmsd.sim.server import DEFAULT_LATENCY_MS as SIM_LATENCY_MS

JSON = dict[str, Any]
TENANT = "demo"
DEFAULT_USERS = 40
DEFAULT_MEETINGS = 12
DAEMON_CHECK = "daemon ran and stopped cleanly"


@dataclass(frozen=True)
class DemoOptions:
    """What ``mmsd demo`` was asked to do."""

    users: int = DEFAULT_USERS
    meetings: int = DEFAULT_MEETINGS
    seed: int = 1
    json: bool = False
    timeout: float = 300.0  # seconds to wait for the wave to finish
    latency_ms: float = SIM_LATENCY_MS  # the simulator's realistic median
    coalesce_seconds: float = 3.0
    keep: bool = False  # keep the work directory (config, logs, state)
    baseline_wait: float = 15.0  # seconds to wait for the daemon's first users/delta call
    daemon_command: tuple[str, ...] = (sys.executable, "-m", "mmsd", "run", "--config")


@dataclass(frozen=True)
class MeetingTotals:
    """Meetings by outcome, as the daemon's history reports them."""

    updated: int = 0
    skipped: dict[str, int] = field(default_factory=dict)
    failed: int = 0

    def to_json(self) -> JSON:
        """``{"updated", "skipped": {reason: n}, "failed"}``."""
        return {"updated": self.updated, "skipped": dict(self.skipped), "failed": self.failed}


@dataclass(frozen=True)
class DemoResult:
    """Everything ``mmsd demo`` reports."""

    summary: dict[str, int]
    meetings: MeetingTotals
    checks: tuple[Check, ...]
    seconds: float

    @property
    def ok(self) -> bool:
        """True only when every check holds."""
        return bool(self.checks) and all(c.ok for c in self.checks)

    def to_json(self) -> JSON:
        """The ``--json`` document of SPEC section 7."""
        return {
            "summary": dict(self.summary),
            "meetings": self.meetings.to_json(),
            "checks": [c.to_json() for c in self.checks],
            "seconds": round(self.seconds, 1),
        }


class DaemonError(RuntimeError):
    """The daemon did not start (or went away); the message says what was seen."""


# --- the daemon's admin API over its Unix socket ---------------------------------------


class AdminClient:
    """The few admin API calls the demo makes, over the daemon's Unix socket."""

    def __init__(self, socket_path: Path, tenant: str = TENANT) -> None:
        """Talk to the daemon listening on ``socket_path`` about ``tenant``."""
        self.session = aiohttp.ClientSession(
            connector=aiohttp.UnixConnector(path=str(socket_path)),
            timeout=aiohttp.ClientTimeout(total=30),
        )
        self.base = f"http://mmsd/v1/tenants/{tenant}"

    async def close(self) -> None:
        """Close the connection pool."""
        await self.session.close()

    async def ready(self) -> bool:
        """``GET /readyz`` answers 200."""
        try:
            async with self.session.get("http://mmsd/readyz") as resp:
                return resp.status == 200
        except (aiohttp.ClientError, OSError):
            return False

    async def _get(self, path: str) -> Any:
        async with self.session.get(self.base + path) as resp:
            if resp.status != 200:
                raise DaemonError(f"GET {path}: HTTP {resp.status}")
            return await resp.json()

    async def post_trigger(self, body: JSON) -> None:
        """``POST /triggers`` (202 expected)."""
        async with self.session.post(self.base + "/triggers", json=body) as resp:
            if resp.status != 202:
                detail = (await resp.text())[:200]
                raise DaemonError(f"trigger {body.get('type')}: HTTP {resp.status} {detail}")

    async def summary(self) -> dict[str, int]:
        """Users per state."""
        data = await self._get("/migrations/summary")
        out = {state: 0 for state in STATES}
        for row in data.get("value", []):
            out[str(row["state"])] = int(row["userCount"])
        return out

    async def migrations(self) -> list[JSON]:
        """Every status record."""
        data = await self._get("/migrations")
        return list(data.get("value", []))

    async def history(self, identity: str) -> list[JSON]:
        """One user's per-meeting history (every migration)."""
        data = await self._get(f"/migrations/{identity}/history")
        return list(data.get("value", []))


# --- the daemon process ----------------------------------------------------------------


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def _toml(value: object) -> str:
    if isinstance(value, str | Path):
        return json.dumps(str(value))
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, list | tuple):
        return "[" + ", ".join(_toml(v) for v in value) + "]"
    return repr(value)


def write_config(work: Path, ready: dict[str, str], coalesce_seconds: float) -> Path:
    """The daemon's TOML for the demo tenant; the client secret goes to a 0600 file."""
    secret = work / "client-secret"
    fd = os.open(secret, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as fh:
        fh.write(ready["clientSecret"])
    top: dict[str, object] = {
        "state_dir": work / "state",
        "admin_socket": work / "admin.sock",
        "admin_socket_group": grp.getgrgid(os.getgid()).gr_name,
        "metrics_listen": f"127.0.0.1:{_free_port()}",
        "coalesce_seconds": coalesce_seconds,
        "delta_poll_seconds": 1.0,
        "retry_delays_seconds": [2.0, 4.0, 8.0, 15.0, 30.0, 60.0, 120.0, 240.0, 480.0],
        "stop_timeout_seconds": 20.0,
        "log_level": "info",
    }
    tenant: dict[str, object] = {
        "tenant_id": ready["tenantId"],
        "client_id": ready["clientId"],
        "graph_base_url": ready["graphBaseUrl"],
        "authority": ready["authority"],
        "ca_file": ready["caFile"],
        "client_secret_file": secret,
    }
    lines = [f"{k} = {_toml(v)}" for k, v in top.items()]
    lines += ["", f"[tenants.{TENANT}]"] + [f"{k} = {_toml(v)}" for k, v in tenant.items()]
    path = work / "mmsd.toml"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def log_tail(path: Path, lines: int = 6) -> list[str]:
    """The last lines of the daemon's log (JSON lines: their ``msg`` or ``message``)."""
    try:
        raw = path.read_text(encoding="utf-8", errors="replace").splitlines()
    except OSError:
        return []
    out = []
    for line in raw[-lines:]:
        try:
            record = json.loads(line)
            text = str(record.get("msg") or record.get("message") or line)
        except (ValueError, AttributeError):
            text = line
        out.append(text[:200])
    return out


class Daemon:
    """The daemon subprocess: started with the demo's config, stopped with SIGTERM."""

    def __init__(self, command: Sequence[str], config: Path, log: Path) -> None:
        """``command`` plus ``config`` is what runs; its stdout and stderr go to ``log``."""
        self.command = [*command, str(config)]
        self.log = log
        self.proc: asyncio.subprocess.Process | None = None

    async def start(self) -> None:
        """Spawn the process (in its own process group, so Ctrl-C reaches only the demo)."""
        with self.log.open("wb") as out:
            self.proc = await asyncio.create_subprocess_exec(
                *self.command,
                stdin=asyncio.subprocess.DEVNULL,
                stdout=out,
                stderr=asyncio.subprocess.STDOUT,
                start_new_session=True,
            )

    @property
    def pid(self) -> int:
        """The daemon's process ID."""
        assert self.proc is not None
        return self.proc.pid

    @property
    def exited(self) -> int | None:
        """The exit status, or None while it runs."""
        return None if self.proc is None else self.proc.returncode

    async def wait_ready(self, admin: AdminClient, within: float) -> float:
        """Wait until ``/readyz`` answers 200; the seconds it took."""
        start = time.monotonic()
        while time.monotonic() - start < within:
            if self.exited is not None:
                raise DaemonError(f"exited with status {self.exited} before it was ready")
            if await admin.ready():
                return time.monotonic() - start
            await asyncio.sleep(0.1)
        raise DaemonError(f"not ready after {within:.0f} s")

    async def stop(self, grace: float = 30.0) -> int:
        """SIGTERM, wait up to ``grace`` s (then SIGKILL); the exit status."""
        if self.proc is None:
            return -1
        if self.proc.returncode is None:
            with contextlib.suppress(ProcessLookupError):
                self.proc.send_signal(signal.SIGTERM)
            try:
                await asyncio.wait_for(self.proc.wait(), grace)
            except TimeoutError:
                with contextlib.suppress(ProcessLookupError):
                    self.proc.kill()
                await self.proc.wait()
                return -int(signal.SIGKILL)
        return int(self.proc.returncode or 0)


# --- the run ---------------------------------------------------------------------------


async def _wait_delta_baseline(reader: SimReader, within: float) -> bool:
    """True once the daemon has called ``users/delta`` (its baseline is then taken)."""
    start = time.monotonic()
    while time.monotonic() - start < within:
        counters = await reader.counters()
        if counters.get("requests", {}).get("GET users/delta", 0) >= 1:
            return True
        await asyncio.sleep(0.1)
    return False


def _updated(records: Sequence[JSON]) -> int:
    return sum(int(r.get("succeededMeeting") or 0) for r in records)


async def _follow(
    admin: AdminClient,
    view: ProgressView | None,
    expected_users: int,
    expected_meetings: int,
    limit: float,
    settle: float,
) -> bool:
    """Show progress until every expected migration has ended and nothing moved for ``settle`` s."""
    start = time.monotonic()
    quiet_since: float | None = None
    last: tuple[int, ...] = ()
    while True:
        elapsed = time.monotonic() - start
        users = await admin.summary()
        updated = _updated(await admin.migrations())
        if view is not None:
            view.update(ProgressSample(elapsed, users, updated, expected_meetings))
        ended = users.get("Succeeded", 0) + users.get("Failed", 0)
        idle = users.get("Pending", 0) == 0 and users.get("InProgress", 0) == 0
        state = (*(users.get(s, 0) for s in STATES), updated)
        if idle and ended >= expected_users:
            if state != last or quiet_since is None:
                quiet_since = time.monotonic()
            elif time.monotonic() - quiet_since >= settle:
                return True
        else:
            quiet_since = None
        last = state
        if elapsed >= limit:
            return False
        await asyncio.sleep(0.5)


async def _report(admin: AdminClient) -> tuple[dict[str, int], MeetingTotals]:
    summary = await admin.summary()
    records = await admin.migrations()
    identities = sorted({str(r.get("userId")) for r in records if r.get("userId")})
    skipped: Counter[str] = Counter()
    updated = failed = 0
    for identity in identities:
        for row in await admin.history(identity):
            outcome = row.get("outcome")
            if outcome == "updated":
                updated += 1
            elif outcome == "failed":
                failed += 1
            elif outcome == "skipped":
                skipped[str(row.get("reason") or "unknown")] += 1
    return summary, MeetingTotals(updated, dict(sorted(skipped.items())), failed)


def _wave_detail(wave: FiredWave) -> tuple[str, str]:
    """A headline and the trigger types with their counts."""
    kinds = Counter(t.type for t in wave.triggers)
    head = (
        f"{wave.posted} triggers posted, {len(wave.by_user())} users "
        f"({wave.in_delta} licence changes mmsd also finds in users/delta)"
    )
    return head, ", ".join(f"{k} {n}" for k, n in kinds.most_common())


async def run_demo(options: DemoOptions, out: TextIO | None = None) -> DemoResult:
    """Run the whole demo; human output goes to ``out`` (None: quiet)."""
    from mmsd.sim.server import SimConfig, Simulator

    started = time.monotonic()
    view = ProgressView(out) if out is not None else None
    work = Path(tempfile.mkdtemp(prefix="mmsd-demo-"))
    sim = Simulator(
        SimConfig(
            users=options.users,
            meetings=options.meetings,
            seed=options.seed,
            latency_ms=options.latency_ms,
            work_dir=work / "sim",
        )
    )
    summary: dict[str, int] = {s: 0 for s in STATES}
    totals = MeetingTotals()
    checks: list[Check] = []
    daemon: Daemon | None = None
    admin: AdminClient | None = None
    try:
        await sim.start()
        async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=60)) as http:
            reader = SimReader.for_graph_base(http, sim.graph_base_url)
            before = await reader.snapshot()
            if view is not None:
                events = sum(len(v) for v in before.events.values())
                view.stage(
                    "simulator",
                    f"{len(before.users)} users, {events} events in their mailboxes "
                    f"(Graph on {sim.graph_base_url}, seed {options.seed})",
                )
            config = write_config(work, sim.ready_line(), options.coalesce_seconds)
            daemon = Daemon(options.daemon_command, config, work / "mmsd.log")
            admin = AdminClient(work / "admin.sock")
            wave: FiredWave | None = None
            daemon_note = ""
            finished = False
            try:
                await daemon.start()
                took = await daemon.wait_ready(admin, 30.0)
                if view is not None:
                    view.stage("daemon", f"mmsd run (pid {daemon.pid}) ready in {took:.1f} s")
                if not await _wait_delta_baseline(reader, options.baseline_wait):
                    daemon_note = f"no users/delta call within {options.baseline_wait:g} s; "
                wave = await fire_wave(reader, plan_wave(before.users), admin.post_trigger)
                exp = expectations(before, wave)
                if view is not None:
                    head, types = _wave_detail(wave)
                    view.stage("wave", head)
                    view.wrapped(types, indent=15)
                migrating = sum(1 for o in exp.outcomes.values() if o is not Outcome.NOTHING)
                finished = await _follow(
                    admin,
                    view,
                    migrating,
                    len(exp.eligible),
                    options.timeout,
                    settle=2.5,
                )
                if view is not None:
                    view.finish()
                summary, totals = await _report(admin)
            except (DaemonError, aiohttp.ClientError, OSError) as exc:
                if view is not None:
                    view.finish()
                daemon_note += f"{exc}; "
            status = await daemon.stop()
            tail = log_tail(daemon.log) if status != 0 or daemon_note else []
            ok = status == 0 and not daemon_note
            how = "finished the wave" if finished else "did NOT finish the wave"
            if wave is None:
                how = "never got the wave"
            detail = f"{daemon_note}{how}; SIGTERM -> exit status {status}"
            if tail:
                detail += " | last log lines: " + " / ".join(tail[-3:])
            daemon_check = Check(DAEMON_CHECK, ok, detail)
            if wave is None:
                checks = [daemon_check, Check("wave fired", False, "the daemon never took it")]
            else:
                await reader.post("clock/advance", {"seconds": 3600})  # delayed mail arrives
                after = await reader.snapshot()
                checks = [*run_checks(before, after, wave), daemon_check]
    finally:
        if admin is not None:
            await admin.close()
        if daemon is not None and daemon.exited is None:
            await daemon.stop()
        await sim.stop()
        if options.keep:
            if out is not None:
                print(f"  work directory kept: {work}", file=out)
        else:
            shutil.rmtree(work, ignore_errors=True)
    return DemoResult(summary, totals, tuple(checks), time.monotonic() - started)


def print_report(result: DemoResult, view: ProgressView) -> None:
    """The human report: the daemon's summary and meeting counts, then the checks."""
    st = view.style
    view.line()
    view.line(st("bold", "Summary") + st("dim", "  (mmsd's report, from its admin API)"))
    view.line("  users     " + "   ".join(f"{st(s, s)} {result.summary.get(s, 0)}" for s in STATES))
    m = result.meetings
    skipped = sum(m.skipped.values())
    reasons = ", ".join(f"{k} {v}" for k, v in sorted(m.skipped.items(), key=lambda kv: -kv[1]))
    view.line(
        f"  meetings  updated {m.updated}   skipped {skipped}"
        + (f" ({reasons})" if reasons else "")
        + f"   failed {m.failed}"
    )
    view.line()
    view.line(st("bold", "Checks") + st("dim", "  (the simulator's state only)"))
    width = max(len(c.name) for c in result.checks) if result.checks else 0
    for c in result.checks:
        view.line(
            f"  {view.mark(c.ok)} {c.name:<{width}}  {st('dim', c.detail) if c.ok else c.detail}"
        )
    view.line()
    passed = sum(1 for c in result.checks if c.ok)
    took = format_duration(result.seconds)
    if result.ok:
        view.line(st("ok", f"All {passed} checks passed") + f" in {took}.")
    else:
        failed = len(result.checks) - passed
        view.line(st("fail", f"{failed} of {len(result.checks)} checks failed") + f" ({took}).")
