"""Exactly once: lost answers, injected faults, 412s and an abrupt stop after Graph applied a PATCH."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from typing import Any
from urllib.parse import unquote

from engine_checks import expected_updates, message_delta, patch_delta, trigger, updated_events
from engine_testkit import TENANT, Harness

from mmsd.domain.model import MigrationState
from mmsd.graph import BatchItem, BatchResult, GraphLimits


async def _assert_exactly_once(
    h: Harness, users: list[str], before: dict[str, Any], after: dict[str, Any]
) -> None:
    patches = patch_delta(before, after)
    expected_messages: dict[str, int] = {}
    all_updated: set[str] = set()
    for user in users:
        updated = await updated_events(h, user)
        all_updated |= updated
        for mailbox, n in (await expected_updates(h, user, updated)).items():
            expected_messages[mailbox] = expected_messages.get(mailbox, 0) + n
    assert set(patches) == all_updated
    assert set(patches.values()) == {1}, "an event was PATCHed more than once"
    assert dict(message_delta(before, after)) == expected_messages


async def test_faults_and_lost_answers_all_succeed_exactly_once(harness: Harness) -> None:
    h = harness
    users = [u["id"] for u in await h.users() if u["kind"] in ("ordinary", "sfbUser")][:6]
    before = await h.counters()
    rates = {"http503": 0.06, "http504": 0.02, "reset": 0.02, "lostPatchAnswer": 0.1}
    await h.send("PUT", "/faults", {"rates": rates})
    engine = await h.start(patch_batch_size=1)  # a $batch part of one PATCH per meeting
    for user in users:
        await engine.submit_trigger(
            TENANT, trigger(h, {"type": "userMovedToOnline", "identity": user})
        )
    for user in users:
        record = await h.wait_state(
            user, MigrationState.SUCCEEDED, MigrationState.FAILED, within=120
        )
        assert h.store is not None
        history = [
            (t.event_id[-8:], str(t.outcome), t.reason, t.old_join_url, t.attempts)
            for t in await h.store.history(TENANT, user)
        ]
        assert record.state is MigrationState.SUCCEEDED, (record.last_message, history)
    await h.send("PUT", "/faults", {"rates": {}})
    after = await h.counters()
    assert after["faultsInjected"]["lostPatchAnswer"] > 0
    await _assert_exactly_once(h, users, before, after)


async def test_abrupt_stop_after_an_applied_patch_resumes_exactly_once(harness: Harness) -> None:
    h = harness
    user = (await h.users("ordinary"))[2]["id"]
    before = await h.counters()
    engine = await h.start(patch_batch_size=1)
    hold = await h.send("POST", "/holds", {"eventId": None})
    await engine.submit_trigger(TENANT, trigger(h, {"type": "userMovedToOnline", "identity": user}))
    await h.send("POST", "/holds/wait", {"holdId": hold["holdId"]})
    # Graph applied the PATCH and holds its answer: kill the engine like kill -9 would.
    await engine.abort()
    await h.send("POST", "/holds/release", {})
    assert h.store is not None
    recovery = await h.store.recovery(TENANT)
    assert [r.user_id for r in recovery.in_progress] == [user]
    assert len(recovery.open_intents) == 1
    h.engine = None
    await h.store.close()
    h.store = None
    await h.start(patch_batch_size=1)
    record = await h.wait_state(user, MigrationState.SUCCEEDED, MigrationState.FAILED)
    assert record.state is MigrationState.SUCCEEDED, record.last_message
    await _assert_exactly_once(h, [user], before, await h.counters())


async def test_412_from_an_organizer_edit_keeps_the_edit(harness: Harness) -> None:
    h = harness
    user = (await h.users("ordinary"))[1]["id"]
    client = h.client()
    real_batch = client.batch
    edited: list[str] = []
    marker = "ORGANIZER-EDIT-\u00e9\u4f1a"

    async def patch_after_a_concurrent_edit(items: Sequence[BatchItem]) -> list[BatchResult]:
        """Right before mmsd's first PATCH leaves, the organizer edits the same event."""
        patch = next((i for i in items if i.method == "PATCH"), None)
        if patch is not None and not edited:
            event_id = unquote(patch.url).rsplit("/", 1)[-1]
            edited.append(event_id)
            current = await client.get_event(user, event_id)  # html, as the organizer sees it
            body = current["body"]["content"] + f"<p>{marker}</p>"
            await client.patch_event(
                user, event_id, {"body": {"contentType": "html", "content": body}}
            )
        return await real_batch(items)

    client.batch = patch_after_a_concurrent_edit  # type: ignore[method-assign]
    await h.start(client=client, patch_batch_size=1)
    assert h.store is not None and h.engine is not None
    try:
        await h.engine.submit_trigger(
            TENANT, trigger(h, {"type": "userMovedToOnline", "identity": user})
        )
        record = await h.wait_state(user, MigrationState.SUCCEEDED, MigrationState.FAILED)
        assert record.state is MigrationState.SUCCEEDED, record.last_message
        (event_id,) = edited
        stored = {e["data"]["id"]: e for e in (await h.get(f"/events/{user}"))["value"]}
        assert stored[event_id]["patchCount"] == 2  # the organizer's edit and mmsd's one update
        assert marker in stored[event_id]["data"]["body"]["content"]
        assert event_id in await updated_events(h, user)
    finally:
        await h.engine.shutdown()
        h.engine = None
        await client.aclose()


async def test_meetings_that_keep_failing_are_retried_then_failed(harness: Harness) -> None:
    h = harness
    user = (await h.users("ordinary"))[3]["id"]
    client = h.client(limits=GraphLimits())

    real_batch = client.batch

    async def patches_always_refused(items: Sequence[BatchItem]) -> list[BatchResult]:
        """Every PATCH fails (500) without reaching Graph; the reads go through."""
        from mmsd.graph import GraphError

        boom = GraphError(500, "InternalServerError", "boom", operation="patch_event")
        reads = iter(await real_batch([i for i in items if i.method != "PATCH"]))
        return [
            BatchResult(i, 500, {}, None, boom) if i.method == "PATCH" else next(reads)
            for i in items
        ]

    client.batch = patches_always_refused  # type: ignore[method-assign]
    await h.start(client=client, patch_batch_size=1)
    assert h.store is not None and h.engine is not None
    retries: list[int] = []
    store = h.store

    async def watch() -> None:
        while True:
            records = await store.status(TENANT, identity=user)
            if records and records[-1].retry_count not in retries:
                retries.append(records[-1].retry_count)
            await asyncio.sleep(0.01)

    watcher = asyncio.create_task(watch())
    try:
        await h.engine.submit_trigger(
            TENANT, trigger(h, {"type": "userMovedToOnline", "identity": user})
        )
        record = await h.wait_state(user, MigrationState.FAILED, MigrationState.SUCCEEDED)
    finally:
        watcher.cancel()
        await h.engine.shutdown()
        h.engine = None
        await client.aclose()
    assert record.state is MigrationState.FAILED
    assert record.retry_count == 9
    assert retries == sorted(retries) and len(retries) >= 5
    assert record.last_message is not None
    assert "after 10 attempts" in record.last_message
    assert record.failed_meeting > 0
    reschedules = [c for c in h.observer.calls if c[0] == "migration_rescheduled"]
    assert len(reschedules) == 9
