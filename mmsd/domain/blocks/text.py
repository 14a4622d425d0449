"""Tolerant reading of HTML and text fragments: tags, visible lines, links, Safe Links.

Nothing here parses a document tree: mail bodies are often not well-formed,
and the engine only needs the visible lines and links of one block, and the
tags right next to a delimiter.

Speed (the daemon reads every migrated meeting's old and new block): the
reference patterns below define the results; faster patterns with the same
matches are tried first and their answer is used only when it provably equals
the reference one (see :func:`_strip_tags` and :func:`html_links`), else the
reference pattern runs. Fingerprints are stored (``block_digest``), so no
result may change.
"""

from __future__ import annotations

import html
import re
from functools import lru_cache
from urllib.parse import parse_qsl, urlsplit

TAG_AT = re.compile(r"<(/?)([A-Za-z][A-Za-z0-9:_.-]*)(?:\s[^<>]*)?/?>")
"""A start or end tag at a position (attributes may hold anything but ``<`` and ``>``)."""

_COMMENT = re.compile(r"<!--.*?-->", re.S)
_ANY_TAG = re.compile(r"</?[A-Za-z][A-Za-z0-9:_.-]*(?:\s[^<>]*)?/?>")
_HREF = re.compile(r"""[Hh][Rr][Ee][Ff]\s*=\s*(?:"([^"]*)"|'([^']*)'|([^\s"'>]+))""")
_URL = re.compile(r"""https?://[^\s<>"']+""", re.I)
_URL_AT_COLON = re.compile(
    r"""://(?:(?<=[Hh][Tt][Tt][Pp][Ss\u017f]://)|(?<=[Hh][Tt][Tt][Pp]://))[^\s<>"']+"""
)
"""``_URL`` matched from its ``://`` (a literal: fast to search for), the scheme checked
behind it with the letters ``re.I`` gives ``_URL`` (ſ is an s); see :func:`_url_spans`."""
_ANGLE_URL = re.compile(r"""<\s*(?:https?://|tel:|mailto:)[^\s<>"']*\s*>""", re.I)
_NEWLINE = re.compile(r"\r\n|\r|\n")
_SAFELINKS = re.compile(
    r"^https?://[a-z0-9.-]*safelinks\.protection\.(?:outlook\.com|office365\.us)/", re.I
)

BREAKING_TAGS = frozenset(
    {
        "address",
        "article",
        "blockquote",
        "body",
        "br",
        "caption",
        "center",
        "dd",
        "div",
        "dl",
        "dt",
        "footer",
        "h1",
        "h2",
        "h3",
        "h4",
        "h5",
        "h6",
        "head",
        "header",
        "hr",
        "html",
        "li",
        "ol",
        "p",
        "pre",
        "section",
        "table",
        "tbody",
        "td",
        "tfoot",
        "th",
        "thead",
        "title",
        "tr",
        "ul",
    }
)
"""Tags that end a visible line; every other tag is inline (span, a, b, font, o:p…)."""

_BREAKING = re.compile(
    r"</?(?:" + "|".join(sorted(BREAKING_TAGS, key=len, reverse=True)) + r")(?:[\s/][^<>]*)?>",
    re.I,
)

_IGNORECASE_EXTRA = {"i": "\u0130\u0131", "k": "\u212a", "s": "\u017f"}
"""Non-ASCII letters that ``re.IGNORECASE`` matches to an ASCII letter (İ ı → i, K → k, ſ → s)."""


def _letter_class(char: str) -> str:
    """A character class matching exactly what ``char`` matches under ``re.IGNORECASE``."""
    if not char.isalpha():
        return re.escape(char)
    return f"[{char.lower()}{char.upper()}{_IGNORECASE_EXTRA.get(char.lower(), '')}]"


def _name_trie(names: list[str]) -> str:
    """One pattern for a set of names, as a trie of case classes (no ``re.I``: faster alternation)."""
    heads: dict[str, list[str]] = {}
    for name in names:
        heads.setdefault(name[0], []).append(name[1:])
    alternatives = []
    for head, tails in sorted(heads.items()):
        rest = sorted(t for t in tails if t)
        sub = _name_trie(rest) if rest else ""
        if rest and "" in tails:
            sub = f"(?:{sub})?"
        alternatives.append(_letter_class(head) + sub)
    return alternatives[0] if len(alternatives) == 1 else "(?:" + "|".join(alternatives) + ")"


