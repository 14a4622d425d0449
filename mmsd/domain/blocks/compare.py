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

_PHONE_LINE = re.compile(
    r"(?:[^\W\d_]{1,12} ){0,2}"  # a short place before the number ("US 8773614628")
    r"\+?\(?\d[\d ().\-]{5,}\d(?:,,\d+#?)?"  # the number, maybe with ",,<conference ID>#"
    r"(?: [^\d|:]{1,60})?"  # a place and toll marker after it ("United States, Los Angeles (Toll)")
)
_VALUE = re.compile(r"(?:\d[\d ]*\d|\d)#?|[^\s|]+")
_VALUE_THEN = re.compile(r"(?:(?:\d[\d ]*\d|\d)#?|[^\s|]+) (\S.*)")
_ONLY_PUNCT = re.compile(r"^[\W_]*$")
_TRUNCATED_MARKER = re.compile(r"^\[!(?:OC\(\[\d*\]\)!\])?$", re.I)
_FULLWIDTH = str.maketrans({"：": ":", "？": "?", "（": "(", "）": ")", "\u00a0": " "})
_FULLWIDTH_PUNCTUATION = "：？（）"


@lru_cache(maxsize=256)
def fingerprint(block: str, content_type: ContentType) -> str:
    """What attendees see and click in a block, normalized as the module docstring says."""
    if content_type is ContentType.HTML:
        text = " ".join(html_visible_lines(block))
        links = html_links(block)
    else:
        text = collapse(unwrap_text_links(block))
        links = tuple(text_links(block))
    # ``text`` is collapsed already (its no-break spaces with it): translating and
    # collapsing again changes it only when it holds full-width punctuation.
    if not text.isascii() and any(c in text for c in _FULLWIDTH_PUNCTUATION):
        text = collapse(text.translate(_FULLWIDTH))
    return text + "\x1e" + "\x1f".join(links)


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
    lines = [folded_line(line) for line in raw]
    i = 0
    while i < len(lines):
        step = _known_run(lines, i)
        if step == 0 and i > 0 and _known(f"{lines[i - 1]} {lines[i]}"):
            step = 1  # the tail of a wrapped line whose head is known by itself ("ID:" / "1 2#")
        if step == 0:
            return True
        i += step
    return False


def _known_run(lines: list[str], i: int) -> int:
    """How many lines from ``i`` on form one template line; 0: none.

    A line known by itself is taken alone. Only an unknown line is joined with
    the next one or two (a text line wrapped by a mail client), and the joined
    line must then be known as a whole, so that a line added by hand next to a
    known one is never swallowed by it.
    """
    if _known(lines[i]):
        return 1
    joined = lines[i]
    for k in (1, 2):
        if i + k >= len(lines):
            break
        joined = f"{joined} {lines[i + k]}"
        if _known(joined):
            return k + 1
    return 0


@lru_cache(maxsize=4096)
def folded_line(line: str) -> str:
    """A visible line without URLs, folded; cached, since template lines recur in every block."""
    return strings.fold(without_urls(line))


@lru_cache(maxsize=4096)
def _known(line: str) -> bool:
    """Whether one (folded) visible line, as a whole, is one a template writes."""
    if not line or _ONLY_PUNCT.match(line) or _TRUNCATED_MARKER.match(line):
        return True
    if _known_piece(line) or _label_line(line) or _phone_line(line):
        return True
    pieces = [p.strip() for p in line.split("|")]
    return len(pieces) > 1 and all(not p or _known_piece(p) for p in pieces)


def _known_piece(piece: str) -> bool:
    """A template line, or one behind a single glyph (the Wingdings arrow of Skype's join link)."""
    if piece in strings.TEMPLATE_LINES:
        return True
    head, _, rest = piece.partition(" ")
    return len(head) == 1 and rest in strings.TEMPLATE_LINES


def _label_line(line: str) -> bool:
    """``Label: value`` (one value: an ID, a passcode), possibly followed by further pairs.

    ``For organizers:`` and ``Join:`` take a ``|``-list of template lines (their
    links) or nothing instead of a value.
    """
    for label in strings.LABELS:
        if not line.startswith(label):
            continue
        rest = line[len(label) :].strip()
        if not rest or _VALUE.fullmatch(rest):
            return True
        pieces = [p.strip() for p in rest.split("|")]
        if all(not p or _known_piece(p) for p in pieces):
            return True
        m = _VALUE_THEN.match(rest)
        if m is not None and _label_line(m.group(1)):
            return True
    return False


def _phone_line(line: str) -> bool:
    """A dial-in number line as a whole: an optional short place, the number, an optional place."""
    m = _PHONE_LINE.fullmatch(line)
    return m is not None
