"""mmsd's durable state in SQLite: status records, meeting transactions, triggers, settings.

One writer connection (serialised by a lock, each method one ``BEGIN
IMMEDIATE`` ... ``COMMIT``) and one read-only connection that only ever sees
committed data. Every public method commits before it returns, so whatever
a caller acts on or reports is already on disk.
"""

from __future__ import annotations

import asyncio
import json
import os
import sqlite3
import uuid
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from functools import partial
from pathlib import Path
from typing import Any, NamedTuple, TypeVar

import aiosqlite

from mmsd.clock import Clock, SystemClock
from mmsd.domain.model import (
    ConferencingProfile,
    IgnoreReason,
    MeetingOutcome,
    MeetingTransaction,
    MigrationState,
    PatchState,
    PolicyScope,
    SourceMeetingType,
    StatusRecord,
    TargetMeetingType,
    TeamsUpgradeMode,
    TenantSwitches,
    Trigger,
    TriggerFate,
    TriggerType,
)
from mmsd.domain.rules import merge
from mmsd.store.schema import migrate

_T = TypeVar("_T")

DEFAULT_RETENTION = timedelta(days=150)
"""How long finished status records and triggers are kept (SPEC section 3)."""

DATABASE_FILENAME = "mmsd.sqlite3"

# Each PATCH intent must be on disk before the PATCH leaves: with WAL,
# synchronous=NORMAL survives a killed process but a power cut or kernel panic
# can lose the last commits — an intent lost that way means the PATCH it
# guarded is sent a second time after restart, breaking exactly-once. FULL
# fsyncs the WAL at every commit; the cost is paid once per transaction, and
# bulk writes batch into one transaction.
SYNCHRONOUS = "FULL"
BUSY_TIMEOUT_MS = 10_000
CACHE_KIB = 8_192  # page cache per connection: keeps the store small in memory
_CHUNK = 500  # rows per IN (...) lookup in bulk operations


def default_state_dir() -> Path:
    """``$STATE_DIRECTORY`` (its first entry, as systemd may list several) or ``/var/lib/mmsd``."""
    value = os.environ.get("STATE_DIRECTORY", "")
    first = value.split(":")[0].strip()
    return Path(first) if first else Path("/var/lib/mmsd")


def database_path(state_dir: Path | None = None) -> Path:
    """The SQLite file inside ``state_dir`` (default :func:`default_state_dir`)."""
    return (state_dir if state_dir is not None else default_state_dir()) / DATABASE_FILENAME


class StoreError(Exception):
    """A request the store refuses: an unknown record or a transition the states forbid."""


class UnknownMigration(StoreError):
    """No migration has this correlation ID."""


class InvalidTransition(StoreError):
    """The migration is not in a state that allows this change."""


class Enqueued(NamedTuple):
    """The answer to an enqueue: the migration's correlation ID, and whether it is new."""

    correlation_id: str
    created: bool


@dataclass(frozen=True)
class EnqueueRequest:
    """One user to queue in a bulk enqueue (see :meth:`Store.enqueue_migrations`)."""

    user_id: str
    upn: str | None
    source: SourceMeetingType
    target: TargetMeetingType
    reason: str
    trigger_id: str | None = None
    not_before: datetime | None = None


@dataclass(frozen=True)
class KnownUser:
    """A user the store has seen: object ID and UPN."""

    user_id: str
    upn: str | None


@dataclass(frozen=True)
class QueueMetrics:
    """What the metrics need about one tenant's queue, read in one snapshot."""

    users_by_state: dict[MigrationState, int]
    oldest_pending_seconds: float  # runnable, not waiting for quota; 0 when none
    oldest_in_progress_seconds: float  # since it was claimed; 0 when none
    pending_waiting_for_quota: int
    pending_total: int  # Pending records (not users), quota waits included


@dataclass(frozen=True)
class Recovery:
    """What a restart must pick up: interrupted migrations, unresolved PATCHes, undecided triggers."""

    in_progress: list[StatusRecord]
    open_intents: list[MeetingTransaction]
    undecided_triggers: list[Trigger]


@dataclass(frozen=True)
class PruneResult:
    """How many rows a prune removed."""

    migrations: int
    meeting_transactions: int
    triggers: int


@dataclass(frozen=True)
class PatchIntent:
    """One meeting of a chunk about to be PATCHed (:meth:`Store.record_intents`)."""

    event_id: str
    block_digest: str
    new_join_url: str | None = None
    old_join_url: str | None = None
    subject: str | None = None
    start: datetime | None = None


@dataclass(frozen=True)
class PatchedMeeting:
    """One meeting whose PATCH applied (:meth:`Store.mark_patched_many`)."""

    event_id: str
    invites: int
    new_join_url: str | None = None
    note: str | None = None  # kept as the meeting's reason (e.g. the Join button note)


@dataclass
class _Queued:
    """A user's joinable Pending migration while a bulk enqueue builds it up."""

    correlation_id: str
    source: SourceMeetingType
    target: TargetMeetingType
    not_before: int
    is_new: bool
    upn: str | None = None
    reason: str | None = None


# trigger ID, fate, ignore reason, correlation ID, message, resolved user ID
_Fate = tuple[str, TriggerFate, IgnoreReason | None, str | None, str | None, str | None]


def _us(value: datetime) -> int:
    """An aware datetime as integer microseconds since the epoch."""
    if value.tzinfo is None:
        raise ValueError("the store takes timezone-aware datetimes only")
    delta = value - _EPOCH
    return (delta.days * 86_400 + delta.seconds) * 1_000_000 + delta.microseconds


def _dt(value: int | None) -> datetime | None:
    return None if value is None else _EPOCH + timedelta(microseconds=value)


def _dt_req(value: int) -> datetime:
    return _EPOCH + timedelta(microseconds=value)


_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)

_MIGRATION_COLUMNS = (
    "id, correlation_id, tenant, user_id, upn, state, source, target, create_date, "
    "modified_date, not_before, waiting_for_quota, started_at, claimed_at, retry_count, "
    "last_message, total_meeting, succeeded_meeting, failed_meeting, invites_update, "
    "skipped_meeting"
)
_MIGRATION_COLUMNS_M = ", ".join(f"m.{c.strip()}" for c in _MIGRATION_COLUMNS.split(","))

_TXN_COLUMNS = (
    "m.correlation_id, t.event_id, t.outcome, t.subject, t.start_time, t.reason, "
    "t.old_join_url, t.new_join_url, t.patch_state, t.block_digest, t.attempts, t.invites, "
    "t.created_at, t.updated_at, t.intent_at, t.patched_at"
)

_TRIGGER_COLUMNS = (
    "trigger_id, tenant, type, identity, user_id, received_at, details, fate, reason, "
    "correlation_id, message, decided_at"
)


def _record(row: sqlite3.Row) -> StatusRecord:
    return StatusRecord(
        tenant=row["tenant"],
        user_id=row["user_id"],
        user_principal_name=row["upn"],
        state=MigrationState(row["state"]),
        correlation_id=row["correlation_id"],
        create_date=_dt_req(row["create_date"]),
        modified_date=_dt_req(row["modified_date"]),
        source_meeting_type=SourceMeetingType(row["source"]),
        target_meeting_type=TargetMeetingType(row["target"]),
        retry_count=row["retry_count"],
        last_message=row["last_message"],
        total_meeting=row["total_meeting"],
        succeeded_meeting=row["succeeded_meeting"],
        failed_meeting=row["failed_meeting"],
        invites_update=row["invites_update"],
        skipped_meeting=row["skipped_meeting"],
        not_before=_dt(row["not_before"]),
        waiting_for_quota=bool(row["waiting_for_quota"]),
        started_at=_dt(row["started_at"]),
        claimed_at=_dt(row["claimed_at"]),
    )


