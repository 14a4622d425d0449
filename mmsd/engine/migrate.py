"""One attempt at one user's migration (SPEC section 3), exactly once per meeting.

:class:`MigrationRunner` runs an ``InProgress`` migration from the store to its
next state: ``Succeeded``, ``Failed`` (at once for an on-premises mailbox, or
when every attempt is spent), back to ``Pending`` for a retry (``retryCount``
+ 1) or for the sending quota (no attempt spent), or released to ``Pending``
when the engine stops (no attempt spent).

Exactly once, per meeting:

1. Unresolved intents of an earlier attempt (a crash, a lost answer) are read
   back first: the event carries the new block (recognised by the digest
   stored with the intent) -> ``mark_patched``; else ``clear_intent`` and the
   meeting is done again like any other.
2. ``record_intents`` commits every intent of a PATCH batch (one transaction)
   before the batch leaves; the store refuses an intent for a meeting whose
   PATCH is confirmed, so it is never sent twice.
3. A 2xx -> ``mark_patched_many`` (one transaction for the batch's successes). ``OutcomeUnknown`` -> ``mark_unknown``, read back,
   then as in 1. A 412 (the organizer edited the event) -> ``clear_intent``,
   re-read, redo the replacement on the new body (the edit outside the block
   survives), a new intent, PATCH with the new ETag.

If-Match is not relied on alone (Graph does not document it for events): right
before each PATCH batch the chunk's ``changeKey`` values are read again in one
``$batch`` (a listing page of ``id`` and ``changeKey``, exceptions by ID); an event that changed since it was read is redone on its new body,
as after a 412. After Skype for Business -> Teams, each such meeting's record
(``reason``: :data:`JOIN_BUTTON_NOTE`) and the Succeeded status record's
``lastMessage`` note that Outlook's Join button keeps the old link.

The hot path (about 1 ms of daemon CPU per PATCHed meeting): Graph reads go in
``$batch`` requests of up to 20 wherever there are several — the ``/instances``
of the series masters, the future exceptions, the online-meeting lookups by join
URL (once per distinct URL and migration: a series and its exceptions share
one), read-backs after lost answers and 412s — and the events are listed in
pages of :data:`LIST_PAGE_SIZE`. The user and the listing are fetched at once.
Meetings then go through a pipeline of chunks of ``patch_batch_size``: while a
chunk is PATCHed, the lookups of the next one are already in flight, so the
first attendee update leaves as soon as the first chunk is planned.

PATCHes of one mailbox go out in ``$batch`` requests of up to 20 (the client
paces the items per mailbox); every intent of a batch commits before it leaves.
The store is written once per chunk, not once per meeting: the chunk's skips,
its intents and its confirmations each go in one transaction.
Before a PATCH, its recipients are reserved in the organizer's daily sending
quota; when the day is spent the migration waits, ``Pending``, until the quota
allows more.

Gone meetings: a meeting whose transaction is ``failed`` (or left ``pending``)
from an earlier attempt and that is no longer among the user's future meetings
in a later attempt (it started, ended or was deleted) is no longer eligible: its
transaction becomes ``skipped`` with reason ``meetingGone``
(:data:`MEETING_GONE`). The user's final state is decided over the meetings of
the latest listing only, so a meeting that went away never keeps the user
retrying into ``Failed``.

Logs carry the tenant, correlation ID, user object ID and event ID only.
"""

from __future__ import annotations

import asyncio
import enum
import logging
import weakref
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from typing import Any
from urllib.parse import quote

from mmsd.clock import format_rfc3339
from mmsd.domain.blocks import (
    BlockKind,
    ContentType,
    FoundBlock,
    MeetingDetails,
    render_block,
    replace_found,
)
from mmsd.domain.model import (
    ConferencingProfile,
    MeetingOutcome,
    MeetingTransaction,
    MigrationState,
    SkipReason,
    SourceMeetingType,
    StatusRecord,
    TargetMeetingType,
)
from mmsd.engine.api import EngineObserver
from mmsd.engine.classify import (
    EVENT_FIELDS,
    Eligible,
    attendee_addresses,
    body_of,
    classify,
    is_future_single,
    needs_instances,
    parse_graph_time,
    series_window,
)
from mmsd.engine.details import (
    ONLINE_MEETING_FIELDS,
    block_digest,
    body_carries,
    digest_content_type,
    external_id,
    skype_details,
    teams_details,
    teams_details_from_block,
)
from mmsd.engine.settings import ON_PREMISES_MESSAGE, EngineSettings
from mmsd.graph import (
    BatchItem,
    BatchResult,
    GraphClient,
    GraphError,
    MailboxNotEnabled,
    NotFound,
    OutcomeUnknown,
    PreconditionFailed,
    QuotaExhausted,
    SendingPacer,
    TransportError,
)
from mmsd.store import Store
from mmsd.store.store import PatchedMeeting, PatchIntent

log = logging.getLogger(__name__)

JSON = dict[str, Any]
INSTANCE_FIELDS = ("id", "type", "start", "seriesMasterId")

LIST_PAGE_SIZE = 250
"""Events a listing page asks for (``Prefer: odata.maxpagesize``): most users fit in one."""

INSTANCES_PAGE_SIZE = 500
"""Occurrences an ``/instances`` page asks for: a year of a daily series in one answer."""

BATCH_SIZE = 20
"""Graph's maximum of requests in one ``$batch``."""

MEETING_GONE = str(SkipReason.MEETING_GONE)
"""Skip reason of a meeting that failed earlier and is no longer among the user's future meetings."""

JOIN_BUTTON_NOTE = (
    "joinButtonKeepsOldLink: the invitation carries the new Teams link; Outlook's Join"
    " button keeps the Skype for Business one (Graph cannot change onlineMeeting)"
)
"""Recorded (``reason``) with each meeting updated from Skype for Business to Teams (SPEC 3.5)."""

HAND_EDIT_NOTE = (
    "handEditedBlockReplaced: the old online-meeting block had been edited by hand;"
    " the edit was replaced with the new block"
)
"""Recorded (``reason``) with a meeting whose old block carried hand edits (issue 3)."""

CHANGE_KEY_OPERATION = "get_event"
"""The operation (metrics label) of the changeKey re-read before each PATCH batch."""

