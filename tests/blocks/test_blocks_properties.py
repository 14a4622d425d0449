"""Property tests: any Unicode around any block, under every mail-client mutation."""

from __future__ import annotations

import html
import random
import re

from blocks_mutations import mutate
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st
from test_blocks_golden import GOLDENS, Golden, load

from mmsd.domain.blocks import (
    BlockProblem,
    FoundBlock,
    MeetingDetails,
    PhoneNumber,
    SkipReason,
    carries_block,
    find_block,
    render_block,
    replace_block,
)

SETTINGS = settings(
    derandomize=True,
    max_examples=120,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
TRIGGERS = ("_" * 10, "." * 10, "meet_invite_block", "OutJoinLink", "[!OC(", "meet", "teams.")

# Any code point, lone surrogates included; text that could itself look like a block is left out.
any_text = st.text(st.characters(exclude_categories=()), max_size=120).filter(
    lambda t: not any(x in t for x in TRIGGERS)
)

NEAR_MISSES_HTML = (
    "<div>" + "_" * 79 + "</div>",
    '<div><span style="color:gray">' + "_" * 81 + "</span></div>",
    '<p class="MsoNormal"><span>' + "." * 136 + "</span></p>",
    '<div style="width:100%"><span>' + "_" * 80 + "</span></div>",  # a delimiter line alone
    "<p>see the rule: " + "_" * 80 + " above</p>",
)
NEAR_MISSES_TEXT = ("_" * 79, "_" * 81, "." * 136, "." * 138, "_" * 80, "x " + "." * 137)
ORGANIZER_TAGS = ("<p>", "</p>", "<br>", "<b>", "</b>", "<div>", "</div>", "&nbsp;", "\r\n", "\n")


@st.composite
def html_filler(draw: st.DrawFn) -> str:
    """Organizer HTML: escaped arbitrary text, tags and near-miss delimiter lines."""
    parts = draw(
        st.lists(
            st.one_of(
                any_text.map(lambda t: html.escape(t, quote=False)),
                st.sampled_from(ORGANIZER_TAGS),
                st.sampled_from(NEAR_MISSES_HTML),
            ),
            max_size=8,
        )
    )
    return "".join(parts)


@st.composite
def text_filler(draw: st.DrawFn) -> str:
    """Organizer text lines: arbitrary Unicode and near-miss delimiter lines."""
    lines = draw(st.lists(st.one_of(any_text, st.sampled_from(NEAR_MISSES_TEXT)), max_size=6))
    return "\n".join(lines)


digits = st.text(st.sampled_from("0123456789"), min_size=6, max_size=15)


@st.composite
def details(draw: st.DrawFn, kind: str) -> MeetingDetails:
    """New meeting details with arbitrary labels (escaping is exercised too)."""
    token = draw(st.text(st.sampled_from("abcdefXYZ0123456789"), min_size=4, max_size=12))
    join = (
        f"https://teams.microsoft.com/l/meetup-join/19%3ameeting_{token}%40thread.v2/0"
        if kind == "teams"
        else f"https://meet.contoso.com/user{token}/{token.upper()}"
    )
    numbers = draw(
        st.lists(
            st.builds(
                PhoneNumber, st.from_regex(r"\+\d{1,3} \d{2,4}-\d{3,4}", fullmatch=True), any_text
            ),
            max_size=2,
        )
    )
    return MeetingDetails(
        join_url=join,
        meeting_id=draw(st.none() | digits),
        passcode=draw(
            st.none() | st.text(st.characters(exclude_categories=["Cs"]), min_size=1, max_size=10)
        ),
        conference_id=draw(st.none() | digits),
        toll_numbers=tuple(numbers),
        dial_in_url=draw(st.none() | st.just("https://dialin.teams.microsoft.com/x?id=1")),
        meeting_options_url=draw(
            st.none() | st.just("https://teams.microsoft.com/meetingOptions/?a=1&b=<2>")
        ),
    )


@st.composite
def blocks(draw: st.DrawFn, ctype: str) -> str:
    """A block of any kind, format and language: a golden one or a rendered one."""
    goldens = [g for g in GOLDENS if g.file.endswith(".html" if ctype == "html" else ".txt")]
    if draw(st.booleans()):
        g = draw(st.sampled_from(goldens))
        body, _, start, end = load(g)
        return body[start:end]
    kind = draw(st.sampled_from(["teams", "skype"]))
    lang = draw(st.sampled_from([None, "en-US", "de-DE", "zh-CN", "fr-FR"]))
    return render_block(kind, draw(details(kind)), content_type=ctype, language=lang)


@st.composite
def bodies(draw: st.DrawFn) -> tuple[str, str, str, str]:
    """(content type, prefix, mutated block, suffix), prefix/suffix on their own lines."""
    ctype = draw(st.sampled_from(["html", "text"]))
    block = mutate(draw(blocks(ctype)), ctype, random.Random(draw(st.integers(0, 2**32))))
    if ctype == "html":
        prefix, suffix = draw(html_filler()), draw(html_filler())
        if draw(st.booleans()):  # nested in the organizer's own divs
            prefix, suffix = (
                prefix + '<div class="organizer" dir="auto">\r\n',
                "\r\n</div>" + suffix,
            )
    else:
        prefix, suffix = draw(text_filler()) + "\n", "\n" + draw(text_filler())
    return ctype, prefix, block, suffix


def same_bytes(a: str, b: str) -> bool:
    return a.encode("utf-8", "surrogatepass") == b.encode("utf-8", "surrogatepass")


@SETTINGS
@given(bodies())
def test_block_is_found_with_exact_boundaries(case: tuple[str, str, str, str]) -> None:
    ctype, prefix, block, suffix = case
    found = find_block(prefix + block + suffix, ctype)
    assert isinstance(found, FoundBlock), found
    assert (found.start, found.end) == (len(prefix), len(prefix) + len(block))


@SETTINGS
@given(bodies(), st.sampled_from(["teams", "skype"]), st.data())
def test_replacement_keeps_prefix_and_suffix_and_is_idempotent(
    case: tuple[str, str, str, str], target: str, data: st.DataObject
) -> None:
    ctype, prefix, block, suffix = case
    body = prefix + block + suffix
    found = find_block(body, ctype)
    assert isinstance(found, FoundBlock)
    new = render_block(
        target, data.draw(details(target)), content_type=ctype, language=found.language
    )
    result = replace_block(body, ctype, new)
    assert not isinstance(result, BlockProblem)
    assert same_bytes(result.body[: len(prefix)], prefix)
    assert same_bytes(result.body[result.new_end :], suffix)
    assert result.new_start == len(prefix)
    assert carries_block(result.body, ctype, new)
    again = replace_block(result.body, ctype, new)
    assert not isinstance(again, BlockProblem)
    assert again.already_current
    assert same_bytes(again.body, result.body)
    # Exchange re-serialises the body it stores: the new block is still recognised.
    reserialised = mutate(new, ctype, random.Random(len(body)), everything=True)
    assert carries_block(prefix + reserialised + suffix, ctype, new)


@SETTINGS
@given(bodies(), st.data())
def test_two_blocks_are_ambiguous(case: tuple[str, str, str, str], data: st.DataObject) -> None:
    ctype, prefix, block, suffix = case
    other = data.draw(blocks(ctype))
    middle = "\n<p>and again</p>\n" if ctype == "html" else "\nand again\n"
    found = find_block(prefix + block + middle + other + suffix, ctype)
    assert isinstance(found, BlockProblem)
    assert found.reason is SkipReason.AMBIGUOUS_BLOCK


EVIDENCE = re.compile(
    r"meetup-join(?:/|%2F)|(?:/|%2F)meet(?:/|%2F)|(?://|%2F%2F)meet\.|OutJoinLink"
    r"|meet_invite_block\.|\[!OC\(\[",
    re.I,
)


@SETTINGS
@given(bodies(), st.data())
def test_a_block_cut_short_is_damaged(case: tuple[str, str, str, str], data: st.DataObject) -> None:
    ctype, prefix, block, suffix = case
    # A delimiter line of the organizer's after the cut would complete the block again.
    assume("_" * 80 not in suffix and "." * 137 not in suffix)
    rule = "_" * 80 if "_" * 80 in block else "." * 137
    first_rule_end = block.index(rule) + len(rule)
    # Cut after the first sign of a join link: a cut before it leaves a lone delimiter
    # line followed by the organizer's text, which SPEC section 3 calls noBlock (an
    # organizer may draw a rule of underscores) -- test_near_misses_alone_are_no_block.
    # Cut before the partner delimiter line (a three-rule block cut after its second
    # rule is a whole two-rule block, rightly found).
    partner = block.index(rule, first_rule_end)
    evidence = EVIDENCE.search(block, first_rule_end, partner)
    assume(evidence is not None)
    assert evidence is not None
    cut = data.draw(st.integers(evidence.end(), partner))
    damaged = find_block(prefix + block[:cut] + suffix, ctype)
    assert isinstance(damaged, BlockProblem)
    assert damaged.reason is SkipReason.DAMAGED_BLOCK


@st.composite
def golden_bodies(draw: st.DrawFn) -> tuple[Golden, str, str, str, str]:
    """(golden, content type, prefix, golden block under mail-client mutations, suffix)."""
    g = draw(st.sampled_from(GOLDENS))
    body, ctype, start, end = load(g)
    rng = random.Random(draw(st.integers(0, 2**32)))
    block = mutate(body[start:end], ctype, rng, everything=draw(st.booleans()))
    if ctype == "html":
        prefix, suffix = draw(html_filler()), draw(html_filler())
    else:
        prefix, suffix = draw(text_filler()) + "\n", "\n" + draw(text_filler())
    return g, ctype, prefix, block, suffix


@SETTINGS
@given(golden_bodies())
def test_golden_details_survive_every_mutation_and_are_not_a_hand_edit(
    case: tuple[Golden, str, str, str, str],
) -> None:
    g, ctype, prefix, block, suffix = case
    found = find_block(prefix + block + suffix, ctype)
    assert isinstance(found, FoundBlock), found
    assert (found.start, found.end) == (len(prefix), len(prefix) + len(block))
    assert (found.join_url, found.meeting_id, found.conference_id, found.language) == (
        g.join_url,
        g.meeting_id,
        g.conference_id,
        g.language,
    )
    assert found.format is g.format
    new = render_block(
        g.kind, MeetingDetails(join_url=g.join_url), content_type=ctype, language=found.language
    )
    result = replace_block(prefix + block + suffix, ctype, new)
    assert not isinstance(result, BlockProblem)
    assert not result.hand_edited


@SETTINGS
@given(st.sampled_from(["html", "text"]), st.data())
def test_near_misses_alone_are_no_block(ctype: str, data: st.DataObject) -> None:
    filler = data.draw(html_filler() if ctype == "html" else text_filler())
    found = find_block(filler, ctype)
    assert isinstance(found, BlockProblem)
    assert found.reason is SkipReason.NO_BLOCK


def test_garbled_and_surrogate_unicode_around_a_block_survives_to_the_byte() -> None:
    g = GOLDENS[0]
    body, ctype, start, end = load(g)
    prefix = "ï ¿ ½ � \ud83d lone surrogate, 𝔘𝔫𝔦𝔠𝔬𝔡𝔢, RTL \u202eabc, ZWJ 👩\u200d💻\n"
    suffix = "\n\udc00 tail ✓ \x00 nul"
    old = body[start:end]
    new = render_block("teams", MeetingDetails(join_url=g.join_url), content_type=ctype)
    result = replace_block(prefix + old + suffix, ctype, new)
    assert not isinstance(result, BlockProblem)
    assert same_bytes(result.body, prefix + new + suffix)
