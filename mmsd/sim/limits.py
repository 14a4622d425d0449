"""The simulator's limits profile: every Graph and Exchange limit of SPEC section 4, as data.

A :class:`LimitsProfile` is the one place the simulator reads a limit from; the
enforcement (:mod:`mmsd.sim.throttle`, :mod:`mmsd.sim.sending`) and the closed-form
bound (:mod:`mmsd.sim.bounds`) both take one. Profiles load from JSON or TOML
files (``--limits FILE``) holding any subset of the fields; the rest keep the
defaults, which are SPEC section 4's values.

Every budget is "``X`` per ``X_window_s`` seconds", so time can be compressed
uniformly: :meth:`LimitsProfile.scaled` divides every window by a factor and
keeps every count, which multiplies every rate by the factor and keeps every
ratio between limits. Run a wave against ``profile.scaled(f)`` with the
simulator's latency divided by ``f`` too, and its throttle-bound minimum is
exactly ``1/f`` of the original with the same binding constraint: the same
shape, faster. The shipped ``profiles/fast.json`` is ``default.scaled(10)``.
"""

from __future__ import annotations

import dataclasses
import json
import math
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any

MIB = 1024 * 1024
DAY_S = 86_400.0
MONTH_S = 30 * DAY_S


@dataclass(frozen=True)
class LimitsProfile:
    """Every per-tenant limit the simulator enforces; defaults are SPEC section 4."""

    description: str = "Graph and Exchange Online limits of SPEC section 4"
    # Outlook (events, messages), per app per mailbox.
    outlook_requests: int = 10_000
    outlook_window_s: float = 600.0
    outlook_concurrency: int = 4
    outlook_upload_bytes: int = 150 * MIB
    outlook_upload_window_s: float = 300.0
    # Teams API calls (onlineMeetings), per app per tenant.
    teams_requests: int = 30
    teams_window_s: float = 1.0
    # Online meetings created, per user per rolling month.
    online_meetings_per_user: int = 2_000
    online_meetings_window_s: float = MONTH_S
    # Graph overall, per app (one tenant per simulator, so: per simulator).
    graph_requests: int = 130_000
    graph_window_s: float = 10.0
    # JSON batching.
    batch_max_requests: int = 20
    batch_outlook_parallel: int = 4
    # Sending, per sender mailbox.
    send_messages: int = 30
    send_messages_window_s: float = 60.0
    send_recipients: int = 10_000
    send_recipients_window_s: float = DAY_S
    # Per event.
    attendees_per_event: int = 500

    def __post_init__(self) -> None:
        for f in dataclasses.fields(self):
            value = getattr(self, f.name)
            if f.type == "str":
                if not isinstance(value, str):
                    raise ValueError(f"limits: {f.name} must be a string")
            elif f.type == "int":
                if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                    raise ValueError(f"limits: {f.name} must be a positive integer, got {value!r}")
            else:
                if (
                    isinstance(value, bool)
                    or not isinstance(value, int | float)
                    or not math.isfinite(value)
                    or value <= 0
                ):
                    raise ValueError(f"limits: {f.name} must be a positive number, got {value!r}")
                object.__setattr__(self, f.name, float(value))

    @classmethod
    def from_mapping(cls, data: Mapping[str, Any], where: str = "limits") -> LimitsProfile:
        """Build a profile from a mapping of field names; unknown keys or bad types raise ValueError."""
        names = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(data) - names)
        if unknown:
            raise ValueError(
                f"{where}: unknown key(s) {', '.join(unknown)}; known: {', '.join(sorted(names))}"
            )
        try:
            return cls(**dict(data))
        except ValueError as exc:
            raise ValueError(f"{where}: {exc}") from None

    def to_json(self) -> dict[str, Any]:
        """The profile as a JSON object with every field (what ``load_limits`` reads back)."""
        return dataclasses.asdict(self)

    def updated(self, changes: Mapping[str, Any]) -> LimitsProfile:
        """A copy with some fields changed (the ``/_sim/`` limit knob); validated like a file."""
        return LimitsProfile.from_mapping({**self.to_json(), **changes})

    def scaled(self, factor: float) -> LimitsProfile:
        """The same limits with time compressed ``factor`` times: every window / factor.

        Counts stay, so every rate is ``factor`` times higher and every ratio
        between limits is kept; pair it with the simulator latency / ``factor``.
        """
        if isinstance(factor, bool) or not factor > 0 or not math.isfinite(factor):
            raise ValueError(f"scale factor must be a positive number, got {factor!r}")
        changes: dict[str, Any] = {
            f.name: getattr(self, f.name) / factor
            for f in dataclasses.fields(self)
            if f.name.endswith("_window_s")
        }
        changes["description"] = f"{self.description} (time compressed x{factor:g})"
        return dataclasses.replace(self, **changes)


def load_limits(path: Path) -> LimitsProfile:
    """Read a profile from a ``.json`` or ``.toml`` file; missing fields keep their defaults."""
    suffix = path.suffix.lower()
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise ValueError(f"{path}: cannot read: {exc.strerror}") from exc
    except UnicodeDecodeError:
        raise ValueError(f"{path}: not UTF-8") from None
    data: Any
    if suffix == ".json":
        try:
            data = json.loads(text)
        except json.JSONDecodeError as exc:
            raise ValueError(f"{path}: not valid JSON: {exc}") from None
    elif suffix == ".toml":
        try:
            data = tomllib.loads(text)
        except tomllib.TOMLDecodeError as exc:
            raise ValueError(f"{path}: not valid TOML: {exc}") from None
    else:
        raise ValueError(f"{path}: a limits profile must end in .json or .toml")
    if not isinstance(data, dict):
        raise ValueError(f"{path}: a limits profile must be an object of field names")
    return LimitsProfile.from_mapping(data, where=str(path))


def builtin_profile(name: str) -> LimitsProfile:
    """One of the profiles shipped in ``mmsd/sim/profiles/`` (``default``, ``fast``)."""
    resource = resources.files("mmsd.sim").joinpath("profiles", f"{name}.json")
    if not resource.is_file():
        raise ValueError(f"no built-in limits profile named {name!r}")
    with resources.as_file(resource) as path:
        return load_limits(path)
