"""``mmsctl``: every cmdlet of Microsoft's service as a command on the admin API (SPEC section 5).

Talks to the daemon over its Unix socket (default ``$MMSD_ADMIN_SOCKET`` or
/run/mmsd/admin.sock) or over TCP with ``--url`` and ``--token-file``. A
readable table by default, ``--json`` for scripts. Exit codes: 0 done, 1 the
daemon refused or failed the request, 2 usage error, 3 the daemon cannot be
reached.
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import socket
import sys
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, NoReturn
from urllib.parse import quote, urlencode, urlsplit

from mmsd.admin import render
from mmsd.clock import format_rfc3339, parse_rfc3339
from mmsd.domain.model import (
    MigrationState,
    PolicyScope,
    SourceMeetingType,
    TargetMeetingType,
    TeamsUpgradeMode,
    TriggerType,
)

EXIT_OK = 0
EXIT_REFUSED = 1
EXIT_USAGE = 2
EXIT_UNREACHABLE = 3

DEFAULT_SOCKET = "/run/mmsd/admin.sock"
TIMEOUT_S = 30.0


class Usage(Exception):
    """A usage error found after parsing (exit 2)."""


class Unreachable(Exception):
    """The daemon cannot be reached (exit 3)."""


class Refused(Exception):
    """The daemon answered with an error (exit 1)."""

    def __init__(self, status: int, code: str, message: str) -> None:
        """Keep the HTTP status and the API's error code and message."""
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message


class _UnixConnection(http.client.HTTPConnection):
    """HTTP over a Unix socket."""

    def __init__(self, path: str, timeout: float) -> None:
        super().__init__("localhost", timeout=timeout)
        self._path = path

    def connect(self) -> None:
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        sock.settimeout(self.timeout)
        try:
            sock.connect(self._path)
        except OSError:
            sock.close()
            raise
        self.sock = sock


@dataclass(frozen=True)
class Client:
    """A small synchronous client of the admin API (one connection per request)."""

    socket_path: str | None = None
    url: str | None = None
    token: str | None = None
    timeout: float = TIMEOUT_S

    def _connection(self) -> tuple[http.client.HTTPConnection, str]:
        if self.url is None:
            return _UnixConnection(self.socket_path or DEFAULT_SOCKET, self.timeout), ""
        parts = urlsplit(self.url)
        host = parts.hostname or "localhost"
        if parts.scheme == "https":
            return (
                http.client.HTTPSConnection(host, parts.port, timeout=self.timeout),
                parts.path.rstrip("/"),
            )
        return (
            http.client.HTTPConnection(host, parts.port, timeout=self.timeout),
            parts.path.rstrip("/"),
        )

    def where(self) -> str:
        """What we talk to, for error messages."""
        return self.url or f"unix:{self.socket_path or DEFAULT_SOCKET}"

    def call(
        self,
        method: str,
        path: str,
        *,
        query: Mapping[str, str | None] | None = None,
        body: object = None,
        ok: Sequence[int] = (200, 201, 202),
    ) -> Any:
        """Send one request; the decoded JSON answer, or Refused / Unreachable."""
        conn, prefix = self._connection()
        params = {k: v for k, v in (query or {}).items() if v is not None}
        target = prefix + path + (("?" + urlencode(params)) if params else "")
        headers = {"Accept": "application/json"}
        payload: bytes | None = None
        if body is not None:
            payload = json.dumps(body).encode()
            headers["Content-Type"] = "application/json"
        if self.token is not None:
            headers["Authorization"] = f"Bearer {self.token}"
        try:
            conn.request(method, target, body=payload, headers=headers)
            response = conn.getresponse()
            raw = response.read()
        except (OSError, http.client.HTTPException) as exc:
            raise Unreachable(f"cannot reach the daemon at {self.where()}: {_why(exc)}") from exc
        finally:
            conn.close()
        try:
            data = json.loads(raw) if raw else None
        except ValueError:
            data = None
        if response.status not in ok:
            error = data.get("error") if isinstance(data, dict) else None
            if isinstance(error, dict):
                raise Refused(response.status, str(error.get("code")), str(error.get("message")))
            raise Refused(response.status, "httpError", f"HTTP {response.status}")
        return data


def _why(exc: BaseException) -> str:
    if isinstance(exc, FileNotFoundError):
        return "no socket there (is mmsd running?)"
    if isinstance(exc, PermissionError):
        return "permission denied (are you in the mmsd group?)"
    if isinstance(exc, ConnectionRefusedError):
        return "connection refused (is mmsd running?)"
    if isinstance(exc, TimeoutError | socket.timeout):
        return "timed out"
    return str(exc) or type(exc).__name__


# ---------------------------------------------------------------------- parsing


