"""Mail-client mutations of invitation blocks, and strategies for the block engine's property tests.

Shared by the block engine's property and fuzz tests; written independently of
the engine (no imports from mmsd.domain.blocks internals).
"""

from __future__ import annotations

import html
import random
import re
from urllib.parse import quote

_TAG = re.compile(r"<[A-Za-z][^<>]*>")
_ATTR = re.compile(r"""\s+[^\s=<>/"']+(?:\s*=\s*(?:"[^"]*"|'[^']*'|[^\s<>"']+))?""")
_TEXT_NODE = re.compile(r">([^<>]+)<")
_HREF = re.compile(r'href="([^"]*)"')
_ANGLE_URL = re.compile(r"<(https?://[^\s<>]+)>")


def reorder_attributes(block: str, rng: random.Random) -> str:
    """Shuffle the attributes of every start tag (Exchange and clients reorder them)."""

    def shuffle(m: re.Match[str]) -> str:
        tag = m.group(0)
        name_end = re.match(r"<[A-Za-z][A-Za-z0-9:_.-]*", tag)
        assert name_end is not None
        head = name_end.group(0)
        body = tag[len(head) : -1]
        closing = "/" if body.rstrip().endswith("/") else ""
        attrs = _ATTR.findall(body.rstrip().rstrip("/"))
        if "".join(attrs).strip() != body.rstrip().rstrip("/").strip():
            return tag  # attributes we cannot split safely: leave the tag alone
        rng.shuffle(attrs)
        return head + "".join(attrs) + closing + ">"

    return _TAG.sub(shuffle, block)


def extra_spans(block: str, rng: random.Random) -> str:
    """Wrap some text runs in spans and add Word's ``<o:p></o:p>`` before some end tags."""

    def wrap(m: re.Match[str]) -> str:
        text = m.group(1)
        if rng.random() < 0.4 and text.strip():
            return f'><span style="mso-fareast-language:EN-US">{text}</span><'
        return m.group(0)

    out = _TEXT_NODE.sub(wrap, block)
    return re.sub(
        r"</(div|p)>", lambda m: ("<o:p></o:p>" if rng.random() < 0.3 else "") + m.group(0), out
    )


def entities(block: str, rng: random.Random) -> str:
    """Write some visible characters as entities and some spaces as ``&nbsp;``."""

    def encode_part(part: str) -> str:
        if part.startswith("&") and part.endswith(";"):
            return part  # an entity already: keep it whole
        out = []
        for ch in part:
            r = rng.random()
            if ch == " " and r < 0.3:
                out.append("&nbsp;")
            elif ch not in "_.&;# \r\n\t" and r < 0.15:
                out.append(f"&#{ord(ch)};")
            else:
                out.append(ch)
        return "".join(out)

    def encode(m: re.Match[str]) -> str:
        return ">" + "".join(encode_part(p) for p in re.split(r"(&#?\w+;)", m.group(1))) + "<"

    return _TEXT_NODE.sub(encode, block)


def crlf(block: str, rng: random.Random) -> str:
    """Use CRLF line breaks, as Exchange does."""
    return block.replace("\r\n", "\n").replace("\n", "\r\n")


def wrap_html_lines(block: str, rng: random.Random) -> str:
    """Break some spaces inside text runs into CRLF + space, as Outlook wraps HTML source."""

    def wrap(m: re.Match[str]) -> str:
        return ">" + re.sub(" ", lambda _: "\r\n " if rng.random() < 0.3 else " ", m.group(1)) + "<"

    return _TEXT_NODE.sub(wrap, block)


def wrap_text_lines(block: str, rng: random.Random) -> str:
    """Wrap long text lines at a space, as mail clients do to plain-text bodies."""
    lines = block.split("\n")
    out: list[str] = []
    for line in lines:
        if len(line) > 30 and " " in line.strip() and rng.random() < 0.5:
            spaces = [i for i, ch in enumerate(line) if ch == " " and 0 < i < len(line) - 1]
            cut = rng.choice(spaces)
            out += [line[:cut], line[cut + 1 :]]
        else:
            out.append(line)
    return "\n".join(out)


def _safelink(url: str) -> str:
    return (
        "https://nam12.safelinks.protection.outlook.com/?url="
        + quote(url, safe="")
        + "&data=05%7C02%7C%7Cabc%7C0%7C0&sdata=xyz%3D&reserved=0"
    )


def safe_links_html(block: str, rng: random.Random) -> str:
    """Rewrite some links through Microsoft Defender Safe Links."""

    def rewrite(m: re.Match[str]) -> str:
        url = html.unescape(m.group(1))
        if not url.startswith("http") or rng.random() < 0.3:
            return m.group(0)
        return f'href="{html.escape(_safelink(url), quote=True)}"'

    return _HREF.sub(rewrite, block)


def safe_links_text(block: str, rng: random.Random) -> str:
    """Rewrite some ``<https://…>`` links of a text body through Safe Links."""
    return _ANGLE_URL.sub(
        lambda m: m.group(0) if rng.random() < 0.3 else f"<{_safelink(m.group(1))}>", block
    )


HTML_MUTATIONS = (
    reorder_attributes,
    extra_spans,
    entities,
    crlf,
    wrap_html_lines,
    safe_links_html,
)
TEXT_MUTATIONS = (crlf, wrap_text_lines, safe_links_text)


def mutate(block: str, ctype: str, rng: random.Random, everything: bool = False) -> str:
    """Apply a random subset (or all) of the mail-client mutations for the content type."""
    for mutation in HTML_MUTATIONS if ctype == "html" else TEXT_MUTATIONS:
        if everything or rng.random() < 0.5:
            block = mutation(block, rng)
    return block