_RESTORED_SENDERS: weakref.WeakSet[SendingPacer] = weakref.WeakSet()
"""Sending pacers already loaded from the store: each is restored once in its life."""


class RunEnd(enum.StrEnum):
    """Where one attempt left the migration."""

    SUCCEEDED = "Succeeded"
    FAILED = "Failed"
    RETRY = "retry"  # Pending, retryCount + 1
    QUOTA_WAIT = "quotaWait"  # Pending, waiting for the sending quota
    RELEASED = "released"  # Pending again at once (shutdown)
    NOT_RUNNABLE = "notRunnable"  # the record was not InProgress: nothing done


@dataclass(frozen=True)
class RunResult:
    """The end of an attempt and, when Pending again, when it may run next."""

    end: RunEnd
    wake_at: datetime | None = None


class _Stop(Exception):
    """Shutdown was requested: release the migration at the next checkpoint."""


@dataclass
class _Plan:
    """One meeting ready to PATCH: the new body and what recognises it."""

    event_id: str
    subject: str | None
    start: datetime | None
    content_type: ContentType
    new_block: str
    digest: str
    new_body: str
    etag: str | None
    recipients: int
    old_join_url: str | None
    new_join_url: str | None
    conflicts: int = 0
    change_key: str | None = None  # the event's changeKey when it was read
    event_type: str | None = None  # singleInstance, seriesMaster or exception
    note: str | None = None  # recorded with the update (the Join button note)


@dataclass
class Listed:
    """A listed meeting and the recipients one PATCH of it sends (a master: its exceptions too)."""

    event: JSON
    recipients: int


@dataclass
class _Context:
    record: StatusRecord
    addresses: frozenset[str]
    profile: ConferencingProfile | None
    lookups: _TeamsLookups
    created: dict[str, JSON] = field(default_factory=dict)  # createOrGet answers by externalId
    quota_until: datetime | None = None

    @property
    def cid(self) -> str:
        return self.record.correlation_id

    @property
    def user(self) -> str:
        return self.record.user_id


def _seg(value: str) -> str:
    return quote(value, safe="@=")  # as the Graph client quotes path segments


def _query(params: dict[str, str]) -> str:
    """A query string for a ``$batch`` item: ``:`` and ``/`` quoted too (no ``://`` in it)."""
    return "?" + "&".join(f"{k}={quote(v, safe=_QUERY_SAFE)}" for k, v in params.items())


_QUERY_SAFE = "$,'()@"


def _event_id(item: Listed) -> str:
    return str(item.event.get("id"))


def _split_listing(events: Sequence[JSON], now: datetime) -> tuple[list[Listed], list[JSON]]:
    """The future single meetings (ready to go) and the series masters (to expand)."""
    singles: list[Listed] = []
    masters: list[JSON] = []
    for event in events:
        kind = event.get("type")
        if kind == "seriesMaster":
            masters.append(event)
        elif kind in ("singleInstance", "exception", None) and is_future_single(event, now):
            singles.append(Listed(event, len(attendee_addresses(event))))
    return singles, masters


def _teams_url(verdict: Eligible) -> str:
    """The join URL to look an online meeting up by ("" for a Skype block)."""
    return (verdict.block.join_url or "") if verdict.block.kind is BlockKind.TEAMS else ""


def _raise_unless_gone(result: BatchResult) -> None:
    """Raise a failed read's error, unless it is a 404 (the resource is gone: the caller skips it)."""
    error = result.error or GraphError(result.status, "", "request failed")
    if isinstance(error, NotFound):
        return
    raise error


class _TeamsLookups:
    """Online meetings by join URL for one migration: each distinct URL looked up once.

    The URLs are queued in the order the meetings will be planned and looked up in
    ``$batch`` groups of 20; a group starts when a chunk that needs it is planned
    or is next in line, so lookups run one chunk ahead of the PATCHes without
    flooding the tenant's Teams budget (the client paces each item). A URL whose
    lookup failed fails every meeting that carries it.
    """

    def __init__(self, client: GraphClient, user: str) -> None:
        """Lookups of ``user``'s online meetings; call :meth:`order` with the URLs to come."""
        self._client = client
        self._user = user
        self._groups: list[list[str]] = []
        self._group_of: dict[str, int] = {}
        self._found: dict[str, JSON | Exception | None] = {}
        self._tasks: dict[int, asyncio.Task[None]] = {}

    def order(self, urls: Iterable[str]) -> None:
        """Queue join URLs the migration will need, in planning order (known ones dropped)."""
        new = [u for u in dict.fromkeys(urls) if u and u not in self._group_of]
        for start in range(0, len(new), BATCH_SIZE):
            group = new[start : start + BATCH_SIZE]
            self._group_of.update(dict.fromkeys(group, len(self._groups)))
            self._groups.append(group)

    def prefetch(self, urls: Iterable[str | None]) -> None:
        """Start the lookup groups holding ``urls`` (each group is one ``$batch``)."""
        for url in urls:
            index = self._group_of.get(url or "")
            if index is not None and index not in self._tasks:
                self._tasks[index] = asyncio.create_task(self._lookup(self._groups[index]))

    async def get(self, url: str) -> JSON | None:
        """The online meeting whose join URL is ``url`` (None: Graph has none); raises its error."""
        index = self._group_of.get(url)
        if index is not None and url not in self._found:
            self.prefetch([url])
            await asyncio.shield(self._tasks[index])
        if url not in self._found:  # a URL nobody queued
            await self._lookup([url])
        found = self._found[url]
        if isinstance(found, Exception):
            raise found
        return found

    async def _lookup(self, urls: Sequence[str]) -> None:
        items = [
            BatchItem(
                "GET",
                f"/users/{_seg(self._user)}/onlineMeetings"
                + _query(
                    {
                        "$filter": "JoinWebUrl eq '" + url.replace("'", "''") + "'",
                        "$select": ",".join(ONLINE_MEETING_FIELDS),
                    }
                ),
                operation="find_online_meeting",
            )
            for url in urls
        ]
        try:
            results = await self._client.batch(items)
        except (GraphError, TransportError, OutcomeUnknown) as exc:
            self._found.update(dict.fromkeys(urls, exc))
            return
        for url, result in zip(urls, results, strict=True):
            if result.ok and isinstance(result.body, dict):
                values = result.body.get("value")
                self._found[url] = values[0] if isinstance(values, list) and values else None
            else:
                self._found[url] = result.error or GraphError(result.status, "", "lookup failed")

    async def aclose(self) -> None:
        """Cancel lookups still running (the attempt ended early)."""
        for task in self._tasks.values():
            task.cancel()
        await asyncio.gather(*self._tasks.values(), return_exceptions=True)


