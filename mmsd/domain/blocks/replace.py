"""Replace the block of a body with a new one, byte-exact outside it, idempotent.

``replace_block`` finds the one block (:func:`find.find_block`), and

* when the body already carries the new block — compared semantically by
  :func:`compare.same_block`, so a body that Exchange re-serialised (other
  whitespace or CRLF, attributes reordered, extra spans, entities) still
  counts — returns the body unchanged with ``already_current=True``;
* otherwise splices the new block in: ``body[:start] + new + body[end:]``, with
  the new block's line breaks made CRLF when the old block used CRLF. Nothing
  outside ``[start, end)`` is touched, whatever Unicode it holds (lone
  surrogates included): the engine works on ``str`` and never re-encodes.

``replace_found`` does the same for a block the caller has already found.

``carries_block`` is the check the migration engine uses after a crash or a lost
answer: the body holds exactly one block and it is the given rendered block.
"""

from __future__ import annotations

from mmsd.domain.blocks.compare import looks_hand_edited, same_block
from mmsd.domain.blocks.find import find_block
from mmsd.domain.blocks.model import (
    BlockProblem,
    ContentType,
    FoundBlock,
    ReplaceResult,
)


def replace_block(
    body: str, content_type: ContentType | str, new_block: str
) -> ReplaceResult | BlockProblem:
    """Swap the body's one online-meeting block for ``new_block``; a skip reason when it has none."""
    found = find_block(body, content_type)
    if isinstance(found, BlockProblem):
        return found
    return replace_found(body, found, new_block)


def replace_found(body: str, found: FoundBlock, new_block: str) -> ReplaceResult:
    """:func:`replace_block` for a block already found in ``body`` (no second search).

    ``found`` must be ``find_block(body, ...)``'s answer for this very ``body``; the
    engine classifies each meeting with :func:`find_block` once and reuses it.
    """
    ctype = found.content_type
    old = body[found.start : found.end]
    if same_block(old, new_block, ctype):
        return ReplaceResult(
            body=body,
            already_current=True,
            hand_edited=False,
            old=found,
            new_start=found.start,
            new_end=found.end,
        )
    fitted = _fit_newlines(new_block, old)
    new_body = body[: found.start] + fitted + body[found.end :]
    return ReplaceResult(
        body=new_body,
        already_current=False,
        hand_edited=looks_hand_edited(old, ctype, found.language),
        old=found,
        new_start=found.start,
        new_end=found.start + len(fitted),
    )


def carries_block(body: str, content_type: ContentType | str, rendered_block: str) -> bool:
    """Whether the body's single block is (semantically) ``rendered_block``."""
    found = find_block(body, content_type)
    if not isinstance(found, FoundBlock):
        return False
    return same_block(body[found.start : found.end], rendered_block, found.content_type)


def _fit_newlines(new_block: str, old_block: str) -> str:
    """The new block with CRLF line breaks when the old block had them, else as rendered."""
    if "\r" in old_block and "\r\n" in old_block:  # (one character first: fast when absent)
        return new_block.replace("\r\n", "\n").replace("\n", "\r\n")
    return new_block
