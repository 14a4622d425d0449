"""The real ``mmsd run`` process, driven by every ``mmsctl`` command, on the socket and on TCP.

The Graph simulator runs in the test's loop; the daemon is a subprocess that
reaches it with azure-identity over the simulator's loopback authority, and
announces itself on a notify socket (``READY=1``) as under systemd. Also the
auth rules of SPEC section 5 against the process: the socket's mode and group
(the default group ``mmsd`` too, when the tests run as root), 401 without the right
token, and a TCP listener without a good token file refused at start (the daemon
exits non-zero and says why). ``GET /v1/openapi.json`` is read from the process
and the answers it gives are validated against it.
"""

from __future__ import annotations

import asyncio
import grp
import json
import os
import shutil
import socket
import stat
import subprocess
import sys
import tempfile
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from admin_testkit import TOKEN, eventually
from schema_check import response_errors

from mmsd.admin.ctl import main as mmsctl
from mmsd.admin.openapi import openapi_document
from mmsd.sim.server import SimConfig, Simulator

DEADLINE_S = 30.0
TENANT = "contoso"


def own_group() -> str:
    """The primary group of this process (one the daemon may give its socket)."""
    return grp.getgrgid(os.getgid()).gr_name


@pytest.fixture
def short_dir() -> Iterator[Path]:
    """A short directory for the socket paths (limited to 108 bytes)."""
    path = Path(tempfile.mkdtemp(prefix="mmsd-d-", dir="/tmp"))
    yield path
    shutil.rmtree(path, ignore_errors=True)


@pytest.fixture
async def sim() -> AsyncIterator[Simulator]:
    """A simulator on real time (the daemon runs on the system clock)."""
    async with Simulator(SimConfig(users=9, meetings=3, seed=31, latency_ms=1)) as running:
        yield running


class DaemonProcess:
    """One ``mmsd run --config`` subprocess with a notify socket, its logs in files.

    ``keys`` override the configuration; a key given as None is left out (its default).
    """

    def __init__(self, work: Path, sim: Simulator, **keys: Any) -> None:
        self.work = work
        self.socket = work / "admin.sock"
        secret = work / "client-secret"
        secret.write_text(sim.client_secret)
        secret.chmod(0o600)
        values: dict[str, Any] = {
            "state_dir": str(work / "state"),
            "admin_socket": str(self.socket),
            "admin_socket_group": own_group(),
            "metrics_listen": "127.0.0.1:0",
            "coalesce_seconds": 0.2,
            "stop_timeout_seconds": 5.0,
        }
        values.update(keys)
        values = {key: value for key, value in values.items() if value is not None}
        lines = [f"{key} = {json.dumps(value)}" for key, value in values.items()]
        lines += [
            f"[tenants.{TENANT}]",
            f"tenant_id = {json.dumps(sim.tenant_id)}",
            f"client_id = {json.dumps(sim.client_id)}",
            f"graph_base_url = {json.dumps(sim.graph_base_url)}",
            f"authority = {json.dumps(sim.authority)}",
            f"ca_file = {json.dumps(str(sim.ca_file))}",
            f"client_secret_file = {json.dumps(str(secret))}",
        ]
        self.config = work / "mmsd.toml"
        self.config.write_text("\n".join(lines) + "\n")
        self.stdout = work / "daemon.out"
        self.stderr = work / "daemon.err"
        self.notify = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.notify.bind(str(work / "notify.sock"))
        self.notify.setblocking(False)
        self.process: asyncio.subprocess.Process | None = None

    async def start(self) -> None:
        env = {**os.environ, "NOTIFY_SOCKET": str(self.work / "notify.sock")}
        env.pop("WATCHDOG_USEC", None)
        self.process = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "mmsd",
            "run",
            "--config",
            str(self.config),
            env=env,
            stdout=self.stdout.open("wb"),
            stderr=self.stderr.open("wb"),
        )

    async def ready(self) -> None:
        """Await ``READY=1`` (or fail with the daemon's output if it exits first)."""
        assert self.process is not None
        loop = asyncio.get_running_loop()
        exited = asyncio.ensure_future(self.process.wait())
        try:
            async with asyncio.timeout(DEADLINE_S):
                while True:
                    datagram = asyncio.ensure_future(loop.sock_recv(self.notify, 4096))
                    done, _ = await asyncio.wait(
                        {datagram, exited}, return_when=asyncio.FIRST_COMPLETED
                    )
                    if exited in done:
                        datagram.cancel()
                        raise AssertionError(f"the daemon exited: {self.output()}")
                    if datagram.result().startswith(b"READY=1"):
                        return
        finally:
            exited.cancel()

    async def exit_code(self) -> int:
        assert self.process is not None
        return await asyncio.wait_for(self.process.wait(), DEADLINE_S)

    def logs(self) -> list[dict[str, Any]]:
        return [json.loads(line) for line in self.stdout.read_text().splitlines() if line]

    def output(self) -> str:
        return self.stdout.read_text() + self.stderr.read_text()

    def tcp_url(self) -> str:
        for line in self.logs():
            message = line["message"]
            if message.startswith("admin API listening on TCP"):
                host, port = message.split()[5], message.split()[7]
                return f"http://{host}:{port}"
        raise AssertionError("the daemon did not log its TCP listener")

    async def stop(self) -> None:
        if self.process is not None and self.process.returncode is None:
            self.process.terminate()
            await asyncio.wait_for(self.process.wait(), DEADLINE_S)
        self.notify.close()