class MigrationRunner:
    """Runs attempts of one tenant's migrations against Graph and the store."""

    def __init__(
        self,
        tenant: str,
        store: Store,
        client: GraphClient,
        settings: EngineSettings,
        observer: EngineObserver,
        should_stop: Callable[[], bool] = lambda: False,
    ) -> None:
        self.tenant = tenant
        self.store = store
        self.client = client
        self.settings = settings
        self.observer = observer
        self.should_stop = should_stop

    def _extra(self, record: StatusRecord, event_id: str | None = None) -> dict[str, str]:
        extra = {
            "tenant": self.tenant,
            "correlationId": record.correlation_id,
            "userId": record.user_id,
        }
        if event_id is not None:
            extra["eventId"] = event_id
        return extra

    # ------------------------------------------------------------------ the attempt

    async def run(self, correlation_id: str) -> RunResult:
        """Run one attempt of the migration if it is InProgress; return where it ended."""
        record = await self.store.get_migration(correlation_id)
        if record is None or record.state is not MigrationState.IN_PROGRESS:
            return RunResult(RunEnd.NOT_RUNNABLE)
        try:
            return await self._attempt(record)
        except _Stop:
            await self.store.release(
                correlation_id, last_message="Interrupted by a restart of mmsd; it resumes."
            )
            return RunResult(RunEnd.RELEASED, self.store.now())
        except MailboxNotEnabled:
            return await self._finish(record, MigrationState.FAILED, ON_PREMISES_MESSAGE)
        except QuotaExhausted as exc:
            return await self._wait_for_quota(record, exc.until, exc.scope)
        except (GraphError, TransportError, OutcomeUnknown) as exc:
            return await self._retry_or_fail(record, _describe(exc))

    async def _attempt(self, record: StatusRecord) -> RunResult:
        user = record.user_id
        txns = await self.store.meeting_transactions(record.correlation_id)
        # The user, the listing and the read-backs of unresolved intents are independent.
        me, events, resolved = await asyncio.gather(
            self.client.get_user(user, ["id", "userPrincipalName", "mail"]),
            self._list_events(user),
            self._resolve_intents(record, [t for t in txns if t.intent_recorded]),
            return_exceptions=True,
        )
        if isinstance(me, NotFound):
            return await self._finish(
                record, MigrationState.FAILED, "Graph does not know this user any more."
            )
        for outcome in (me, events, resolved):
            if isinstance(outcome, BaseException):
                raise outcome
        assert isinstance(me, dict) and isinstance(events, list) and isinstance(resolved, dict)
        addresses = frozenset(
            str(me[k]).lower() for k in ("mail", "userPrincipalName") if me.get(k)
        )
        profile = await self.store.get_profile(self.tenant, user)
        txns = [resolved.get(t.event_id, t) for t in txns]
        await self._restore_sending(user)

        now = self.store.now()
        singles, masters = _split_listing(events, now)
        # The series are expanded (two round trips) while the single meetings go ahead.
        expanding = asyncio.create_task(self._expand_series(user, masters, now))
        ctx = _Context(record, addresses, profile, _TeamsLookups(self.client, user))
        try:
            listed = await self._migrate(ctx, txns, singles, masters, expanding)
        finally:
            expanding.cancel()
            await asyncio.gather(expanding, return_exceptions=True)
            await ctx.lookups.aclose()
        if ctx.quota_until is not None:
            return await self._wait_for_quota(record, ctx.quota_until, "recipients")
        return await self._conclude(record, {str(item.event.get("id")) for item in listed})

    async def _migrate(
        self,
        ctx: _Context,
        txns: Sequence[MeetingTransaction],
        singles: Sequence[Listed],
        masters: Sequence[JSON],
        expanding: asyncio.Task[dict[str, list[Listed]]],
    ) -> list[Listed]:
        """Classify, plan and PATCH the listed meetings; returns every meeting listed.

        Pipeline: the single meetings are classified at once and the online-meeting
        lookups of their links and of the masters' links start; the first chunk of
        singles is PATCHed as soon as it is planned, even while the series are still
        being expanded, so the first attendee update leaves after about three round
        trips. Later chunks are full (``patch_batch_size``) and, while one chunk is
        PATCHed, the lookups of the next one are in flight.
        """
        done = {t.event_id for t in txns if t.patched or t.outcome is MeetingOutcome.UPDATED}
        source = ctx.record.source_meeting_type
        now = self.store.now()
        early = {
            str(m["id"]): classify(m, ctx.addresses, source)
            for m in masters
            if str(m["id"]) not in done and series_window(m, now) is not None
        }
        queue = await self._classify_all(ctx, [i for i in singles if _event_id(i) not in done])
        ctx.lookups.order(
            [_teams_url(v) for _, v in queue]
            + [_teams_url(v) for v in early.values() if isinstance(v, Eligible)]
        )
        size = max(1, min(BATCH_SIZE, self.settings.patch_batch_size))
        listed: list[Listed] | None = None
        sent_any = False
        while queue or listed is None:
            self._checkpoint()
            if listed is None and (not queue or (sent_any and len(queue) < size)):
                series = [item for items in (await expanding).values() for item in items]
                listed = [*singles, *series]
                listed_ids = {_event_id(item) for item in listed}
                await self.store.update_progress(ctx.cid, total_meeting=len(listed))
                await self._forget_gone(ctx, txns, listed_ids)
                todo = [item for item in series if _event_id(item) not in done]
                more = await self._classify_all(ctx, todo, early)
                ctx.lookups.order(_teams_url(v) for _, v in more)
                queue.extend(more)
                continue
            chunk, queue = queue[:size], queue[size:]
            ctx.lookups.prefetch(_teams_url(v) for _, v in [*chunk, *queue[:size]])
            plans: list[_Plan] = []
            for item, verdict in chunk:
                plan = await self._plan(ctx, item, verdict)
                if plan is not None:
                    plans.append(plan)
            await self._patch_all(ctx, plans)
            sent_any = True
            if ctx.quota_until is not None:
                break
        return listed if listed is not None else [*singles]

    async def _forget_gone(
        self, ctx: _Context, txns: Sequence[MeetingTransaction], listed: set[str]
    ) -> None:
        """Earlier failures of meetings no longer listed become ``skipped: meetingGone``."""
        await self._record_many(
            ctx,
            [
                _txn(
                    ctx, txn.event_id, MeetingOutcome.SKIPPED, MEETING_GONE, txn.subject, txn.start
                )
                for txn in txns
                if not txn.patched
                and txn.event_id not in listed
                and txn.outcome in (MeetingOutcome.FAILED, MeetingOutcome.PENDING)
            ],
        )

    async def _classify_all(
        self,
        ctx: _Context,
        items: Sequence[Listed],
        known: Mapping[str, Eligible | SkipReason] | None = None,
    ) -> list[tuple[Listed, Eligible]]:
        """Classify every meeting (``known``: verdicts already made); skips are recorded at once."""
        eligible: list[tuple[Listed, Eligible]] = []
        skips: list[MeetingTransaction] = []
        for item in items:
            event = item.event
            verdict = (known or {}).get(_event_id(item)) or classify(
                event, ctx.addresses, ctx.record.source_meeting_type
            )
            if isinstance(verdict, SkipReason):
                subject = event.get("subject") if isinstance(event.get("subject"), str) else None
                skips.append(
                    _txn(
                        ctx,
                        str(event["id"]),
                        MeetingOutcome.SKIPPED,
                        str(verdict),
                        subject,
                        parse_graph_time(event.get("start")),
                    )
                )
            else:
                eligible.append((item, verdict))
        await self._record_many(ctx, skips)
        return eligible

    async def _restore_sending(self, user: str) -> None:
        """Load what the organizer sent in the quota's window (from the store) into a fresh pacer.

        The daily recipients quota lives in the Graph client's memory; after a
        restart it would start empty and let a migration send a second day's worth.
        The store knows every confirmed PATCH with its recipients and time, across
        all of the user's migrations, so the first attempt a pacer sees restores it.
        """
        sending = self.client.sending(user)
        if sending in _RESTORED_SENDERS:
            return
        window = timedelta(seconds=self.client.pacer.limits.send_recipients_window_s)
        sent = await self.store.recipients_sent(self.tenant, user, self.store.now() - window)
        sending.recipients.restore(sent)
        _RESTORED_SENDERS.add(sending)

    def _checkpoint(self) -> None:
        if self.should_stop():
            raise _Stop

    # ------------------------------------------------------------------ listing

    async def list_meetings(self, user: str) -> list[Listed]:
        """The user's future meetings: singles, live series masters, future exceptions."""
        return await self._expand(user, await self._list_events(user), self.store.now())

    async def _list_events(self, user: str) -> list[JSON]:
        """Every event the user organizes (single instances and series masters), large pages."""
        return [
            event
            async for event in self.client.list_events(
                user, "isOrganizer eq true", EVENT_FIELDS, page_size=LIST_PAGE_SIZE
            )
        ]

    async def _expand(self, user: str, events: Sequence[JSON], now: datetime) -> list[Listed]:
        """The meetings among ``events`` in listing order, each master followed by its exceptions."""
        singles, masters = _split_listing(events, now)
        series = await self._expand_series(user, masters, now)
        single_ids = {_event_id(item): item for item in singles}
        listed: list[Listed] = []
        for event in events:
            event_id = str(event.get("id"))
            if event_id in series:
                listed.extend(series[event_id])
            elif event_id in single_ids:
                listed.append(single_ids[event_id])
        return listed

    async def _expand_series(
        self, user: str, masters: Sequence[JSON], now: datetime
    ) -> dict[str, list[Listed]]:
        """Each live master (by ID) with its future exceptions after it; ended series left out.

        The ``/instances`` of every live master go in ``$batch`` requests, then the
        future exceptions in more of them: two round trips for any number of series.
        """
        live: list[tuple[JSON, tuple[datetime, datetime]]] = []
        for master in masters:
            window = series_window(master, now)
            if window is not None:
                live.append((master, window))
        instances = await self._instances(user, live)
        exception_ids: dict[str, list[str]] = {}
        for master, _ in live:
            found = instances.get(str(master["id"]))
            if found is None:
                continue  # the master is gone
            if needs_instances(master) and not any(is_future_single(i, now) for i in found):
                continue  # a numbered series whose last occurrence is over
            exception_ids[str(master["id"])] = [
                str(i["id"])
                for i in found
                if i.get("type") == "exception" and i.get("id") and is_future_single(i, now)
            ]
        wanted = [e for ids in exception_ids.values() for e in ids]
        exceptions = {str(e.get("id")): e for e in await self._get_events(user, wanted)}
        series: dict[str, list[Listed]] = {}
        for master, _ in live:
            ids = exception_ids.get(str(master["id"]))
            if ids is None:
                continue
            own = [exceptions[e] for e in ids if e in exceptions]
            recipients = len(attendee_addresses(master)) + sum(
                len(attendee_addresses(e)) for e in own
            )
            series[str(master["id"])] = [
                Listed(master, recipients),
                *(Listed(e, len(attendee_addresses(e))) for e in own),
            ]
        return series

    async def _instances(
        self, user: str, masters: Sequence[tuple[JSON, tuple[datetime, datetime]]]
    ) -> dict[str, list[JSON]]:
        """Occurrences and exceptions of each master in its window, by master ID (a gone one absent)."""
        if not masters:
            return {}
        items = [
            BatchItem(
                "GET",
                f"/users/{_seg(user)}/events/{_seg(str(master['id']))}/instances"
                + _query(
                    {
                        "startDateTime": format_rfc3339(window[0]),
                        "endDateTime": format_rfc3339(window[1]),
                        "$select": ",".join(INSTANCE_FIELDS),
                    }
                ),
                headers={"Prefer": f"odata.maxpagesize={INSTANCES_PAGE_SIZE}"},
                operation="list_instances",
            )
            for master, window in masters
        ]
        found: dict[str, list[JSON]] = {}
        for (master, window), result in zip(masters, await self.client.batch(items), strict=True):
            master_id = str(master["id"])
            if not (result.ok and isinstance(result.body, dict)):
                _raise_unless_gone(result)
                continue
            if result.body.get("@odata.nextLink"):  # more than a page: page through it alone
                found[master_id] = await self.client.list_instances(
                    user, master_id, window[0], window[1], INSTANCE_FIELDS
                )
                continue
            values = result.body.get("value")
            found[master_id] = (
                [v for v in values if isinstance(v, dict)] if isinstance(values, list) else []
            )
        return found

    async def _get_events(self, user: str, event_ids: Sequence[str]) -> list[JSON]:
        """Full events by ID in ``$batch`` requests, bodies as stored (no body-type preference)."""
        if not event_ids:
            return []
        select = ",".join(EVENT_FIELDS)
        items = [
            BatchItem(
                "GET",
                f"/users/{_seg(user)}/events/{_seg(e)}?$select={select}",
                operation="get_event",
            )
            for e in event_ids
        ]
        found: list[JSON] = []
        for result in await self.client.batch(items):
            if result.ok and isinstance(result.body, dict):
                found.append(result.body)
            elif isinstance(result.error, MailboxNotEnabled | TransportError):
                raise result.error
            elif isinstance(result.error, GraphError) and result.error.transient:
                raise result.error
        return found

    async def _read_events(
        self, user: str, wanted: Sequence[tuple[str, ContentType]]
    ) -> list[JSON | None]:
        """Events by ID with their bodies in the given type (None: deleted); one ``$batch``."""
        select = ",".join(EVENT_FIELDS)
        items = [
            BatchItem(
                "GET",
                f"/users/{_seg(user)}/events/{_seg(event_id)}?$select={select}",
                headers={"Prefer": f'outlook.body-content-type="{ctype}"'},
                operation="get_event",
            )
            for event_id, ctype in wanted
        ]
        events: list[JSON | None] = []
        for result in await self.client.batch(items):
            if result.ok and isinstance(result.body, dict):
                events.append(result.body)
            else:
                _raise_unless_gone(result)
                events.append(None)
        return events

    # ------------------------------------------------------------------ planning

    async def _plan(self, ctx: _Context, item: Listed, verdict: Eligible) -> _Plan | None:
        """Build an eligible meeting's new body; records failures itself."""
        event = item.event
        event_id = str(event["id"])
        subject = event.get("subject") if isinstance(event.get("subject"), str) else None
        start = parse_graph_time(event.get("start"))
        try:
            details, target = await self._details(ctx, event, verdict.block)
        except (QuotaExhausted, MailboxNotEnabled):
            raise
        except (GraphError, TransportError, OutcomeUnknown) as exc:
            if isinstance(exc, GraphError | TransportError) and _is_transient(exc):
                reason = f"transient: {_describe(exc)}"
            else:
                reason = _describe(exc)
            await self._record(
                ctx, event_id, MeetingOutcome.FAILED, reason, subject, start, verdict.block.join_url
            )
            return None
        if details is None or not details.join_url:
            await self._record(
                ctx,
                event_id,
                MeetingOutcome.FAILED,
                "noMeetingDetails: nothing known to render the new block from",
                subject,
                start,
                verdict.block.join_url,
            )
            return None
        new_block = render_block(
            target, details, content_type=verdict.content_type, language=verdict.block.language
        )
        return await self._replan(
            ctx,
            _Plan(
                event_id=event_id,
                subject=subject,
                start=start,
                content_type=verdict.content_type,
                new_block=new_block,
                digest="",
                new_body="",
                etag=_etag(event),
                change_key=_change_key(event),
                event_type=event.get("type") if isinstance(event.get("type"), str) else None,
                recipients=item.recipients,
                old_join_url=verdict.block.join_url,
                new_join_url=details.join_url,
                note=(
                    JOIN_BUTTON_NOTE
                    if verdict.block.kind is BlockKind.SKYPE and target is BlockKind.TEAMS
                    else None
                ),
            ),
            verdict,
        )

    async def _replan(self, ctx: _Context, plan: _Plan, verdict: Eligible) -> _Plan | None:
        """Splice the plan's new block into ``verdict``'s body (the current one)."""
        # The block classify found in this very body: no second search.
        result = replace_found(verdict.body, verdict.block, plan.new_block)
        if result.already_current:
            await self._record(
                ctx,
                plan.event_id,
                MeetingOutcome.UPDATED,
                "alreadyCurrent",
                plan.subject,
                plan.start,
                plan.old_join_url,
                plan.new_join_url,
            )
            return None
        note = plan.note
        if result.hand_edited and HAND_EDIT_NOTE not in (note or ""):
            note = f"{note} | {HAND_EDIT_NOTE}" if note else HAND_EDIT_NOTE
        return replace(
            plan,
            note=note,
            new_body=result.body,
            # The block as rendered: the fingerprint ignores line breaks, so its digest is
            # the one of the spliced (perhaps CRLF) copy, and same_block cached it already.
            digest=block_digest(plan.new_block, verdict.content_type),
            content_type=verdict.content_type,
        )

    async def _details(
        self, ctx: _Context, event: JSON, block: FoundBlock
    ) -> tuple[MeetingDetails | None, BlockKind]:
        """The new details and the kind of block to render (SPEC section 3, step 3)."""
        record = ctx.record
        if block.kind is BlockKind.TEAMS:
            meeting = await ctx.lookups.get(block.join_url) if block.join_url else None
            if meeting is not None:
                return teams_details(meeting, join_url=block.join_url), BlockKind.TEAMS
            return teams_details_from_block(block, ctx.profile), BlockKind.TEAMS
        if record.target_meeting_type is TargetMeetingType.TEAMS:
            anchor = str(event.get("seriesMasterId") or event["id"])
            start = parse_graph_time(event.get("start")) or self.store.now()
            end = parse_graph_time(event.get("end")) or start + timedelta(hours=1)
            subject = event.get("subject") if isinstance(event.get("subject"), str) else ""
            key = external_id(anchor, ctx.cid)  # a series and its exceptions share the meeting
            if key not in ctx.created:
                ctx.created[key] = await self.client.create_or_get_online_meeting(
                    ctx.user, key, subject or "", start, end
                )
            return teams_details(ctx.created[key]), BlockKind.TEAMS
        return skype_details(block, ctx.profile), BlockKind.SKYPE

    # ------------------------------------------------------------------ patching

    async def _patch_all(self, ctx: _Context, plans: list[_Plan]) -> None:
        queue = list(plans)
        size = max(1, min(20, self.settings.patch_batch_size))
        sending = self.client.sending(ctx.user)
        while queue:
            self._checkpoint()
            chunk, queue = queue[:size], queue[size:]
            ready: list[_Plan] = []
            for plan in chunk:
                until = sending.reserve_recipients(plan.recipients) if plan.recipients else None
                if until is not None:
                    ctx.quota_until = until
                    break
                ready.append(plan)
            redo = await self._patch_chunk(ctx, ready)  # their recipients were given back
            if ctx.quota_until is not None:
                return
            queue = redo + queue

    async def _patch_chunk(self, ctx: _Context, plans: list[_Plan]) -> list[_Plan]:
        """Check, intent, PATCH, outcome for each plan; returns the plans to PATCH again.

        Plans come back when their event changed since it was read (redone on the new
        body) or after a 412.
        """
        plans, changed = await self._unchanged(ctx, plans)
        if not plans:
            return changed
        return changed + await self._intend_and_send(ctx, plans)

    async def _unchanged(
        self, ctx: _Context, plans: list[_Plan]
    ) -> tuple[list[_Plan], list[_Plan]]:
        """The plans whose event did not change since it was read, and the others redone.

        A second safeguard besides ``If-Match``, which Graph does not document for
        events (SPEC section 3, step 5): right before the PATCH batch, the chunk's
        ``changeKey`` values are read again in one ``$batch`` (:meth:`_change_keys`);
        an event that changed (the
        organizer edited it) is read in full and its replacement redone on the new
        body, as after a 412, and comes back to be checked and sent again.
        """
        keyed = [p for p in plans if p.change_key]
        if not keyed:
            return plans, []
        current = await self._change_keys(ctx, keyed)
        changed = {p.event_id for p in keyed if current.get(p.event_id) != p.change_key}
        if not changed:
            return plans, []
        sending = self.client.sending(ctx.user)
        moved = [p for p in plans if p.event_id in changed]
        for plan in moved:
            sending.refund_recipients(plan.recipients)
            log.info(
                "event changed since it was read; redoing on the new body",
                extra=self._extra(ctx.record, plan.event_id),
            )
        events = await self._read_events(ctx.user, [(p.event_id, p.content_type) for p in moved])
        redo: list[_Plan] = []
        for plan, event in zip(moved, events, strict=True):
            if event is None:
                continue  # the event is gone
            again = await self._conflict(ctx, plan, event)
            if again is not None:
                redo.append(again)
        return [p for p in plans if p.event_id not in changed], redo

    async def _change_keys(self, ctx: _Context, plans: Sequence[_Plan]) -> dict[str, str | None]:
        """The events' current ``changeKey`` by ID (a gone event absent), in one ``$batch``.

        Every item counts against the mailbox's request window, so single meetings and
        series masters are read from one page of the user's listing (``id`` and
        ``changeKey`` only, :data:`LIST_PAGE_SIZE` events) rather than one by one;
        exceptions, which a listing does not return, and meetings beyond that page are
        read by ID.
        """
        others = [p for p in plans if p.event_type != "exception"]
        listing = len(others) > 1
        by_id = [p for p in plans if p.event_type == "exception" or not listing]
        current: dict[str, str | None] = {}
        items = [_change_key_item(ctx.user, p.event_id) for p in by_id]
        if listing:
            items.append(
                BatchItem(
                    "GET",
                    f"/users/{_seg(ctx.user)}/events"
                    + _query({"$filter": "isOrganizer eq true", "$select": "changeKey"}),
                    headers={"Prefer": f"odata.maxpagesize={LIST_PAGE_SIZE}"},
                    operation="list_events",
                )
            )
        results = await self.client.batch(items)
        for plan, result in zip(by_id, results, strict=False):
            if result.ok and isinstance(result.body, dict):
                current[plan.event_id] = _change_key(result.body)
            else:
                _raise_unless_gone(result)
        if listing:
            page = results[-1]
            if not (page.ok and isinstance(page.body, dict)):
                raise page.error or GraphError(page.status, "", "listing failed")
            values = page.body.get("value")
            for event in values if isinstance(values, list) else []:
                if isinstance(event, dict):
                    current[str(event.get("id"))] = _change_key(event)
            rest = [p for p in others if p.event_id not in current]
            if rest and page.body.get("@odata.nextLink"):  # beyond the first page: by ID
                more = await self.client.batch(
                    [_change_key_item(ctx.user, p.event_id) for p in rest]
                )
                for plan, result in zip(rest, more, strict=True):
                    if result.ok and isinstance(result.body, dict):
                        current[plan.event_id] = _change_key(result.body)
                    else:
                        _raise_unless_gone(result)
        return current

    async def _intend_and_send(self, ctx: _Context, plans: list[_Plan]) -> list[_Plan]:
        """Intents (one transaction), then the PATCH batch; returns plans to send again."""
        sending = self.client.sending(ctx.user)
        # Every intent of the chunk commits (one transaction) before any PATCH leaves.
        ok = await self.store.record_intents(
            ctx.cid,
            [
                PatchIntent(
                    plan.event_id,
                    plan.digest,
                    new_join_url=plan.new_join_url,
                    old_join_url=plan.old_join_url,
                    subject=plan.subject,
                    start=plan.start,
                )
                for plan in plans
            ],
        )
        granted: list[_Plan] = []
        for plan in plans:
            if plan.event_id in ok:
                granted.append(plan)
            else:
                sending.refund_recipients(plan.recipients)
        if not granted:
            return []
        outcomes = await self._send(ctx, granted)
        redo: list[_Plan] = []
        mailbox_error: MailboxNotEnabled | None = None
        reread: list[tuple[_Plan, bool]] = []  # (plan, answer lost) to read back in one batch
        applied = [p for p, error in zip(granted, outcomes, strict=True) if error is None]
        await self._patched_many(ctx, applied)
        for plan, error in zip(granted, outcomes, strict=True):
            if error is None:
                continue
            elif isinstance(error, OutcomeUnknown):
                await self.store.mark_unknown(ctx.cid, plan.event_id, message=str(error))
                log.info(
                    "PATCH answer lost; reading back", extra=self._extra(ctx.record, plan.event_id)
                )
                reread.append((plan, True))
            else:
                await self.store.clear_intent(ctx.cid, plan.event_id)
                sending.refund_recipients(plan.recipients)
                if isinstance(error, MailboxNotEnabled):
                    mailbox_error = error
                elif isinstance(error, PreconditionFailed):
                    log.info(
                        "412 on PATCH; redoing on the new body",
                        extra=self._extra(ctx.record, plan.event_id),
                    )
                    reread.append((plan, False))
                else:
                    await self._record(
                        ctx,
                        plan.event_id,
                        MeetingOutcome.FAILED,
                        _describe(error),
                        plan.subject,
                        plan.start,
                        plan.old_join_url,
                    )
        if mailbox_error is not None:
            raise mailbox_error
        if reread:
            events = await self._read_events(
                ctx.user, [(plan.event_id, _read_type(plan, lost)) for plan, lost in reread]
            )
            for (plan, lost), event in zip(reread, events, strict=True):
                again = await self._after_reread(ctx, plan, lost, event)
                if again is not None:
                    redo.append(again)
        return redo

    async def _after_reread(
        self, ctx: _Context, plan: _Plan, lost: bool, event: JSON | None
    ) -> _Plan | None:
        """Settle a lost answer or a 412 from the event as it is now; a plan to send again or None."""
        if lost:
            if event is not None and body_carries(
                body_of(event)[0], digest_content_type(plan.digest), plan.digest
            ):
                await self._patched(
                    ctx, plan.event_id, plan.recipients, plan.new_join_url, plan.note
                )
                return None
            await self.store.clear_intent(ctx.cid, plan.event_id)
            self.client.sending(ctx.user).refund_recipients(plan.recipients)
        if event is None:
            return None  # the event is gone
        return await self._conflict(ctx, plan, event)

    async def _send(self, ctx: _Context, plans: list[_Plan]) -> list[BaseException | None]:
        """PATCH the plans in ``$batch`` (shared with other users' parts); None on 2xx, else the error."""
        items = [
            BatchItem(
                "PATCH",
                f"/users/{_seg(ctx.user)}/events/{_seg(plan.event_id)}",
                body=_patch_body(plan),
                headers={"If-Match": plan.etag} if plan.etag else {},
                operation="patch_event",
            )
            for plan in plans
        ]
        results = await self.client.batch(items)
        out: list[BaseException | None] = []
        for result in results:
            if result.ok:
                out.append(None)
            else:
                out.append(result.error or GraphError(result.status, "", "PATCH failed"))
        return out

    async def _conflict(self, ctx: _Context, plan: _Plan, event: JSON) -> _Plan | None:
        """Redo the replacement on the event as it is now (the organizer's edit survives)."""
        if plan.conflicts >= self.settings.max_conflict_rounds:
            await self._record(
                ctx,
                plan.event_id,
                MeetingOutcome.FAILED,
                "conflict: the event kept changing while it was updated",
                plan.subject,
                plan.start,
                plan.old_join_url,
            )
            return None
        verdict = classify(event, ctx.addresses, SourceMeetingType.ALL)
        if isinstance(verdict, SkipReason):
            await self._record(
                ctx, plan.event_id, MeetingOutcome.SKIPPED, str(verdict), plan.subject, plan.start
            )
            return None
        return await self._replan(
            ctx,
            replace(
                plan,
                etag=_etag(event),
                change_key=_change_key(event),
                conflicts=plan.conflicts + 1,
            ),
            verdict,
        )

    async def _resolve_intents(
        self, record: StatusRecord, txns: Sequence[MeetingTransaction]
    ) -> dict[str, MeetingTransaction]:
        """Intents left by a crash or a lost answer, read back in one batch: confirmed or cleared."""
        if not txns:
            return {}
        user, cid = record.user_id, record.correlation_id
        digests = [t.block_digest or "" for t in txns]
        events = await self._read_events(
            user, [(t.event_id, digest_content_type(d)) for t, d in zip(txns, digests, strict=True)]
        )
        resolved: dict[str, MeetingTransaction] = {}
        for txn, digest, event in zip(txns, digests, events, strict=True):
            if event is not None and body_carries(
                body_of(event)[0], digest_content_type(digest), digest
            ):
                log.info("recovered an applied PATCH", extra=self._extra(record, txn.event_id))
                invites = await self._recipients(user, event)
                resolved[txn.event_id] = await self.store.mark_patched(
                    cid, txn.event_id, invites=invites
                )
            else:
                resolved[txn.event_id] = await self.store.clear_intent(cid, txn.event_id)
        return resolved

    async def _recipients(self, user: str, event: JSON) -> int:
        """The recipients one PATCH of ``event`` sent (a series master's exceptions included)."""
        if event.get("type") == "seriesMaster":
            listed = await self._expand(user, [event], self.store.now())
            if listed:
                return listed[0].recipients
        return len(attendee_addresses(event))

    async def _patched(
        self,
        ctx: _Context,
        event_id: str,
        invites: int,
        new_join_url: str | None,
        note: str | None = None,
    ) -> None:
        await self.store.mark_patched(
            ctx.cid, event_id, invites=invites, new_join_url=new_join_url, note=note
        )
        self.observer.meeting_outcome(self.tenant, str(MeetingOutcome.UPDATED), None)
        self.observer.invites_sent(self.tenant, invites)

    async def _patched_many(self, ctx: _Context, plans: Sequence[_Plan]) -> None:
        """Confirm the plans whose PATCH applied, in one store transaction."""
        if not plans:
            return
        await self.store.mark_patched_many(
            ctx.cid,
            [PatchedMeeting(p.event_id, p.recipients, p.new_join_url, p.note) for p in plans],
        )
        for plan in plans:
            self.observer.meeting_outcome(self.tenant, str(MeetingOutcome.UPDATED), None)
            self.observer.invites_sent(self.tenant, plan.recipients)

    async def _record_many(self, ctx: _Context, txns: Sequence[MeetingTransaction]) -> None:
        """Record many outcomes in one store transaction (a chunk's skips)."""
        if not txns:
            return
        await self.store.record_meetings(txns)
        for txn in txns:
            shown = txn.reason if txn.outcome is MeetingOutcome.SKIPPED else None
            self.observer.meeting_outcome(self.tenant, str(txn.outcome), shown)

    async def _record(
        self,
        ctx: _Context,
        event_id: str,
        outcome: MeetingOutcome,
        reason: str | None,
        subject: str | None,
        start: datetime | None,
        old_join_url: str | None = None,
        new_join_url: str | None = None,
    ) -> None:
        await self.store.record_meeting(
            MeetingTransaction(
                correlation_id=ctx.cid,
                event_id=event_id,
                outcome=outcome,
                subject=subject,
                start=start,
                reason=reason,
                old_join_url=old_join_url,
                new_join_url=new_join_url,
            )
        )
        shown = reason if outcome is MeetingOutcome.SKIPPED else None
        self.observer.meeting_outcome(self.tenant, str(outcome), shown)

    # ------------------------------------------------------------------ endings

    async def _conclude(self, record: StatusRecord, listed: set[str]) -> RunResult:
        """Succeeded, or a retry, decided over the meetings of the latest listing."""
        txns = await self.store.meeting_transactions(record.correlation_id)
        failed = [t for t in txns if t.outcome is MeetingOutcome.FAILED and t.event_id in listed]
        if failed:
            message = f"{len(failed)} meeting(s) could not be updated; first: {failed[0].reason}"
            return await self._retry_or_fail(record, message)
        updated = sum(1 for t in txns if t.outcome is MeetingOutcome.UPDATED)
        skipped = sum(1 for t in txns if t.outcome is MeetingOutcome.SKIPPED)
        message = f"Migrated: {updated} meeting(s) updated, {skipped} skipped."
        moved = sum(
            1
            for t in txns
            if t.outcome is MeetingOutcome.UPDATED and JOIN_BUTTON_NOTE in (t.reason or "")
        )
        if moved:
            message += (
                f" {moved} meeting(s) moved from Skype for Business to Teams: the invitations"
                " carry the new Teams link; Outlook's Join button keeps the old one, which"
                " Graph cannot change."
            )
        return await self._finish(record, MigrationState.SUCCEEDED, message)

    async def _finish(self, record: StatusRecord, state: MigrationState, message: str) -> RunResult:
        done = await self.store.finish(record.correlation_id, state, message)
        started = done.started_at or done.create_date
        self.observer.migration_finished(
            self.tenant, str(state), max(0.0, (self.store.now() - started).total_seconds())
        )
        log.info("migration %s", state, extra=self._extra(record))
        return RunResult(RunEnd(str(state)))

    async def _retry_or_fail(self, record: StatusRecord, message: str) -> RunResult:
        current = await self.store.get_migration(record.correlation_id) or record
        attempts = current.retry_count + 1
        total = self.settings.max_attempts
        if attempts >= total:
            return await self._finish(
                current, MigrationState.FAILED, f"{message} (after {attempts} attempts)"
            )
        at = self.store.now() + timedelta(seconds=self.settings.retry_delay(current.retry_count))
        await self.store.reschedule(
            record.correlation_id,
            not_before=at,
            last_message=f"{message}; attempt {attempts} of {total}, next at {format_rfc3339(at)}",
        )
        self.observer.migration_rescheduled(self.tenant, False)
        log.info("migration rescheduled", extra=self._extra(record))
        return RunResult(RunEnd.RETRY, at)

    async def _wait_for_quota(self, record: StatusRecord, until: datetime, scope: str) -> RunResult:
        if scope == "recipients":
            what = "the organizer's daily sending quota"
        else:
            what = "the organizer's monthly online-meeting quota"
        await self.store.wait_for_quota(
            record.correlation_id,
            until=until,
            last_message=f"Waiting for {what} until {format_rfc3339(until)}",
        )
        self.observer.migration_rescheduled(self.tenant, True)
        return RunResult(RunEnd.QUOTA_WAIT, until)