_BREAKING_FAST = re.compile(r"</?" + _name_trie(sorted(BREAKING_TAGS)) + r"(?:[\s/][^>]*)?>")
"""``_BREAKING`` with ``[^>]`` for ``[^<>]`` (much faster to scan): the same matches
whenever none of its matches holds a second ``<`` (checked by counting)."""
_ANY_TAG_FAST = re.compile(r"</?[A-Za-z][A-Za-z0-9:_.-]*(?:\s[^>]*)?/?>")
"""``_ANY_TAG`` with ``[^>]`` for ``[^<>]``, on the same condition."""
_HREF_LOWER = re.compile(r"""href\s*=\s*(?:"([^"]*)"|'([^']*)'|([^\s"'>]+))""")
"""``_HREF`` for a fragment whose every ``href`` is lower-case (a literal prefix: fast)."""

LINE_ELEMENTS = frozenset({"div", "p", "td", "li", "center", "h1", "h2", "h3", "h4", "h5", "h6"})
"""Elements that can hold a delimiter line on their own."""


def unwrap_safe_link(url: str) -> str:
    """The original URL behind a Microsoft Defender Safe Links URL; other URLs unchanged."""
    if "safelinks" not in url or not _SAFELINKS.match(url):
        return url
    try:
        for key, value in parse_qsl(urlsplit(url).query, keep_blank_values=True):
            if key == "url" and value:
                return value
    except ValueError:
        return url
    return url


@lru_cache(maxsize=64)
def html_links(fragment: str) -> tuple[str, ...]:
    """Every ``href`` in an HTML fragment, entities decoded and Safe Links unwrapped, in order."""
    if "\r" in fragment:  # (a one-character test is the fast one)
        # A block and its CRLF-fitted copy have the same links unless a quoted
        # value holds a line break inside (whitespace around a value is stripped,
        # and CR before LF ends a bare value, a character reference or ``\s*``
        # where LF alone does): then the links are read from the CRLF text itself.
        links, crlf_safe = _links(_without_crlf(fragment))
        if crlf_safe:
            return links
    return _links(fragment)[0]


@lru_cache(maxsize=64)
def _links(fragment: str) -> tuple[tuple[str, ...], bool]:
    """:func:`html_links` of ``fragment``, and whether no quoted value holds a line break inside."""
    out: list[str] = []
    crlf_safe = True
    # Where "href" is only ever lower-case, the two patterns match the same places.
    pattern = _HREF_LOWER if _only_lowercase_href(fragment) else _HREF
    for double, single, bare in pattern.findall(fragment):
        raw = double or single or bare
        if "\n" in raw and "\n" in raw.strip():
            crlf_safe = False
        if "&" in raw:
            raw = html.unescape(raw)
        out.append(unwrap_safe_link(raw.strip()))
    return tuple(out), crlf_safe


def _only_lowercase_href(fragment: str) -> bool:
    """Whether no spelling of ``href`` but the lower-case one occurs (each has an upper-case letter)."""
    for upper, back in (("H", 0), ("R", 1), ("E", 2), ("F", 3)):
        i = fragment.find(upper)
        while i >= 0:
            if i >= back and fragment[i - back : i - back + 4].lower() == "href":
                return False
            i = fragment.find(upper, i + 1)
    return True


def _url_spans(text: str) -> list[tuple[int, int]]:
    """The spans of ``_URL.finditer(text)``, found from each ``://`` (fast).

    A ``_URL`` match at ``s`` is one of ``_URL_AT_COLON`` at its colon, ``s + 5``
    (``https``) or ``s + 4`` (``http``), with the same end (the same greedy run).
    The colons of successive matches are at least three apart, so their starts
    keep their order; and a match never starts inside the one before it, which
    ends at a space, ``<``, ``>`` or a quote, none of them a scheme letter.
    """
    spans: list[tuple[int, int]] = []
    for m in _URL_AT_COLON.finditer(text):
        colon = m.start()
        spans.append((colon - 5 if text[colon - 1] in "sS\u017f" else colon - 4, m.end()))
    return spans


