"""Find the one online-meeting block of an event body, with exact boundaries.

How a block is recognised, for HTML and text alike:

1. *Delimiter lines.* Teams blocks are bounded by a run of exactly 80
   underscores, Skype for Business blocks by exactly 137 dots. A run counts only
   when it is alone on its line: in text, nothing but spaces beside it on its
   line; in HTML, nothing but whitespace, ``&nbsp;`` and inline tags (``span``,
   ``b``, ``o:p``…) between it and the enclosing ``div``/``p`` — whose start and
   end tags are the line's boundaries. Longer or shorter runs, and runs inside a
   sentence, are not delimiters.
2. *Pairing.* Consecutive delimiter lines of one kind whose content holds a join
   link of that kind (a Teams ``meetup-join``/``meet`` URL, even wrapped by Safe
   Links; a Skype ``/meet/`` URL or ``OutJoinLink``) bound a block. A Teams block
   followed by a third delimiter line with only "Learn more | Meeting options"
   between takes that line in too. In HTML, a Teams ``me-email-text`` ``div``
   wrapping exactly the block (the newest layout) belongs to the block; the
   organizer's own ``div`` around it does not.
3. *Verdict.* One block → :class:`FoundBlock`. Two or more → ``ambiguousBlock``.
   A delimiter line left unpaired beside a join link, or a block marker
   (``meet_invite_block``, ``OutJoinLink``, ``[!OC(``) outside every block →
   ``damagedBlock``. Otherwise ``noBlock``; a lone delimiter line is not a block.

Never raises for odd input: every answer is a :class:`FoundBlock` or a
:class:`BlockProblem`.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from mmsd.domain.blocks import strings
from mmsd.domain.blocks.compare import folded_line
from mmsd.domain.blocks.model import (
    BlockFormat,
    BlockKind,
    BlockProblem,
    ContentType,
    FindResult,
    FoundBlock,
    SkipReason,
)
from mmsd.domain.blocks.text import (
    LINE_ELEMENTS,
    TAG_AT,
    html_links,
    html_visible_lines,
    text_links,
    text_visible_lines,
)

_EVIDENCE: dict[BlockKind, re.Pattern[str]] = {
    BlockKind.TEAMS: re.compile(
        r"teams\.(?:microsoft\.com|live\.com|microsoft\.us)(?:/|%2F)"
        r"(?:l(?:/|%2F)meetup-join|meet)(?:/|%2F)",
        re.I,
    ),
    BlockKind.SKYPE: re.compile(
        r"OutJoinLink|\[!OC\(\[|(?:/|%2F)meet(?:/|%2F)|(?://|%2F%2F)meet\.", re.I
    ),
}
_TEAMS_EVIDENCE_AT_DOT = re.compile(
    r"\.(?<=teams\.)(?:microsoft\.com|live\.com|microsoft\.us)(?:/|%2F)"
    r"(?:l(?:/|%2F)meetup-join|meet)(?:/|%2F)",
    re.I,
)
"""The Teams evidence pattern matched from its first dot (a literal: fast to search for),
"teams" checked behind it; a match at a dot ``d`` is the evidence pattern's at ``d - 5``."""
_MARKERS: dict[BlockKind, tuple[str, ...]] = {
    BlockKind.TEAMS: ("meet_invite_block.",),
    BlockKind.SKYPE: ("OutJoinLink", "[!OC(["),
}
_TAG_AT_FAST = re.compile(r"<(/?)([A-Za-z][A-Za-z0-9:_.-]*)(?:\s[^>]*)?/?>")
"""``TAG_AT`` with ``[^>]`` for ``[^<>]``: the same match when it holds no second ``<``."""
_MARKER_RARE_CHAR = {"meet_invite_block.": "_", "OutJoinLink": "J", "[!OC([": "!"}
"""A character of each marker that is rare in organizers' text."""
_TEAMS_CHROME = re.compile(r"meetingOptions|aka\.ms/JoinTeamsMeeting", re.I)
_TEAMS_JOIN_URL = re.compile(
    r"^https?://[^/?#]*teams\.(?:microsoft\.com|live\.com|microsoft\.us)/(?:l/meetup-join/|meet/)",
    re.I,
)
_SKYPE_JOIN_URL = re.compile(r"^https?://(?:meet\.[^/?#]+/[^?#]|[^/?#]+/meet/)", re.I)
_ME_EMAIL_TEXT = re.compile(r"""\bclass\s*=\s*["']?(?:[^"'>]*\s)?(?:x_)?me-email-text["'\s>]""")
_LANG_ATTR = re.compile(r"""\blang\s*=\s*["']?([A-Za-z]{2,3}(?:-[A-Za-z0-9]{2,8})*)""")
_LANG_PARAM = re.compile(r"[?&](?:amp;)?(?:language|omkt|localeCode)=([A-Za-z]{2,3}-[A-Za-z]{2,4})")
_OC_MARKER = re.compile(r"\[!OC\(\[(\d{3,5})\]\)!\]")
_CLID = re.compile(r"[?&](?:amp;)?clid=(\d{3,5})")
_ID_VALUE = re.compile(r"ID\s*:\s*(\d[\d \u00a0]*\d|\d)[ \u00a0]*(#?)")
_PASSCODE = re.compile(
    r"(?:Passcode|Kenncode|密码|密碼|パスコード|Code secret|Código de acceso|Contraseña|Senha"
    r"|Codice passcode)\s*:\s*(\S+)",
    re.I,
)
_PASSCODE_HINTS = (
    ("code", 4),  # Passcode, Kenncode
    ("cod", 0),  # Code secret, Codice passcode
    ("cód", 0),  # Código de acceso
    ("contra", 0),  # Contraseña
    ("enha", 1),  # Senha
    ("密", 0),  # 密码, 密碼
    ("パスコード", 0),
)
"""A piece of each ``_PASSCODE`` keyword (no i, k or s: ``re.I`` matches those to other
letters too) and its offset in the keyword."""
_NEWEST_LINE_STARTS = tuple(
    sorted(
        {strings.fold(s.join_now) for s in strings.TEAMS.values()}
        | {strings.fold(s.for_organizers) for s in strings.TEAMS.values()}
    )
)
"""How the newest layout's text lines start ("Join the meeting now", "For organizers:")."""
_WEB_APP_SUFFIX = re.compile(r"[?&]sl=1?$")
_NOT_DIGIT = re.compile(r"\D")
_NEWEST_HELP_LINK = re.compile(r"aka\.ms/JoinTeamsMeeting\?omkt=", re.I)
_SPACE_CHARS = " \t\r\n\f\v\u00a0"
_NBSP_ENTITIES = ("&nbsp;", "&#160;", "&#xa0;", "&#xA0;")
_HTML_TEXT_NON_LINE = frozenset(
    {"br", "hr", "body", "html", "head", "table", "tr", "tbody", "ul", "ol", "blockquote"}
)

