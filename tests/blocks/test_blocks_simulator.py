"""The simulator's generated invitations all parse (the generator and the engine share no code).

Per event, the outcome is checked against what the generator meant, as far as
it can be known from the outside: the number of delimiter lines in the body
(0: no block, 1: a damaged block, 2: one block, 4: two blocks). Per organizer,
the block's kind and language follow the user (its kind and preferred
language). Nothing of the generator is imported but ``generate_tenant`` and the
public attributes of what it returns.
"""

from __future__ import annotations

import re
from collections import Counter
from datetime import UTC, datetime

import pytest

from mmsd.domain.blocks import (
    BlockFormat,
    BlockKind,
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

# Delimiter runs of exactly 80 underscores / 137 dots (either kind counts as a line here).
DELIMITERS = re.compile(r"(?<!_)_{80}(?!_)|(?<!\.)\.{137}(?!\.)")
EXPECTED = {0: SkipReason.NO_BLOCK, 1: SkipReason.DAMAGED_BLOCK, 4: SkipReason.AMBIGUOUS_BLOCK}
SKYPE_USER_KINDS = {"sfbUser", "onPremisesMailbox"}
# Languages the generator writes invitations in; other users' blocks may be English.
WRITTEN = {"en", "de", "zh", "ja"}


@pytest.mark.parametrize("seed", [1, 7, 11])
def test_every_generated_invitation_parses_as_the_generator_meant(seed: int) -> None:
    state = generator.generate_tenant(seed, datetime(2026, 3, 2, 9, tzinfo=UTC), 40, 6)
    users = {u.id: u for u in state.users}
    formats: Counter[BlockFormat] = Counter()
    outcomes: Counter[str] = Counter()
    for mailbox in state.events.values():
        for event in mailbox.values():
            data = event.data
            body = data.get("body") or {}
            content, ctype = body.get("content", ""), body.get("contentType", "html")
            found = find_block(content, ctype)
            delimiters = len(DELIMITERS.findall(content))
            if delimiters != 2:
                assert isinstance(found, BlockProblem), (event.id, delimiters)
                assert found.reason is EXPECTED[delimiters], (event.id, found)
                outcomes[found.reason.value] += 1
                continue
            assert isinstance(found, FoundBlock), (event.id, found)
            outcomes["found"] += 1
            formats[found.format] += 1
            _check_found(content, ctype, found, data)
            organizer = users.get(event.organizer_id)
            if organizer is not None and event.copy.value == "organizer":
                _check_user(found, organizer.kind, organizer.preferred_language)
    assert set(formats) == set(BlockFormat)
    assert set(outcomes) == {"found", "noBlock", "damagedBlock", "ambiguousBlock"}
    assert outcomes["found"] >= 0.8 * sum(outcomes.values())


def _check_found(content: str, ctype: str, found: FoundBlock, data: dict[str, object]) -> None:
    """Join link as Graph states it, untouched block not a hand edit, replacement exact."""
    online = data.get("onlineMeeting")
    join = online.get("joinUrl") if isinstance(online, dict) else None
    if join:
        assert join in found.join_urls
    assert found.language is not None
    if found.kind is BlockKind.SKYPE:
        expected = BlockFormat.SKYPE_HTML if ctype == "html" else BlockFormat.SKYPE_TEXT
        assert found.format is expected
    else:
        assert found.format not in (BlockFormat.SKYPE_HTML, BlockFormat.SKYPE_TEXT)
    new = render_block(
        found.kind,
        MeetingDetails(join_url=found.join_url or "https://teams.microsoft.com/l/meetup-join/x/0"),
        content_type=ctype,
        language=found.language,
    )
    result = replace_block(content, ctype, new)
    assert not isinstance(result, BlockProblem)
    assert not result.hand_edited, found
    assert result.body[: found.start] == content[: found.start]
    assert result.body[result.new_end :] == content[found.end :]
    again = replace_block(result.body, ctype, new)
    assert not isinstance(again, BlockProblem) and again.already_current


def _check_user(found: FoundBlock, kind: str, preferred: str | None) -> None:
    """The organizer's kind decides Teams or Skype; its language the block's language."""
    skype = found.kind is BlockKind.SKYPE
    assert skype == (kind in SKYPE_USER_KINDS), (kind, found.format)
    assert found.language is not None
    user_primary = (preferred or "en").split("-", 1)[0]
    block_primary = found.language.split("-", 1)[0]
    if user_primary in WRITTEN:
        assert block_primary == user_primary, (preferred, found.language)
    else:
        assert block_primary in (user_primary, "en"), (preferred, found.language)
