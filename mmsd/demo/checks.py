"""The demo's verdict: expectations written from SPEC sections 2 and 3, judged on the simulator alone.

Nothing here imports mmsd's rules, block engine or store: what *should* happen is
derived from the fired trigger types, the user kinds and the meetings as the
simulator holds them, and what *did* happen is read from two simulator snapshots
(before the wave and after the daemon stopped). A check passes or fails on those
alone, so a daemon that did nothing, or did too much, fails.

Default tenant switches are assumed (MMS on, automatic migration on, ACP
replacement off). Details printed never name a person, a subject or a body:
only counts, event IDs and problem labels.
"""

from __future__ import annotations

import enum
import html
import re
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from mmsd.clock import parse_rfc3339
from mmsd.demo.snapshot import SimEventCopy, SimSnapshot
from mmsd.demo.wave import FiredWave

JSON = dict[str, Any]

TEAMS_RULE = "_" * 80  # a Teams block begins and ends with one
SKYPE_RULE = "." * 137  # a Skype for Business block begins and ends with one
MAX_PEOPLE = 250  # attendees plus the organizer
GARBLE_CHARS = ("ï", "¿", "½", "\ufffd")
AUDIO_TYPES = frozenset(
    {
        "audioConferencingLicenseAssigned",
        "audioConferencingLicenseRemoved",
        "dialInConferencingEnabled",
        "dialInConferencingDisabled",
        "conferenceIdReset",
        "bridgeChanged",
        "bridgeNumberUnassigned",
        "acpProviderSwitchedToMicrosoft",
    }
)
UPGRADE_MODES = frozenset({"TeamsOnly", "SfBWithTeamsCollabAndMeetings"})
_TAG = re.compile(r"<[^>]*>")
_SHOWN = 4  # problem examples listed in a detail


class Outcome(enum.StrEnum):
    """What a user's triggers should lead to, by SPEC section 2 with default switches."""

    ALL_TO_CURRENT = "allToCurrent"
    SFB_TO_TEAMS = "sfbToTeams"
    FAILS = "fails"  # runnable, but the mailbox is on Exchange on-premises: nothing PATCHed
    NOTHING = "nothing"

    @property
    def migrates(self) -> bool:
        """True when meetings are to be updated."""
        return self in (Outcome.ALL_TO_CURRENT, Outcome.SFB_TO_TEAMS)


@dataclass(frozen=True)
class Check:
    """One line of the verdict."""

    name: str
    ok: bool
    detail: str

    def to_json(self) -> JSON:
        """``{"name", "ok", "detail"}`` as ``mmsd demo --json`` prints it."""
        return {"name": self.name, "ok": self.ok, "detail": self.detail}


def expected_outcome(user: JSON, bodies: Sequence[JSON]) -> Outcome:
    """SPEC section 2, restated: what the triggers fired for ``user`` (before the wave) lead to."""
    provider = str((user.get("conferencing") or {}).get("audioConferencingProvider", ""))
    outcome = Outcome.NOTHING
    for body in bodies:
        kind = body.get("type")
        if kind == "teamsUpgradePolicyGranted":
            if body.get("scope") == "user" and body.get("mode") in UPGRADE_MODES:
                if outcome is Outcome.NOTHING:
                    outcome = Outcome.SFB_TO_TEAMS
        elif kind == "userMovedToOnline":
            outcome = Outcome.ALL_TO_CURRENT
        elif kind in AUDIO_TYPES:
            if kind == "audioConferencingLicenseAssigned" and provider == "thirdParty":
                continue  # the ACP rule: automaticallyReplaceAcpProvider is off
            outcome = Outcome.ALL_TO_CURRENT
    if outcome.migrates and user.get("mailbox") != "exchangeOnline":
        return Outcome.FAILS
    return outcome


def block_rules(body: str) -> tuple[int, int]:
    """How many Teams and Skype delimiter lines a body holds."""
    return body.count(TEAMS_RULE), body.count(SKYPE_RULE)


def _start(data: JSON) -> datetime:
    value = data["start"]
    return parse_rfc3339(str(value["dateTime"]).split(".")[0] + "Z")


def _series_goes_on(data: JSON, now: datetime) -> bool:
    from mmsd.sim.recurrence import occurrence_starts

    return any(start > now for start in occurrence_starts(data))