def _txn(
    ctx: _Context,
    event_id: str,
    outcome: MeetingOutcome,
    reason: str | None,
    subject: str | None,
    start: datetime | None,
) -> MeetingTransaction:
    return MeetingTransaction(
        correlation_id=ctx.cid,
        event_id=event_id,
        outcome=outcome,
        subject=subject,
        start=start,
        reason=reason,
    )


def _change_key_item(user: str, event_id: str) -> BatchItem:
    """A ``$batch`` item reading one event's ``changeKey``."""
    return BatchItem(
        "GET",
        f"/users/{_seg(user)}/events/{_seg(event_id)}?$select=changeKey",
        operation=CHANGE_KEY_OPERATION,
    )


def _change_key(event: JSON) -> str | None:
    """The event's ``changeKey`` (or the one its ``@odata.etag`` ``W/"<changeKey>"`` carries)."""
    value = event.get("changeKey")
    if isinstance(value, str) and value:
        return value
    etag = _etag(event)
    if etag is None:
        return None
    return etag.removeprefix("W/").strip('"') or None


def _etag(event: JSON) -> str | None:
    value = event.get("@odata.etag")
    return value if isinstance(value, str) and value else None


def _read_type(plan: _Plan, lost: bool) -> ContentType:
    """The body type to read a plan's event back in: the digest's after a lost answer."""
    return digest_content_type(plan.digest) if lost else plan.content_type


def _patch_body(plan: _Plan) -> JSON:
    return {"body": {"contentType": str(plan.content_type), "content": plan.new_body}}


def _is_transient(exc: BaseException) -> bool:
    if isinstance(exc, TransportError):
        return True
    return isinstance(exc, GraphError) and exc.transient


def _describe(exc: BaseException) -> str:
    """A short, body-free reason for a record's ``reason`` or ``lastMessage``."""
    if isinstance(exc, GraphError):
        return f"Graph answered {exc.status} {exc.code or ''}".strip() + f" ({exc.operation})"
    if isinstance(exc, OutcomeUnknown | TransportError):
        return f"no answer from Graph ({exc.operation}: {exc.cause})"
    return type(exc).__name__
