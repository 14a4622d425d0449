"""A reference migration done by hand through the simulator's Graph, for the demo checker's tests.

It applies exactly what the checks expect (one PATCH per eligible meeting, the
block between its delimiter lines replaced by a block rendered with the
simulator's own templates and current details), so the checks must pass on it;
tests then break it on purpose, one way at a time.
"""

from __future__ import annotations

from typing import Any

import aiohttp

from mmsd.demo.checks import (
    SKYPE_RULE,
    TEAMS_RULE,
    Outcome,
    block_rules,
    dial_in_expected,
    expectations,
)
from mmsd.demo.snapshot import SimSnapshot
from mmsd.demo.wave import FiredWave
from mmsd.sim.invites import DialIn, InviteDetails, InviteKind, render_invite

JSON = dict[str, Any]


def new_block(kind: InviteKind, fmt: str, join_url: str, user: JSON) -> str:
    """A block in the simulator's own format with the user's current dial-in."""
    conf = user["conferencing"]
    dial = dial_in_expected(user)
    details = InviteDetails(
        join_url=join_url,
        conference_id=conf["conferenceId"] if dial else None,
        dial_ins=tuple(DialIn(n, "Somewhere") for n in conf["tollNumbers"])
        + tuple(DialIn(n, "Somewhere", toll_free=True) for n in conf["tollFreeNumbers"])
        if dial
        else (),
        dial_in_url=conf["dialInUrl"] if dial else None,
    )
    return render_invite(kind, fmt, "en", details)


def replace_block(body: str, block: str) -> str:
    """``body`` with everything from its first to its last delimiter line replaced by ``block``."""
    teams, _ = block_rules(body)
    rule = TEAMS_RULE if teams else SKYPE_RULE
    first, last = body.find(rule), body.rfind(rule) + len(rule)
    return body[:first] + block + body[last:]


async def patch_event(
    http: aiohttp.ClientSession, graph: str, mailbox: str, event_id: str, body: JSON
) -> None:
    """``PATCH /users/{mailbox}/events/{id}`` (auth is off in these tests)."""
    async with http.patch(f"{graph}/users/{mailbox}/events/{event_id}", json=body) as resp:
        assert resp.status == 200, await resp.text()


async def hand_migrate(
    http: aiohttp.ClientSession, graph: str, before: SimSnapshot, wave: FiredWave
) -> list[tuple[str, str]]:
    """Migrate every eligible meeting once; returns the (mailbox, event id) pairs PATCHed."""
    exp = expectations(before, wave)
    users: dict[str, JSON] = {}
    done = []
    for (mailbox, event_id), outcome in sorted(exp.eligible.items()):
        if mailbox not in users:
            async with http.get(graph.replace("/v1.0", f"/_sim/users/{mailbox}")) as resp:
                users[mailbox] = await resp.json()
        user = users[mailbox]
        ev = before.event(mailbox, event_id)
        assert ev is not None
        fmt = ev.data["body"]["contentType"]
        teams, _ = block_rules(ev.body)
        old_link = (ev.data.get("onlineMeeting") or {}).get("joinUrl") or ""
        if outcome is Outcome.SFB_TO_TEAMS:
            async with http.post(
                f"{graph}/users/{mailbox}/onlineMeetings/createOrGet",
                json={"externalId": f"hand-{event_id}", "subject": "x"},
            ) as resp:
                assert resp.status in (200, 201), await resp.text()
                link = (await resp.json())["joinWebUrl"]
            block = new_block(InviteKind.TEAMS_2023, fmt, link, user)
        elif teams:
            block = new_block(InviteKind.TEAMS_CLASSIC, fmt, old_link, user)
        else:
            block = new_block(InviteKind.SKYPE, fmt, old_link, user)
        content = replace_block(ev.body, block)
        await patch_event(
            http, graph, mailbox, event_id, {"body": {"contentType": fmt, "content": content}}
        )
        done.append((mailbox, event_id))
    return done
