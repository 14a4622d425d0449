"""The store's schema as an ordered list of versioned migrations.

Each :class:`SchemaMigration` runs once, in its own transaction, and records
itself in ``schema_version``; reopening a database applies only what is new.
Append new versions at the end; never edit one that has shipped. Times are
integer microseconds since the Unix epoch (UTC): exact, compact and ordered.
The SQL avoids STRICT tables and RETURNING so that any SQLite >= 3.31 works.
"""

from __future__ import annotations

import sqlite3
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class SchemaMigration:
    """One schema version: its number, a name, and the SQL script that makes it."""

    version: int
    name: str
    script: str


_V1 = """
CREATE TABLE tenants (
    tenant TEXT PRIMARY KEY,
    meeting_migration_enabled INTEGER NOT NULL DEFAULT 1
        CHECK (meeting_migration_enabled IN (0, 1)),
    automatically_migrate_user_meetings INTEGER NOT NULL DEFAULT 1
        CHECK (automatically_migrate_user_meetings IN (0, 1)),
    automatically_replace_acp_provider INTEGER NOT NULL DEFAULT 0
        CHECK (automatically_replace_acp_provider IN (0, 1)),
    modified_at INTEGER NOT NULL
);

-- The object ID <-> UPN cache.
CREATE TABLE users (
    tenant TEXT NOT NULL,
    user_id TEXT NOT NULL,
    upn TEXT,
    seen_at INTEGER NOT NULL,
    PRIMARY KEY (tenant, user_id)
) WITHOUT ROWID;
CREATE INDEX users_by_upn ON users (tenant, upn COLLATE NOCASE);

-- Each user's conferencing profile (camelCase JSON), as the latest triggers reported it.
CREATE TABLE profiles (
    tenant TEXT NOT NULL,
    user_id TEXT NOT NULL,
    profile TEXT NOT NULL,
    updated_at INTEGER NOT NULL,
    PRIMARY KEY (tenant, user_id)
) WITHOUT ROWID;

-- Status records: one row per correlation ID; a user's latest is the highest id.
CREATE TABLE migrations (
    id INTEGER PRIMARY KEY,
    correlation_id TEXT NOT NULL UNIQUE,
    tenant TEXT NOT NULL,
    user_id TEXT NOT NULL,
    upn TEXT,
    state TEXT NOT NULL
        CHECK (state IN ('Pending', 'InProgress', 'Succeeded', 'Failed')),
    source TEXT NOT NULL CHECK (source IN ('All', 'SfB', 'Teams')),
    target TEXT NOT NULL CHECK (target IN ('Current', 'Teams')),
    create_date INTEGER NOT NULL,
    modified_date INTEGER NOT NULL,
    not_before INTEGER NOT NULL,
    waiting_for_quota INTEGER NOT NULL DEFAULT 0 CHECK (waiting_for_quota IN (0, 1)),
    started_at INTEGER,
    claimed_at INTEGER,
    finished_at INTEGER,
    retry_count INTEGER NOT NULL DEFAULT 0,
    last_message TEXT,
    total_meeting INTEGER NOT NULL DEFAULT 0,
    succeeded_meeting INTEGER NOT NULL DEFAULT 0,
    failed_meeting INTEGER NOT NULL DEFAULT 0,
    invites_update INTEGER NOT NULL DEFAULT 0,
    skipped_meeting INTEGER NOT NULL DEFAULT 0
);
-- A user has at most one Pending migration that has never started: triggers join it.
CREATE UNIQUE INDEX migrations_one_fresh_pending
    ON migrations (tenant, user_id) WHERE state = 'Pending' AND started_at IS NULL;
CREATE INDEX migrations_queue ON migrations (tenant, state, not_before, id);
CREATE INDEX migrations_by_user ON migrations (tenant, user_id, id);
CREATE INDEX migrations_by_create ON migrations (tenant, create_date);
CREATE INDEX migrations_by_modified ON migrations (modified_date);

-- What each migration did to each meeting, and the exactly-once PATCH state.
CREATE TABLE meeting_transactions (
    migration_id INTEGER NOT NULL REFERENCES migrations (id) ON DELETE CASCADE,
    event_id TEXT NOT NULL,
    outcome TEXT NOT NULL CHECK (outcome IN ('updated', 'skipped', 'failed', 'pending')),
    subject TEXT,
    start_time INTEGER,
    reason TEXT,
    old_join_url TEXT,
    new_join_url TEXT,
    patch_state TEXT NOT NULL DEFAULT 'none'
        CHECK (patch_state IN ('none', 'intent', 'confirmed', 'unknown')),
    block_digest TEXT,
    attempts INTEGER NOT NULL DEFAULT 0,
    invites INTEGER NOT NULL DEFAULT 0,
    created_at INTEGER NOT NULL,
    updated_at INTEGER NOT NULL,
    intent_at INTEGER,
    patched_at INTEGER,
    PRIMARY KEY (migration_id, event_id)
) WITHOUT ROWID;
CREATE INDEX meeting_open_intents
    ON meeting_transactions (migration_id) WHERE patch_state IN ('intent', 'unknown');

-- Every trigger and what became of it.
CREATE TABLE triggers (
    seq INTEGER PRIMARY KEY,
    trigger_id TEXT NOT NULL UNIQUE,
    tenant TEXT NOT NULL,
    type TEXT NOT NULL,
    identity TEXT,
    user_id TEXT,
    received_at INTEGER NOT NULL,
    details TEXT NOT NULL DEFAULT '{}',
    fate TEXT NOT NULL DEFAULT 'pending'
        CHECK (fate IN ('migrated', 'coalesced', 'ignored', 'pending')),
    reason TEXT,
    correlation_id TEXT,
    message TEXT,
    decided_at INTEGER
);
CREATE INDEX triggers_by_identity ON triggers (tenant, identity COLLATE NOCASE, received_at);
CREATE INDEX triggers_by_user ON triggers (tenant, user_id, received_at);
CREATE INDEX triggers_by_time ON triggers (tenant, received_at);
CREATE INDEX triggers_undecided ON triggers (tenant, seq) WHERE fate = 'pending';
"""

