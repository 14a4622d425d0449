"""sd_notify(3) without libsystemd: readiness, status, watchdog, stop and reload.

With ``Type=notify`` systemd waits for ``READY=1`` on the datagram socket named by
``$NOTIFY_SOCKET`` (a path, or ``@name`` for an abstract socket). With
``WatchdogSec=`` it sets ``$WATCHDOG_USEC`` and restarts the service unless
``WATCHDOG=1`` arrives in time: :func:`run_watchdog` pings at half that interval from
the event loop — so a stalled loop stops the pings — and only while a health check
(the supervisors are healthy) holds. Outside systemd every call is a cheap no-op.
"""

from __future__ import annotations

import asyncio
import logging
import os
import socket
import time
from collections.abc import Awaitable, Callable, Mapping

log = logging.getLogger(__name__)

#: How long one notification may block the loop if systemd's queue is full.
SEND_TIMEOUT_S = 0.5

Sleep = Callable[[float], Awaitable[None]]


def notify_address(env: Mapping[str, str] = os.environ) -> str | None:
    """The socket address from ``$NOTIFY_SOCKET`` (``@`` becomes a leading NUL), or None."""
    path = env.get("NOTIFY_SOCKET", "")
    if not path or not (path.startswith("/") or path.startswith("@")):
        return None  # unset, or a vsock address this module does not speak
    return "\0" + path[1:] if path.startswith("@") else path


def watchdog_interval(env: Mapping[str, str] = os.environ, pid: int | None = None) -> float | None:
    """Seconds between pings (half of ``$WATCHDOG_USEC``), or None when no watchdog is set.

    ``$WATCHDOG_PID``, when set, must be this process: the watchdog is not inherited.
    """
    usec = env.get("WATCHDOG_USEC", "")
    if not usec.isdigit() or int(usec) == 0:
        return None
    owner = env.get("WATCHDOG_PID", "")
    if owner and owner != str(os.getpid() if pid is None else pid):
        return None
    return int(usec) / 2_000_000


class Notifier:
    """Sends sd_notify messages to the service manager; does nothing outside systemd."""

    def __init__(self, env: Mapping[str, str] = os.environ) -> None:
        self._address = notify_address(env)

    @property
    def enabled(self) -> bool:
        """True when ``$NOTIFY_SOCKET`` names a socket to notify."""
        return self._address is not None

    def notify(self, *assignments: str) -> bool:
        """Send ``KEY=VALUE`` lines in one datagram; True if sent, False if not (logged)."""
        if self._address is None:
            return False
        payload = "\n".join(assignments).encode("utf-8")
        try:
            with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM | socket.SOCK_CLOEXEC) as sock:
                sock.settimeout(SEND_TIMEOUT_S)
                sock.connect(self._address)
                sock.sendall(payload)
        except OSError as exc:
            log.warning("sd_notify failed: %s", exc.strerror or type(exc).__name__)
            return False
        return True

    def ready(self, status: str | None = None) -> bool:
        """``READY=1``: the store, the actors and the listeners are up."""
        return self.notify("READY=1", *self._status(status))

    def status(self, text: str) -> bool:
        """``STATUS=``: one human line for ``systemctl status``."""
        return self.notify(*self._status(text))

    def watchdog(self) -> bool:
        """``WATCHDOG=1``: the loop is alive and the supervisors are healthy."""
        return self.notify("WATCHDOG=1")

    def stopping(self, status: str | None = None) -> bool:
        """``STOPPING=1``: draining has begun."""
        return self.notify("STOPPING=1", *self._status(status))

    def reloading(self, status: str | None = None) -> bool:
        """``RELOADING=1`` with ``MONOTONIC_USEC``; send :meth:`ready` when the reload is done."""
        usec = time.clock_gettime_ns(time.CLOCK_MONOTONIC) // 1000
        return self.notify("RELOADING=1", f"MONOTONIC_USEC={usec}", *self._status(status))

    @staticmethod
    def _status(text: str | None) -> list[str]:
        if text is None:
            return []
        return ["STATUS=" + " ".join(text.split())]  # one line: newlines end the field


async def run_watchdog(
    notifier: Notifier,
    healthy: Callable[[], bool],
    interval: float | None = None,
    *,
    env: Mapping[str, str] = os.environ,
    sleep: Sleep = asyncio.sleep,
) -> None:
    """Ping ``WATCHDOG=1`` every ``interval`` seconds while ``healthy()``; until cancelled.

    ``interval`` defaults to half ``$WATCHDOG_USEC``; without a watchdog this returns at
    once. When ``healthy()`` is false (or raises) the ping is skipped, so systemd
    restarts a service whose supervisors gave up, as it does one whose loop stalled.
    """
    every = interval if interval is not None else watchdog_interval(env)
    if every is None or not notifier.enabled:
        return
    unhealthy = False
    while True:
        error: Exception | None = None
        try:
            ok = bool(healthy())
        except Exception as exc:  # a broken check is unhealthy, not a dead watchdog
            ok, error = False, exc
        if ok:
            notifier.watchdog()
        if ok == unhealthy:  # log transitions, not every skipped ping
            unhealthy = not ok
            if unhealthy:
                log.error("supervisors unhealthy: withholding watchdog pings", exc_info=error)
            else:
                log.info("supervisors healthy again: watchdog pings resumed")
        await sleep(every)