LCID_TAGS: dict[int, str] = {
    **strings.LCID_TO_TAG,
    1028: "zh-TW",
    1036: "fr-FR",
    1040: "it-IT",
    1041: "ja-JP",
    1042: "ko-KR",
    1043: "nl-NL",
    1046: "pt-BR",
    1049: "ru-RU",
    2070: "pt-PT",
    3082: "es-ES",
}


@dataclass(frozen=True, slots=True)
class _Line:
    start: int
    end: int


@dataclass(frozen=True, slots=True)
class _Span:
    kind: BlockKind
    start: int
    end: int


def find_block(body: str, content_type: ContentType | str) -> FindResult:
    """Locate the single online-meeting block of ``body``, or say why there is none."""
    try:
        ctype = ContentType.of(content_type)
    except ValueError:
        return BlockProblem(SkipReason.NO_BLOCK, "unknown content type")
    try:
        return _find(body, ctype)
    except (RecursionError, MemoryError):
        raise
    except Exception as exc:  # defensive: odd input must never escape as an exception
        return BlockProblem(SkipReason.DAMAGED_BLOCK, f"unreadable body ({type(exc).__name__})")


def _find(body: str, ctype: ContentType) -> FindResult:
    spans: list[_Span] = []
    damaged: list[str] = []
    for kind in (BlockKind.TEAMS, BlockKind.SKYPE):
        lines = _delimiter_lines(body, ctype, kind)
        kind_spans, kind_damage = _pair(body, lines, kind)
        spans.extend(kind_spans)
        damaged.extend(kind_damage)
    for kind, markers in _MARKERS.items():
        if any(_outside(body, marker, spans) for marker in markers):
            damaged.append(f"{kind.value} block marker outside any block")
    if len(spans) >= 2:
        return BlockProblem(
            SkipReason.AMBIGUOUS_BLOCK, f"{len(spans)} online-meeting blocks", len(spans)
        )
    if damaged:
        return BlockProblem(SkipReason.DAMAGED_BLOCK, damaged[0], len(spans))
    if not spans:
        return BlockProblem(SkipReason.NO_BLOCK, "no online-meeting block")
    return _describe(body, ctype, spans[0])


