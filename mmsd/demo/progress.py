"""Terminal output of ``mmsd demo``: stage lines, the live progress line, and the final report.

On a terminal the progress line is redrawn in place (``\\r``) with colours and a
bar of users per state; when the stream is not a TTY (a pipe, CI, a file) the
output is plain: no escape codes, no redraws, one progress line every few
seconds. ``NO_COLOR`` turns colours off on a terminal too.
"""

from __future__ import annotations

import os
import re
import shutil
import textwrap
import time
from collections import deque
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TextIO

STATES = ("Pending", "InProgress", "Succeeded", "Failed")
_COLOURS = {
    "Pending": "2",
    "InProgress": "33",
    "Succeeded": "32",
    "Failed": "31",
    "ok": "32",
    "fail": "31",
    "bold": "1",
    "dim": "2",
}
_BAR = {"Succeeded": "█", "Failed": "█", "InProgress": "▓", "Pending": "░"}
_SPINNER = "⠋⠙⠹⠸⠼⠴⠦⠧⠇⠏"


@dataclass(frozen=True)
class ProgressSample:
    """One look at the daemon: users per state, meetings updated so far, and the target."""

    elapsed: float  # seconds since the wave was fired
    users: Mapping[str, int]  # state -> users (the daemon's summary)
    updated: int  # meetings updated so far (the daemon's status records)
    expected: int  # meetings the wave should update (the checker's count)


def meeting_rate(samples: Sequence[ProgressSample], window: float = 6.0) -> float:
    """Meetings per second over the last ``window`` seconds of samples (0 when unknown)."""
    if len(samples) < 2:
        return 0.0
    last = samples[-1]
    first = next((s for s in samples if last.elapsed - s.elapsed <= window), samples[0])
    span = last.elapsed - first.elapsed
    if span <= 0:
        return 0.0
    return max(0.0, (last.updated - first.updated) / span)


def eta_seconds(sample: ProgressSample, rate: float) -> float | None:
    """Seconds until every expected meeting is updated at ``rate`` (None when unknown)."""
    left = sample.expected - sample.updated
    if left <= 0:
        return 0.0
    if rate <= 0:
        return None
    return left / rate


def format_duration(seconds: float | None) -> str:
    """``42s``, ``3m05s``; ``--`` when unknown."""
    if seconds is None:
        return "--"
    whole = round(seconds)
    if whole < 60:
        return f"{whole}s"
    return f"{whole // 60}m{whole % 60:02d}s"


class Style:
    """ANSI colours when enabled, nothing otherwise."""

    def __init__(self, enabled: bool) -> None:
        """``enabled``: whether escape codes may be written."""
        self.enabled = enabled

    def __call__(self, key: str, text: str) -> str:
        """``text`` in the colour named ``key``."""
        if not self.enabled or key not in _COLOURS:
            return text
        return f"\x1b[{_COLOURS[key]}m{text}\x1b[0m"


def state_bar(users: Mapping[str, int], width: int, style: Style) -> str:
    """A bar of ``width`` cells split by users per state (finished states first)."""
    total = sum(users.get(s, 0) for s in STATES)
    if total <= 0:
        return style("dim", "·" * width) if style.enabled else "." * width
    cells: list[str] = []
    used = 0
    order = ("Succeeded", "Failed", "InProgress", "Pending")
    for i, state in enumerate(order):
        count = users.get(state, 0)
        n = width - used if i == len(order) - 1 else round(width * count / total)
        n = max(0, min(n, width - used))
        used += n
        char = (
            _BAR[state]
            if style.enabled
            else {"Succeeded": "#", "Failed": "x"}.get(state, ">" if state == "InProgress" else ".")
        )
        cells.append(style(state, char * n))
    return "".join(cells)


_ANSI = re.compile(r"\x1b\[[0-9;]*[A-Za-z]")
_SHORT = {"Pending": "pending", "InProgress": "running", "Succeeded": "ok", "Failed": "failed"}


def visible_len(text: str) -> int:
    """The printed width of ``text`` (escape codes not counted)."""
    return len(_ANSI.sub("", text))