def _bool(text: str) -> bool:
    lowered = text.lower()
    if lowered in ("true", "yes", "on", "1"):
        return True
    if lowered in ("false", "no", "off", "0"):
        return False
    raise argparse.ArgumentTypeError("expected true or false")


def _time(text: str) -> str:
    """A time for the API: any ISO 8601 date or date-time; without an offset it is UTC."""
    try:
        return format_rfc3339(parse_rfc3339(text))
    except ValueError:
        raise argparse.ArgumentTypeError(
            "expected an ISO 8601 time such as 2026-03-01T09:00:00Z or 2026-03-01"
        ) from None


def _conferencing(text: str) -> dict[str, Any]:
    try:
        value = json.loads(text)
    except ValueError:
        raise argparse.ArgumentTypeError("expected a JSON object") from None
    if not isinstance(value, dict):
        raise argparse.ArgumentTypeError("expected a JSON object")
    return value


def _values(enum_type: Any) -> list[str]:
    return [m.value for m in enum_type]


class _Parser(argparse.ArgumentParser):
    """argparse, with usage errors raised (exit 2 through main) instead of sys.exit."""

    def error(self, message: str) -> NoReturn:
        self.print_usage(sys.stderr)
        raise Usage(message)


def _common(defaults: bool) -> _Parser:
    """The common options, valid before and after the command."""
    common = _Parser(add_help=False)
    d = (lambda v: v) if defaults else (lambda v: argparse.SUPPRESS)
    common.add_argument("--tenant", default=d(None), help="tenant name (default: the only one)")
    common.add_argument(
        "--socket",
        default=d(None),
        metavar="PATH",
        help=f"admin socket (default $MMSD_ADMIN_SOCKET or {DEFAULT_SOCKET})",
    )
    common.add_argument("--url", default=d(None), help="TCP admin URL, e.g. http://127.0.0.1:8465")
    common.add_argument(
        "--token-file", default=d(None), metavar="PATH", help="bearer token for --url"
    )
    common.add_argument("--json", action="store_true", default=d(False), help="print JSON")
    return common


def build_parser() -> argparse.ArgumentParser:
    """The whole command line."""
    parser = _Parser(
        prog="mmsctl",
        description="Drive mmsd, the Meeting Migration Service, through its admin API.",
        parents=[_common(True)],
    )
    common = _common(False)
    sub = parser.add_subparsers(dest="command", required=True, parser_class=_Parser)

    def add(name: str, help_text: str) -> argparse.ArgumentParser:
        return sub.add_parser(name, help=help_text, description=help_text, parents=[common])

    status = add("status", "Get-CsMeetingMigrationStatus: migration status per user")
    status.add_argument("--summary", action="store_true", help="users per state (-SummaryOnly)")
    status.add_argument("--identity", help="object ID or UPN")
    status.add_argument("--state", choices=_values(MigrationState))
    status.add_argument("--start-time", type=_time, help="createDate from (inclusive)")
    status.add_argument("--end-time", type=_time, help="createDate to (inclusive)")

    start = add("start", "Start-CsExMeetingMigration: migrate one user's meetings")
    start.add_argument("identity", metavar="IDENTITY")
    start.add_argument("--source-meeting-type", choices=_values(SourceMeetingType))
    start.add_argument("--target-meeting-type", choices=_values(TargetMeetingType))

    hist = add("history", "Get-CsMeetingMigrationTransactionHistory: per-meeting history")
    hist.add_argument("identity", metavar="IDENTITY")
    hist.add_argument("--correlation-id")

    config = add("config", "Get/Set-CsTenantMigrationConfiguration")
    config_sub = config.add_subparsers(dest="action", required=True, parser_class=_Parser)
    config_sub.add_parser("get", parents=[common])
    config_set = config_sub.add_parser("set", parents=[common])
    config_set.add_argument(
        "--meeting-migration-enabled", type=_bool, required=True, metavar="true|false"
    )

    dialin = add("dialin", "Get/Set-CsOnlineDialInConferencingTenantSettings")
    dialin_sub = dialin.add_subparsers(dest="action", required=True, parser_class=_Parser)
    dialin_sub.add_parser("get", parents=[common])
    dialin_set = dialin_sub.add_parser("set", parents=[common])
    dialin_set.add_argument(
        "--automatically-migrate-user-meetings", type=_bool, metavar="true|false"
    )
    dialin_set.add_argument(
        "--automatically-replace-acp-provider", type=_bool, metavar="true|false"
    )

    preview = add("preview", "dry run: the meetings and the blocks a migration would replace")
    preview.add_argument("identity", metavar="IDENTITY")
    preview.add_argument("--blocks", action="store_true", help="print the old and new blocks")

    triggers = add("triggers", "triggers received and what became of each")
    triggers.add_argument("--identity")
    triggers.add_argument("--since", type=_time)

    trigger = add("trigger", "post a trigger (SPEC section 2)")
    trigger.add_argument("type", metavar="TYPE", choices=_values(TriggerType))
    trigger.add_argument("--identity")
    trigger.add_argument("--mode", choices=_values(TeamsUpgradeMode))
    trigger.add_argument("--scope", choices=_values(PolicyScope))
    trigger.add_argument("--conferencing", type=_conferencing, metavar="JSON")

    watch = add("watch", "live progress per tenant: users per state, meetings/s, ETA")
    watch.add_argument("--once", action="store_true", help="print one frame and exit")
    watch.add_argument("--interval", type=float, default=2.0, help="seconds between frames")
    return parser