def _outside(body: str, marker: str, spans: list[_Span]) -> bool:
    """Whether ``marker`` occurs in the body outside every found block."""
    pos = 0
    for span in sorted(spans, key=lambda s: s.start):
        if _occurs(body, marker, pos, span.start):
            return True
        pos = max(pos, span.end)
    return _occurs(body, marker, pos, len(body))


def _occurs(body: str, marker: str, start: int, end: int) -> bool:
    """``body.find(marker, start, end) >= 0``, first asking for one rare character of it
    (searching for one character is much faster than for a string)."""
    rare = _MARKER_RARE_CHAR.get(marker, marker[0])
    return body.find(rare, start, end) >= 0 and body.find(marker, start, end) >= 0


# -- delimiter lines -------------------------------------------------------


def _delimiter_lines(body: str, ctype: ContentType, kind: BlockKind) -> list[_Line]:
    out: list[_Line] = []
    char, length = ("_", 80) if kind is BlockKind.TEAMS else (".", 137)
    needle = char * length
    n = len(body)
    pos = body.find(needle)
    while pos >= 0:
        end = pos + length
        while end < n and body[end] == char:
            end += 1
        if end - pos == length and (pos == 0 or body[pos - 1] != char):
            line = (
                _html_line(body, pos, end)
                if ctype is ContentType.HTML
                else _text_line(body, pos, end)
            )
            if line is not None and (not out or line.start >= out[-1].end):
                out.append(line)
        pos = body.find(needle, end)
    return out


def _text_line(body: str, s: int, e: int) -> _Line | None:
    start = s
    while start > 0 and body[start - 1] in " \t\u00a0":
        start -= 1
    if start > 0 and body[start - 1] not in "\r\n":
        return None
    end = e
    n = len(body)
    while end < n and body[end] in " \t\u00a0":
        end += 1
    if end < n and body[end] not in "\r\n":
        return None
    return _Line(start, end)


def _skip_space_back(body: str, pos: int) -> int:
    while pos > 0:
        if body[pos - 1] in _SPACE_CHARS:
            pos -= 1
            continue
        if body[pos - 1] == ";":
            for ent in _NBSP_ENTITIES:
                if body.startswith(ent, pos - len(ent)):
                    pos -= len(ent)
                    break
            else:
                return pos
            continue
        return pos
    return pos


def _skip_space_fwd(body: str, pos: int) -> int:
    n = len(body)
    while pos < n:
        if body[pos] in _SPACE_CHARS:
            pos += 1
            continue
        if body[pos] == "&":
            for ent in _NBSP_ENTITIES:
                if body.startswith(ent, pos):
                    pos += len(ent)
                    break
            else:
                return pos
            continue
        return pos
    return pos


