"""Tolerant reading of HTML and text fragments: tags, visible lines, links, Safe Links.

Nothing here parses a document tree: mail bodies are often not well-formed,
and the engine only needs the visible lines and links of one block, and the
tags right next to a delimiter.
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
    out: list[str] = []
    for double, single, bare in _HREF.findall(fragment):
        raw = double or single or bare
        if "&" in raw:
            raw = html.unescape(raw)
        out.append(unwrap_safe_link(raw.strip()))
    return tuple(out)


def text_links(text: str) -> list[str]:
    """Every http(s) URL in visible text, Safe Links unwrapped, in order."""
    return [unwrap_safe_link(m.group(0).rstrip(".,;)")) for m in _URL.finditer(text)]


def unwrap_text_links(text: str) -> str:
    """Text with every Safe Links URL in it replaced by the URL it wraps."""
    if "safelinks" not in text:
        return text
    return _URL.sub(lambda m: unwrap_safe_link(m.group(0)), text)


@lru_cache(maxsize=64)
def html_visible_lines(fragment: str) -> list[str]:
    """The visible lines of an HTML fragment: tags dropped, entities decoded, spaces collapsed.

    Cached (a block is read by the finder, the comparison and the hand-edit check
    within one replacement); callers must not mutate the returned list.
    """
    if "<!--" in fragment:
        fragment = _COMMENT.sub("", fragment)
    stripped = _ANY_TAG.sub("", _BREAKING.sub("\x00", fragment))
    out: list[str] = []
    for line in stripped.split("\x00"):
        if "&" in line:
            line = html.unescape(line)
        clean = " ".join(line.split())
        if clean:
            out.append(clean)
    return out


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
