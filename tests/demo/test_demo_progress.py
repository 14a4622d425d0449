"""The demo's terminal output: fits the terminal, plain without a TTY, honest rate and ETA."""

from __future__ import annotations

import io

from mmsd.demo.progress import (
    ProgressSample,
    ProgressView,
    Style,
    eta_seconds,
    format_duration,
    meeting_rate,
    progress_line,
    visible_len,
)

USERS = {"Pending": 3, "InProgress": 5, "Succeeded": 20, "Failed": 1}


def _sample(t: float, done: int) -> ProgressSample:
    return ProgressSample(elapsed=t, users=USERS, updated=done, expected=300)


def test_rate_and_eta() -> None:
    samples = [_sample(0, 0), _sample(2, 20), _sample(4, 40)]
    assert meeting_rate(samples) == 10.0
    assert eta_seconds(samples[-1], 10.0) == 26.0
    assert eta_seconds(samples[-1], 0.0) is None
    assert eta_seconds(_sample(5, 300), 0.0) == 0.0
    assert format_duration(None) == "--"
    assert format_duration(125) == "2m05s"


def test_progress_line_fits_the_terminal() -> None:
    style = Style(True)
    for columns in (200, 100, 80, 60, 40):
        line = progress_line(_sample(12, 120), 9.5, style, columns=columns)
        assert visible_len(line) < columns or columns < 45
    wide = progress_line(_sample(12, 120), 9.5, style, columns=200)
    assert "InProgress" in wide and "120/300" in wide and "ETA" in wide


def test_plain_output_has_no_escape_codes_or_redraws() -> None:
    out = io.StringIO()
    view = ProgressView(out, tty=False, plain_every=0)
    view.stage("daemon", "ready")
    view.update(_sample(1, 10))
    view.update(_sample(2, 20))
    view.finish()
    text = out.getvalue()
    assert "\x1b" not in text and "\r" not in text
    assert "[ok]" in text and "20/300" in text


def test_terminal_output_redraws_one_line() -> None:
    out = io.StringIO()
    view = ProgressView(out, tty=True)
    view.update(_sample(1, 10))
    view.update(_sample(2, 20))
    view.line("after")
    text = out.getvalue()
    assert text.count("\r\x1b[2K") >= 3
    assert text.endswith("after\n")