def _tag_ending_at(body: str, pos: int) -> tuple[int, bool, str] | None:
    """The tag that ends right before ``pos``: (its start, is closing, lower-case name)."""
    if body.startswith("-->", pos - 3):
        lt = body.rfind("<!--", 0, pos - 3)
        return (lt, False, "!--") if lt >= 0 else None
    lt = body.rfind("<", 0, pos - 1)
    if lt < 0:
        return None
    m = _tag_at(body, lt)
    if m is None or m.end() != pos:
        return None
    return lt, m.group(1) == "/", m.group(2).lower()


def _tag_starting_at(body: str, pos: int) -> tuple[int, bool, str] | None:
    """The tag that starts at ``pos``: (its end, is closing, lower-case name)."""
    if body.startswith("<!--", pos):
        gt = body.find("-->", pos + 4)
        return (gt + 3, False, "!--") if gt >= 0 else None
    m = _tag_at(body, pos)
    if m is None:
        return None
    return m.end(), m.group(1) == "/", m.group(2).lower()


def _tag_at(body: str, pos: int) -> re.Match[str] | None:
    """``TAG_AT.match(body, pos)``, by the faster ``_TAG_AT_FAST`` when that holds one ``<``.

    The two differ only where ``[^>]`` runs over a ``<`` that ``[^<>]`` stops at.
    """
    m = _TAG_AT_FAST.match(body, pos)
    if m is not None and body.find("<", pos + 1, m.end()) >= 0:
        return TAG_AT.match(body, pos)
    return m


def _is_inline(name: str) -> bool:
    return name == "!--" or (name not in LINE_ELEMENTS and name not in _HTML_TEXT_NON_LINE)


def _html_line(body: str, s: int, e: int) -> _Line | None:
    """The delimiter line around a run in HTML, or None when the run shares its line with text."""
    pos = s
    first_inline = s
    element: str | None = None
    element_start = s
    while True:
        pos = _skip_space_back(body, pos)
        if pos == 0 or body[pos - 1] != ">":
            if pos == 0:
                break
            return None  # visible text before the run on its line
        tag = _tag_ending_at(body, pos)
        if tag is None:
            return None
        lt, closing, name = tag
        if _is_inline(name):
            pos = first_inline = lt
            continue
        if not closing and name in LINE_ELEMENTS:
            element, element_start = name, lt
        break
    pos = e
    last_inline = e
    n = len(body)
    while True:
        pos = _skip_space_fwd(body, pos)
        if pos >= n:
            break
        if body[pos] != "<":
            return None  # visible text after the run on its line
        tag = _tag_starting_at(body, pos)
        if tag is None:
            return None
        gt, closing, name = tag
        if _is_inline(name):
            pos = last_inline = gt
            continue
        if element is not None and closing and name == element:
            return _Line(element_start, gt)
        break
    return _Line(first_inline, last_inline)


# -- pairing ---------------------------------------------------------------


def _has_evidence(kind: BlockKind, body: str, start: int, end: int) -> bool:
    """Whether ``_EVIDENCE[kind]`` matches within ``body[start:end]``."""
    if kind is BlockKind.TEAMS:
        # A match of the evidence pattern at s is one of the dot pattern at s + 5
        # (its look-behind may read before ``pos``, so it starts at ``start + 5``).
        return _TEAMS_EVIDENCE_AT_DOT.search(body, start + 5, end) is not None
    return _EVIDENCE[kind].search(body, start, end) is not None


def _pair(body: str, lines: list[_Line], kind: BlockKind) -> tuple[list[_Span], list[str]]:
    spans: list[_Span] = []
    paired: set[int] = set()
    i = 0
    while i < len(lines) - 1:
        if not _has_evidence(kind, body, lines[i].end, lines[i + 1].start):
            i += 1
            continue
        j = i + 1
        if kind is BlockKind.TEAMS and j + 1 < len(lines):
            a, b = lines[j].end, lines[j + 1].start
            if not _has_evidence(kind, body, a, b) and _TEAMS_CHROME.search(body, a, b):
                j += 1
        spans.append(_Span(kind, lines[i].start, lines[j].end))
        paired.update(range(i, j + 1))
        i = j + 1
    damage: list[str] = []
    for k, line in enumerate(lines):
        if k in paired:
            continue
        before = lines[k - 1].end if k > 0 else 0
        after = lines[k + 1].start if k + 1 < len(lines) else len(body)
        if _has_evidence(kind, body, line.end, after) or _has_evidence(
            kind, body, before, line.start
        ):
            damage.append(f"{kind.value} delimiter line without its partner")
            break
    return spans, damage