def skip_reason(event: SimEventCopy, now: datetime, sfb_only: bool) -> str | None:
    """Why an event must not be PATCHed in a migration of its mailbox's user (None: eligible)."""
    data = event.data
    if event.copy != "organizer":
        return f"{event.copy}Copy"
    kind = data.get("type", "singleInstance")
    if kind == "seriesMaster":
        if not _series_goes_on(data, now):
            return "past"
    elif kind in ("singleInstance", "exception"):
        if _start(data) <= now:
            return "past"
    else:
        return "occurrence"
    if not data.get("isOnlineMeeting"):
        return "notOnlineMeeting"
    teams, skype = block_rules(event.body)
    if teams == 0 and skype == 0:
        return "noBlock"
    if (teams, skype) not in ((2, 0), (0, 2)):
        return "damagedBlock" if teams % 2 or skype % 2 else "ambiguousBlock"
    if len(data.get("attendees") or []) + 1 > MAX_PEOPLE:
        return "tooManyAttendees"
    if sfb_only and data.get("onlineMeetingProvider") != "skypeForBusiness":
        return "sourceTypeFiltered"
    return None


@dataclass(frozen=True)
class Expectations:
    """What the wave should do: per-user outcomes and the events to be PATCHed exactly once."""

    outcomes: dict[str, Outcome]
    eligible: dict[tuple[str, str], Outcome]  # (mailbox, event id) -> the owner's outcome
    untouched: dict[tuple[str, str], str]  # (mailbox, event id) -> why it stays as it is


def expectations(before: SimSnapshot, wave: FiredWave) -> Expectations:
    """Every event of every mailbox, sorted into must-PATCH-once and must-stay-untouched."""
    outcomes = {
        str(u["id"]): expected_outcome(u, wave.bodies_for(str(u["id"]))) for u in before.users
    }
    eligible: dict[tuple[str, str], Outcome] = {}
    untouched: dict[tuple[str, str], str] = {}
    for mailbox, events in before.events.items():
        outcome = outcomes.get(mailbox, Outcome.NOTHING)
        for ev in events:
            key = (mailbox, ev.id)
            if not outcome.migrates:
                untouched[key] = "userNotMigrating" if outcome is Outcome.NOTHING else "onPremises"
                continue
            reason = skip_reason(ev, before.now, outcome is Outcome.SFB_TO_TEAMS)
            if reason is None:
                eligible[key] = outcome
            else:
                untouched[key] = reason
    return Expectations(outcomes, eligible, untouched)


# --- helpers on bodies --------------------------------------------------------------


def _contains(body: str, value: str) -> bool:
    return value in body or html.escape(value, quote=True) in body


def _conference_id_re(digits: str) -> re.Pattern[str]:
    sep = r"(?:\s|&nbsp;|\u00a0)?"
    return re.compile(r"(?<!\d)" + sep.join(re.escape(d) for d in digits) + r"(?!\d)")


def _has_number(body: str, number: str) -> bool:
    digits = re.sub(r"[^0-9]", "", number)
    return _contains(body, number) or (len(digits) >= 7 and digits in body)


def _old_numbers(ev: SimEventCopy, profile: JSON) -> set[str]:
    om = ev.data.get("onlineMeeting") or {}
    numbers = set(profile.get("tollNumbers") or []) | set(profile.get("tollFreeNumbers") or [])
    numbers |= {str(p.get("number")) for p in om.get("phones") or [] if p.get("number")}
    numbers |= set(om.get("tollFreeNumbers") or [])
    if om.get("tollNumber"):
        numbers.add(str(om["tollNumber"]))
    return numbers


def dial_in_expected(user: JSON) -> bool:
    """Whether Graph now shows dial-in for the user's meetings (the simulator's own rule)."""
    conf = user.get("conferencing") or {}
    return bool(
        user.get("audioConferencing")
        and conf.get("dialInEnabled")
        and conf.get("audioConferencingProvider") == "microsoft"
        and conf.get("conferenceId")
    )


def _block_span(body: str) -> tuple[int, int]:
    teams, _ = block_rules(body)
    rule = TEAMS_RULE if teams else SKYPE_RULE
    first = body.find(rule)
    last = body.rfind(rule) + len(rule)
    return first, last


def _visible(fragment: str) -> str:
    return _TAG.sub("", fragment).strip()


