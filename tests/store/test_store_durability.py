"""Crash durability: whatever a store method reported is there after SIGKILL and reopen."""

from __future__ import annotations

import asyncio
import os
import signal
import sqlite3
import sys
import textwrap
from pathlib import Path

from mmsd.domain.model import MigrationState, PatchState
from mmsd.store import Store

REPO = str(Path(__file__).resolve().parents[2])

# The child enqueues, claims and records a PATCH intent for one user after
# another, and prints each correlation ID only after the store has returned —
# i.e. after it says the state is committed. It never stops by itself.
CHILD = textwrap.dedent(
    """
    import asyncio, sys
    from mmsd.domain.model import SourceMeetingType as S, TargetMeetingType as T
    from mmsd.store import Store

    async def main(path):
        store = await Store.open(path)
        i = 0
        while True:
            i += 1
            enq = await store.enqueue_migration("t", f"u{i}", None, S.ALL, T.CURRENT, "r")
            [rec] = await store.claim_runnable("t")
            assert await store.record_intent(rec.correlation_id, f"e{i}", block_digest="d")
            print(rec.correlation_id, flush=True)

    asyncio.run(main(sys.argv[1]))
    """
)


async def test_committed_rows_survive_sigkill(tmp_path: Path) -> None:
    path = tmp_path / "crash.sqlite3"
    env = {**os.environ, "PYTHONPATH": REPO}
    child = await asyncio.create_subprocess_exec(
        sys.executable, "-c", CHILD, str(path), stdout=asyncio.subprocess.PIPE, env=env
    )
    assert child.stdout is not None
    reported: list[str] = []
    try:
        async with asyncio.timeout(60):
            while len(reported) < 25:
                line = await child.stdout.readline()
                assert line, "the child stopped early"
                reported.append(line.decode().strip())
    finally:
        child.send_signal(signal.SIGKILL)  # mid-way: the child is writing its next rows
        await child.wait()
    assert child.returncode == -signal.SIGKILL

    with sqlite3.connect(path) as conn:
        assert conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"

    store = await Store.open(path)
    try:
        recovery = await store.recovery()
        in_progress = {r.correlation_id for r in recovery.in_progress}
        intents = {t.correlation_id: t for t in recovery.open_intents}
        for correlation_id in reported:
            record = await store.get_migration(correlation_id)
            assert record is not None and record.state is MigrationState.IN_PROGRESS
            assert correlation_id in in_progress
            assert intents[correlation_id].patch_state is PatchState.INTENT
        # Nothing half-applied: every migration that exists is whole, whatever the kill hit.
        for record in recovery.in_progress:
            assert record.started_at is not None
    finally:
        await store.close()