def text_links(text: str) -> list[str]:
    """Every http(s) URL in visible text, Safe Links unwrapped, in order."""
    return [unwrap_safe_link(text[s:e].rstrip(".,;)")) for s, e in _url_spans(text)]


def unwrap_text_links(text: str) -> str:
    """Text with every Safe Links URL in it replaced by the URL it wraps."""
    if "safelinks" not in text:
        return text
    pieces: list[str] = []
    pos = 0
    for s, e in _url_spans(text):
        pieces += (text[pos:s], unwrap_safe_link(text[s:e]))
        pos = e
    pieces.append(text[pos:])
    return "".join(pieces)


@lru_cache(maxsize=64)
def html_visible_lines(fragment: str) -> list[str]:
    """The visible lines of an HTML fragment: tags dropped, entities decoded, spaces collapsed.

    Cached (a block is read by the finder, the comparison and the hand-edit check
    within one replacement); callers must not mutate the returned list.
    """
    if "\r" in fragment:  # (a one-character test is the fast one)
        # CR before LF never changes the lines: it is whitespace inside a tag and
        # collapsed in text, and no tag name, entity or comment delimiter holds it.
        # So a block and its CRLF-fitted copy share one computation.
        fragment = _without_crlf(fragment)
    return _visible_lines(fragment)


@lru_cache(maxsize=64)
def _visible_lines(fragment: str) -> list[str]:
    """:func:`html_visible_lines` of a fragment without CRLF."""
    if "!" in fragment and "<!--" in fragment:
        fragment = _COMMENT.sub("", fragment)
    stripped = _strip_tags(fragment)
    # Each line unescaped and collapsed, as one string: a character reference
    # never takes in a NUL (no entity name holds one, and ``unescape`` writes
    # none), and collapsing all at once leaves each line its words, one space
    # apart, and at most a space at either end.
    if "&" in stripped:
        stripped = html.unescape(stripped)
    return [clean for line in " ".join(stripped.split()).split("\x00") if (clean := line.strip())]


@lru_cache(maxsize=16)
def _without_crlf(fragment: str) -> str:
    """The fragment with LF for CRLF; cached, as its lines and its links both ask."""
    return fragment.replace("\r\n", "\n")


def _strip_tags(fragment: str) -> str:
    """``_ANY_TAG.sub("", _BREAKING.sub("\\x00", fragment))``, the same string, faster.

    A fast pattern accepts a superset of its reference pattern's matches at each
    position, and the two differ only where the fast match holds a second ``<``.
    Every match holds at least one ``<``; so when the ``<`` a substitution removed
    number its matches, every match held exactly one, each was the reference
    pattern's match too, and the scans (left to right, resuming after each match)
    went the same way. Otherwise the reference pattern runs.
    """
    before = fragment.count("<")
    lines, n = _BREAKING_FAST.subn("\x00", fragment)
    left = lines.count("<")
    if before - left != n:
        lines = _BREAKING.sub("\x00", fragment)
        left = lines.count("<")
    stripped, n = _ANY_TAG_FAST.subn("", lines)
    if left - stripped.count("<") != n:
        stripped = _ANY_TAG.sub("", lines)
    return stripped


def clear_caches() -> None:
    """Empty this module's caches (tests: compute from cold caches)."""
    html_links.cache_clear()
    _links.cache_clear()
    _without_crlf.cache_clear()
    html_visible_lines.cache_clear()
    _visible_lines.cache_clear()


def text_visible_lines(text: str) -> list[str]:
    """The non-empty lines of a plain-text fragment, spaces collapsed."""
    return [clean for line in _NEWLINE.split(text) if (clean := " ".join(line.split()))]


def without_urls(line: str) -> str:
    """A visible line without its URLs (``Label<https://…>``, ``number<tel:…>``, bare URLs)."""
    if "http" not in line and "HTTP" not in line and "<" not in line:
        return line
    return _URL.sub(" ", _ANGLE_URL.sub(" ", line))


def collapse(text: str) -> str:
    """All whitespace runs (CR, LF, tabs, no-break spaces) as one space, trimmed."""
    return " ".join(text.split())