def _transaction(row: sqlite3.Row) -> MeetingTransaction:
    return MeetingTransaction(
        correlation_id=row["correlation_id"],
        event_id=row["event_id"],
        outcome=MeetingOutcome(row["outcome"]),
        subject=row["subject"],
        start=_dt(row["start_time"]),
        reason=row["reason"],
        old_join_url=row["old_join_url"],
        new_join_url=row["new_join_url"],
        patch_state=PatchState(row["patch_state"]),
        block_digest=row["block_digest"],
        attempts=row["attempts"],
        invites=row["invites"],
        created_at=_dt_req(row["created_at"]),
        updated_at=_dt_req(row["updated_at"]),
        intent_at=_dt(row["intent_at"]),
        patched_at=_dt(row["patched_at"]),
    )


def _trigger_details(trigger: Trigger) -> str:
    details: dict[str, Any] = {}
    if trigger.mode is not None:
        details["mode"] = str(trigger.mode)
    if trigger.scope is not None:
        details["scope"] = str(trigger.scope)
    if trigger.source is not None:
        details["sourceMeetingType"] = str(trigger.source)
    if trigger.target is not None:
        details["targetMeetingType"] = str(trigger.target)
    if trigger.conferencing is not None:
        details["conferencing"] = trigger.conferencing.to_json()
    return json.dumps(details, separators=(",", ":"))


def _trigger(row: sqlite3.Row) -> Trigger:
    details = json.loads(row["details"])
    conferencing = details.get("conferencing")
    return Trigger(
        id=row["trigger_id"],
        tenant=row["tenant"],
        type=TriggerType(row["type"]),
        identity=row["identity"],
        received_at=_dt_req(row["received_at"]),
        mode=TeamsUpgradeMode(details["mode"]) if "mode" in details else None,
        scope=PolicyScope(details["scope"]) if "scope" in details else None,
        source=(
            SourceMeetingType(details["sourceMeetingType"])
            if "sourceMeetingType" in details
            else None
        ),
        target=(
            TargetMeetingType(details["targetMeetingType"])
            if "targetMeetingType" in details
            else None
        ),
        conferencing=None if conferencing is None else ConferencingProfile.from_json(conferencing),
        fate=TriggerFate(row["fate"]),
        reason=None if row["reason"] is None else IgnoreReason(row["reason"]),
        correlation_id=row["correlation_id"],
        user_id=row["user_id"],
        message=row["message"],
        decided_at=_dt(row["decided_at"]),
    )


def _fetchall(db: sqlite3.Connection, sql: str, params: Any = ()) -> list[sqlite3.Row]:
    """Every row of one statement."""
    rows: list[sqlite3.Row] = db.execute(sql, params).fetchall()
    return rows


def _in_transaction(
    begin: str, work: Callable[[sqlite3.Connection], _T], db: sqlite3.Connection
) -> _T:
    """``begin``, ``work(db)``, COMMIT — or ROLLBACK on any failure (on the SQLite thread)."""
    db.execute(begin)
    try:
        result = work(db)
        db.execute("COMMIT")
    except BaseException:
        if db.in_transaction:
            db.execute("ROLLBACK")
        raise
    return result


async def _on_thread(connection: Any, work: Callable[[sqlite3.Connection], _T]) -> _T:
    """Run ``work(sqlite3_connection)`` as one call on the aiosqlite connection's thread.

    aiosqlite runs every call of a connection on that connection's one thread, and
    each call is a round trip between the event loop and that thread (~40 us of CPU
    measured here, more under load: the two threads hand the GIL back and forth).
    Its own methods (``execute``, ``commit`` …) are each one such call, made with
    ``Connection._execute``; mmsd uses the same entry point to run a whole
    transaction — BEGIN, its statements, COMMIT — as one call instead of one per
    statement (aiosqlite is pinned; tests/store covers this path).
    """
    call: asyncio.Future[_T] = asyncio.ensure_future(
        connection._execute(lambda: work(connection._conn))
    )
    # A cancelled caller still waits for the call to end (committed or rolled back), so
    # when a store method returns, by value or by CancelledError, its work is settled.
    cancelled = False
    while True:
        try:
            result = await asyncio.shield(call)
            break
        except asyncio.CancelledError:
            if call.done():
                raise
            cancelled = True
    if cancelled:
        raise asyncio.CancelledError
    return result


def _chunks(items: Sequence[Any], size: int = _CHUNK) -> Iterable[Sequence[Any]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]


def _marks(count: int) -> str:
    return ", ".join("?" * count)


# A meeting's outcome and details, inserted or updated; a confirmed PATCH stays
# ``updated`` whatever is recorded later (a resumed run cannot undo a sent update).
_UPSERT_MEETING = (
    "INSERT INTO meeting_transactions (migration_id, event_id, outcome, subject, "
    "start_time, reason, old_join_url, new_join_url, created_at, updated_at) "
    "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?) "
    "ON CONFLICT (migration_id, event_id) DO UPDATE SET "
    "outcome = CASE WHEN patch_state = 'confirmed' THEN 'updated' "
    "  ELSE excluded.outcome END, "
    "reason = CASE WHEN patch_state = 'confirmed' THEN reason "
    "  ELSE excluded.reason END, "
    "subject = COALESCE(excluded.subject, subject), "
    "start_time = COALESCE(excluded.start_time, start_time), "
    "old_join_url = COALESCE(excluded.old_join_url, old_join_url), "
    "new_join_url = COALESCE(excluded.new_join_url, new_join_url), "
    "updated_at = excluded.updated_at"
)


def _meeting_row(migration_id: int, txn: MeetingTransaction, now: int) -> tuple[Any, ...]:
    """The parameters of :data:`_UPSERT_MEETING` for one transaction."""
    return (
        migration_id,
        txn.event_id,
        str(txn.outcome),
        txn.subject,
        None if txn.start is None else _us(txn.start),
        txn.reason,
        txn.old_join_url,
        txn.new_join_url,
        now,
        now,
    )


