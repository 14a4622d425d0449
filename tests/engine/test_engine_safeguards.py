"""SPEC section 3, step 5: the changeKey re-read besides If-Match, and the Join button note.

* Right before each PATCH batch the chunk's ``changeKey``s are read again: an
  organizer edit made after the listing survives even when Graph ignores
  ``If-Match`` (here the client drops the header).
* After Skype for Business -> Teams each such meeting's record and the status
  record's ``lastMessage`` note that Outlook's Join button keeps the old link.
"""

from __future__ import annotations

import dataclasses
from collections.abc import AsyncIterator, Sequence
from typing import Any

from engine_checks import patch_delta, trigger, updated_events
from engine_testkit import TENANT, Harness
from prometheus_client.parser import text_string_to_metric_families

from mmsd.domain.blocks import BlockKind, FoundBlock, find_block
from mmsd.domain.model import MeetingOutcome, MigrationState, SkipReason
from mmsd.engine.migrate import JOIN_BUTTON_NOTE
from mmsd.graph import BatchItem, BatchResult
from mmsd.metrics import Metrics

MARKER = "ORGANIZER-EDIT-AFTER-LISTING-\u00e9\u4f1a"


async def test_an_edit_after_listing_survives_without_if_match(harness: Harness) -> None:
    h = harness
    user = (await h.users("ordinary"))[1]["id"]
    client = h.client()
    real_list, real_batch, real_patch = client.list_events, client.batch, client.patch_event
    edited: list[str] = []

    async def list_then_edit(*args: Any, **kwargs: Any) -> AsyncIterator[dict[str, Any]]:
        listed = [e async for e in real_list(*args, **kwargs)]
        for event in listed:
            yield event
        # The organizer edits the single meetings after mmsd read them, before any PATCH.
        for event in listed:
            if event.get("type") == "singleInstance" and len(edited) < 3 and not edited_all:
                current = await client.get_event(user, str(event["id"]))
                body = current["body"]["content"] + f"<p>{MARKER}</p>"
                await real_patch(
                    user, str(event["id"]), {"body": {"contentType": "html", "content": body}}
                )
                edited.append(str(event["id"]))
        edited_all.append(True)

    edited_all: list[bool] = []

    async def batch_without_if_match(items: Sequence[BatchItem]) -> list[BatchResult]:
        stripped = [
            dataclasses.replace(
                i, headers={k: v for k, v in i.headers.items() if k.lower() != "if-match"}
            )
            for i in items
        ]
        return [
            dataclasses.replace(r, item=i)
            for r, i in zip(await real_batch(stripped), items, strict=True)
        ]

    client.list_events = list_then_edit  # type: ignore[method-assign]
    client.batch = batch_without_if_match  # type: ignore[method-assign]
    before = await h.counters()
    engine = await h.start(client=client)
    try:
        await engine.submit_trigger(
            TENANT, trigger(h, {"type": "userMovedToOnline", "identity": user})
        )
        record = await h.wait_state(user, MigrationState.SUCCEEDED, MigrationState.FAILED)
        assert record.state is MigrationState.SUCCEEDED, record.last_message
        updated = await updated_events(h, user)
        redone = [e for e in edited if e in updated]
        assert redone, "at least one edited meeting is eligible"
        stored = {e["data"]["id"]: e for e in (await h.get(f"/events/{user}"))["value"]}
        patches = patch_delta(before, await h.counters())
        for event_id in redone:
            body = stored[event_id]["data"]["body"]
            assert MARKER in body["content"], "mmsd's PATCH overwrote the organizer's edit"
            found = find_block(body["content"], body["contentType"])
            assert isinstance(found, FoundBlock) and found.kind is BlockKind.TEAMS
            assert patches[event_id] == 2  # the organizer's edit and mmsd's one update
    finally:
        await engine.shutdown()
        h.engine = None
        await client.aclose()


async def test_skype_to_teams_notes_the_join_button(harness: Harness) -> None:
    h = harness
    # An SfB user's meetings carry Skype blocks; an ordinary user's Teams ones (no note).
    users = [(await h.users("sfbUser"))[0]["id"], (await h.users("ordinary"))[0]["id"]]
    engine = await h.start()
    for user in users:
        await engine.submit_trigger(
            TENANT,
            trigger(
                h,
                {
                    "type": "manualStart",
                    "identity": user,
                    "sourceMeetingType": "All",
                    "targetMeetingType": "Teams",
                },
            ),
        )
    noted_total = 0
    for user in users:
        record = await h.wait_state(user, MigrationState.SUCCEEDED, MigrationState.FAILED)
        assert record.state is MigrationState.SUCCEEDED, record.last_message
        assert h.store is not None
        history = await h.store.history(TENANT, user)
        updated = [t for t in history if t.outcome is MeetingOutcome.UPDATED]
        noted = [t for t in updated if t.reason == JOIN_BUTTON_NOTE]
        for txn in updated:
            was_teams = "teams.microsoft.com" in (txn.old_join_url or "")
            assert (txn in noted) is (not was_teams and txn.reason != "alreadyCurrent"), (
                txn.old_join_url,
                txn.new_join_url,
                record.target_meeting_type,
            )
        message = record.last_message or ""
        if noted:
            assert f"{len(noted)} meeting(s) moved from Skype for Business to Teams" in message, (
                message
            )
            assert "Join button keeps the old one" in message
        else:
            assert "Join button" not in message
        noted_total += len(noted)
    assert noted_total > 0, "the simulated tenant has Skype for Business meetings"


def test_meeting_gone_is_a_skip_reason_with_its_own_metric_label() -> None:
    assert str(SkipReason.MEETING_GONE) == "meetingGone"
    metrics = Metrics([TENANT])
    metrics.meeting_outcome(TENANT, "skipped", "meetingGone")
    found = {
        (s.labels["reason"], s.value)
        for family in text_string_to_metric_families(metrics.exposition().decode())
        for s in family.samples
        if s.name == "mmsd_meetings_total" and s.labels.get("outcome") == "skipped"
    }
    assert ("meetingGone", 1.0) in found  # its own label set, started at zero, counted
    assert ("other", 1.0) not in found
