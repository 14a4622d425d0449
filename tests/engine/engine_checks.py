"""Checks computed from the simulator's state: PATCH counts and attendee updates per mailbox."""

from __future__ import annotations

from collections import Counter
from typing import Any

from engine_testkit import TENANT, Harness

from mmsd.domain.model import MeetingOutcome, Trigger
from mmsd.domain.triggers import parse_trigger


def trigger(h: Harness, body: dict[str, Any]) -> Trigger:
    """A parsed trigger received now (by the simulator's clock)."""
    parsed = parse_trigger(body, tenant=TENANT, received_at=h.sim.clock.now())
    assert isinstance(parsed, Trigger), parsed
    return parsed


async def expected_updates(h: Harness, organizer: str, event_ids: set[str]) -> Counter[str]:
    """Attendee mailboxes and how many updates PATCHing ``event_ids`` once each delivers."""
    users = {u["userPrincipalName"].lower(): u for u in await h.users()}
    stored = {e["data"]["id"]: e["data"] for e in (await h.get(f"/events/{organizer}"))["value"]}
    expected: Counter[str] = Counter()

    def add(event: dict[str, Any]) -> None:
        seen: set[str] = set()
        for attendee in event.get("attendees") or []:
            address = attendee["emailAddress"]["address"].lower()
            user = users.get(address)
            if address in seen or user is None or user["id"] == organizer:
                continue
            seen.add(address)
            if user["mailbox"] == "exchangeOnline":
                expected[user["id"]] += 1

    for event_id in event_ids:
        event = stored[event_id]
        add(event)
        if event.get("type") == "seriesMaster":
            for other in stored.values():
                if other.get("seriesMasterId") == event_id and other.get("type") == "exception":
                    add(other)
    return expected


async def updated_events(h: Harness, user_id: str) -> set[str]:
    """Events the store records as updated for the user (all migrations)."""
    assert h.store is not None
    return {
        t.event_id
        for t in await h.store.history(TENANT, user_id)
        if t.outcome is MeetingOutcome.UPDATED
    }


def message_delta(before: dict[str, Any], after: dict[str, Any]) -> Counter[str]:
    """Messages delivered per mailbox between two counter snapshots."""
    delta: Counter[str] = Counter(after["messagesByMailbox"])
    delta.subtract(Counter(before["messagesByMailbox"]))
    return +delta


def patch_delta(before: dict[str, Any], after: dict[str, Any]) -> Counter[str]:
    """PATCHes per event between two counter snapshots."""
    delta: Counter[str] = Counter(after["patchesByEvent"])
    delta.subtract(Counter(before["patchesByEvent"]))
    return +delta


async def assert_exactly_once(
    h: Harness, users: list[str], before: dict[str, Any], after: dict[str, Any]
) -> None:
    """Every event the store records as updated was PATCHed once; attendees got what those send."""
    patches = patch_delta(before, after)
    expected_messages: Counter[str] = Counter()
    all_updated: set[str] = set()
    for user in users:
        updated = await updated_events(h, user)
        all_updated |= updated
        expected_messages.update(await expected_updates(h, user, updated))
    assert set(patches) == all_updated
    assert set(patches.values()) == {1}, "an event was PATCHed more than once"
    assert message_delta(before, after) == +expected_messages
