"""What the demo reads from the simulator: a snapshot of its state through ``/_sim/``.

The checks compare two snapshots (before the wave, after the daemon stopped), so
everything they judge comes from the simulator's own records and never from
mmsd's store. Reading goes through the HTTP control surface, not the simulator's
objects, so the same code works against a simulator in another process.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import aiohttp

from mmsd.clock import parse_rfc3339

JSON = dict[str, Any]


@dataclass(frozen=True)
class SimEventCopy:
    """One stored event in one mailbox, as ``GET /_sim/events/{mailbox}`` lists it."""

    mailbox: str
    copy: str  # "organizer" | "attendee" | "delegate"
    organizer_id: str | None
    patch_count: int
    data: JSON

    @property
    def id(self) -> str:
        """The event's Graph ID."""
        return str(self.data["id"])

    @property
    def body(self) -> str:
        """The invitation body as stored (HTML or text)."""
        return str((self.data.get("body") or {}).get("content") or "")


@dataclass(frozen=True)
class SimSnapshot:
    """The simulator's users, events, messages and online meetings at one instant."""

    now: datetime
    users: tuple[JSON, ...]  # GET /_sim/users order
    events: dict[str, tuple[SimEventCopy, ...]]  # mailbox id -> its events
    messages: dict[str, tuple[JSON, ...]]  # mailbox id -> delivered messages, oldest first
    online_meetings: dict[str, tuple[JSON, ...]]  # organizer id -> online meetings

    def user(self, user_id: str) -> JSON:
        """One user's ``/_sim/users`` view."""
        for user in self.users:
            if user["id"] == user_id:
                return user
        raise KeyError(user_id)

    def event(self, mailbox: str, event_id: str) -> SimEventCopy | None:
        """The event ``event_id`` of ``mailbox``, if it exists."""
        for ev in self.events.get(mailbox, ()):
            if ev.id == event_id:
                return ev
        return None


class SimReader:
    """Reads ``/_sim/`` of one simulator; ``root`` is ``http://127.0.0.1:P`` (no ``/v1.0``)."""

    def __init__(self, session: aiohttp.ClientSession, root: str) -> None:
        """Remember the session and the simulator's root URL."""
        self.session = session
        self.root = root.rstrip("/")

    @classmethod
    def for_graph_base(cls, session: aiohttp.ClientSession, graph_base_url: str) -> SimReader:
        """A reader for the simulator serving Graph at ``graph_base_url`` (``…/v1.0``)."""
        root = graph_base_url.rstrip("/")
        if root.endswith("/v1.0"):
            root = root[: -len("/v1.0")]
        return cls(session, root)

    async def get(self, path: str) -> Any:
        """``GET /_sim/{path}`` as JSON (raises on a non-2xx answer)."""
        async with self.session.get(f"{self.root}/_sim/{path}") as resp:
            resp.raise_for_status()
            return await resp.json()

    async def post(self, path: str, body: JSON | None = None) -> JSON:
        """``POST /_sim/{path}`` with a JSON body; the answer as JSON."""
        async with self.session.post(f"{self.root}/_sim/{path}", json=body or {}) as resp:
            resp.raise_for_status()
            data: JSON = await resp.json()
            return data

    async def counters(self) -> JSON:
        """``GET /_sim/counters``."""
        data: JSON = await self.get("counters")
        return data

    async def snapshot(self) -> SimSnapshot:
        """Everything the checks need, read at (about) one instant."""
        clock = await self.get("clock")
        users = tuple((await self.get("users"))["value"])

        async def one(user_id: str) -> tuple[str, Any, Any, Any]:
            events, messages, meetings = await asyncio.gather(
                self.get(f"events/{user_id}"),
                self.get(f"messages/{user_id}"),
                self.get(f"online-meetings/{user_id}"),
            )
            return user_id, events, messages, meetings

        rows = await asyncio.gather(*(one(str(u["id"])) for u in users))
        events: dict[str, tuple[SimEventCopy, ...]] = {}
        messages: dict[str, tuple[JSON, ...]] = {}
        online: dict[str, tuple[JSON, ...]] = {}
        for user_id, ev, msg, om in rows:
            events[user_id] = tuple(
                SimEventCopy(
                    mailbox=user_id,
                    copy=str(e["copy"]),
                    organizer_id=e.get("organizerId"),
                    patch_count=int(e["patchCount"]),
                    data=e["data"],
                )
                for e in ev["value"]
            )
            messages[user_id] = tuple(msg["value"])
            online[user_id] = tuple(om["value"])
        return SimSnapshot(
            now=parse_rfc3339(str(clock["now"])),
            users=users,
            events=events,
            messages=messages,
            online_meetings=online,
        )
