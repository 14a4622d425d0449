"""The throttle-bound minimum duration of a wave, in closed form, apart from the enforcement.

A *wave* (:class:`WaveShape`) is the Graph work a client must do, per mailbox
(= per user): Outlook requests and their upload bytes, meeting updates sent
(messages and their recipients), Teams (onlineMeetings) requests and the online
meetings they create, plus Graph requests outside both. The wave starts when its
first request is admitted (t = 0) and ends when its last answer arrives.
Every request holds the server for ``latency_s`` (the simulator's fixed
latency; with a varying one, pass its minimum). A sub-request of ``$batch``
counts and is held like a single request.

Under the window semantics of :mod:`mmsd.sim.throttle` and
:mod:`mmsd.sim.sending` (sliding windows: an admission at ``s`` frees at
``s + W``), with ``L = latency_s``:

* **a stream of requests under count windows** ``(N_i, W_i)`` (concurrency
  ``c`` with latency ``L`` is the window ``(c, L)``): the sorted starts of any
  admitted schedule satisfy ``t_k >= t_{k-N_i} + W_i`` for every window, so the
  last of ``R`` requests starts at ``max{sum a_i W_i : sum a_i N_i <= R - 1}``
  or later (the greedy client, starting each request as soon as every window
  allows, meets it exactly). :func:`windows_term` solves it exactly for each
  pair of windows and adds ``L``. Streams: each mailbox's Outlook requests
  (concurrency, mailbox window, application window); each user's creations
  (Teams window, monthly cap, application window); the tenant's Teams
  requests (Teams window, application window); all requests (application).
* **a weighted budget** of ``C`` units per ``W`` over ``U`` units (mailbox
  upload bytes, recipients per sender per day): units started within any
  ``[jW, (j+1)W)`` share one window, so some unit starts at
  ``(ceil(U / C) - 1) W`` or later: ``(ceil(U / C) - 1) W + L``. Tight when
  bodies or recipient counts fill the budget exactly.

The minimum is the largest of these terms over every scope. It is exact when
the windows of one stream bind (up to two at once); when limits of different streams bind about
equally (say the mailbox window and its upload budget), the true minimum lies
between the largest term and their sum. Messages per
minute only delay deliveries, never the client: ``last_delivery_s`` reports
when the last update can be delivered, ``((m - 1) // N) W`` for ``m`` messages
of one sender, and does not enter the minimum.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, fields
from typing import Any

from mmsd.sim.limits import LimitsProfile

_JSON_NAMES = {
    "outlook_requests": "outlookRequests",
    "upload_bytes": "uploadBytes",
    "messages": "messages",
    "recipients": "recipients",
    "teams_requests": "teamsRequests",
    "online_meetings_created": "onlineMeetingsCreated",
}


@dataclass(frozen=True)
class MailboxLoad:
    """The work of a wave on one mailbox / user."""

    outlook_requests: int = 0  # events and messages requests, PATCHes included
    upload_bytes: int = 0  # PATCH/POST/PUT body bytes, summed
    messages: int = 0  # meeting updates sent from this mailbox
    recipients: int = 0  # recipients summed over those messages
    teams_requests: int = 0  # onlineMeetings requests, the creating ones included
    online_meetings_created: int = 0  # online meetings created for this user

    def __post_init__(self) -> None:
        for f in fields(self):
            value = getattr(self, f.name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 0:
                raise ValueError(f"{_JSON_NAMES[f.name]} must be a non-negative integer")

    def to_json(self) -> dict[str, int]:
        """The load with camelCase keys."""
        return {_JSON_NAMES[f.name]: getattr(self, f.name) for f in fields(self)}

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> MailboxLoad:
        """Parse camelCase keys; unknown keys or bad values raise ValueError."""
        names = {v: k for k, v in _JSON_NAMES.items()}
        unknown = sorted(set(data) - set(names))
        if unknown:
            raise ValueError(f"unknown mailbox load key(s): {', '.join(unknown)}")
        return cls(**{names[k]: v for k, v in data.items()})


@dataclass(frozen=True)
class WaveShape:
    """A wave's Graph work: per mailbox loads and requests tied to no mailbox."""

    mailboxes: Mapping[str, MailboxLoad] = field(default_factory=dict)
    other_requests: int = 0  # users, delta, ... (count toward the Graph overall budget)

    def __post_init__(self) -> None:
        if (
            isinstance(self.other_requests, bool)
            or not isinstance(self.other_requests, int)
            or self.other_requests < 0
        ):
            raise ValueError("otherRequests must be a non-negative integer")

    def to_json(self) -> dict[str, Any]:
        """``{"mailboxes": {id: load}, "otherRequests": n}``."""
        return {
            "mailboxes": {k: v.to_json() for k, v in self.mailboxes.items()},
            "otherRequests": self.other_requests,
        }

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> WaveShape:
        """Parse what :meth:`to_json` writes (the body of ``/_sim/bounds``)."""
        if not isinstance(data, Mapping):
            raise ValueError("a wave shape must be a JSON object")
        unknown = sorted(set(data) - {"mailboxes", "otherRequests"})
        if unknown:
            raise ValueError(f"unknown wave shape key(s): {', '.join(unknown)}")
        mailboxes = data.get("mailboxes", {})
        if not isinstance(mailboxes, Mapping) or not all(
            isinstance(v, Mapping) for v in mailboxes.values()
        ):
            raise ValueError("mailboxes must map mailbox ids to objects")
        return cls(
            {str(k): MailboxLoad.from_json(v) for k, v in mailboxes.items()},
            data.get("otherRequests", 0),
        )


