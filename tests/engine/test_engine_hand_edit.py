"""Issue 3: a block edited by hand is overwritten, and the meeting's record says so."""

from __future__ import annotations

from engine_checks import trigger
from engine_testkit import TENANT, Harness

from mmsd.domain.blocks import FoundBlock, find_block
from mmsd.domain.model import MeetingOutcome, MigrationState
from mmsd.engine.migrate import HAND_EDIT_NOTE
from mmsd.sim.eventjson import parse_graph_datetime

ADDED = "Parking: level 3, ask at the desk (added by hand)"


async def test_a_hand_edited_block_is_replaced_and_recorded(harness: Harness) -> None:
    h = harness
    user = (await h.users("ordinary"))[0]["id"]
    now = h.sim.clock.now()
    edited_id = None
    for event in h.sim.state.mailbox_events(user).values():
        data = event.data
        body = data["body"]
        if not (
            data.get("isOrganizer")
            and data.get("type") == "singleInstance"
            and data.get("isOnlineMeeting")
            and body["contentType"] == "html"
            and parse_graph_datetime(data["start"]) > now
        ):
            continue
        found = find_block(body["content"], "html")
        if not isinstance(found, FoundBlock):
            continue
        # A paragraph of the organizer's own, inside the block, after its join link.
        cut = body["content"].index("</a>", body["content"].index(found.join_url)) + len("</a>")
        body["content"] = body["content"][:cut] + f"<p>{ADDED}</p>" + body["content"][cut:]
        edited_id = event.id
        break
    assert edited_id is not None, "the generated tenant has no future HTML Teams meeting"

    engine = await h.start()
    await engine.submit_trigger(TENANT, trigger(h, {"type": "conferenceIdReset", "identity": user}))
    record = await h.wait_state(user, MigrationState.SUCCEEDED, MigrationState.FAILED)
    assert record.state is MigrationState.SUCCEEDED, record.last_message
    assert h.store is not None
    history = {t.event_id: t for t in await h.store.history(TENANT, user)}
    assert history[edited_id].outcome is MeetingOutcome.UPDATED
    assert HAND_EDIT_NOTE in (history[edited_id].reason or "")
    others = [t for i, t in history.items() if i != edited_id]
    assert others and all(HAND_EDIT_NOTE not in (t.reason or "") for t in others)
    # The hand edit was inside the block, so it is gone with the old block.
    content = h.sim.state.mailbox_events(user)[edited_id].data["body"]["content"]
    assert ADDED not in content