# -- describing the block ----------------------------------------------------


def _widen_to_wrapper(body: str, span: _Span) -> tuple[int, int]:
    """Take in a Teams ``me-email-text`` div that wraps exactly the block (newest layout)."""
    pos = span.start
    while True:  # back over whitespace and inline tags to the wrapper's start tag
        pos = _skip_space_back(body, pos)
        if pos == 0 or body[pos - 1] != ">":
            return span.start, span.end
        tag = _tag_ending_at(body, pos)
        if tag is None:
            return span.start, span.end
        lt, closing, name = tag
        if _is_inline(name):
            pos = lt
            continue
        if closing or name != "div" or not _ME_EMAIL_TEXT.search(body, lt, pos):
            return span.start, span.end
        break
    after = span.end
    while True:  # on over whitespace and inline tags to its end tag
        after = _skip_space_fwd(body, after)
        close = _tag_starting_at(body, after)
        if close is None:
            return span.start, span.end
        if _is_inline(close[2]):
            after = close[0]
            continue
        if not close[1] or close[2] != "div":
            return span.start, span.end
        return lt, close[0]


def _describe(body: str, ctype: ContentType, span: _Span) -> FoundBlock:
    start, end = span.start, span.end
    if ctype is ContentType.HTML and span.kind is BlockKind.TEAMS:
        start, end = _widen_to_wrapper(body, span)
    segment = body[start:end]
    if ctype is ContentType.HTML:
        lines = html_visible_lines(segment)
        links = list(html_links(segment))
        links += [u for u in text_links("\n".join(lines)) if u not in links]
    else:
        lines = text_visible_lines(segment)
        links = text_links(segment)
    join_urls = _join_urls(span.kind, links)
    join_url: str | None = None
    if span.kind is BlockKind.TEAMS:
        meetup = [u for u in join_urls if "/meetup-join/" in u.lower()]
        join_url = meetup[0] if meetup else (join_urls[0] if join_urls else None)
    elif join_urls:
        join_url = join_urls[0]
    # A text line wrapped by a mail client may split a label from its value:
    # IDs and passcodes are read from the lines joined (HTML lines never wrap).
    joined = ("\n" if ctype is ContentType.HTML else " ").join(lines).replace("：", ":")
    meeting_id, conference_id = _ids(span.kind, joined)
    passcode = _passcode(joined)
    language = _language(span.kind, ctype, segment, lines, links)
    fmt = _format(span.kind, ctype, segment, lines, links, meeting_id)
    return FoundBlock(
        kind=span.kind,
        format=fmt,
        content_type=ctype,
        start=start,
        end=end,
        join_url=join_url,
        join_urls=tuple(join_urls),
        meeting_id=meeting_id,
        passcode=passcode,
        conference_id=conference_id,
        language=language,
    )


def _join_urls(kind: BlockKind, links: list[str]) -> list[str]:
    out: list[str] = []
    for url in links:
        if kind is BlockKind.TEAMS:
            if not _TEAMS_JOIN_URL.match(url):
                continue
        else:
            if not _SKYPE_JOIN_URL.match(url):
                continue
            url = _WEB_APP_SUFFIX.sub("", url)
        if url not in out:
            out.append(url)
    return out


def _ids(kind: BlockKind, joined: str) -> tuple[str | None, str | None]:
    meeting_id: str | None = None
    conference_id: str | None = None
    for m in _ID_VALUE.finditer(joined):
        digits = _NOT_DIGIT.sub("", m.group(1))
        if kind is BlockKind.SKYPE or m.group(2) == "#":
            conference_id = conference_id or digits
        else:
            meeting_id = meeting_id or digits
    return meeting_id, conference_id