def text_around_kept(old: str, new: str) -> bool:
    """True when every visible character outside the old block is unchanged, byte for byte.

    The changed region of ``old`` (what lies between the common prefix and the
    common suffix of ``old`` and ``new``) may reach beyond the block's delimiter
    lines only through markup (tags, whitespace), e.g. the ``<div>`` around them.
    """
    first, last = _block_span(old)
    limit = min(len(old), len(new))
    p = 0
    while p < limit and old[p] == new[p]:
        p += 1
    s = 0
    while s < limit - p and old[len(old) - 1 - s] == new[len(new) - 1 - s]:
        s += 1
    open_tag = old.rfind("<", 0, p)
    if open_tag > old.rfind(">", 0, p):
        p = open_tag  # the prefix ends inside a tag: the whole tag counts as changed
    tail = len(old) - s
    close = old.find(">", tail)
    if close != -1 and (old.find("<", tail) == -1 or close < old.find("<", tail)):
        tail = close + 1
    head_gap = old[p:first] if p < first else ""
    tail_gap = old[last:tail] if tail > last else ""
    return not _visible(head_gap) and not _visible(tail_gap)


# --- the checks ---------------------------------------------------------------------


def _examples(items: Iterable[str]) -> str:
    listed = list(items)
    shown = ", ".join(listed[:_SHOWN])
    more = f" (+{len(listed) - _SHOWN} more)" if len(listed) > _SHOWN else ""
    return shown + more


def _delta(before: SimSnapshot, after: SimSnapshot, key: tuple[str, str]) -> int:
    old = before.event(*key)
    new = after.event(*key)
    return (new.patch_count if new else 0) - (old.patch_count if old else 0)


def already_current(
    before: SimSnapshot, after: SimSnapshot, exp: Expectations
) -> set[tuple[str, str]]:
    """Eligible meetings whose block already carried the current details before the wave.

    Updating them changes nothing for attendees, so a daemon may leave them alone
    (no PATCH, no update mail) or PATCH them once; never more.
    """
    out: set[tuple[str, str]] = set()
    for (mailbox, event_id), outcome in exp.eligible.items():
        old = before.event(mailbox, event_id)
        if old is None or outcome is Outcome.SFB_TO_TEAMS:
            continue
        user_before, user_after = before.user(mailbox), after.user(mailbox)
        if not _details_problems(old, old, outcome, user_before, user_after, set()):
            out.add((mailbox, event_id))
    return out


def check_patched_once(
    before: SimSnapshot, after: SimSnapshot, exp: Expectations, current: set[tuple[str, str]]
) -> Check:
    """Every eligible future meeting of a migrating user got exactly one PATCH.

    A meeting already current before the wave may also have none (see :func:`already_current`).
    """
    deltas = {key: _delta(before, after, key) for key in exp.eligible}
    bad = [
        f"{key[1][-12:]}x{n}"
        for key, n in deltas.items()
        if n > 1 or n < 0 or (n == 0 and key not in current)
    ]
    once = sum(1 for n in deltas.values() if n == 1)
    left = sum(1 for key, n in deltas.items() if n == 0 and key in current)
    users = len({mailbox for mailbox, _ in exp.eligible})
    ok = not bad
    detail = f"{once}/{len(exp.eligible)} meetings of {users} users PATCHed exactly once"
    if left:
        detail += f", {left} already current and rightly left alone"
    if not ok:
        never = sum(1 for key, n in deltas.items() if n == 0 and key not in current)
        more = sum(1 for n in deltas.values() if n > 1)
        detail += f"; {never} never, {more} more than once: {_examples(bad)}"
    return Check("eligible meetings updated once", ok, detail)


def check_nothing_else(before: SimSnapshot, after: SimSnapshot, exp: Expectations) -> Check:
    """No other event in any mailbox was PATCHed (and no event appeared or vanished)."""
    touched = Counter(reason for key, reason in exp.untouched.items() if _delta(before, after, key))
    before_ids = {(m, e.id) for m, evs in before.events.items() for e in evs}
    after_ids = {(m, e.id) for m, evs in after.events.items() for e in evs}
    created, removed = len(after_ids - before_ids), len(before_ids - after_ids)
    ok = not touched and not created and not removed
    by_reason = Counter(exp.untouched.values())
    detail = f"{len(exp.untouched)} events must stay untouched ({_examples(f'{r} {n}' for r, n in by_reason.most_common())})"
    if touched:
        detail += f"; PATCHed anyway: {_examples(f'{r} {n}' for r, n in touched.most_common())}"
    if created or removed:
        detail += f"; {created} events appeared, {removed} vanished"
    return Check("nothing else updated", ok, detail)


