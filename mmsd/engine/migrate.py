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
2. ``record_intent`` commits before the PATCH leaves; the store refuses an
   intent for a meeting whose PATCH is confirmed, so it is never sent twice.
3. A 2xx -> ``mark_patched``. ``OutcomeUnknown`` -> ``mark_unknown``, read back,
   then as in 1. A 412 (the organizer edited the event) -> ``clear_intent``,
   re-read, redo the replacement on the new body (the edit outside the block
   survives), a new intent, PATCH with the new ETag.

PATCHes of one mailbox go out in ``$batch`` requests of up to 20 (the client
paces the items per mailbox); every intent of a batch commits before it leaves.
Before a PATCH, its recipients are reserved in the organizer's daily sending
quota; when the day is spent the migration waits, ``Pending``, until the quota
allows more.

Logs carry the tenant, correlation ID, user object ID and event ID only.
"""

from __future__ import annotations

import enum
import logging
import weakref
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from typing import Any
from urllib.parse import quote

from mmsd.clock import format_rfc3339
from mmsd.domain.blocks import (
    BlockKind,
    BlockProblem,
    ContentType,
    FoundBlock,
    MeetingDetails,
    render_block,
    replace_block,
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

log = logging.getLogger(__name__)

JSON = dict[str, Any]
INSTANCE_FIELDS = ("id", "type", "start", "seriesMasterId")

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
    teams_cache: dict[str, JSON | None] = field(default_factory=dict)
    quota_until: datetime | None = None

    @property
    def cid(self) -> str:
        return self.record.correlation_id

    @property
    def user(self) -> str:
        return self.record.user_id


def _seg(value: str) -> str:
    return quote(value, safe="@=")  # as the Graph client quotes path segments


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
        try:
            me = await self.client.get_user(record.user_id, ["id", "userPrincipalName", "mail"])
        except NotFound:
            return await self._finish(
                record, MigrationState.FAILED, "Graph does not know this user any more."
            )
        addresses = frozenset(
            str(me[k]).lower() for k in ("mail", "userPrincipalName") if me.get(k)
        )
        profile = await self.store.get_profile(self.tenant, record.user_id)
        ctx = _Context(record, addresses, profile)

        done: set[str] = set()
        for txn in await self.store.meeting_transactions(ctx.cid):
            if txn.intent_recorded:
                txn = await self._resolve_intent(ctx, txn)
            if txn.patched or txn.outcome is MeetingOutcome.UPDATED:
                done.add(txn.event_id)
        await self._restore_sending(ctx.user)

        listed = await self.list_meetings(ctx.user)
        await self.store.update_progress(ctx.cid, total_meeting=len(listed))
        plans: list[_Plan] = []
        for item in listed:
            self._checkpoint()
            event_id = str(item.event.get("id"))
            if event_id in done:
                continue
            plan = await self._plan(ctx, item)
            if plan is not None:
                plans.append(plan)
        await self._patch_all(ctx, plans)
        if ctx.quota_until is not None:
            return await self._wait_for_quota(record, ctx.quota_until, "recipients")
        return await self._conclude(record)

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
        now = self.store.now()
        listed: list[Listed] = []
        async for event in self.client.list_events(user, "isOrganizer eq true", EVENT_FIELDS):
            kind = event.get("type")
            if kind == "seriesMaster":
                listed.extend(await self._series(user, event, now))
            elif kind in ("singleInstance", "exception", None) and is_future_single(event, now):
                listed.append(Listed(event, len(attendee_addresses(event))))
        return listed

    async def _series(self, user: str, master: JSON, now: datetime) -> list[Listed]:
        window = series_window(master, now)
        if window is None:
            return []
        instances = await self.client.list_instances(
            user, str(master["id"]), window[0], window[1], INSTANCE_FIELDS
        )
        if needs_instances(master) and not any(is_future_single(i, now) for i in instances):
            return []  # a numbered series whose last occurrence is over
        exception_ids = [
            str(i["id"])
            for i in instances
            if i.get("type") == "exception" and i.get("id") and is_future_single(i, now)
        ]
        exceptions = await self._get_events(user, exception_ids)
        recipients = len(attendee_addresses(master)) + sum(
            len(attendee_addresses(e)) for e in exceptions
        )
        return [
            Listed(master, recipients),
            *(Listed(e, len(attendee_addresses(e))) for e in exceptions),
        ]

    async def _get_events(self, user: str, event_ids: Sequence[str]) -> list[JSON]:
        """Full events by ID in one ``$batch``, bodies as stored (no body-type preference)."""
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

    # ------------------------------------------------------------------ planning

    async def _plan(self, ctx: _Context, item: Listed) -> _Plan | None:
        """Classify a meeting and build its new body; records skips and failures itself."""
        event = item.event
        event_id = str(event["id"])
        subject = event.get("subject") if isinstance(event.get("subject"), str) else None
        start = parse_graph_time(event.get("start"))
        record = ctx.record
        verdict = classify(event, ctx.addresses, record.source_meeting_type)
        if isinstance(verdict, SkipReason):
            await self._record(ctx, event_id, MeetingOutcome.SKIPPED, str(verdict), subject, start)
            return None
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
                recipients=item.recipients,
                old_join_url=verdict.block.join_url,
                new_join_url=details.join_url,
            ),
            verdict,
        )

    async def _replan(self, ctx: _Context, plan: _Plan, verdict: Eligible) -> _Plan | None:
        """Splice the plan's new block into ``verdict``'s body (the current one)."""
        result = replace_block(verdict.body, verdict.content_type, plan.new_block)
        if isinstance(result, BlockProblem):
            await self._record(
                ctx,
                plan.event_id,
                MeetingOutcome.SKIPPED,
                str(result.reason),
                plan.subject,
                plan.start,
            )
            return None
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
        fitted = result.body[result.new_start : result.new_end]
        return replace(
            plan,
            new_body=result.body,
            digest=block_digest(fitted, verdict.content_type),
            content_type=verdict.content_type,
        )

    async def _details(
        self, ctx: _Context, event: JSON, block: FoundBlock
    ) -> tuple[MeetingDetails | None, BlockKind]:
        """The new details and the kind of block to render (SPEC section 3, step 3)."""
        record = ctx.record
        if block.kind is BlockKind.TEAMS:
            meeting = await self._teams_meeting(ctx, block.join_url)
            if meeting is not None:
                return teams_details(meeting, join_url=block.join_url), BlockKind.TEAMS
            return teams_details_from_block(block, ctx.profile), BlockKind.TEAMS
        if record.target_meeting_type is TargetMeetingType.TEAMS:
            anchor = str(event.get("seriesMasterId") or event["id"])
            start = parse_graph_time(event.get("start")) or self.store.now()
            end = parse_graph_time(event.get("end")) or start + timedelta(hours=1)
            subject = event.get("subject") if isinstance(event.get("subject"), str) else ""
            meeting = await self.client.create_or_get_online_meeting(
                ctx.user, external_id(anchor, ctx.cid), subject or "", start, end
            )
            return teams_details(meeting), BlockKind.TEAMS
        return skype_details(block, ctx.profile), BlockKind.SKYPE

    async def _teams_meeting(self, ctx: _Context, join_url: str | None) -> JSON | None:
        if not join_url:
            return None
        if join_url not in ctx.teams_cache:
            ctx.teams_cache[join_url] = await self.client.find_online_meeting_by_join_url(
                ctx.user, join_url
            )
        return ctx.teams_cache[join_url]

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
        """Intent, PATCH, outcome for each plan; returns the plans to PATCH again (after a 412)."""
        sending = self.client.sending(ctx.user)
        granted: list[_Plan] = []
        for plan in plans:
            ok = await self.store.record_intent(
                ctx.cid,
                plan.event_id,
                block_digest=plan.digest,
                new_join_url=plan.new_join_url,
                old_join_url=plan.old_join_url,
                subject=plan.subject,
                start=plan.start,
            )
            if ok:
                granted.append(plan)
            else:
                sending.refund_recipients(plan.recipients)
        if not granted:
            return []
        outcomes = await self._send(ctx, granted)
        redo: list[_Plan] = []
        mailbox_error: MailboxNotEnabled | None = None
        for plan, error in zip(granted, outcomes, strict=True):
            again = await self._settle(ctx, plan, error)
            if isinstance(again, MailboxNotEnabled):
                mailbox_error = again
            elif again is not None:
                redo.append(again)
        if mailbox_error is not None:
            raise mailbox_error
        return redo

    async def _send(self, ctx: _Context, plans: list[_Plan]) -> list[BaseException | None]:
        """PATCH the plans (one call, or a ``$batch``); per plan None on 2xx, else the error."""
        if len(plans) == 1:
            plan = plans[0]
            try:
                await self.client.patch_event(ctx.user, plan.event_id, _patch_body(plan), plan.etag)
            except (GraphError, TransportError, OutcomeUnknown) as exc:
                return [exc]
            return [None]
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

    async def _settle(
        self, ctx: _Context, plan: _Plan, error: BaseException | None
    ) -> _Plan | MailboxNotEnabled | None:
        """Record a PATCH's outcome; a plan to send again, a mailbox error, or None when settled."""
        sending = self.client.sending(ctx.user)
        if error is None:
            await self._patched(ctx, plan.event_id, plan.recipients, plan.new_join_url)
            return None
        if isinstance(error, OutcomeUnknown):
            await self.store.mark_unknown(ctx.cid, plan.event_id, message=str(error))
            log.info(
                "PATCH answer lost; reading back", extra=self._extra(ctx.record, plan.event_id)
            )
            applied, event = await self._read_back(ctx.user, plan.event_id, plan.digest)
            if applied:
                await self._patched(ctx, plan.event_id, plan.recipients, plan.new_join_url)
                return None
            await self.store.clear_intent(ctx.cid, plan.event_id)
            sending.refund_recipients(plan.recipients)
            if event is None:
                return None  # the event is gone
            return await self._conflict(ctx, plan, event)
        await self.store.clear_intent(ctx.cid, plan.event_id)
        sending.refund_recipients(plan.recipients)
        if isinstance(error, MailboxNotEnabled):
            return error
        if isinstance(error, PreconditionFailed):
            log.info(
                "412 on PATCH; redoing on the new body",
                extra=self._extra(ctx.record, plan.event_id),
            )
            try:
                event = await self.client.get_event(
                    ctx.user, plan.event_id, body_type=str(plan.content_type), select=EVENT_FIELDS
                )
            except NotFound:
                return None
            return await self._conflict(ctx, plan, event)
        reason = _describe(error)
        await self._record(
            ctx,
            plan.event_id,
            MeetingOutcome.FAILED,
            reason,
            plan.subject,
            plan.start,
            plan.old_join_url,
        )
        return None

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
            ctx, replace(plan, etag=_etag(event), conflicts=plan.conflicts + 1), verdict
        )

    async def _read_back(self, user: str, event_id: str, digest: str) -> tuple[bool, JSON | None]:
        """Whether the event carries the block of ``digest``; the event (None when deleted)."""
        ctype = digest_content_type(digest)
        try:
            event = await self.client.get_event(
                user, event_id, body_type=str(ctype), select=EVENT_FIELDS
            )
        except NotFound:
            return False, None
        body, _ = body_of(event)
        return body_carries(body, ctype, digest), event

    async def _resolve_intent(self, ctx: _Context, txn: MeetingTransaction) -> MeetingTransaction:
        """An intent left by a crash or a lost answer: confirmed if the event carries the block."""
        applied, event = await self._read_back(ctx.user, txn.event_id, txn.block_digest or "")
        if applied and event is not None:
            log.info("recovered an applied PATCH", extra=self._extra(ctx.record, txn.event_id))
            invites = await self._recipients(ctx.user, event)
            return await self.store.mark_patched(ctx.cid, txn.event_id, invites=invites)
        return await self.store.clear_intent(ctx.cid, txn.event_id)

    async def _recipients(self, user: str, event: JSON) -> int:
        """The recipients one PATCH of ``event`` sent (a series master's exceptions included)."""
        if event.get("type") == "seriesMaster":
            listed = await self._series(user, event, self.store.now())
            if listed:
                return listed[0].recipients
        return len(attendee_addresses(event))

    async def _patched(
        self, ctx: _Context, event_id: str, invites: int, new_join_url: str | None
    ) -> None:
        await self.store.mark_patched(ctx.cid, event_id, invites=invites, new_join_url=new_join_url)
        self.observer.meeting_outcome(self.tenant, str(MeetingOutcome.UPDATED), None)
        self.observer.invites_sent(self.tenant, invites)

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

    async def _conclude(self, record: StatusRecord) -> RunResult:
        txns = await self.store.meeting_transactions(record.correlation_id)
        failed = [t for t in txns if t.outcome is MeetingOutcome.FAILED]
        if failed:
            message = f"{len(failed)} meeting(s) could not be updated; first: {failed[0].reason}"
            return await self._retry_or_fail(record, message)
        updated = sum(1 for t in txns if t.outcome is MeetingOutcome.UPDATED)
        skipped = sum(1 for t in txns if t.outcome is MeetingOutcome.SKIPPED)
        return await self._finish(
            record,
            MigrationState.SUCCEEDED,
            f"Migrated: {updated} meeting(s) updated, {skipped} skipped.",
        )

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


def _etag(event: JSON) -> str | None:
    value = event.get("@odata.etag")
    return value if isinstance(value, str) and value else None


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
