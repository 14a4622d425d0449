"""Semantic comparison of blocks, and telling a template block from one edited by hand.

*Fingerprint.* Two blocks are the same when what an attendee sees and can click
is the same: the visible text (tags dropped, entities decoded, every run of
whitespace — CR, LF, tabs, no-break spaces, line wrapping — as one space) and
the ordered list of link targets (entities decoded, Safe Links unwrapped). Tag
names, attribute order, styles, extra ``span``/``o:p`` elements and newline
style do not count. Case does: passcodes are case-sensitive.

*Hand edits.* Every visible line of a block must be one Microsoft's or mmsd's
templates write (in a language :mod:`strings` knows): a known line or
``|``-separated list of known lines, a known ``Label:`` followed by a value, a
dial-in number line, a delimiter or the Skype ``[!OC(…)!]`` marker. Any other
line is a hand edit. Blocks in languages without strings are never reported.
"""

from __future__ import annotations

import re
from functools import lru_cache

from mmsd.domain.blocks import strings
from mmsd.domain.blocks.model import ContentType
from mmsd.domain.blocks.text import (
    collapse,
    html_links,
    html_visible_lines,
    text_links,
    text_visible_lines,
    unwrap_text_links,
    without_urls,
)

_PHONE = re.compile(r"\+?\(?\d[\d ().\-\u00a0]{5,}\d")
_ONLY_PUNCT = re.compile(r"^[\W_]*$")
_TRUNCATED_MARKER = re.compile(r"^\[!(?:OC\(\[\d*\]\)!\])?$", re.I)
_FULLWIDTH = str.maketrans({"：": ":", "？": "?", "（": "(", "）": ")", "\u00a0": " "})


@lru_cache(maxsize=256)
def fingerprint(block: str, content_type: ContentType) -> str:
    """What attendees see and click in a block, normalized as the module docstring says."""
    if content_type is ContentType.HTML:
        text = " ".join(html_visible_lines(block))
        links = html_links(block)
    else:
        text = collapse(unwrap_text_links(block))
        links = tuple(text_links(block))
    return collapse(text.translate(_FULLWIDTH)) + "\x1e" + "\x1f".join(links)


def same_block(a: str, b: str, content_type: ContentType) -> bool:
    """Whether two block fragments show and link the same thing."""
    if a == b:
        return True
    if content_type is ContentType.HTML and html_links(a) != html_links(b):
        return False  # cheaper than the visible text, and part of the fingerprint anyway
    return fingerprint(a, content_type) == fingerprint(b, content_type)


def looks_hand_edited(block: str, content_type: ContentType, language: str | None) -> bool:
    """Whether the block holds a line that no invitation template writes (see module docstring)."""
    primary = (language or "en").split("-", 1)[0].casefold()
    if primary not in strings.TEAMS:
        return False
    raw = (
        html_visible_lines(block) if content_type is ContentType.HTML else text_visible_lines(block)
    )
    lines = [_folded(line) for line in raw]
    i = 0
    while i < len(lines):
        step = _known_run(lines, i)
        if step == 0:
            return True
        i += step
    return False


def _known_run(lines: list[str], i: int) -> int:
    """How many lines from ``i`` on form one template line (a wrapped text line: up to 3); 0: none."""
    joined = lines[i]
    for k in range(3):
        if k:
            if i + k >= len(lines):
                break
            joined = f"{joined} {lines[i + k]}"
        if _known(joined):
            return k + 1
    return 0


@lru_cache(maxsize=4096)
def _folded(line: str) -> str:
    """A visible line without URLs, folded; cached, since template lines recur in every block."""
    return strings.fold(without_urls(line))


@lru_cache(maxsize=4096)
def _known(line: str) -> bool:
    if not line or _ONLY_PUNCT.match(line) or _TRUNCATED_MARKER.match(line):
        return True
    if _known_piece(line):
        return True
    pieces = [p.strip() for p in line.split("|")]
    if len(pieces) > 1 and all(not p or _known_piece(p) for p in pieces):
        return True
    return _PHONE.search(line) is not None


def _known_piece(piece: str) -> bool:
    if piece in strings.TEMPLATE_LINES:
        return True
    head, _, rest = piece.partition(" ")
    if len(head) == 1 and rest in strings.TEMPLATE_LINES:
        return True  # the Wingdings arrow glyph before "Join Skype Meeting"
    return any(piece.startswith(label) for label in strings.LABELS)