@dataclass(frozen=True)
class WaveBound:
    """The minimum and where it comes from: every constraint's worst term, by name."""

    seconds: float
    binding: str  # the constraint giving the minimum ("" for an empty wave)
    scope: str  # its mailbox / user id, or "tenant"
    terms: Mapping[str, float]
    last_delivery_s: float

    def to_json(self) -> dict[str, Any]:
        """The bound as ``/_sim/bounds`` answers it."""
        return {
            "seconds": self.seconds,
            "binding": self.binding,
            "scope": self.scope,
            "terms": dict(self.terms),
            "lastDeliverySeconds": self.last_delivery_s,
        }


def _two_windows(last: int, first: tuple[int, float], second: tuple[int, float]) -> float:
    """``max{a w1 + b w2 : a n1 + b n2 <= last}``: the greedy start of unit ``last``."""
    (n1, w1), (n2, w2) = sorted((first, second))  # iterate over the larger budget

    def start(b: int) -> float:
        return b * w2 + ((last - b * n2) // n1) * w1

    most = last // n2
    if n2 % n1 == 0:  # start() is linear in b: an end is the max
        return max(start(0), start(most))
    return max(start(b) for b in range(most + 1))


def windows_term(units: int, windows: Sequence[tuple[int, float]], latency_s: float) -> float:
    """Least time for ``units`` requests of one stream under every ``(N, W)`` window at once.

    Exact for one or two windows (the greedy schedule), and a lower bound that
    takes the best pair for more. Concurrency ``c`` with latency ``L`` is the
    window ``(c, L)``.
    """
    if units <= 0:
        return 0.0
    last = units - 1
    best = max(((last // n) * w for n, w in windows), default=0.0)
    for i, first in enumerate(windows):
        for second in windows[i + 1 :]:
            best = max(best, _two_windows(last, first, second))
    return best + latency_s


def budget_term(units: int, per_window: int, window_s: float, latency_s: float) -> float:
    """Least time to start ``units`` units under ``per_window`` per ``window_s`` and answer the last."""
    if units <= 0:
        return 0.0
    return (math.ceil(units / per_window) - 1) * window_s + latency_s


def wave_bound(profile: LimitsProfile, wave: WaveShape, latency_s: float) -> WaveBound:
    """Every constraint's term for ``wave`` under ``profile`` and the largest of them."""
    if not latency_s >= 0:
        raise ValueError("latency_s must be >= 0")
    p = profile
    L = latency_s
    terms: dict[str, float] = {}
    best = (0.0, "", "")

    def consider(name: str, scope: str, seconds: float) -> None:
        nonlocal best
        terms[name] = max(terms.get(name, 0.0), seconds)
        if seconds > best[0]:
            best = (seconds, name, scope)

    app = (p.graph_requests, p.graph_window_s)
    teams_window = (p.teams_requests, p.teams_window_s)
    last_delivery = 0.0
    for mailbox_id, load in wave.mailboxes.items():
        consider(
            "mailboxRequests",
            mailbox_id,
            windows_term(
                load.outlook_requests,
                [(p.outlook_concurrency, L), (p.outlook_requests, p.outlook_window_s), app],
                L,
            ),
        )
        consider(
            "mailboxUpload",
            mailbox_id,
            budget_term(load.upload_bytes, p.outlook_upload_bytes, p.outlook_upload_window_s, L),
        )
        consider(
            "onlineMeetingsPerUser",
            mailbox_id,
            windows_term(
                load.online_meetings_created,
                [teams_window, (p.online_meetings_per_user, p.online_meetings_window_s), app],
                L,
            ),
        )
        consider(
            "sendRecipients",
            mailbox_id,
            budget_term(load.recipients, p.send_recipients, p.send_recipients_window_s, L),
        )
        if load.messages:
            last_delivery = max(
                last_delivery, ((load.messages - 1) // p.send_messages) * p.send_messages_window_s
            )
    teams = sum(load.teams_requests for load in wave.mailboxes.values())
    consider("teamsTenant", "tenant", windows_term(teams, [teams_window, app], L))
    total = teams + wave.other_requests + sum(m.outlook_requests for m in wave.mailboxes.values())
    consider("application", "tenant", windows_term(total, [app], L))
    seconds, binding, scope = best
    return WaveBound(seconds, binding, scope, terms, last_delivery)


def min_wave_seconds(profile: LimitsProfile, wave: WaveShape, latency_s: float) -> float:
    """The throttle-bound minimum time any client needs for ``wave`` (see the module docstring)."""
    return wave_bound(profile, wave, latency_s).seconds