# --------------------------------------------------------------------- commands


Out = Callable[[str], None]


def _tenant_path(tenant: str) -> str:
    return f"/v1/tenants/{quote(tenant, safe='')}"


def _resolve_tenant(client: Client, chosen: str | None) -> str:
    if chosen is not None:
        return chosen
    names = [t["name"] for t in client.call("GET", "/v1/tenants")["value"]]
    if len(names) != 1:
        listed = ", ".join(names) or "none"
        raise Usage(f"the daemon has {len(names)} tenants ({listed}); choose one with --tenant")
    return str(names[0])


def _emit(args: argparse.Namespace, out: Out, data: Any, text: Callable[[Any], str]) -> None:
    out(json.dumps(data, indent=2, ensure_ascii=False) if args.json else text(data))


def _cmd_status(args: argparse.Namespace, client: Client, out: Out) -> int:
    base = _tenant_path(_resolve_tenant(client, args.tenant))
    if args.summary:
        if args.identity or args.state or args.start_time or args.end_time:
            raise Usage("--summary takes no filters")
        data = client.call("GET", base + "/migrations/summary")
        _emit(args, out, data, lambda d: render.summary_table(d["value"]))
        return EXIT_OK
    query = {
        "identity": args.identity,
        "state": args.state,
        "startTime": args.start_time,
        "endTime": args.end_time,
    }
    data = client.call("GET", base + "/migrations", query=query)
    _emit(args, out, data, lambda d: render.status_table(d["value"]))
    return EXIT_OK


def _cmd_start(args: argparse.Namespace, client: Client, out: Out) -> int:
    base = _tenant_path(_resolve_tenant(client, args.tenant))
    body: dict[str, str] = {"identity": args.identity}
    if args.source_meeting_type:
        body["sourceMeetingType"] = args.source_meeting_type
    if args.target_meeting_type:
        body["targetMeetingType"] = args.target_meeting_type
    data = client.call("POST", base + "/migrations", body=body)
    _emit(args, out, data, lambda d: f"queued: correlation ID {d['correlationId']}")
    return EXIT_OK


def _cmd_history(args: argparse.Namespace, client: Client, out: Out) -> int:
    base = _tenant_path(_resolve_tenant(client, args.tenant))
    path = f"{base}/migrations/{quote(args.identity, safe='')}/history"
    data = client.call("GET", path, query={"correlationId": args.correlation_id})
    _emit(args, out, data, lambda d: render.history_table(d["value"]))
    return EXIT_OK


def _cmd_switches(args: argparse.Namespace, client: Client, out: Out) -> int:
    base = _tenant_path(_resolve_tenant(client, args.tenant))
    if args.command == "config":
        path = base + "/configuration"
        body = {"meetingMigrationEnabled": getattr(args, "meeting_migration_enabled", None)}
    else:
        path = base + "/dialInConferencingSettings"
        body = {
            "automaticallyMigrateUserMeetings": getattr(
                args, "automatically_migrate_user_meetings", None
            ),
            "automaticallyReplaceAcpProvider": getattr(
                args, "automatically_replace_acp_provider", None
            ),
        }
    if args.action == "get":
        data = client.call("GET", path)
    else:
        changes = {k: v for k, v in body.items() if v is not None}
        if not changes:
            raise Usage(f"{args.command} set: give at least one setting to change")
        data = client.call("PATCH", path, body=changes)
    _emit(args, out, data, render.key_values)
    return EXIT_OK


def _cmd_preview(args: argparse.Namespace, client: Client, out: Out) -> int:
    base = _tenant_path(_resolve_tenant(client, args.tenant))
    data = client.call("POST", f"{base}/migrations/{quote(args.identity, safe='')}/preview")
    _emit(args, out, data, lambda d: render.preview_text(d, blocks=args.blocks))
    return EXIT_OK


def _cmd_triggers(args: argparse.Namespace, client: Client, out: Out) -> int:
    base = _tenant_path(_resolve_tenant(client, args.tenant))
    query = {"identity": args.identity, "since": args.since}
    data = client.call("GET", base + "/triggers", query=query)
    _emit(args, out, data, lambda d: render.triggers_table(d["value"]))
    return EXIT_OK