def _details_problems(
    old: SimEventCopy,
    new: SimEventCopy,
    outcome: Outcome,
    user_before: JSON,
    user_after: JSON,
    new_links: set[str],
) -> list[str]:
    body = new.body
    problems: list[str] = []
    om = old.data.get("onlineMeeting") or {}
    old_link = str(om.get("joinUrl") or old.data.get("onlineMeetingUrl") or "")
    conf_after = user_after.get("conferencing") or {}
    conf_before = user_before.get("conferencing") or {}
    teams, _ = block_rules(old.body)
    if outcome is Outcome.SFB_TO_TEAMS:
        found = [link for link in new_links if _contains(body, link)]
        if len(found) != 1:
            problems.append("no new Teams link" if not found else "several new Teams links")
        if old_link and _contains(body, old_link):
            problems.append("old Skype link kept")
    elif teams:
        if not old_link or not _contains(body, old_link):
            problems.append("Teams join link lost")
    elif not (old_link and _contains(body, old_link)) and not _contains(
        body, str(conf_after.get("meetUrlBase", "")) + "/"
    ):
        problems.append("Skype join link lost")
    old_ids = {str(x) for x in (om.get("conferenceId"), conf_before.get("conferenceId")) if x}
    if dial_in_expected(user_after):
        current_id = str(conf_after.get("conferenceId"))
        if not _conference_id_re(current_id).search(body):
            problems.append("conference ID missing")
        numbers = list(conf_after.get("tollNumbers") or []) + list(
            conf_after.get("tollFreeNumbers") or []
        )
        if not all(_has_number(body, n) for n in numbers):
            problems.append("dial-in number missing")
        stale_ids = old_ids - {current_id}
        stale_numbers = _old_numbers(old, conf_before) - set(numbers)
    else:
        stale_ids = old_ids
        stale_numbers = _old_numbers(old, conf_before)
    # The simulator's current dial-in URL may itself carry an older ID (``?id=``).
    rest = body
    dial_in_url = str(conf_after.get("dialInUrl") or "")
    if dial_in_url:
        rest = rest.replace(dial_in_url, "").replace(html.escape(dial_in_url, quote=True), "")
    if any(_conference_id_re(i).search(rest) for i in stale_ids):
        problems.append("old conference ID kept")
    if any(_has_number(rest, n) for n in stale_numbers):
        problems.append("old dial-in number kept")
    return problems


def _new_links(before: SimSnapshot, after: SimSnapshot, user_id: str) -> set[str]:
    old = {str(m.get("joinWebUrl")) for m in before.online_meetings.get(user_id, ())}
    return {
        str(m["joinWebUrl"])
        for m in after.online_meetings.get(user_id, ())
        if m.get("externalId") and m.get("joinWebUrl") and str(m["joinWebUrl"]) not in old
    }


def check_details(
    before: SimSnapshot, after: SimSnapshot, exp: Expectations, current: set[tuple[str, str]]
) -> Check:
    """Each eligible meeting now carries the user's current join link, conference ID and numbers."""
    problems: Counter[str] = Counter()
    examples: list[str] = []
    used: dict[str, set[str]] = {}
    checked = 0
    links_cache: dict[str, set[str]] = {}
    for (mailbox, event_id), outcome in exp.eligible.items():
        old, new = before.event(mailbox, event_id), after.event(mailbox, event_id)
        if old is None or new is None or new.body == old.body:
            if (mailbox, event_id) in current:
                checked += 1
                continue
            problems["body unchanged"] += 1
            examples.append(f"{event_id[-12:]}: body unchanged")
            continue
        checked += 1
        if mailbox not in links_cache:
            links_cache[mailbox] = _new_links(before, after, mailbox)
        links = links_cache[mailbox]
        found = _details_problems(
            old, new, outcome, before.user(mailbox), after.user(mailbox), links
        )
        series = str(old.data.get("seriesMasterId") or event_id)  # exceptions share their series'
        for link in links:
            if _contains(new.body, link):
                used.setdefault(link, set()).add(series)
        for p in found:
            problems[p] += 1
        if found:
            examples.append(f"{event_id[-12:]}: {found[0]}")
    shared = sum(1 for groups in used.values() if len(groups) > 1)
    if shared:
        problems["one new Teams meeting in several meetings"] += shared
    ok = not problems
    detail = f"{checked}/{len(exp.eligible)} meetings match the simulator's records"
    if not ok:
        detail += "; " + _examples(f"{p} {n}" for p, n in problems.most_common())
        if examples:
            detail += "; e.g. " + _examples(examples)
    return Check("meetings carry the current details", ok, detail)


