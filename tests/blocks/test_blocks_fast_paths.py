"""The block engine's fast paths give exactly what their reference patterns give.

Each faster pattern (text.py, find.py) claims the same answer as a slower
reference one on every input; these tests hold them to it on seeded random
token soups built to hit the edge cases (stray ``<``, ``>`` inside values,
upper-case and dotless-i tag names, CR/LF, entities), and check the character
facts the rewrites rely on over every Unicode code point.
"""

from __future__ import annotations

import html
import random
import re
import sys

import pytest

from mmsd.domain.blocks import find, text
from mmsd.domain.blocks.model import BlockKind

ALL_CHARS = "".join(map(chr, range(sys.maxunicode + 1)))

TOKENS = (
    "<div>",
    "</DIV >",
    "<p/x>",
    "<br/>",
    "<BR>",
    "<bR\t/>",
    "<lı>",
    "<Lİ>",
    "<ſection>",
    "<blockquote cite='a>b'>",
    "<span x <br> y>",
    '<span title="<p>">',
    '<p title="<b>">',
    "<td x",
    "<a href='https://x/?a=1&amp;b=2'>",
    '<a HREF="https://teams.microsoft.com/l/meetup-join/1">',
    "<a hrEf=\r\nhttps://a/b>",
    '<a href="\r\nhttps://c/d\r\n">',
    '<a href="https://e/f\r\ng">',
    "href = 'x'",
    "hReF=y",
    "<o:p>",
    "</o:p>",
    "<td >",
    "<h1>",
    "<header>",
    "<thead>",
    "<hx>",
    "<!--",
    "-->",
    "<",
    ">",
    "/>",
    "&amp;",
    "&nbsp",
    "&#10;",
    "&#0;",
    "&amp",
    "&lt\x00;",
    "\x00",
    "\r\n",
    "\n",
    "\r",
    " ",
    "\u00a0",
    "text",
    "Passcode: Ab1",
    "PASSCODE :x",
    "paſſcode: y",
    "Kenncode:",
    "密码：1",
    "Código de acceso: 9",
    "Codice passcode: z",
    "contraseña: q",
    "İ",
    "https://a.b/c",
    "HTTPS://UP/x",
    "httpſ://s/x",
    "http://",
    "://x",
    "teams.microsoft.com/l/meetup-join/",
    "TEAMS.LIVE.COM%2Fmeet%2F",
    "teams",
    ".",
    "lang=de-DE",
    'lang="zh-CN"',
    "xlang=en",
    "language=",
)


def soups(seed: int, count: int, max_len: int = 40) -> list[str]:
    """Seeded random concatenations of TOKENS."""
    rng = random.Random(seed)
    return [
        "".join(rng.choice(TOKENS) for _ in range(rng.randint(0, max_len))) for _ in range(count)
    ]


@pytest.mark.parametrize(
    "letter", sorted({c for c in "".join(text.BREAKING_TAGS) if c.isalpha()} | set("httpsh"))
)
def test_letter_classes_match_what_ignorecase_matches(letter: str) -> None:
    expected = set(re.findall(letter, ALL_CHARS, re.I))
    assert set(re.findall(text._letter_class(letter), ALL_CHARS)) == expected


def test_passcode_hint_letters_are_lowered_to_themselves_only() -> None:
    for hint, _ in find._PASSCODE_HINTS:
        for char in hint:
            matched = re.findall(re.escape(char), ALL_CHARS, re.I)
            assert all(c.lower() == char for c in matched), (char, matched)


def test_breaking_trie_spells_exactly_the_breaking_tags() -> None:
    names = re.compile(text._name_trie(sorted(text.BREAKING_TAGS)))
    for name in text.BREAKING_TAGS:
        assert names.fullmatch(name) and names.fullmatch(name.upper())
    for other in ("span", "a", "b", "font", "o:p", "h7", "th1", "tdd", "headx", "img"):
        assert not names.fullmatch(other)