def _cmd_trigger(args: argparse.Namespace, client: Client, out: Out) -> int:
    base = _tenant_path(_resolve_tenant(client, args.tenant))
    body: dict[str, Any] = {"type": args.type}
    for key, value in (
        ("identity", args.identity),
        ("mode", args.mode),
        ("scope", args.scope),
        ("conferencing", args.conferencing),
    ):
        if value is not None:
            body[key] = value
    data = client.call("POST", base + "/triggers", body=body)
    _emit(args, out, data, lambda d: f"accepted: trigger ID {d['triggerId']}")
    return EXIT_OK


def _frame(
    client: Client, tenants: Sequence[str], previous: dict[str, render.Sample]
) -> list[render.Progress]:
    now = parse_rfc3339(client.call("GET", "/healthz")["time"])
    frame = []
    for tenant in tenants:
        base = _tenant_path(tenant)
        summary = client.call("GET", base + "/migrations/summary")["value"]
        records = client.call("GET", base + "/migrations")["value"]
        p = render.progress(tenant, summary, records, now, previous.get(tenant))
        previous[tenant] = p.sample
        frame.append(p)
    return frame


def _progress_json(p: render.Progress) -> dict[str, Any]:
    return {
        "tenant": p.tenant,
        "users": p.users,
        "meetingsDone": p.meetings_done,
        "meetingsLeft": p.meetings_left,
        "meetingsPerSecond": round(p.meetings_per_second, 3),
        "etaSeconds": None if p.eta is None else round(p.eta.total_seconds()),
        "windowLeftSeconds": None
        if p.window_left is None
        else round(p.window_left.total_seconds()),
        "late": p.late,
        "at": format_rfc3339(p.sample.at),
    }


def _cmd_watch(args: argparse.Namespace, client: Client, out: Out) -> int:
    if args.interval <= 0:
        raise Usage("--interval must be positive")
    if args.tenant is not None:
        tenants = [args.tenant]
    else:
        tenants = [str(t["name"]) for t in client.call("GET", "/v1/tenants")["value"]]
    previous: dict[str, render.Sample] = {}
    live = not args.once and not args.json and sys.stdout.isatty()
    try:
        while True:
            frame = _frame(client, tenants, previous)
            if args.json:
                out(json.dumps({"value": [_progress_json(p) for p in frame]}))
            else:
                stamp = datetime.now(UTC).strftime("%H:%M:%S")
                text = "\n".join(render.progress_text(p) for p in frame)
                out(("\x1b[H\x1b[J" if live else "") + f"mmsd progress at {stamp}\n{text}")
            if args.once:
                return EXIT_OK
            time.sleep(args.interval)
    except KeyboardInterrupt:
        return EXIT_OK


_COMMANDS: dict[str, Callable[[argparse.Namespace, Client, Out], int]] = {
    "status": _cmd_status,
    "start": _cmd_start,
    "history": _cmd_history,
    "config": _cmd_switches,
    "dialin": _cmd_switches,
    "preview": _cmd_preview,
    "triggers": _cmd_triggers,
    "trigger": _cmd_trigger,
    "watch": _cmd_watch,
}


def _client(args: argparse.Namespace) -> Client:
    if args.url is not None:
        if urlsplit(args.url).scheme not in ("http", "https"):
            raise Usage("--url must be an http:// or https:// URL")
        if args.token_file is None:
            raise Usage("--url needs --token-file (the TCP listener requires a bearer token)")
        try:
            with open(args.token_file, encoding="utf-8") as handle:
                token = handle.read().strip()
        except OSError as exc:
            raise Usage(f"--token-file: cannot read: {exc.strerror}") from exc
        if not token:
            raise Usage("--token-file: the file is empty")
        return Client(url=args.url, token=token)
    if args.token_file is not None:
        raise Usage("--token-file goes with --url; the Unix socket needs no token")
    return Client(socket_path=args.socket or os.environ.get("MMSD_ADMIN_SOCKET") or DEFAULT_SOCKET)


def main(argv: Sequence[str] | None = None) -> int:
    """Run one ``mmsctl`` command; the exit code of SPEC section 5."""
    parser = build_parser()

    def out(text: str) -> None:
        print(text, flush=True)

    try:
        args = parser.parse_args(list(argv) if argv is not None else None)
        return _COMMANDS[args.command](args, _client(args), out)
    except Usage as exc:
        print(f"mmsctl: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except SystemExit as exc:  # --help
        return exc.code if isinstance(exc.code, int) else EXIT_OK
    except Unreachable as exc:
        print(f"mmsctl: {exc}", file=sys.stderr)
        return EXIT_UNREACHABLE
    except Refused as exc:
        print(f"mmsctl: refused ({exc.status} {exc.code}): {exc.message}", file=sys.stderr)
        return EXIT_REFUSED
    except BrokenPipeError:
        return EXIT_OK
