"""The admin API's listeners, secure by default (SPEC section 5).

- The Unix socket: created under a temporary name, given mode 0660 and the
  configured group, then renamed into place, so the final path never exists
  with a looser mode. If the group does not exist (a test machine, a
  container without the ``mmsd`` sysusers entry) the chgrp is skipped with a
  logged warning and the socket keeps the daemon's own group — still 0660.
  A stale socket left by a killed daemon is replaced; a live one (another
  daemon answers on it) or a non-socket file at the path is refused.
- TCP: only with a bearer token read from a file. Without a token file, or
  with an empty, short or world-readable one, the listener refuses to start
  (:class:`ListenerError`) and the daemon does not open the port.
"""

from __future__ import annotations

import contextlib
import errno
import grp
import logging
import os
import socket
import stat
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from aiohttp import web

from mmsd.admin.api import SwitchLocks, make_admin_app
from mmsd.clock import Clock
from mmsd.config import Config
from mmsd.engine.api import MigrationService
from mmsd.store import Store

log = logging.getLogger("mmsd.admin")

SOCKET_MODE = 0o660
MIN_TOKEN_BYTES = 16
SHUTDOWN_TIMEOUT_S = 5.0


class ListenerError(Exception):
    """An admin listener cannot (or must not) be opened; the message says why."""


def read_token_file(path: Path | None) -> bytes:
    """The bearer token from ``path`` (surrounding whitespace stripped), or ListenerError.

    Refused: no file configured, unreadable, world-readable, empty, or shorter
    than 16 bytes (too short to be a secret).
    """
    if path is None:
        raise ListenerError("the TCP admin listener needs admin_token_file; refusing to open it")
    # The messages avoid "token: word" and "token=word": the log redaction would mask the word.
    try:
        info = path.stat()
        raw = path.read_bytes()
    except OSError as exc:
        raise ListenerError(
            f"admin_token_file {path} is refused: cannot read it ({exc.strerror})"
        ) from exc
    if info.st_mode & stat.S_IROTH:
        raise ListenerError(f"admin_token_file {path} is readable by everyone; chmod o-r it")
    token = raw.strip()
    if len(token) < MIN_TOKEN_BYTES:
        raise ListenerError(
            f"admin_token_file {path} is refused: the token must be at least "
            f"{MIN_TOKEN_BYTES} bytes"
        )
    if any(b <= 0x20 or b == 0x7F for b in token):
        raise ListenerError(
            f"admin_token_file {path} is refused: the token must not contain spaces"
        )
    return token


def parse_listen(listen: str) -> tuple[str, int]:
    """``host:port`` or ``[v6]:port`` into (host, port)."""
    host, sep, port_text = listen.rpartition(":")
    if not sep or not host or not port_text.isdigit() or int(port_text) > 65535:
        raise ListenerError(f"admin_listen {listen!r}: expected host:port, e.g. 127.0.0.1:8465")
    return host.strip("[]"), int(port_text)


def _socket_in_use(path: Path) -> bool:
    probe = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        probe.connect(str(path))
    except OSError:
        return False
    finally:
        probe.close()
    return True


def _clear_stale(path: Path) -> None:
    try:
        info = path.lstat()
    except FileNotFoundError:
        return
    if not stat.S_ISSOCK(info.st_mode):
        raise ListenerError(f"admin_socket {path}: exists and is not a socket; refusing")
    if _socket_in_use(path):
        raise ListenerError(f"admin_socket {path}: another process is listening on it")
    path.unlink()


def _group_id(group: str | None, path: Path) -> int | None:
    if group is None:
        return None
    try:
        return grp.getgrnam(group).gr_gid
    except KeyError:
        log.warning(
            "admin socket group %r does not exist; %s keeps the daemon's group (mode 0660)",
            group,
            path,
        )
        return None