_V2 = """
-- Licence polling state per tenant, so that a restart resumes users/delta where it
-- stopped instead of taking a new baseline (which would miss changes made while
-- mmsd was down): the delta link of the last completed round...
CREATE TABLE delta_links (
    tenant TEXT PRIMARY KEY,
    delta_link TEXT NOT NULL,
    updated_at INTEGER NOT NULL
);

-- ...and each user's Audio Conferencing plan state as that round left it.
CREATE TABLE licence_states (
    tenant TEXT NOT NULL,
    user_id TEXT NOT NULL,
    audio_conferencing INTEGER NOT NULL CHECK (audio_conferencing IN (0, 1)),
    updated_at INTEGER NOT NULL,
    PRIMARY KEY (tenant, user_id)
) WITHOUT ROWID;
"""

MIGRATIONS: tuple[SchemaMigration, ...] = (
    SchemaMigration(1, "initial schema", _V1),
    SchemaMigration(2, "users/delta link and licence states per tenant", _V2),
)
"""Every schema version, in the order they apply."""

LATEST_VERSION = MIGRATIONS[-1].version


class SchemaTooNew(Exception):
    """The database was written by a newer mmsd; refusing to guess how to read it."""


async def applied_versions(db: Any) -> list[int]:
    """The versions recorded in ``schema_version`` (creating the table on first use)."""
    await db.execute(
        "CREATE TABLE IF NOT EXISTS schema_version ("
        " version INTEGER PRIMARY KEY, name TEXT NOT NULL, applied_at INTEGER NOT NULL)"
    )
    rows = await db.execute_fetchall("SELECT version FROM schema_version ORDER BY version")
    return [int(row[0]) for row in rows]


def statements(script: str) -> list[str]:
    """Split an SQL script into complete statements (comments and blank lines dropped)."""
    out: list[str] = []
    pending = ""
    for line in script.splitlines():
        if not pending and (not line.strip() or line.lstrip().startswith("--")):
            continue
        pending += line + "\n"
        if sqlite3.complete_statement(pending):
            out.append(pending.strip())
            pending = ""
    if pending.strip():
        raise ValueError(f"incomplete SQL statement: {pending.strip()[:60]}")
    return out


async def migrate(db: Any, now_us: int) -> list[int]:
    """Apply every migration not yet applied, each in its own transaction; return the new ones.

    ``db`` is an aiosqlite connection in autocommit mode (``isolation_level=None``).
    Each step re-checks ``schema_version`` under the write lock, so two
    processes opening the same new database cannot both apply it.
    """
    done = set(await applied_versions(db))
    if done and max(done) > LATEST_VERSION:
        raise SchemaTooNew(
            f"database schema version {max(done)} is newer than this mmsd ({LATEST_VERSION})"
        )
    applied: list[int] = []
    for step in MIGRATIONS:
        if step.version in done:
            continue
        await db.execute("BEGIN IMMEDIATE")
        try:
            rows = await db.execute_fetchall(
                "SELECT 1 FROM schema_version WHERE version = ?", (step.version,)
            )
            if not list(rows):
                for statement in statements(step.script):
                    await db.execute(statement)
                await db.execute(
                    "INSERT INTO schema_version (version, name, applied_at) VALUES (?, ?, ?)",
                    (step.version, step.name, now_us),
                )
                applied.append(step.version)
        except BaseException:
            await db.execute("ROLLBACK")
            raise
        await db.execute("COMMIT")
    return applied
