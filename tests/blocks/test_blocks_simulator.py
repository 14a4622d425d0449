"""The simulator's generated invitations all parse (the generator and the engine share no code)."""

from __future__ import annotations

from collections import Counter
from datetime import UTC, datetime

import pytest

from mmsd.domain.blocks import (
    BlockFormat,
    BlockProblem,
    FoundBlock,
    MeetingDetails,
    SkipReason,
    find_block,
    render_block,
    replace_block,
)

generator = pytest.importorskip(
    "mmsd.sim.generator", reason="the simulator's generator is not there yet"
)


def test_every_generated_invitation_parses_and_its_join_link_is_found() -> None:
    state = generator.generate_tenant(7, datetime(2026, 3, 2, 9, tzinfo=UTC), 40, 6)
    formats: Counter[BlockFormat] = Counter()
    reasons: Counter[SkipReason] = Counter()
    online = 0
    for mailbox in state.events.values():
        for event in mailbox.values():
            data = event.data
            body = data.get("body") or {}
            content, ctype = body.get("content", ""), body.get("contentType", "html")
            found = find_block(content, ctype)
            assert isinstance(found, (FoundBlock, BlockProblem))
            if not data.get("isOnlineMeeting"):
                continue
            online += 1
            if isinstance(found, BlockProblem):
                reasons[found.reason] += 1
                continue
            formats[found.format] += 1
            join = (data.get("onlineMeeting") or {}).get("joinUrl")
            if join:
                assert join in found.join_urls
            new = render_block(
                found.kind,
                MeetingDetails(
                    join_url=found.join_url or "https://teams.microsoft.com/l/meetup-join/x/0"
                ),
                content_type=ctype,
                language=found.language,
            )
            result = replace_block(content, ctype, new)
            assert not isinstance(result, BlockProblem)
            assert result.body[: found.start] == content[: found.start]
            assert result.body[result.new_end :] == content[found.end :]
            again = replace_block(result.body, ctype, new)
            assert not isinstance(again, BlockProblem) and again.already_current
    # Every layout the generator writes is recognised; the rest are its deliberate special cases.
    assert set(formats) == set(BlockFormat)
    assert sum(formats.values()) >= 0.8 * online
    assert set(reasons) <= set(SkipReason)