def bind_unix_socket(path: Path, group: str | None) -> socket.socket:
    """A listening Unix socket at ``path`` with mode 0660 and ``group`` (if it exists)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    _clear_stale(path)
    temp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    with contextlib.suppress(FileNotFoundError):
        temp.unlink()
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        sock.bind(str(temp))
        os.chmod(temp, SOCKET_MODE)
        gid = _group_id(group, path)
        if gid is not None:
            try:
                os.chown(temp, -1, gid)
            except PermissionError:
                log.warning(
                    "cannot give %s the group %r (the daemon is not a member); "
                    "it keeps the daemon's group (mode 0660)",
                    path,
                    group,
                )
        os.rename(temp, path)
        sock.listen(128)
        sock.setblocking(False)
    except OSError as exc:
        sock.close()
        with contextlib.suppress(FileNotFoundError):
            temp.unlink()
        if exc.errno == errno.ENAMETOOLONG or "too long" in str(exc):
            raise ListenerError(f"admin_socket {path}: path too long for a Unix socket") from exc
        raise ListenerError(f"admin_socket {path}: cannot bind: {exc.strerror or exc}") from exc
    return sock


def bind_tcp_socket(listen: str) -> socket.socket:
    """A listening TCP socket on ``host:port`` (port 0 picks a free one)."""
    host, port = parse_listen(listen)
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)
        family = infos[0][0]
        sock = socket.create_server((host, port), family=family, reuse_port=False, backlog=128)
    except OSError as exc:
        raise ListenerError(f"admin_listen {listen}: cannot bind: {exc.strerror or exc}") from exc
    sock.setblocking(False)
    return sock


@dataclass
class AdminListeners:
    """The running admin listeners; :meth:`close` stops them and removes the socket file."""

    socket_path: Path
    tcp_address: tuple[str, int] | None = None
    _runners: list[web.AppRunner] = field(default_factory=list)

    @property
    def url(self) -> str | None:
        """``http://host:port`` of the TCP listener, if one is open."""
        if self.tcp_address is None:
            return None
        host, port = self.tcp_address
        return f"http://[{host}]:{port}" if ":" in host else f"http://{host}:{port}"

    async def close(self) -> None:
        """Stop accepting, let running handlers finish (bounded), remove the socket file."""
        for runner in reversed(self._runners):
            await runner.cleanup()
        self._runners.clear()
        with contextlib.suppress(FileNotFoundError):
            self.socket_path.unlink()


async def _serve(app: web.Application, sock: socket.socket) -> web.AppRunner:
    # access_log=None: aiohttp's access log would write request paths, which
    # may carry a UPN; the API logs route patterns instead.
    runner = web.AppRunner(app, access_log=None, shutdown_timeout=SHUTDOWN_TIMEOUT_S)
    await runner.setup()
    site = web.SockSite(runner, sock)
    await site.start()
    return runner


async def start_admin_listeners(
    config: Config,
    service: MigrationService,
    store: Store,
    *,
    clock: Clock,
    readiness: Callable[[], bool],
) -> AdminListeners:
    """Open the Unix socket listener and, if configured, the token-guarded TCP listener.

    The token is checked before anything is bound, so a refused TCP listener
    leaves no socket behind.
    """
    token = read_token_file(config.admin_token_file) if config.admin_listen is not None else None
    tcp_sock = bind_tcp_socket(config.admin_listen) if config.admin_listen is not None else None
    try:
        unix_sock = bind_unix_socket(config.admin_socket, config.admin_socket_group)
    except BaseException:
        if tcp_sock is not None:
            tcp_sock.close()
        raise
    listeners = AdminListeners(socket_path=config.admin_socket)
    try:
        locks = SwitchLocks()  # one per engine: a PATCH on either listener waits for the other
        app = make_admin_app(service, store, clock=clock, readiness=readiness, switch_locks=locks)
        listeners._runners.append(await _serve(app, unix_sock))
        log.info("admin API listening on %s", config.admin_socket)
        if tcp_sock is not None and token is not None:
            tcp_app = make_admin_app(
                service, store, clock=clock, readiness=readiness, token=token, switch_locks=locks
            )
            listeners._runners.append(await _serve(tcp_app, tcp_sock))
            host, port = tcp_sock.getsockname()[:2]
            listeners.tcp_address = (str(host), int(port))
            log.info("admin API listening on TCP %s port %d (bearer token required)", host, port)
    except BaseException:
        await listeners.close()
        unix_sock.close()  # harmless if a runner already closed it
        if tcp_sock is not None:
            tcp_sock.close()
        raise
    return listeners
