"""The online-meeting block engine: find, render and replace Teams and Skype blocks.

Pure domain code (standard library only, no I/O). The public API:

* :func:`find_block(body, content_type) <find.find_block>` → :class:`FoundBlock`
  (kind, format, language, ``[start, end)`` offsets with the delimiter lines,
  join URL, meeting ID, passcode, conference ID) or :class:`BlockProblem` with a
  :class:`SkipReason` (``noBlock``, ``ambiguousBlock``, ``damagedBlock``). Never
  raises for odd input. How blocks are recognised: :mod:`.find`.
* :func:`render_block(target, details, *, content_type, language) <render.render_block>`
  → the new block (Teams: Microsoft's current ``meet_invite_block`` layout;
  Skype for Business: its Outlook layout) from :class:`MeetingDetails`, in the
  old block's language when :mod:`.strings` has it (en, de, zh), else English.
  Every value is escaped.
* :func:`replace_block(body, content_type, new_block) <replace.replace_block>`
  → :class:`ReplaceResult` (new body, ``already_current``, ``hand_edited``) or
  the :class:`BlockProblem`. Byte-exact outside the block, idempotent.
  :func:`replace_found(body, found, new_block) <replace.replace_found>` does the
  same for a :class:`FoundBlock` already found in ``body`` (no second search).
* :func:`carries_block(body, content_type, rendered_block) <replace.carries_block>`
  → whether the body already carries that block, compared semantically
  (visible text with whitespace collapsed + ordered link targets; see
  :mod:`.compare`), so a body Exchange re-serialised still counts.

Typical use by the migration engine::

    found = find_block(body, "html")
    if isinstance(found, BlockProblem): skip(found.reason)
    new = render_block("teams", details, content_type="html", language=found.language)
    result = replace_block(body, "html", new)      # PATCH result.body unless already_current
    ...after a crash: carries_block(read_back_body, "html", new)
"""

from mmsd.domain.blocks.find import find_block
from mmsd.domain.blocks.model import (
    BlockFormat,
    BlockKind,
    BlockProblem,
    ContentType,
    FindResult,
    FoundBlock,
    MeetingDetails,
    PhoneNumber,
    ReplaceResult,
    SkipReason,
)
from mmsd.domain.blocks.render import render_block
from mmsd.domain.blocks.replace import carries_block, replace_block, replace_found

__all__ = [
    "BlockFormat",
    "BlockKind",
    "BlockProblem",
    "ContentType",
    "FindResult",
    "FoundBlock",
    "MeetingDetails",
    "PhoneNumber",
    "ReplaceResult",
    "SkipReason",
    "carries_block",
    "find_block",
    "render_block",
    "replace_block",
    "replace_found",
]