def check_text_kept(before: SimSnapshot, after: SimSnapshot, exp: Expectations) -> Check:
    """Outside the block, every visible character and the subject are byte-for-byte unchanged."""
    bad: list[str] = []
    checked = 0
    for mailbox, event_id in exp.eligible:
        old, new = before.event(mailbox, event_id), after.event(mailbox, event_id)
        if old is None or new is None or new.body == old.body:
            continue
        checked += 1
        same_subject = old.data.get("subject") == new.data.get("subject")
        same_type = (old.data.get("body") or {}).get("contentType") == (
            new.data.get("body") or {}
        ).get("contentType")
        if not (same_subject and same_type and text_around_kept(old.body, new.body)):
            bad.append(event_id[-12:])
    ok = not bad
    detail = (
        f"{checked - len(bad)}/{checked} updated bodies keep the organizer's text around the block"
    )
    if bad:
        detail += f"; changed outside the block: {_examples(bad)}"
    return Check("organizer text unchanged", ok, detail)


def _recipients(before: SimSnapshot, after: SimSnapshot, sender: str, data: JSON) -> list[str]:
    by_address = {str(u["userPrincipalName"]).lower(): str(u["id"]) for u in before.users}
    seen: set[str] = set()
    out: list[str] = []
    for att in data.get("attendees") or []:
        address = str(((att or {}).get("emailAddress") or {}).get("address") or "").lower()
        if not address or address in seen:
            continue
        seen.add(address)
        uid = by_address.get(address)
        if uid is None or uid == sender:
            continue
        if after.user(uid).get("mailbox") == "exchangeOnline":
            out.append(uid)
    return out


def expected_updates(before: SimSnapshot, after: SimSnapshot, exp: Expectations) -> Counter[str]:
    """Meeting updates each mailbox should receive: one per PATCH of a meeting it attends.

    A PATCH of a series master also updates the series' exceptions, one message
    each, as Exchange does.
    """
    out: Counter[str] = Counter()
    for mailbox, event_id in exp.eligible:
        ev = before.event(mailbox, event_id)
        if ev is None or _delta(before, after, (mailbox, event_id)) == 0:
            continue  # an already-current meeting left alone sends nothing
        out.update(_recipients(before, after, mailbox, ev.data))
        if ev.data.get("type") == "seriesMaster":
            for other in before.events.get(mailbox, ()):
                if (
                    other.data.get("seriesMasterId") == event_id
                    and other.data.get("type") == "exception"
                ):
                    out.update(_recipients(before, after, mailbox, other.data))
    return out


def _meeting_messages(messages: Iterable[JSON]) -> int:
    return sum(
        1 for m in messages if m.get("@odata.type") == "#microsoft.graph.eventMessageRequest"
    )


def check_attendee_updates(before: SimSnapshot, after: SimSnapshot, exp: Expectations) -> Check:
    """Every in-tenant attendee got exactly one update per PATCH of a meeting they attend."""
    want = expected_updates(before, after, exp)
    wrong: list[str] = []
    total = 0
    for user in after.users:
        uid = str(user["id"])
        got = _meeting_messages(after.messages.get(uid, ())) - _meeting_messages(
            before.messages.get(uid, ())
        )
        total += got
        if got != want.get(uid, 0):
            wrong.append(f"{uid[:8]} got {got} want {want.get(uid, 0)}")
    ok = not wrong
    detail = f"{total} meeting updates delivered, {sum(want.values())} expected, in {len(after.users)} mailboxes"
    if wrong:
        detail += f"; {len(wrong)} mailboxes off: {_examples(wrong)}"
    return Check("one attendee update per PATCH", ok, detail)


def check_no_garbling(before: SimSnapshot, after: SimSnapshot) -> Check:
    """No body in any mailbox gained ``ï ¿ ½ �`` (Unicode mangled on the way)."""
    bad: list[str] = []
    changed = 0
    for mailbox, events in after.events.items():
        for new in events:
            old = before.event(mailbox, new.id)
            old_body = old.body if old else ""
            if old is not None and old_body == new.body:
                continue
            changed += 1
            if any(c in new.body and c not in old_body for c in GARBLE_CHARS):
                bad.append(new.id[-12:])
    ok = not bad
    detail = f"{changed} changed bodies (organizer and attendee copies) free of ï ¿ ½ �"
    if bad:
        detail = f"{len(bad)}/{changed} changed bodies gained ï ¿ ½ �: {_examples(bad)}"
    return Check("no Unicode garbling", ok, detail)


def run_checks(before: SimSnapshot, after: SimSnapshot, wave: FiredWave) -> list[Check]:
    """The whole verdict, from the two snapshots and the wave alone."""
    exp = expectations(before, wave)
    current = already_current(before, after, exp)
    return [
        check_patched_once(before, after, exp, current),
        check_details(before, after, exp, current),
        check_nothing_else(before, after, exp),
        check_text_kept(before, after, exp),
        check_attendee_updates(before, after, exp),
        check_no_garbling(before, after),
    ]