@pytest.fixture
def token_file(short_dir: Path) -> Path:
    path = short_dir / "admin.token"
    path.write_bytes(TOKEN + b"\n")
    path.chmod(0o600)
    return path


@pytest.fixture
async def daemon(short_dir: Path, sim: Simulator, token_file: Path) -> AsyncIterator[DaemonProcess]:
    """``mmsd run`` with the Unix socket and a token-guarded TCP listener, ready."""
    process = DaemonProcess(
        short_dir, sim, admin_listen="127.0.0.1:0", admin_token_file=str(token_file)
    )
    await process.start()
    try:
        await process.ready()
        yield process
    finally:
        await process.stop()


async def sim_users(sim: Simulator) -> dict[str, list[str]]:
    """User IDs by kind, from the simulator's control surface."""
    control = sim.graph_base_url.removesuffix("/v1.0") + "/_sim"
    async with aiohttp.ClientSession() as http, http.get(control + "/users") as r:
        users = (await r.json())["value"]
    out: dict[str, list[str]] = {}
    for user in users:
        out.setdefault(user["kind"], []).append(user["id"])
    return out


class Ctl:
    """``mmsctl`` (its real ``main``) in a worker thread, on one transport."""

    def __init__(self, capsys: pytest.CaptureFixture[str], transport: list[str]) -> None:
        self.capsys = capsys
        self.transport = transport

    async def __call__(self, *argv: str) -> tuple[int, str, str]:
        self.capsys.readouterr()
        code = await asyncio.to_thread(mmsctl, [*self.transport, *argv])
        out, err = self.capsys.readouterr()
        return code, out, err

    async def json(self, *argv: str) -> Any:
        code, out, err = await self(*argv, "--json")
        assert code == 0, (argv, err)
        return json.loads(out)