def _passcode(joined: str) -> str | None:
    m = _PASSCODE.search(joined, _passcode_search_start(joined))
    return m.group(1) if m else None


def _passcode_search_start(joined: str) -> int:
    """Where ``_PASSCODE`` can first match: a lower bound found with fast ``str.find``.

    ``_PASSCODE`` is case-insensitive, so it scans every position slowly. Each
    keyword holds a hint (``_PASSCODE_HINTS``) whose letters ``re.IGNORECASE``
    matches only to characters that ``str.lower`` maps to the hint's letters; so
    in the lower-cased text (when it keeps every position) a match at ``s`` has
    its hint at ``s + offset``. No hint: no match.
    """
    lowered = joined.lower()
    if len(lowered) != len(joined):
        return 0  # a character lower-cased to two: positions moved, scan it all
    start = len(joined) + 1  # past the end: search finds nothing
    for hint, offset in _PASSCODE_HINTS:
        i = lowered.find(hint)
        if i >= 0:
            start = min(start, max(i - offset, 0))
    return start


def _language(
    kind: BlockKind, ctype: ContentType, segment: str, lines: list[str], links: list[str]
) -> str | None:
    """The block's language: a stated one (marker, ``lang``, a link's ``language=``), else a vote.

    Links are read Safe-Links-unwrapped (the wrapped URL percent-encodes
    ``language=``), and lines are compared without their ``<url>`` parts.
    """
    if kind is BlockKind.SKYPE:
        m = _OC_MARKER.search(segment) or _first(_CLID, [segment, *links])
        if m:
            return LCID_TAGS.get(int(m.group(1)))
    else:
        m = _lang_attr(segment) if ctype is ContentType.HTML else None
        m = m or _first(_LANG_PARAM, [segment, *links])
        if m:
            return m.group(1)
    votes: dict[str, int] = {}
    for line in lines:
        for part in folded_line(line).split("|"):
            lang = strings.TEMPLATE_LINES.get(part.strip())
            if lang is not None:
                votes[lang] = votes.get(lang, 0) + 1
    non_english = {k: v for k, v in votes.items() if k != "en"}
    pick = max(non_english, key=lambda k: non_english[k]) if non_english else None
    if pick is None and votes:
        pick = "en"
    if pick is None:
        return None
    table = strings.SKYPE if kind is BlockKind.SKYPE else strings.TEAMS
    return table[pick].tag


def _lang_attr(segment: str) -> re.Match[str] | None:
    """``_LANG_ATTR.search(segment)``: tried only where the literal ``lang`` it needs occurs."""
    pos = segment.find("lang")
    while pos >= 0:
        m = _LANG_ATTR.match(segment, pos)  # (its \b reads the character before pos)
        if m is not None:
            return m
        pos = segment.find("lang", pos + 1)
    return None


def _first(pattern: re.Pattern[str], texts: list[str]) -> re.Match[str] | None:
    """The first match of ``pattern`` in the first text that has one."""
    for text in texts:
        m = pattern.search(text)
        if m is not None:
            return m
    return None


def _format(
    kind: BlockKind,
    ctype: ContentType,
    segment: str,
    lines: list[str],
    links: list[str],
    meeting_id: str | None,
) -> BlockFormat:
    if kind is BlockKind.SKYPE:
        return BlockFormat.SKYPE_HTML if ctype is ContentType.HTML else BlockFormat.SKYPE_TEXT
    if "meet_invite_block" in segment:
        return BlockFormat.MEET_INVITE_BLOCK
    if ctype is ContentType.TEXT:
        # The newest layout's "Need help?" link names the market (any language).
        if any(_NEWEST_HELP_LINK.search(link) for link in links):
            return BlockFormat.MEET_INVITE_BLOCK
        for line in lines:
            if strings.fold(line).startswith(_NEWEST_LINE_STARTS):
                return BlockFormat.MEET_INVITE_BLOCK
    if meeting_id is not None or 'data-tid="meeting-code"' in segment:
        return BlockFormat.TEAMS_2023
    return BlockFormat.CLASSIC
