"""``replace_found`` (the engine's splice with the block classify found) equals ``replace_block``."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st
from test_blocks_properties import SETTINGS, bodies, details

from mmsd.domain.blocks import (
    BlockProblem,
    FoundBlock,
    find_block,
    render_block,
    replace_block,
    replace_found,
)


@SETTINGS
@given(bodies(), st.sampled_from(["teams", "skype"]), st.data())
def test_replace_found_equals_replace_block(
    case: tuple[str, str, str, str], target: str, data: st.DataObject
) -> None:
    ctype, prefix, block, suffix = case
    body = prefix + block + suffix
    found = find_block(body, ctype)
    assert isinstance(found, FoundBlock)
    new = render_block(
        target, data.draw(details(target)), content_type=ctype, language=found.language
    )
    expected = replace_block(body, ctype, new)
    assert not isinstance(expected, BlockProblem)
    got = replace_found(body, found, new)
    assert got == expected
    # Also on the already-current path (the second run over the new body).
    again_found = find_block(got.body, ctype)
    assert isinstance(again_found, FoundBlock)
    again = replace_found(got.body, again_found, new)
    assert again.already_current and again == replace_block(got.body, ctype, new)