async def test_every_mmsctl_command_on_the_socket_and_over_tcp(
    daemon: DaemonProcess, sim: Simulator, token_file: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    users = await sim_users(sim)
    ordinary, sfb = users["ordinary"], users["sfbUser"][0]
    unix = Ctl(capsys, ["--socket", str(daemon.socket)])
    tcp = Ctl(capsys, ["--url", daemon.tcp_url(), "--token-file", str(token_file)])

    # start (Start-CsExMeetingMigration): one user per transport, each runs to Succeeded
    started = {
        ordinary[0]: (await unix.json("start", ordinary[0]))["correlationId"],
        ordinary[1]: (await tcp.json("start", ordinary[1], "--source-meeting-type", "All"))[
            "correlationId"
        ],
    }

    async def finished() -> list[dict[str, Any]] | None:
        records: list[dict[str, Any]] = (await unix.json("status"))["value"]
        done = [r for r in records if r["state"] in ("Succeeded", "Failed")]
        return records if len(done) == len(started) else None

    records = await eventually(finished, "both migrations to finish", DEADLINE_S)
    assert {r["userId"]: r["correlationId"] for r in records} == started
    assert {r["state"] for r in records} == {"Succeeded"}

    for ctl in (unix, tcp):
        # status --summary, status with filters, history, preview: same answers on both
        summary = await ctl.json("status", "--summary")
        assert {s["state"]: s["userCount"] for s in summary["value"]}["Succeeded"] == 2
        code, out, _ = await ctl("status", "--summary")
        assert code == 0 and out.splitlines()[0].split() == ["STATE", "USERS"]
        mine = await ctl.json("status", "--identity", ordinary[0], "--state", "Succeeded")
        assert [r["correlationId"] for r in mine["value"]] == [started[ordinary[0]]]
        created = records[0]["createDate"]
        ranged = await ctl.json("status", "--start-time", created, "--end-time", created)
        assert ordinary[0] in {r["userId"] for r in ranged["value"]}
        code, out, _ = await ctl("status")
        assert code == 0 and "Succeeded" in out
        history = await ctl.json("history", ordinary[0], "--correlation-id", started[ordinary[0]])
        assert {row["outcome"] for row in history["value"]} >= {"updated"}
        code, out, _ = await ctl("history", ordinary[1])
        assert code == 0 and "updated" in out
        preview = await ctl.json("preview", sfb)
        assert preview["userId"] == sfb and preview["value"]
        code, out, _ = await ctl("preview", sfb, "--blocks")
        assert code == 0 and "-- old block:" in out
        # config and dialin (get and set)
        assert await ctl.json("config", "set", "--meeting-migration-enabled", "false") == {
            "meetingMigrationEnabled": False
        }
        assert await ctl.json("config", "get") == {"meetingMigrationEnabled": False}
        code, out, _ = await ctl("config", "set", "--meeting-migration-enabled", "true")
        assert code == 0 and out.split() == ["meetingMigrationEnabled", "true"]
        dialin = await ctl.json("dialin", "set", "--automatically-replace-acp-provider", "true")
        assert dialin == {
            "automaticallyMigrateUserMeetings": True,
            "automaticallyReplaceAcpProvider": True,
        }
        code, out, _ = await ctl("dialin", "set", "--automatically-replace-acp-provider", "false")
        assert code == 0
        assert (await ctl.json("dialin", "get"))["automaticallyReplaceAcpProvider"] is False
        code, out, _ = await ctl("dialin", "get")
        assert code == 0 and "automaticallyMigrateUserMeetings" in out
        # trigger, triggers
        posted = await ctl.json("trigger", "sipAddressChanged", "--identity", sfb)
        code, _, _ = await ctl(
            "trigger",
            "teamsUpgradePolicyGranted",
            "--identity",
            sfb,
            "--mode",
            "TeamsOnly",
            "--scope",
            "tenant",
        )
        assert code == 0

        async def decided(trigger_id: str = posted["triggerId"], c: Ctl = ctl) -> Any:
            listed = (await c.json("triggers", "--identity", sfb))["value"]
            mine = [t for t in listed if t["triggerId"] == trigger_id]
            return mine if mine and mine[0]["fate"] != "pending" else None

        (trigger,) = await eventually(decided, "the trigger's fate", DEADLINE_S)
        assert (trigger["fate"], trigger["reason"]) == ("ignored", "nonTrigger")
        code, out, _ = await ctl("triggers", "--since", records[0]["createDate"])
        assert code == 0 and "sipAddressChanged" in out
        # watch
        (frame,) = (await ctl.json("watch", "--once"))["value"]
        assert frame["users"]["Succeeded"] == 2
        code, out, _ = await ctl("watch", "--once")
        assert code == 0 and TENANT in out and "ETA" in out
        # refusals keep their exit codes
        code, _, err = await ctl("start", "ghost@contoso.example")
        assert code == 1 and "404 userNotFound" in err
        code, _, err = await ctl("history", "ghost@contoso.example")
        assert code == 1 and "userNotFound" in err
    assert (await unix.json("trigger", "bridgeChanged", "--identity", ordinary[2]))["triggerId"]


async def test_socket_mode_group_and_tokens_on_the_daemon(
    daemon: DaemonProcess, token_file: Path
) -> None:
    info = daemon.socket.stat()
    assert stat.S_ISSOCK(info.st_mode)
    assert stat.S_IMODE(info.st_mode) == 0o660
    assert info.st_gid == grp.getgrnam(own_group()).gr_gid
    url = daemon.tcp_url()
    summary = f"/v1/tenants/{TENANT}/migrations/summary"
    async with aiohttp.ClientSession(base_url=url) as http:
        for headers, says in [
            ({}, "a bearer token is required"),
            ({"Authorization": "Bearer not-the-token-0123456789"}, "not valid"),
            ({"Authorization": "Bearer " + TOKEN.decode() + "x"}, "not valid"),
            ({"Authorization": "Basic " + TOKEN.decode()}, "a bearer token is required"),
        ]:
            async with http.get(summary, headers=headers) as r:
                assert r.status == 401, headers
                body = await r.json()
                assert body["error"]["code"] == "unauthorized"
                assert says in body["error"]["message"]
        async with http.get(summary, headers={"Authorization": f"Bearer {TOKEN.decode()}"}) as r:
            assert r.status == 200
        async with http.get("/readyz") as r:
            assert r.status == 200  # health needs no token
    assert TOKEN.decode() not in daemon.output()  # the token never reaches the log


async def test_tcp_without_a_token_file_is_refused_at_start(
    short_dir: Path, sim: Simulator
) -> None:
    process = DaemonProcess(short_dir, sim, admin_listen="127.0.0.1:0")
    try:
        await process.start()
        assert await process.exit_code() == 2
        assert "admin_listen: a TCP admin listener needs admin_token_file" in process.output()
        assert not process.socket.exists()
    finally:
        await process.stop()


@pytest.mark.parametrize(
    ("content", "mode", "says"),
    [
        (TOKEN, 0o644, "readable by everyone"),
        (b"short", 0o600, "at least 16 bytes"),
        (None, 0o600, "cannot read"),
    ],
    ids=["world-readable", "short", "missing"],
)
async def test_tcp_with_a_bad_token_file_is_refused_at_start(
    short_dir: Path, sim: Simulator, content: bytes | None, mode: int, says: str
) -> None:
    token = short_dir / "bad.token"
    if content is not None:
        token.write_bytes(content)
        token.chmod(mode)
    process = DaemonProcess(short_dir, sim, admin_listen="127.0.0.1:0", admin_token_file=str(token))
    try:
        await process.start()
        assert await process.exit_code() == 1
        # Refused before anything starts: the reason is on stderr, nothing ran.
        refusal = process.stderr.read_text()
        assert "admin_listen refused" in refusal and says in refusal, process.output()
        assert process.stdout.read_text() == ""  # no engine, no Graph call, no log line
        assert not process.socket.exists()  # nothing was left listening
    finally:
        await process.stop()


async def test_openapi_document_served_by_the_daemon_describes_its_answers(
    daemon: DaemonProcess, token_file: Path
) -> None:
    doc: dict[str, Any] = {}
    async with aiohttp.ClientSession(
        connector=aiohttp.UnixConnector(path=str(daemon.socket)), base_url="http://mmsd"
    ) as http:
        async with http.get("/v1/openapi.json") as r:
            assert r.status == 200 and r.content_type == "application/json"
            doc.update(await r.json())
        assert doc == json.loads(json.dumps(openapi_document()))
        base = f"/v1/tenants/{TENANT}"
        for method, path, status in [
            ("GET", "/v1/tenants", 200),
            ("GET", base + "/migrations/summary", 200),
            ("GET", base + "/configuration", 200),
            ("GET", base + "/configuration?x=1", 400),
            ("GET", "/v1/tenants/nope/dialInConferencingSettings", 404),
            ("GET", "/v1/nothing", 404),
            ("DELETE", base + "/triggers", 405),
        ]:
            async with http.request(method, path) as r:
                assert r.status == status, (method, path)
                body = await r.json()
            assert response_errors(doc, method, path.split("?")[0], status, body) == []
    headers = {"Authorization": f"Bearer {TOKEN.decode()}"}
    async with aiohttp.ClientSession(base_url=daemon.tcp_url()) as http:
        async with http.get("/v1/openapi.json", headers=headers) as r:
            assert r.status == 200 and await r.json() == doc
        async with http.get("/v1/openapi.json") as r:
            assert r.status == 401
            assert response_errors(doc, "GET", "/v1/openapi.json", 401, await r.json()) == []


def _ensure_mmsd_group() -> int:
    """The gid of group ``mmsd``, created as a system group (as sysusers.d would) if missing."""
    try:
        return grp.getgrnam("mmsd").gr_gid
    except KeyError:
        subprocess.run(["groupadd", "--system", "mmsd"], check=True)
        return grp.getgrnam("mmsd").gr_gid


@pytest.mark.skipif(os.geteuid() != 0, reason="needs root: chown to group mmsd (CI runs as root)")
async def test_default_socket_group_is_mmsd(short_dir: Path, sim: Simulator) -> None:
    gid = _ensure_mmsd_group()
    process = DaemonProcess(short_dir, sim, admin_socket_group=None)
    assert "admin_socket_group" not in process.config.read_text()  # the default applies
    try:
        await process.start()
        await process.ready()
        info = process.socket.stat()
        assert stat.S_IMODE(info.st_mode) == 0o660
        assert info.st_gid == gid
        assert grp.getgrgid(info.st_gid).gr_name == "mmsd"
    finally:
        await process.stop()