def progress_line(
    sample: ProgressSample,
    rate: float,
    style: Style,
    tick: int = 0,
    columns: int = 200,
) -> str:
    """One progress line: users per state, meetings done, meetings per second, ETA.

    The longest form that fits in ``columns - 1`` is chosen (a wrapped line
    cannot be redrawn in place).
    """
    spin = _SPINNER[tick % len(_SPINNER)] + " " if style.enabled else ""
    when = format_duration(sample.elapsed)
    eta = format_duration(eta_seconds(sample, rate))
    meetings = f"meetings {sample.updated}/{sample.expected}  {rate:4.1f}/s  ETA {eta}"
    long_users = "  ".join(f"{style(s, s)} {sample.users.get(s, 0)}" for s in STATES)
    short_users = " ".join(f"{style(s, _SHORT[s])} {sample.users.get(s, 0)}" for s in STATES)
    candidates = (
        f"  {spin}{when:>6}  [{state_bar(sample.users, 24, style)}]  {long_users}  |  {meetings}",
        f"  {spin}{when:>5} [{state_bar(sample.users, 12, style)}] {short_users} | {meetings}",
        f"  {spin}{when:>5} {short_users} | {meetings}",
        f"  {spin}{when:>5} {sample.updated}/{sample.expected} meetings, ETA {eta}",
    )
    for line in candidates:
        if visible_len(line) < columns:
            return line
    return candidates[-1]


class ProgressView:
    """Writes the demo's human output to one stream, redrawing in place on a terminal."""

    def __init__(
        self, stream: TextIO, *, tty: bool | None = None, plain_every: float = 5.0
    ) -> None:
        """``tty`` defaults to ``stream.isatty()``; plain mode prints every ``plain_every`` s."""
        self.stream = stream
        self.tty = stream.isatty() if tty is None else tty
        self.style = Style(self.tty and "NO_COLOR" not in os.environ)
        self.samples: deque[ProgressSample] = deque(maxlen=120)
        self.plain_every = plain_every
        self._last_plain = -1e9
        self._live = False
        self._tick = 0

    def _clear(self) -> None:
        if self._live:
            self.stream.write("\r\x1b[2K")
            self._live = False

    def line(self, text: str = "") -> None:
        """Print a whole line (above the live progress line, if one is shown)."""
        self._clear()
        self.stream.write(text + "\n")
        self.stream.flush()

    def stage(self, name: str, detail: str, ok: bool = True) -> None:
        """A finished step: ``✓ name   detail``."""
        mark = self.mark(ok)
        self.line(f"  {mark} {name:<10} {detail}")

    def wrapped(self, text: str, indent: int) -> None:
        """``text`` dimmed, wrapped to the terminal (or 100 columns), indented."""
        columns = shutil.get_terminal_size((100, 24)).columns if self.tty else 100
        width = max(40, columns - 1)
        pad = " " * indent
        for chunk in textwrap.wrap(text, width=width, initial_indent=pad, subsequent_indent=pad):
            self.line(self.style("dim", chunk))

    def mark(self, ok: bool) -> str:
        """``✓``/``✗`` in colour on a terminal, ``[ok]``/``[FAIL]`` otherwise."""
        if self.tty:
            return self.style("ok", "✓") if ok else self.style("fail", "✗")
        return "[ok]  " if ok else "[FAIL]"

    def update(self, sample: ProgressSample) -> None:
        """Show a new sample: redraw on a terminal, or a plain line now and then."""
        self.samples.append(sample)
        rate = meeting_rate(list(self.samples))
        self._tick += 1
        if self.tty:
            columns = shutil.get_terminal_size((100, 24)).columns
            text = progress_line(sample, rate, self.style, tick=self._tick, columns=columns)
            self.stream.write("\r\x1b[2K" + text)
            self.stream.flush()
            self._live = True
            return
        now = time.monotonic()
        if now - self._last_plain >= self.plain_every:
            self._last_plain = now
            self.line(progress_line(sample, rate, self.style))

    def finish(self) -> None:
        """End the live line (the last sample stays on screen)."""
        if self._live:
            self.stream.write("\n")
            self.stream.flush()
            self._live = False
        elif self.samples and not self.tty:
            last = self.samples[-1]
            self.line(progress_line(last, meeting_rate(list(self.samples)), self.style))
