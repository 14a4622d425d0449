"""Schema v2: the users/delta link and licence states survive a restart of the store."""

from __future__ import annotations

import sqlite3
from pathlib import Path

from store_clock import FakeClock

from mmsd.store import Store
from mmsd.store.schema import MIGRATIONS


async def test_no_link_before_a_baseline(store: Store) -> None:
    assert await store.delta_link("contoso") is None
    assert await store.licence_states("contoso", ["u1"]) == {}


async def test_round_is_kept_across_a_reopen(db_path: Path, clock: FakeClock) -> None:
    store = await Store.open(db_path, clock=clock)
    await store.save_licence_round("contoso", {"u1": True, "u2": False}, None)
    assert await store.delta_link("contoso") is None  # a baseline page: no link yet
    await store.save_licence_round("contoso", {"u3": True}, "https://graph/delta?token=1")
    await store.close()

    reopened = await Store.open(db_path, clock=clock)
    try:
        assert await reopened.delta_link("contoso") == "https://graph/delta?token=1"
        assert await reopened.delta_link("fabrikam") is None
        states = await reopened.licence_states("contoso", ["u1", "u2", "u3", "u4"])
        assert states == {"u1": True, "u2": False, "u3": True}
        await reopened.save_licence_round("contoso", {"u1": False}, "https://graph/delta?token=2")
        assert await reopened.licence_states("contoso", ["u1"]) == {"u1": False}
        assert await reopened.delta_link("contoso") == "https://graph/delta?token=2"
        assert await reopened.licence_states("fabrikam", ["u1"]) == {}
    finally:
        await reopened.close()


async def test_many_users_are_looked_up_in_chunks(store: Store) -> None:
    states = {f"user-{i:05d}": i % 3 == 0 for i in range(1_200)}
    await store.save_licence_round("contoso", states, "link")
    assert await store.licence_states("contoso", list(states)) == states


async def test_a_version_1_database_is_upgraded(db_path: Path, clock: FakeClock) -> None:
    db_path.parent.mkdir(parents=True, exist_ok=True)
    with sqlite3.connect(db_path) as conn:  # what an mmsd of schema version 1 left behind
        conn.execute(
            "CREATE TABLE schema_version (version INTEGER PRIMARY KEY, name TEXT NOT NULL,"
            " applied_at INTEGER NOT NULL)"
        )
        conn.executescript(MIGRATIONS[0].script)
        conn.execute("INSERT INTO schema_version VALUES (1, ?, 0)", (MIGRATIONS[0].name,))
    store = await Store.open(db_path, clock=clock)
    try:
        await store.save_licence_round("contoso", {"u1": True}, "link")
        assert await store.delta_link("contoso") == "link"
    finally:
        await store.close()
    with sqlite3.connect(db_path) as conn:
        versions = [row[0] for row in conn.execute("SELECT version FROM schema_version")]
    assert versions == [1, 2]