def test_strip_tags_equals_the_two_reference_substitutions() -> None:
    fallbacks = [0, 0]
    for soup in soups(1, 3000):
        reference_lines = text._BREAKING.sub("\x00", soup)
        reference = text._ANY_TAG.sub("", reference_lines)
        assert text._strip_tags(soup) == reference, soup
        lines, n = text._BREAKING_FAST.subn("\x00", soup)
        fallbacks[0] += soup.count("<") - lines.count("<") != n
        stripped, n = text._ANY_TAG_FAST.subn("", reference_lines)
        fallbacks[1] += reference_lines.count("<") - stripped.count("<") != n
    assert min(fallbacks) > 0  # the soups do reach both reference paths


def _reference_visible_lines(fragment: str) -> list[str]:
    """html_visible_lines as first written: two substitutions, then each line on its own."""
    if "<!--" in fragment:
        fragment = text._COMMENT.sub("", fragment)
    stripped = text._ANY_TAG.sub("", text._BREAKING.sub("\x00", fragment))
    out: list[str] = []
    for line in stripped.split("\x00"):
        if "&" in line:
            line = html.unescape(line)
        clean = " ".join(line.split())
        if clean:
            out.append(clean)
    return out


def test_visible_lines_equal_the_reference_with_either_newline() -> None:
    for soup in soups(8, 3000):
        for variant in (soup, soup.replace("\n", "\r\n"), soup.replace("\r\n", "\n")):
            text.clear_caches()
            assert text.html_visible_lines(variant) == _reference_visible_lines(variant), variant


def test_visible_lines_ignore_cr_before_lf() -> None:
    for soup in soups(2, 1500):
        text.clear_caches()
        crlf = text.html_visible_lines(soup.replace("\n", "\r\n"))
        text.clear_caches()
        assert text.html_visible_lines(soup.replace("\r\n", "\n")) == crlf


def _reference_links(fragment: str) -> tuple[str, ...]:
    out = []
    for double, single, bare in text._HREF.findall(fragment):
        raw = double or single or bare
        if "&" in raw:
            raw = html.unescape(raw)
        out.append(text.unwrap_safe_link(raw.strip()))
    return tuple(out)


def test_html_links_equal_the_reference_pattern_with_either_newline() -> None:
    for soup in soups(3, 3000):
        for variant in (soup, soup.replace("\n", "\r\n"), soup.replace("\r\n", "\n")):
            text.clear_caches()
            assert text.html_links(variant) == _reference_links(variant), variant
        text.clear_caches()
        text.html_links(soup.replace("\r\n", "\n"))  # the LF copy cached first
        crlf = soup.replace("\n", "\r\n")
        assert text.html_links(crlf) == _reference_links(crlf), crlf


def test_url_spans_equal_the_reference_pattern() -> None:
    for soup in soups(4, 3000):
        assert text._url_spans(soup) == [m.span() for m in text._URL.finditer(soup)], soup
        assert text.unwrap_text_links(soup + "safelinks") == text._URL.sub(
            lambda m: text.unwrap_safe_link(m.group(0)), soup + "safelinks"
        )


def test_teams_evidence_equals_the_reference_pattern() -> None:
    rng = random.Random(5)
    for soup in soups(5, 2000):
        a = rng.randint(0, len(soup))
        b = rng.randint(0, len(soup))
        reference = find._EVIDENCE[BlockKind.TEAMS].search(soup, a, b) is not None
        assert find._has_evidence(BlockKind.TEAMS, soup, a, b) == reference, (soup, a, b)


def test_passcode_and_lang_equal_the_reference_patterns() -> None:
    for soup in soups(6, 3000):
        m = find._PASSCODE.search(soup)
        assert find._passcode(soup) == (m.group(1) if m else None), soup
        m2, m3 = find._LANG_ATTR.search(soup), find._lang_attr(soup)
        assert (m2 and m2.span()) == (m3 and m3.span()), soup


def test_tag_at_equals_the_reference_pattern() -> None:
    rng = random.Random(7)
    for soup in soups(7, 1500):
        for _ in range(5):
            pos = rng.randint(0, len(soup))
            m, ref = find._tag_at(soup, pos), text.TAG_AT.match(soup, pos)
            assert (m and (m.span(), m.groups())) == (ref and (ref.span(), ref.groups()))
