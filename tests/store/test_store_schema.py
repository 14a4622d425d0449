"""Opening the store: schema migrations in order, idempotent reopen, WAL, state directory."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest
from store_clock import FakeClock

from mmsd.domain.model import SourceMeetingType as S
from mmsd.domain.model import TargetMeetingType as T
from mmsd.store import Store, database_path, default_state_dir
from mmsd.store.schema import LATEST_VERSION, MIGRATIONS, SchemaTooNew, statements


def _versions(path: Path) -> list[tuple[int, str]]:
    with sqlite3.connect(path) as conn:
        return [
            (int(v), str(n)) for v, n in conn.execute("SELECT version, name FROM schema_version")
        ]


async def test_open_applies_every_migration_once(db_path: Path, clock: FakeClock) -> None:
    store = await Store.open(db_path, clock=clock)
    await store.close()
    expected = [(m.version, m.name) for m in MIGRATIONS]
    assert _versions(db_path) == expected
    assert [v for v, _ in expected] == sorted(v for v, _ in expected)

    # Reopening applies nothing new and keeps the data.
    store = await Store.open(db_path, clock=clock)
    await store.enqueue_migration("t", "u", None, S.ALL, T.CURRENT, "r")
    await store.close()
    store = await Store.open(db_path, clock=clock)
    assert len(await store.status("t")) == 1
    await store.close()
    assert _versions(db_path) == expected


async def test_database_is_in_wal_mode_with_tables(db_path: Path, clock: FakeClock) -> None:
    store = await Store.open(db_path, clock=clock)
    await store.close()
    with sqlite3.connect(db_path) as conn:
        assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
        tables = {
            row[0] for row in conn.execute("SELECT name FROM sqlite_master WHERE type='table'")
        }
    assert {
        "schema_version",
        "tenants",
        "users",
        "profiles",
        "migrations",
        "meeting_transactions",
        "triggers",
    } <= tables


async def test_newer_schema_is_refused(db_path: Path, clock: FakeClock) -> None:
    store = await Store.open(db_path, clock=clock)
    await store.close()
    with sqlite3.connect(db_path) as conn:
        conn.execute(
            "INSERT INTO schema_version VALUES (?, 'from the future', 0)", (LATEST_VERSION + 1,)
        )
    with pytest.raises(SchemaTooNew):
        await Store.open(db_path, clock=clock)


def test_every_migration_script_splits_into_complete_statements() -> None:
    for migration in MIGRATIONS:
        parts = statements(migration.script)
        assert parts and all(sqlite3.complete_statement(p) for p in parts)
        conn = sqlite3.connect(":memory:")
        for part in parts:
            conn.execute(part)  # each statement is valid SQL on its own
        conn.close()
    with pytest.raises(ValueError, match="incomplete"):
        statements("CREATE TABLE x (a INTEGER")


@pytest.mark.parametrize(
    ("env", "expected"),
    [
        (None, "/var/lib/mmsd"),
        ("", "/var/lib/mmsd"),
        ("/var/lib/mmsd-test", "/var/lib/mmsd-test"),
        ("/srv/a:/srv/b", "/srv/a"),
    ],
)
def test_default_state_dir(monkeypatch: pytest.MonkeyPatch, env: str | None, expected: str) -> None:
    if env is None:
        monkeypatch.delenv("STATE_DIRECTORY", raising=False)
    else:
        monkeypatch.setenv("STATE_DIRECTORY", env)
    assert default_state_dir() == Path(expected)
    assert database_path() == Path(expected) / "mmsd.sqlite3"