class Store:
    """The durable store. Open with :meth:`open`; every method commits before it returns."""

    def __init__(
        self,
        writer: Any,
        reader: Any,
        clock: Clock,
        retention: timedelta,
        new_id: Callable[[], str],
    ) -> None:
        """Use :meth:`open`; this takes two open aiosqlite connections."""
        self._db = writer
        self._ro = reader
        self._clock = clock
        self.retention = retention
        self._new_id = new_id

    # ---------------------------------------------------------------- lifecycle

    @classmethod
    async def open(
        cls,
        path: Path | str,
        *,
        clock: Clock | None = None,
        retention: timedelta = DEFAULT_RETENTION,
        new_id: Callable[[], str] | None = None,
    ) -> Store:
        """Open (creating if needed) the database at ``path``, WAL, schema migrations applied."""
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        clock = clock or SystemClock()
        writer = await aiosqlite.connect(path, isolation_level=None)
        try:
            writer.row_factory = sqlite3.Row
            mode = await writer.execute_fetchall("PRAGMA journal_mode=WAL")
            if str(next(iter(mode))[0]).lower() != "wal":
                raise StoreError(f"SQLite refused WAL mode for {path}")
            for pragma in (
                f"PRAGMA synchronous={SYNCHRONOUS}",
                f"PRAGMA busy_timeout={BUSY_TIMEOUT_MS}",
                "PRAGMA foreign_keys=ON",
                f"PRAGMA cache_size=-{CACHE_KIB}",
                "PRAGMA temp_store=MEMORY",
            ):
                await writer.execute(pragma)
            await migrate(writer, _us(clock.now()))
            reader = await aiosqlite.connect(path, isolation_level=None)
        except BaseException:
            await writer.close()
            raise
        reader.row_factory = sqlite3.Row
        for pragma in (
            f"PRAGMA busy_timeout={BUSY_TIMEOUT_MS}",
            "PRAGMA query_only=ON",
            f"PRAGMA cache_size=-{CACHE_KIB}",
        ):
            await reader.execute(pragma)
        return cls(writer, reader, clock, retention, new_id or (lambda: str(uuid.uuid4())))

    async def close(self) -> None:
        """Close both connections (waiting for any write in progress)."""
        # Calls already queued on each connection's thread run before its close.
        await self._ro.close()
        await self._db.close()

    async def __aenter__(self) -> Store:
        """``async with await Store.open(...) as store``."""
        return self

    async def __aexit__(self, *exc: object) -> None:
        """Close the store."""
        await self.close()

    def now(self) -> datetime:
        """The store's clock (the one record times come from)."""
        return self._clock.now()

    async def _writing(self, work: Callable[[sqlite3.Connection], _T]) -> _T:
        """Run ``work`` as one write transaction (BEGIN IMMEDIATE … COMMIT) on the writer.

        The whole transaction is one call on aiosqlite's thread (see :func:`_on_thread`):
        it commits or rolls back there, to the end, even when the caller is
        cancelled meanwhile, and the next transaction is queued behind it.
        """
        return await _on_thread(self._db, partial(_in_transaction, "BEGIN IMMEDIATE", work))

    async def _reading(self, work: Callable[[sqlite3.Connection], _T]) -> _T:
        """Run ``work`` (one statement: SQLite reads it from one snapshot) on the reader.

        One call on the reader's thread, as :func:`_on_thread` makes, but not waited for
        to the end when the caller is cancelled: a read leaves nothing to settle.
        """
        result: _T = await self._ro._execute(lambda: work(self._ro._conn))
        return result

    async def _snapshot(self, work: Callable[[sqlite3.Connection], _T]) -> _T:
        """Run ``work`` (several statements that must agree) in one read transaction."""
        return await _on_thread(self._ro, partial(_in_transaction, "BEGIN", work))

    # ------------------------------------------------------------------ tenants

    async def get_switches(self, tenant: str) -> TenantSwitches:
        """The tenant's switches; SPEC defaults when never set."""

        def work(db: sqlite3.Connection) -> TenantSwitches:
            return self._switches(db, tenant)

        return await self._reading(work)

    @staticmethod
    def _switches(db: Any, tenant: str) -> TenantSwitches:
        rows = list(
            _fetchall(
                db,
                "SELECT meeting_migration_enabled, automatically_migrate_user_meetings, "
                "automatically_replace_acp_provider FROM tenants WHERE tenant = ?",
                (tenant,),
            )
        )
        if not rows:
            return TenantSwitches()
        row = rows[0]
        return TenantSwitches(bool(row[0]), bool(row[1]), bool(row[2]))

    async def set_switches(self, tenant: str, switches: TenantSwitches) -> None:
        """Replace the tenant's switches."""

        def work(db: sqlite3.Connection) -> None:
            self._put_switches(db, tenant, switches)

        await self._writing(work)

    def _put_switches(self, db: Any, tenant: str, switches: TenantSwitches) -> None:
        db.execute(
            "INSERT INTO tenants (tenant, meeting_migration_enabled, "
            "automatically_migrate_user_meetings, automatically_replace_acp_provider, "
            "modified_at) VALUES (?, ?, ?, ?, ?) ON CONFLICT (tenant) DO UPDATE SET "
            "meeting_migration_enabled = excluded.meeting_migration_enabled, "
            "automatically_migrate_user_meetings = excluded.automatically_migrate_user_meetings, "
            "automatically_replace_acp_provider = excluded.automatically_replace_acp_provider, "
            "modified_at = excluded.modified_at",
            (
                tenant,
                int(switches.meeting_migration_enabled),
                int(switches.automatically_migrate_user_meetings),
                int(switches.automatically_replace_acp_provider),
                _us(self.now()),
            ),
        )

    async def update_switches(
        self,
        tenant: str,
        *,
        meeting_migration_enabled: bool | None = None,
        automatically_migrate_user_meetings: bool | None = None,
        automatically_replace_acp_provider: bool | None = None,
    ) -> TenantSwitches:
        """Change the given switches atomically (a PATCH) and return all three."""

        def work(db: sqlite3.Connection) -> TenantSwitches:
            old = self._switches(db, tenant)
            new = TenantSwitches(
                old.meeting_migration_enabled
                if meeting_migration_enabled is None
                else meeting_migration_enabled,
                old.automatically_migrate_user_meetings
                if automatically_migrate_user_meetings is None
                else automatically_migrate_user_meetings,
                old.automatically_replace_acp_provider
                if automatically_replace_acp_provider is None
                else automatically_replace_acp_provider,
            )
            self._put_switches(db, tenant, new)
            return new

        return await self._writing(work)

    # -------------------------------------------------------- users & profiles

    async def remember_user(self, tenant: str, user_id: str, upn: str | None) -> None:
        """Cache a user's object ID and UPN (a known UPN is never replaced by None)."""

        def work(db: sqlite3.Connection) -> None:
            self._remember_users(db, tenant, [(user_id, upn)])

        await self._writing(work)

    def _remember_users(
        self, db: Any, tenant: str, users: Sequence[tuple[str, str | None]]
    ) -> None:
        now = _us(self.now())
        db.executemany(
            "INSERT INTO users (tenant, user_id, upn, seen_at) VALUES (?, ?, ?, ?) "
            "ON CONFLICT (tenant, user_id) DO UPDATE SET "
            "upn = COALESCE(excluded.upn, users.upn), seen_at = excluded.seen_at",
            [(tenant, user_id, upn, now) for user_id, upn in users],
        )

    async def resolve_identity(self, tenant: str, identity: str) -> KnownUser | None:
        """The cached user whose object ID is ``identity`` or whose UPN is (case-insensitively)."""

        def work(db: sqlite3.Connection) -> KnownUser | None:
            users = self._resolve(db, tenant, identity)
            return users[0] if users else None

        return await self._reading(work)

    @staticmethod
    def _resolve(db: Any, tenant: str, identity: str) -> list[KnownUser]:
        rows = _fetchall(
            db,
            "SELECT user_id, upn FROM users WHERE tenant = ? AND user_id = ? "
            "UNION SELECT user_id, upn FROM users WHERE tenant = ? AND upn = ? COLLATE NOCASE",
            (tenant, identity, tenant, identity),
        )
        return [KnownUser(row[0], row[1]) for row in rows]

    def _user_ids(self, db: Any, tenant: str, identity: str) -> list[str]:
        ids = {user.user_id for user in self._resolve(db, tenant, identity)}
        ids.add(identity)
        return sorted(ids)

    async def get_profile(self, tenant: str, user_id: str) -> ConferencingProfile | None:
        """The user's stored conferencing profile, if any trigger reported one."""

        def work(db: sqlite3.Connection) -> ConferencingProfile | None:
            return self._profile(db, tenant, user_id)

        return await self._reading(work)

    @staticmethod
    def _profile(db: Any, tenant: str, user_id: str) -> ConferencingProfile | None:
        rows = list(
            _fetchall(
                db,
                "SELECT profile FROM profiles WHERE tenant = ? AND user_id = ?",
                (tenant, user_id),
            )
        )
        return ConferencingProfile.from_json(json.loads(rows[0][0])) if rows else None

    async def set_profile(self, tenant: str, user_id: str, profile: ConferencingProfile) -> None:
        """Replace the user's stored conferencing profile."""

        def work(db: sqlite3.Connection) -> None:
            self._put_profile(db, tenant, user_id, profile)

        await self._writing(work)

    def _put_profile(
        self, db: Any, tenant: str, user_id: str, profile: ConferencingProfile
    ) -> None:
        db.execute(
            "INSERT INTO profiles (tenant, user_id, profile, updated_at) VALUES (?, ?, ?, ?) "
            "ON CONFLICT (tenant, user_id) DO UPDATE SET profile = excluded.profile, "
            "updated_at = excluded.updated_at",
            (tenant, user_id, json.dumps(profile.to_json()), _us(self.now())),
        )

    async def update_profile(
        self, tenant: str, user_id: str, conferencing: ConferencingProfile
    ) -> tuple[ConferencingProfile | None, ConferencingProfile]:
        """Merge a trigger's ``conferencing`` into the stored profile; return (before, after)."""

        def work(db: sqlite3.Connection) -> tuple[ConferencingProfile | None, ConferencingProfile]:
            before = self._profile(db, tenant, user_id)
            after = (before or ConferencingProfile()).merged_with(conferencing)
            self._put_profile(db, tenant, user_id, after)
            return before, after

        return await self._writing(work)

    # ----------------------------------------------------------------- triggers

    async def record_trigger(self, trigger: Trigger) -> None:
        """Store a trigger as received (with whatever fate it already carries)."""
        await self.record_triggers([trigger])

    async def record_triggers(self, triggers: Sequence[Trigger]) -> None:
        """Store many triggers in one transaction."""

        def work(db: sqlite3.Connection) -> None:
            db.executemany(
                f"INSERT INTO triggers ({_TRIGGER_COLUMNS}) "
                "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                [
                    (
                        t.id,
                        t.tenant,
                        str(t.type),
                        t.identity,
                        t.user_id,
                        _us(t.received_at),
                        _trigger_details(t),
                        str(t.fate),
                        None if t.reason is None else str(t.reason),
                        t.correlation_id,
                        t.message,
                        None if t.decided_at is None else _us(t.decided_at),
                    )
                    for t in triggers
                ],
            )

        await self._writing(work)

    async def set_trigger_fate(
        self,
        trigger_id: str,
        fate: TriggerFate,
        *,
        reason: IgnoreReason | None = None,
        correlation_id: str | None = None,
        message: str | None = None,
        user_id: str | None = None,
    ) -> None:
        """Record what became of a trigger (``user_id`` once its identity is resolved)."""

        def work(db: sqlite3.Connection) -> None:
            self._set_fate(db, [(trigger_id, fate, reason, correlation_id, message, user_id)])

        await self._writing(work)

    def _set_fate(
        self,
        db: Any,
        fates: Sequence[_Fate],
    ) -> None:
        now = _us(self.now())
        cursor = db.executemany(
            "UPDATE triggers SET fate = ?, reason = ?, correlation_id = ?, message = ?, "
            "user_id = COALESCE(?, user_id), decided_at = ? WHERE trigger_id = ?",
            [
                (
                    str(fate),
                    None if reason is None else str(reason),
                    correlation_id,
                    message,
                    user_id,
                    None if fate is TriggerFate.PENDING else now,
                    trigger_id,
                )
                for trigger_id, fate, reason, correlation_id, message, user_id in fates
            ],
        )
        if cursor.rowcount != len(fates):
            raise StoreError("set_trigger_fate: unknown trigger ID")

    async def get_trigger(self, trigger_id: str) -> Trigger | None:
        """One trigger by its ID."""

        def work(db: sqlite3.Connection) -> Trigger | None:
            rows = list(
                _fetchall(
                    db,
                    f"SELECT {_TRIGGER_COLUMNS} FROM triggers WHERE trigger_id = ?",
                    (trigger_id,),
                )
            )
            return _trigger(rows[0]) if rows else None

        return await self._reading(work)

    async def list_triggers(
        self,
        tenant: str,
        *,
        identity: str | None = None,
        since: datetime | None = None,
        limit: int | None = None,
    ) -> list[Trigger]:
        """The tenant's triggers, oldest first; ``identity`` matches object ID or UPN."""
        clauses = ["tenant = ?"]
        params: list[Any] = [tenant]
        if since is not None:
            clauses.append("received_at >= ?")
            params.append(_us(since))

        def work(db: sqlite3.Connection) -> list[Trigger]:
            if identity is not None:
                ids = self._user_ids(db, tenant, identity)
                names = {identity, *(u.upn for u in self._resolve(db, tenant, identity))}
                names.discard(None)
                clauses.append(
                    f"(user_id IN ({_marks(len(ids))}) OR identity IN ({_marks(len(ids))}) "
                    f"OR identity COLLATE NOCASE IN ({_marks(len(names))}))"
                )
                params.extend([*ids, *ids, *sorted(str(n) for n in names)])
            sql = (
                f"SELECT {_TRIGGER_COLUMNS} FROM triggers WHERE {' AND '.join(clauses)} "
                "ORDER BY received_at, seq"
            )
            if limit is not None:
                sql += " LIMIT ?"
                params.append(limit)
            rows = _fetchall(db, sql, params)
            return [_trigger(row) for row in rows]

        return await self._snapshot(work)

    # ------------------------------------------------------------- migrations

    async def enqueue_migration(
        self,
        tenant: str,
        user_id: str,
        upn: str | None,
        source: SourceMeetingType,
        target: TargetMeetingType,
        reason: str,
        *,
        trigger_id: str | None = None,
        not_before: datetime | None = None,
    ) -> Enqueued:
        """Create a Pending migration for the user, or join the one already Pending.

        Joining merges (source, target) with :func:`mmsd.domain.rules.merge` and
        sets ``lastMessage`` to ``reason``. A migration that has started once
        (retrying, or waiting for quota) is never joined: its updated meetings
        would keep the old block, so a new migration is queued behind it.
        With ``trigger_id``, the trigger's fate (``migrated`` when created,
        ``coalesced`` when joined) commits in the same transaction.
        ``not_before`` holds the migration (e.g. the coalescing window); it
        defaults to now and is not moved by joins.
        """
        request = EnqueueRequest(user_id, upn, source, target, reason, trigger_id, not_before)
        return (await self.enqueue_migrations(tenant, [request]))[0]

    async def enqueue_migrations(
        self, tenant: str, requests: Sequence[EnqueueRequest]
    ) -> list[Enqueued]:
        """:meth:`enqueue_migration` for many users in one transaction (a wave of triggers)."""
        results: list[Enqueued] = []

        def work(db: sqlite3.Connection) -> list[Enqueued]:
            now = _us(self.now())
            for chunk in _chunks(requests):
                results.extend(self._enqueue_chunk(db, tenant, chunk, now))
            return results

        return await self._writing(work)

    def _enqueue_chunk(
        self, db: Any, tenant: str, chunk: Sequence[EnqueueRequest], now: int
    ) -> list[Enqueued]:
        user_ids = sorted({r.user_id for r in chunk})
        rows = _fetchall(
            db,
            "SELECT correlation_id, user_id, source, target FROM migrations "
            "WHERE tenant = ? AND state = 'Pending' AND started_at IS NULL "
            f"AND user_id IN ({_marks(len(user_ids))})",
            (tenant, *user_ids),
        )
        queued: dict[str, _Queued] = {
            row["user_id"]: _Queued(
                row["correlation_id"],
                SourceMeetingType(row["source"]),
                TargetMeetingType(row["target"]),
                not_before=0,
                is_new=False,
            )
            for row in rows
        }
        results: list[Enqueued] = []
        fates: list[_Fate] = []
        for r in chunk:
            entry = queued.get(r.user_id)
            created = entry is None
            if entry is None:
                not_before = now if r.not_before is None else _us(r.not_before)
                entry = _Queued(self._new_id(), r.source, r.target, not_before, is_new=True)
                queued[r.user_id] = entry
            else:
                entry.source, entry.target = merge(
                    (entry.source, entry.target), (r.source, r.target)
                )
            entry.upn = r.upn if r.upn is not None else entry.upn
            entry.reason = r.reason
            results.append(Enqueued(entry.correlation_id, created))
            if r.trigger_id is not None:
                fate = TriggerFate.MIGRATED if created else TriggerFate.COALESCED
                fates.append((r.trigger_id, fate, None, entry.correlation_id, r.reason, r.user_id))
        db.executemany(
            "INSERT INTO migrations (correlation_id, tenant, user_id, upn, state, source, "
            "target, create_date, modified_date, not_before, last_message) "
            "VALUES (?, ?, ?, ?, 'Pending', ?, ?, ?, ?, ?, ?)",
            [
                (
                    e.correlation_id,
                    tenant,
                    user_id,
                    e.upn,
                    str(e.source),
                    str(e.target),
                    now,
                    now,
                    e.not_before,
                    e.reason,
                )
                for user_id, e in queued.items()
                if e.is_new
            ],
        )
        db.executemany(
            "UPDATE migrations SET source = ?, target = ?, upn = COALESCE(?, upn), "
            "last_message = ?, modified_date = ? WHERE correlation_id = ?",
            [
                (str(e.source), str(e.target), e.upn, e.reason, now, e.correlation_id)
                for e in queued.values()
                if not e.is_new and e.reason is not None
            ],
        )
        self._remember_users(db, tenant, [(r.user_id, r.upn) for r in chunk])
        if fates:
            self._set_fate(db, fates)
        return results

    async def claim_runnable(
        self, tenant: str, limit: int = 1, *, message: str | None = None
    ) -> list[StatusRecord]:
        """Move up to ``limit`` runnable Pending migrations to InProgress and return them.

        Runnable: ``not_before`` has passed, MMS is enabled for the tenant, and
        the user has no InProgress migration and no older Pending one (a
        user's migrations run one at a time, in order). Queue order is
        ``not_before``, then creation. ``message``, when given, replaces
        ``lastMessage``; the quota-wait flag is cleared.
        """

        def work(db: sqlite3.Connection) -> list[StatusRecord]:
            if not (self._switches(db, tenant)).meeting_migration_enabled:
                return []
            now = _us(self.now())
            rows = _fetchall(
                db,
                "SELECT m.id FROM migrations m WHERE m.tenant = ? AND m.state = 'Pending' "
                "AND m.not_before <= ? AND NOT EXISTS (SELECT 1 FROM migrations o "
                "WHERE o.tenant = m.tenant AND o.user_id = m.user_id AND o.id <> m.id AND "
                "(o.state = 'InProgress' OR (o.state = 'Pending' AND o.id < m.id))) "
                "ORDER BY m.not_before, m.id LIMIT ?",
                (tenant, now, limit),
            )
            ids = [row[0] for row in rows]
            if not ids:
                return []
            db.execute(
                "UPDATE migrations SET state = 'InProgress', claimed_at = ?, "
                "started_at = COALESCE(started_at, ?), waiting_for_quota = 0, "
                f"modified_date = ?, last_message = COALESCE(?, last_message) "
                f"WHERE id IN ({_marks(len(ids))})",
                (now, now, now, message, *ids),
            )
            claimed = _fetchall(
                db,
                f"SELECT {_MIGRATION_COLUMNS} FROM migrations WHERE id IN ({_marks(len(ids))}) "
                "ORDER BY not_before, id",
                ids,
            )
            return [_record(row) for row in claimed]

        return await self._writing(work)

    async def get_migration(self, correlation_id: str) -> StatusRecord | None:
        """One status record by correlation ID."""

        def work(db: sqlite3.Connection) -> StatusRecord | None:
            rows = list(
                _fetchall(
                    db,
                    f"SELECT {_MIGRATION_COLUMNS} FROM migrations WHERE correlation_id = ?",
                    (correlation_id,),
                )
            )
            return _record(rows[0]) if rows else None

        return await self._reading(work)

    def _migration(self, db: Any, correlation_id: str) -> sqlite3.Row:
        rows = list(
            _fetchall(
                db,
                f"SELECT {_MIGRATION_COLUMNS} FROM migrations WHERE correlation_id = ?",
                (correlation_id,),
            )
        )
        if not rows:
            raise UnknownMigration(correlation_id)
        row: sqlite3.Row = rows[0]
        return row

    async def _transition(
        self,
        correlation_id: str,
        allowed: Iterable[MigrationState],
        assignments: str,
        params: Sequence[Any],
    ) -> StatusRecord:
        """Check the state, apply ``SET assignments``, bump modifiedDate, return the record."""

        def work(db: sqlite3.Connection) -> StatusRecord:
            row = self._migration(db, correlation_id)
            state = MigrationState(row["state"])
            if state not in set(allowed):
                raise InvalidTransition(f"migration {correlation_id} is {state}")
            db.execute(
                f"UPDATE migrations SET {assignments}, modified_date = ? WHERE id = ?",
                (*params, _us(self.now()), row["id"]),
            )
            return _record(self._migration(db, correlation_id))

        return await self._writing(work)

    async def update_progress(
        self,
        correlation_id: str,
        *,
        total_meeting: int | None = None,
        last_message: str | None = None,
    ) -> StatusRecord:
        """Set ``totalMeeting`` and/or ``lastMessage`` of an InProgress migration."""
        return await self._transition(
            correlation_id,
            [MigrationState.IN_PROGRESS],
            "total_meeting = COALESCE(?, total_meeting), last_message = COALESCE(?, last_message)",
            (total_meeting, last_message),
        )

    async def finish(
        self, correlation_id: str, state: MigrationState, last_message: str | None
    ) -> StatusRecord:
        """End an InProgress migration as Succeeded or Failed."""
        if not state.finished:
            raise InvalidTransition(f"finish needs Succeeded or Failed, not {state}")
        now = _us(self.now())
        return await self._transition(
            correlation_id,
            [MigrationState.IN_PROGRESS],
            "state = ?, last_message = ?, finished_at = ?",
            (str(state), last_message, now),
        )

    async def reschedule(
        self, correlation_id: str, *, not_before: datetime, last_message: str
    ) -> StatusRecord:
        """Put an InProgress migration back to Pending for another attempt (retryCount + 1)."""
        return await self._transition(
            correlation_id,
            [MigrationState.IN_PROGRESS],
            "state = 'Pending', retry_count = retry_count + 1, not_before = ?, "
            "last_message = ?, waiting_for_quota = 0",
            (_us(not_before), last_message),
        )

    async def wait_for_quota(
        self, correlation_id: str, *, until: datetime, last_message: str
    ) -> StatusRecord:
        """Park an InProgress migration until the sending quota allows more (no attempt spent)."""
        return await self._transition(
            correlation_id,
            [MigrationState.IN_PROGRESS],
            "state = 'Pending', not_before = ?, last_message = ?, waiting_for_quota = 1",
            (_us(until), last_message),
        )

    async def release(
        self, correlation_id: str, *, last_message: str | None = None
    ) -> StatusRecord:
        """Return an InProgress migration to Pending at once, no attempt spent (drain, restart)."""
        return await self._transition(
            correlation_id,
            [MigrationState.IN_PROGRESS],
            "state = 'Pending', not_before = ?, last_message = COALESCE(?, last_message)",
            (_us(self.now()), last_message),
        )

    # ------------------------------------------------------ meeting transactions

    def _migration_id(self, db: Any, correlation_id: str) -> int:
        rows = list(
            _fetchall(db, "SELECT id FROM migrations WHERE correlation_id = ?", (correlation_id,))
        )
        if not rows:
            raise UnknownMigration(correlation_id)
        return int(rows[0][0])

    def _recount(self, db: Any, migration_id: int, now: int) -> None:
        db.execute(
            "UPDATE migrations SET "
            "succeeded_meeting = (SELECT COUNT(*) FROM meeting_transactions "
            "  WHERE migration_id = :id AND outcome = 'updated'), "
            "failed_meeting = (SELECT COUNT(*) FROM meeting_transactions "
            "  WHERE migration_id = :id AND outcome = 'failed'), "
            "skipped_meeting = (SELECT COUNT(*) FROM meeting_transactions "
            "  WHERE migration_id = :id AND outcome = 'skipped'), "
            "invites_update = (SELECT COALESCE(SUM(invites), 0) FROM meeting_transactions "
            "  WHERE migration_id = :id), "
            "modified_date = :now WHERE id = :id",
            {"id": migration_id, "now": now},
        )

    def _meeting(self, db: Any, migration_id: int, event_id: str) -> MeetingTransaction:
        rows = list(
            _fetchall(
                db,
                f"SELECT {_TXN_COLUMNS} FROM meeting_transactions t JOIN migrations m "
                "ON m.id = t.migration_id WHERE t.migration_id = ? AND t.event_id = ?",
                (migration_id, event_id),
            )
        )
        if not rows:
            raise StoreError(f"no transaction for event {event_id}")
        return _transaction(rows[0])

    async def record_meeting(self, txn: MeetingTransaction) -> MeetingTransaction:
        """Insert or update a meeting's outcome and details (not its PATCH state).

        A meeting whose PATCH is confirmed stays ``updated`` whatever is
        recorded later, so a resumed run cannot turn a sent update into a failure.
        """

        def work(db: sqlite3.Connection) -> MeetingTransaction:
            mid = self._migration_id(db, txn.correlation_id)
            now = _us(self.now())
            db.execute(
                _UPSERT_MEETING,
                _meeting_row(mid, txn, now),
            )
            self._recount(db, mid, now)
            return self._meeting(db, mid, txn.event_id)

        return await self._writing(work)

    async def record_intent(
        self,
        correlation_id: str,
        event_id: str,
        *,
        block_digest: str,
        new_join_url: str | None = None,
        old_join_url: str | None = None,
        subject: str | None = None,
        start: datetime | None = None,
    ) -> bool:
        """Record, durably, that this meeting is about to be PATCHed; False means do not send.

        Allowed only from PATCH state ``none``: a meeting already ``confirmed``
        must never be PATCHed again in this migration, and one in ``intent`` or
        ``unknown`` must be read back first (:meth:`mark_patched` or
        :meth:`clear_intent`).
        """
        granted = await self.record_intents(
            correlation_id,
            [PatchIntent(event_id, block_digest, new_join_url, old_join_url, subject, start)],
        )
        return event_id in granted

    async def _patch_transition(
        self,
        correlation_id: str,
        event_id: str,
        allowed: Sequence[PatchState],
        assignments: str,
        params: Sequence[Any],
    ) -> MeetingTransaction:
        def work(db: sqlite3.Connection) -> MeetingTransaction:
            mid = self._migration_id(db, correlation_id)
            now = _us(self.now())
            states = [str(s) for s in allowed]
            cursor = db.execute(
                f"UPDATE meeting_transactions SET {assignments}, updated_at = ? "
                f"WHERE migration_id = ? AND event_id = ? "
                f"AND patch_state IN ({_marks(len(states))})",
                (*params, now, mid, event_id, *states),
            )
            if cursor.rowcount != 1:
                current = self._meeting(db, mid, event_id)
                raise InvalidTransition(
                    f"meeting {event_id} is in PATCH state {current.patch_state}"
                )
            self._recount(db, mid, now)
            return self._meeting(db, mid, event_id)

        return await self._writing(work)

    async def mark_patched(
        self,
        correlation_id: str,
        event_id: str,
        *,
        invites: int,
        new_join_url: str | None = None,
        note: str | None = None,
    ) -> MeetingTransaction:
        """The PATCH applied (2xx, or recognised on read-back): outcome ``updated``, for good.

        ``note``: kept as the meeting's ``reason`` (e.g. that Outlook's Join button
        keeps the old link); None leaves no reason.
        """
        now = _us(self.now())
        return await self._patch_transition(
            correlation_id,
            event_id,
            [PatchState.INTENT, PatchState.UNKNOWN],
            "patch_state = 'confirmed', outcome = 'updated', reason = ?, invites = ?, "
            "new_join_url = COALESCE(?, new_join_url), patched_at = ?",
            (note, invites, new_join_url, now),
        )

    async def mark_unknown(
        self, correlation_id: str, event_id: str, *, message: str
    ) -> MeetingTransaction:
        """The PATCH was sent but its answer was lost: read the event back before anything else."""
        return await self._patch_transition(
            correlation_id,
            event_id,
            [PatchState.INTENT, PatchState.UNKNOWN],
            "patch_state = 'unknown', reason = ?",
            (message,),
        )

    async def clear_intent(
        self,
        correlation_id: str,
        event_id: str,
        *,
        outcome: MeetingOutcome = MeetingOutcome.PENDING,
        reason: str | None = None,
    ) -> MeetingTransaction:
        """The PATCH did not apply (a definite error, or read-back shows the old block).

        The meeting returns to PATCH state ``none`` with ``outcome`` (``failed``
        with a reason, or ``pending`` to try again) and may get a new intent.
        """
        if outcome is MeetingOutcome.UPDATED:
            raise InvalidTransition("an update is recorded with mark_patched")
        return await self._patch_transition(
            correlation_id,
            event_id,
            [PatchState.INTENT, PatchState.UNKNOWN],
            "patch_state = 'none', outcome = ?, reason = ?",
            (str(outcome), reason),
        )

    async def record_meetings(self, txns: Sequence[MeetingTransaction]) -> None:
        """:meth:`record_meeting` for many meetings in one transaction (one recount per migration).

        The same rules as one by one: a meeting whose PATCH is confirmed stays
        ``updated``. Used for a chunk's skips and failures, so each costs a row,
        not a commit.
        """
        if not txns:
            return

        def work(db: sqlite3.Connection) -> None:
            now = _us(self.now())
            ids: dict[str, int] = {}
            for txn in txns:
                if txn.correlation_id not in ids:
                    ids[txn.correlation_id] = self._migration_id(db, txn.correlation_id)
            db.executemany(
                _UPSERT_MEETING,
                [_meeting_row(ids[txn.correlation_id], txn, now) for txn in txns],
            )
            for mid in ids.values():
                self._recount(db, mid, now)

        await self._writing(work)

    async def record_intents(self, correlation_id: str, intents: Sequence[PatchIntent]) -> set[str]:
        """:meth:`record_intent` for a chunk in one transaction; returns the event IDs granted.

        Every intent is on disk when this returns, so the caller may send the
        granted PATCHes (and only those) afterwards.
        """
        if not intents:
            return set()

        def work(db: sqlite3.Connection) -> set[str]:
            mid = self._migration_id(db, correlation_id)
            now = _us(self.now())
            rows = [(it, None if it.start is None else _us(it.start)) for it in intents]
            db.executemany(
                "INSERT INTO meeting_transactions (migration_id, event_id, outcome, "
                "subject, start_time, old_join_url, new_join_url, created_at, updated_at) "
                "VALUES (?, ?, 'pending', ?, ?, ?, ?, ?, ?) "
                "ON CONFLICT (migration_id, event_id) DO NOTHING",
                [
                    (
                        mid,
                        it.event_id,
                        it.subject,
                        start,
                        it.old_join_url,
                        it.new_join_url,
                        now,
                        now,
                    )
                    for it, start in rows
                ],
            )
            # Inside this IMMEDIATE transaction nothing else writes: the meetings in PATCH
            # state 'none' now are exactly those the UPDATE below moves to 'intent'.
            granted: set[str] = set()
            for chunk in _chunks([it.event_id for it in intents]):
                found = _fetchall(
                    db,
                    "SELECT event_id FROM meeting_transactions WHERE migration_id = ? "
                    f"AND patch_state = 'none' AND event_id IN ({_marks(len(chunk))})",
                    (mid, *chunk),
                )
                granted.update(str(row[0]) for row in found)
            db.executemany(
                "UPDATE meeting_transactions SET patch_state = 'intent', outcome = 'pending', "
                "reason = NULL, block_digest = ?, new_join_url = COALESCE(?, new_join_url), "
                "old_join_url = COALESCE(?, old_join_url), subject = COALESCE(?, subject), "
                "start_time = COALESCE(?, start_time), attempts = attempts + 1, "
                "intent_at = ?, updated_at = ? "
                "WHERE migration_id = ? AND event_id = ? AND patch_state = 'none'",
                [
                    (
                        it.block_digest,
                        it.new_join_url,
                        it.old_join_url,
                        it.subject,
                        start,
                        now,
                        now,
                        mid,
                        it.event_id,
                    )
                    for it, start in rows
                    if it.event_id in granted
                ],
            )
            self._recount(db, mid, now)
            return granted

        return await self._writing(work)

    async def mark_patched_many(
        self, correlation_id: str, patched: Sequence[PatchedMeeting]
    ) -> None:
        """:meth:`mark_patched` for a chunk in one transaction (all or none).

        Raises :class:`InvalidTransition` (and records nothing) when any of the
        meetings is not in PATCH state ``intent`` or ``unknown``.
        """
        if not patched:
            return

        def work(db: sqlite3.Connection) -> None:
            mid = self._migration_id(db, correlation_id)
            now = _us(self.now())
            cursor = db.executemany(
                "UPDATE meeting_transactions SET patch_state = 'confirmed', "
                "outcome = 'updated', reason = ?, invites = ?, "
                "new_join_url = COALESCE(?, new_join_url), patched_at = ?, updated_at = ? "
                "WHERE migration_id = ? AND event_id = ? "
                "AND patch_state IN ('intent', 'unknown')",
                [(p.note, p.invites, p.new_join_url, now, now, mid, p.event_id) for p in patched],
            )
            if cursor.rowcount != len(patched):  # one was not awaiting its PATCH: undo all
                for p in patched:
                    current = self._meeting(db, mid, p.event_id)
                    if current.patch_state is not PatchState.CONFIRMED or current.patched_at != (
                        _dt(now)
                    ):
                        raise InvalidTransition(
                            f"meeting {p.event_id} is in PATCH state {current.patch_state}"
                        )
                raise InvalidTransition("a meeting was listed twice")
            self._recount(db, mid, now)

        await self._writing(work)

    async def meeting_transactions(self, correlation_id: str) -> list[MeetingTransaction]:
        """Every meeting transaction of one migration, by event ID."""

        def work(db: sqlite3.Connection) -> list[MeetingTransaction]:
            rows = _fetchall(
                db,
                f"SELECT {_TXN_COLUMNS} FROM meeting_transactions t JOIN migrations m "
                "ON m.id = t.migration_id WHERE m.correlation_id = ? ORDER BY t.event_id",
                (correlation_id,),
            )
            return [_transaction(row) for row in rows]

        return await self._reading(work)

    async def pending_intents(self, correlation_id: str) -> list[MeetingTransaction]:
        """The migration's meetings in PATCH state intent/unknown: read them back first."""
        return [t for t in await self.meeting_transactions(correlation_id) if t.intent_recorded]

    # ------------------------------------------------------------------ queries

    async def status(
        self,
        tenant: str,
        *,
        identity: str | None = None,
        state: MigrationState | None = None,
        start_time: datetime | None = None,
        end_time: datetime | None = None,
        latest_only: bool = True,
        limit: int | None = None,
    ) -> list[StatusRecord]:
        """Status records, oldest first (``Get-CsMeetingMigrationStatus``).

        By default each user's latest record only; ``state`` and the inclusive
        ``start_time``/``end_time`` range on ``createDate`` filter those.
        ``identity`` is an object ID or UPN.
        """
        params: list[Any] = [tenant]

        def work(db: sqlite3.Connection) -> list[StatusRecord]:
            user_filter = ""
            if identity is not None:
                ids = self._user_ids(db, tenant, identity)
                user_filter = f" AND user_id IN ({_marks(len(ids))})"
                params.extend(ids)
            if latest_only:
                sql = (
                    f"SELECT {_MIGRATION_COLUMNS_M} FROM migrations m JOIN ("
                    f"SELECT MAX(id) AS id FROM migrations WHERE tenant = ?{user_filter} "
                    "GROUP BY user_id) latest ON latest.id = m.id WHERE 1 = 1"
                )
            else:
                sql = (
                    f"SELECT {_MIGRATION_COLUMNS_M} FROM migrations m WHERE tenant = ?{user_filter}"
                )
            if state is not None:
                sql += " AND m.state = ?"
                params.append(str(state))
            if start_time is not None:
                sql += " AND m.create_date >= ?"
                params.append(_us(start_time))
            if end_time is not None:
                sql += " AND m.create_date <= ?"
                params.append(_us(end_time))
            sql += " ORDER BY m.id"
            if limit is not None:
                sql += " LIMIT ?"
                params.append(limit)
            rows = _fetchall(db, sql, params)
            return [_record(row) for row in rows]

        return await self._snapshot(work)

    async def summary(self, tenant: str) -> dict[MigrationState, int]:
        """Users per state, each user counted once by its latest record; all four states."""

        def work(db: sqlite3.Connection) -> dict[MigrationState, int]:
            return self._summary(db, tenant)

        return await self._reading(work)

    @staticmethod
    def _summary(db: Any, tenant: str) -> dict[MigrationState, int]:
        counts = dict.fromkeys(MigrationState, 0)
        rows = _fetchall(
            db,
            "SELECT m.state, COUNT(*) FROM migrations m JOIN (SELECT MAX(id) AS id "
            "FROM migrations WHERE tenant = ? GROUP BY user_id) latest ON latest.id = m.id "
            "GROUP BY m.state",
            (tenant,),
        )
        for row in rows:
            counts[MigrationState(row[0])] = int(row[1])
        return counts

    async def history(
        self, tenant: str, identity: str, *, correlation_id: str | None = None
    ) -> list[MeetingTransaction]:
        """Per-meeting history of a user's migrations, oldest migration first, then by start."""

        def work(db: sqlite3.Connection) -> list[MeetingTransaction]:
            ids = self._user_ids(db, tenant, identity)
            sql = (
                f"SELECT {_TXN_COLUMNS} FROM migrations m JOIN meeting_transactions t "
                f"ON t.migration_id = m.id WHERE m.tenant = ? AND m.user_id IN "
                f"({_marks(len(ids))})"
            )
            params: list[Any] = [tenant, *ids]
            if correlation_id is not None:
                sql += " AND m.correlation_id = ?"
                params.append(correlation_id)
            sql += " ORDER BY m.id, t.start_time, t.event_id"
            rows = _fetchall(db, sql, params)
            return [_transaction(row) for row in rows]

        return await self._snapshot(work)

    async def queue_metrics(self, tenant: str) -> QueueMetrics:
        """Users per state and the ages the alerts watch, from one snapshot."""
        now = _us(self.now())

        def work(db: sqlite3.Connection) -> QueueMetrics:
            counts = self._summary(db, tenant)
            rows = list(
                _fetchall(
                    db,
                    "SELECT "
                    "(SELECT MIN(not_before) FROM migrations WHERE tenant = :t AND "
                    "  state = 'Pending' AND waiting_for_quota = 0 AND not_before <= :now), "
                    "(SELECT MIN(claimed_at) FROM migrations WHERE tenant = :t AND "
                    "  state = 'InProgress'), "
                    "(SELECT COUNT(*) FROM migrations WHERE tenant = :t AND state = 'Pending' "
                    "  AND waiting_for_quota = 1), "
                    "(SELECT COUNT(*) FROM migrations WHERE tenant = :t AND state = 'Pending')",
                    {"t": tenant, "now": now},
                )
            )
            oldest_pending, oldest_claim, quota, pending = rows[0]
            return QueueMetrics(
                users_by_state=counts,
                oldest_pending_seconds=0.0
                if oldest_pending is None
                else (now - oldest_pending) / 1e6,
                oldest_in_progress_seconds=0.0
                if oldest_claim is None
                else max(0.0, (now - oldest_claim) / 1e6),
                pending_waiting_for_quota=int(quota),
                pending_total=int(pending),
            )

        return await self._snapshot(work)

    async def recovery(self, tenant: str | None = None) -> Recovery:
        """After a restart: InProgress migrations to resume, PATCHes to verify, triggers to decide."""
        where = "" if tenant is None else " AND m.tenant = ?"
        params: tuple[Any, ...] = () if tenant is None else (tenant,)

        def work(db: sqlite3.Connection) -> Recovery:
            migrations = _fetchall(
                db,
                f"SELECT {_MIGRATION_COLUMNS_M} FROM migrations m "
                f"WHERE m.state = 'InProgress'{where} ORDER BY m.id",
                params,
            )
            intents = _fetchall(
                db,
                f"SELECT {_TXN_COLUMNS} FROM meeting_transactions t JOIN migrations m "
                "ON m.id = t.migration_id WHERE t.patch_state IN ('intent', 'unknown')"
                f"{where} ORDER BY m.id, t.event_id",
                params,
            )
            triggers = _fetchall(
                db,
                f"SELECT {_TRIGGER_COLUMNS} FROM triggers WHERE fate = 'pending'"
                f"{'' if tenant is None else ' AND tenant = ?'} ORDER BY seq",
                params,
            )
            return Recovery(
                in_progress=[_record(row) for row in migrations],
                open_intents=[_transaction(row) for row in intents],
                undecided_triggers=[_trigger(row) for row in triggers],
            )

        return await self._snapshot(work)

    # ---------------------------------------------------------------- retention

    async def prune(self, older_than: datetime | None = None) -> PruneResult:
        """Delete finished records (and their meetings) and decided triggers past retention.

        ``older_than`` defaults to now minus :attr:`retention`; records are aged
        by ``modifiedDate``, triggers by when they were received. Pending and
        InProgress records and undecided triggers are never pruned.
        """
        cutoff = _us(older_than if older_than is not None else self.now() - self.retention)

        def work(db: sqlite3.Connection) -> PruneResult:
            txn_rows = list(
                _fetchall(
                    db,
                    "SELECT COUNT(*) FROM meeting_transactions WHERE migration_id IN ("
                    "SELECT id FROM migrations WHERE state IN ('Succeeded', 'Failed') "
                    "AND modified_date < ?)",
                    (cutoff,),
                )
            )
            gone = db.execute(
                "DELETE FROM migrations WHERE state IN ('Succeeded', 'Failed') "
                "AND modified_date < ?",
                (cutoff,),
            )
            triggers = db.execute(
                "DELETE FROM triggers WHERE fate <> 'pending' AND received_at < ?", (cutoff,)
            )
            return PruneResult(int(gone.rowcount), int(txn_rows[0][0]), int(triggers.rowcount))

        return await self._writing(work)

    # ---------------------------------------------------------------- licence polling

    async def delta_link(self, tenant: str) -> str | None:
        """The tenant's ``users/delta`` link after its last completed round (None: no baseline yet)."""

        def work(db: sqlite3.Connection) -> str | None:
            rows = list(
                _fetchall(db, "SELECT delta_link FROM delta_links WHERE tenant = ?", (tenant,))
            )
            return str(rows[0][0]) if rows else None

        return await self._reading(work)

    async def licence_states(self, tenant: str, user_ids: Sequence[str]) -> dict[str, bool]:
        """The stored Audio Conferencing state of those of ``user_ids`` the store knows."""
        out: dict[str, bool] = {}
        unique = sorted(set(user_ids))

        def work(db: sqlite3.Connection) -> dict[str, bool]:
            for chunk in _chunks(unique):
                rows = _fetchall(
                    db,
                    "SELECT user_id, audio_conferencing FROM licence_states "
                    f"WHERE tenant = ? AND user_id IN ({_marks(len(chunk))})",
                    (tenant, *chunk),
                )
                out.update({str(row[0]): bool(row[1]) for row in rows})
            return out

        return await self._snapshot(work)

    async def save_licence_round(
        self, tenant: str, states: Mapping[str, bool], delta_link: str | None
    ) -> None:
        """Store users' licence states and, when given, the round's new delta link, atomically.

        A baseline stores its pages' states as it goes (``delta_link=None``) and the
        link with the last page, so a restart mid-baseline takes the baseline again.
        """

        def work(db: sqlite3.Connection) -> None:
            now = _us(self.now())
            db.executemany(
                "INSERT INTO licence_states (tenant, user_id, audio_conferencing, updated_at) "
                "VALUES (?, ?, ?, ?) ON CONFLICT (tenant, user_id) DO UPDATE SET "
                "audio_conferencing = excluded.audio_conferencing, updated_at = excluded.updated_at",
                [(tenant, uid, int(on), now) for uid, on in states.items()],
            )
            if delta_link is not None:
                db.execute(
                    "INSERT INTO delta_links (tenant, delta_link, updated_at) VALUES (?, ?, ?) "
                    "ON CONFLICT (tenant) DO UPDATE SET delta_link = excluded.delta_link, "
                    "updated_at = excluded.updated_at",
                    (tenant, delta_link, now),
                )

        await self._writing(work)

    # ---------------------------------------------------------------- sending quota

    async def recipients_sent(
        self, tenant: str, user_id: str, since: datetime
    ) -> list[tuple[datetime, int]]:
        """``(patched_at, invites)`` of the organizer's confirmed PATCHes since ``since``, oldest first.

        What the organizer's daily sending quota has spent, across all of their
        migrations: the engine restores its sending pacer with it after a restart.
        """

        def work(db: sqlite3.Connection) -> list[tuple[datetime, int]]:
            rows = _fetchall(
                db,
                "SELECT t.patched_at, t.invites FROM migrations m "
                "JOIN meeting_transactions t ON t.migration_id = m.id "
                "WHERE m.tenant = ? AND m.user_id = ? AND t.patch_state = 'confirmed' "
                "AND t.patched_at >= ? AND t.invites > 0 ORDER BY t.patched_at",
                (tenant, user_id, _us(since)),
            )
            return [(_dt_req(int(row[0])), int(row[1])) for row in rows]

        return await self._reading(work)
