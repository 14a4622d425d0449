"""Golden tests: Microsoft's published invitations (tests/blocks/golden/README.md) found exactly."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import pytest

from mmsd.domain.blocks import (
    BlockFormat,
    BlockKind,
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

GOLDEN = Path(__file__).parent / "golden"
U80 = "_" * 80
D137 = "." * 137


@dataclass(frozen=True)
class Golden:
    file: str
    first: str  # the block starts at the first occurrence of this
    last: str  # ... and ends after the last occurrence of this
    kind: BlockKind
    format: BlockFormat
    language: str | None
    join_url: str
    meeting_id: str | None = None
    passcode: str | None = None
    conference_id: str | None = None


GOLDENS = [
    Golden(
        "en_teams_classic.html",
        '<div style="width:100%; height:20px">',
        f"{U80}</span>\n</div>",
        BlockKind.TEAMS,
        BlockFormat.CLASSIC,
        "en-US",
        "https://teams.microsoft.com/l/meetup-join/19%3ameeting_ODkyNWFmNGYtZjBjYS00MDdlLTllOWQtN2E3MzJlNjM0ZWRj%40thread.v2/0?context=%7b%22Tid%22%3a%2298a79ebe-74bf-4e07-a017-7b410848cb32%22%2c%22Oid%22%3a%2264339082-ed84-4b0b-b4ab-004ae54f3747%22%7d",
        conference_id="291633251",
    ),
    Golden(
        "en_teams_2023.html",
        '<div style="width:100%"><span',
        f"{U80}</span>\n</div>",
        BlockKind.TEAMS,
        BlockFormat.TEAMS_2023,
        "en-US",
        "https://teams.microsoft.com/l/meetup-join/19%3ameeting_MDZmMzZmYzYtMDc4Yi00NTA2LWE3MTMtZDc5ZDI1M2JmY2M3%40thread.v2/0?context=%7b%22Tid%22%3a%2223786ca6-7ff2-4672-87d0-5c649ee0a337%22%2c%22Oid%22%3a%22b834447b-6848-4af9-8390-d2259ce46b74%22%7d",
        meeting_id="355132640047",
        passcode="xgUo7v",
    ),
    Golden(
        "en_teams_meet_invite_block.html",
        '<div class="me-email-text" lang="en-US"',
        f"{U80}</div>\n</div>",
        BlockKind.TEAMS,
        BlockFormat.MEET_INVITE_BLOCK,
        "en-US",
        "https://teams.microsoft.com/l/meetup-join/19%3ameeting_ZmQ4OTE0ZTEtNGU1Ny00OTBhLWFmYTYtZTk4NTQzOGI0N2Zl%40thread.v2/0?context=%7b%22Tid%22%3a%22858bad56-b0d7-4d5e-94d7-aa0d82eedbe2%22%2c%22Oid%22%3a%2284c9bfe0-0c6e-431e-8665-fea0c27f0789%22%7d",
        meeting_id="496119491249482",
        passcode="nb9N9R8V",
    ),
    Golden(
        "en_skype.html",
        '<p class="MsoNormal" style="text-autospace:none"><span style="font-size:8.0pt; color:#404040">',
        'line-height:115%"></span></p>',
        BlockKind.SKYPE,
        BlockFormat.SKYPE_HTML,
        "en-US",
        "https://sfb.contoso.co.za/meet/zanele/RWRQKNN2",
        conference_id="9549110989",
    ),
    Golden(
        "en_skype.txt",
        D137,
        D137,
        BlockKind.SKYPE,
        BlockFormat.SKYPE_TEXT,
        "en-US",
        "https://meet.lync.com/contoso/amit.choudhary/M2NRN65H",
        conference_id="9549110989",
    ),
    Golden(
        "en_teams_2023.txt",
        U80,
        U80,
        BlockKind.TEAMS,
        BlockFormat.TEAMS_2023,
        "en-US",
        "https://teams.microsoft.com/l/meetup-join/19%3ameeting_MDZmMzZmYzYtMDc4Yi00NTA2%40thread.v2/0?context=%7b%22Tid%22%3a%2223786ca6%22%7d",
        meeting_id="312456789012",
        passcode="Ab3dEf",
        conference_id="123456789",
    ),
    Golden(
        "en_teams_2023_three_rules.txt",
        U80,
        U80,
        BlockKind.TEAMS,
        BlockFormat.TEAMS_2023,
        "en-US",
        "https://teams.live.com/meet/9385551482824?p=Nqcc5j3c06vlEOa23P",
        meeting_id="9385551482824",
        passcode="on3h3U",
    ),
    Golden(
        "de_teams_2023.html",
        '<div style="width:100%"><span',
        f"{U80}</span>\n</div>",
        BlockKind.TEAMS,
        BlockFormat.TEAMS_2023,
        "de-DE",
        "https://teams.microsoft.com/l/meetup-join/19%3ameeting_YjJhZGU5%40thread.v2/0?context=%7b%22Tid%22%3a%228b3f7f7f%22%7d",
        meeting_id="376221908113",
        passcode="Qw7xZp",
    ),
    Golden(
        "de_teams_classic.txt",
        U80,
        U80,
        BlockKind.TEAMS,
        BlockFormat.CLASSIC,
        "de-DE",
        "https://teams.microsoft.com/l/meetup-join/19%3ameeting_ZGVfY2xhc3NpYw%40thread.v2/0?context=%7b%22Tid%22%3a%22aa%22%7d",
        conference_id="512334771",
    ),
    Golden(
        "zh_teams_2023.txt",
        U80,
        U80,
        BlockKind.TEAMS,
        BlockFormat.TEAMS_2023,
        "zh-CN",
        "https://teams.microsoft.com/l/meetup-join/19%3ameeting_emhfMjAyMw%40thread.v2/0?context=%7b%22Tid%22%3a%22cc%22%7d",
        meeting_id="281774305962",
        passcode="rT5kWq",
    ),
    Golden(
        "zh_teams_classic.html",
        '<div style="width:100%; height:20px">',
        f"{U80}</span>\n</div>",
        BlockKind.TEAMS,
        BlockFormat.CLASSIC,
        "zh-CN",
        "https://teams.microsoft.com/l/meetup-join/19%3ameeting_emhfY2xhc3NpYw%40thread.v2/0?context=%7b%22Tid%22%3a%22cc%22%7d",
        conference_id="776201334",
    ),
    Golden(
        "en_teams_meet_invite_block.txt",
        U80,
        U80,
        BlockKind.TEAMS,
        BlockFormat.MEET_INVITE_BLOCK,
        "en-US",
        "https://teams.microsoft.com/l/meetup-join/19%3ameeting_ZW5fbmV3ZXN0X3RleHQ%40thread.v2/0?context=%7b%22Tid%22%3a%22e1%22%7d",
        meeting_id="371882604915226",
        passcode="Zr8WmT2",
        conference_id="612345789",
    ),
    Golden(
        "de_teams_meet_invite_block.html",
        '<div class="me-email-text" lang="de-DE"',
        f"{U80}</div>\n</div>",
        BlockKind.TEAMS,
        BlockFormat.MEET_INVITE_BLOCK,
        "de-DE",
        "https://teams.microsoft.com/l/meetup-join/19%3ameeting_ZGVfbmV3ZXN0%40thread.v2/0?context=%7b%22Tid%22%3a%22858bad56-b0d7-4d5e-94d7-aa0d82eedbe2%22%2c%22Oid%22%3a%2284c9bfe0-0c6e-431e-8665-fea0c27f0789%22%7d",
        meeting_id="318446207195533",
        passcode="k9RsQ4",
    ),
    Golden(
        "zh_teams_meet_invite_block.txt",
        U80,
        U80,
        BlockKind.TEAMS,
        BlockFormat.MEET_INVITE_BLOCK,
        "zh-CN",
        "https://teams.microsoft.com/l/meetup-join/19%3ameeting_emhfbmV3ZXN0%40thread.v2/0?context=%7b%22Tid%22%3a%22cc%22%7d",
        meeting_id="265410938772104",
        passcode="b7QpL0",
        conference_id="448120367",
    ),
    Golden(
        "en_teams_classic.txt",
        U80,
        U80,
        BlockKind.TEAMS,
        BlockFormat.CLASSIC,
        "en-US",
        "https://teams.microsoft.com/l/meetup-join/19%3ameeting_ZW5fY2xhc3NpY190ZXh0%40thread.v2/0?context=%7b%22Tid%22%3a%22e2%22%7d",
        conference_id="291633251",
    ),
    Golden(
        "zh_teams_classic.txt",
        U80,
        U80,
        BlockKind.TEAMS,
        BlockFormat.CLASSIC,
        "zh-CN",
        "https://teams.microsoft.com/l/meetup-join/19%3ameeting_emhfY2xhc3NpY190ZXh0%40thread.v2/0?context=%7b%22Tid%22%3a%22cc%22%7d",
        conference_id="776201334",
    ),
    Golden(
        "ja_teams_2023.html",
        '<div style="width:100%"><span',
        f"{U80}</span>\n</div>",
        BlockKind.TEAMS,
        BlockFormat.TEAMS_2023,
        "ja-JP",
        "https://teams.microsoft.com/l/meetup-join/19%3ameeting_amFfdGVhbXNfMjAyMw%40thread.v2/0?context=%7b%22Tid%22%3a%2223786ca6-7ff2-4672-87d0-5c649ee0a337%22%2c%22Oid%22%3a%22b834447b-6848-4af9-8390-d2259ce46b74%22%7d",
        meeting_id="418903227651",
        passcode="Jm4TqW",
    ),
    Golden(
        "de_skype.html",
        '<p class="MsoNormal" style="text-autospace:none"><span style="font-size:8.0pt; color:#404040">',
        'line-height:115%"></span></p>',
        BlockKind.SKYPE,
        BlockFormat.SKYPE_HTML,
        "de-DE",
        "https://meet.contoso.de/erika.mustermann/QX7K2M4P",
        conference_id="70412233",
    ),
    Golden(
        "zh_skype.txt",
        D137,
        D137,
        BlockKind.SKYPE,
        BlockFormat.SKYPE_TEXT,
        "zh-CN",
        "https://meet.contoso.cn/li.wei/8HQ2LZ7C",
        conference_id="38817420",
    ),
    Golden(
        "de_skype.txt",
        D137,
        D137,
        BlockKind.SKYPE,
        BlockFormat.SKYPE_TEXT,
        "de-DE",
        "https://meet.contoso.de/erika.mustermann/QX7K2M4P",
        conference_id="70412233",
    ),
    Golden(
        "zh_skype.html",
        '<p class="MsoNormal" style="text-autospace:none"><span style="font-size:8.0pt',
        "</span><o:p></o:p></p>",
        BlockKind.SKYPE,
        BlockFormat.SKYPE_HTML,
        "zh-CN",
        "https://meet.contoso.cn/li.wei/8HQ2LZ7C",
        conference_id="38817420",
    ),
]


def load(g: Golden) -> tuple[str, str, int, int]:
    """The body, its content type, and the hand-specified block boundaries."""
    body = (GOLDEN / g.file).read_text(encoding="utf-8")
    ctype = "html" if g.file.endswith(".html") else "text"
    return body, ctype, body.index(g.first), body.rindex(g.last) + len(g.last)


@pytest.mark.parametrize("g", GOLDENS, ids=[g.file for g in GOLDENS])
def test_golden_block_is_found_with_exact_boundaries_and_details(g: Golden) -> None:
    body, ctype, start, end = load(g)
    found = find_block(body, ctype)
    assert isinstance(found, FoundBlock), found
    assert (found.start, found.end) == (start, end)
    assert found.kind is g.kind
    assert found.format is g.format
    assert found.language == g.language
    assert found.join_url == g.join_url
    assert found.meeting_id == g.meeting_id
    assert found.passcode == g.passcode
    assert found.conference_id == g.conference_id


@pytest.mark.parametrize("g", GOLDENS, ids=[g.file for g in GOLDENS])
def test_golden_block_is_found_in_crlf_bodies(g: Golden) -> None:
    body, ctype, start, end = load(g)
    crlf = body.replace("\n", "\r\n")
    found = find_block(crlf, ctype)
    assert isinstance(found, FoundBlock)
    assert crlf[found.start : found.end] == body[start:end].replace("\n", "\r\n")


@pytest.mark.parametrize("g", GOLDENS, ids=[g.file for g in GOLDENS])
def test_golden_replacement_keeps_everything_outside_and_is_not_a_hand_edit(g: Golden) -> None:
    body, ctype, start, end = load(g)
    details = MeetingDetails(
        join_url="https://teams.microsoft.com/l/meetup-join/19%3ameeting_NEW%40thread.v2/0",
        meeting_id="111222333444",
        passcode="N3wPass",
        conference_id="987654321",
        toll_numbers=(PhoneNumber("+1 323-555-0166", "United States, Los Angeles"),),
    )
    new = render_block("teams", details, content_type=ctype, language=g.language)
    result = replace_block(body, ctype, new)
    assert not isinstance(result, BlockProblem)
    assert not result.already_current
    assert not result.hand_edited
    assert result.body[:start] == body[:start]
    assert result.body[result.new_end :] == body[end:]
    assert carries_block(result.body, ctype, new)
    again = replace_block(result.body, ctype, new)
    assert not isinstance(again, BlockProblem)
    assert again.already_current and again.body == result.body


def test_a_line_added_by_hand_is_reported() -> None:
    g = GOLDENS[1]
    body, ctype, _, _ = load(g)
    edited = body.replace(
        "Join on the web</a></div>",
        "Join on the web</a></div>\n<div>Please dial in five minutes early!</div>",
    )
    new = render_block("teams", MeetingDetails(join_url=g.join_url), content_type=ctype)
    result = replace_block(edited, ctype, new)
    assert not isinstance(result, BlockProblem)
    assert result.hand_edited
    assert "five minutes" not in result.body


def test_two_golden_blocks_in_one_body_are_ambiguous() -> None:
    a, _, _, _ = load(GOLDENS[1])
    b, _, _, _ = load(GOLDENS[3])
    found = find_block(a + b, "html")
    assert isinstance(found, BlockProblem)
    assert found.reason is SkipReason.AMBIGUOUS_BLOCK


def test_a_golden_block_cut_short_is_damaged() -> None:
    body, ctype, _, end = load(GOLDENS[2])
    cut = body[: end - 200]
    found = find_block(cut, ctype)
    assert isinstance(found, BlockProblem)
    assert found.reason is SkipReason.DAMAGED_BLOCK


# -- rendering, checked against the published layouts ------------------------

DETAILS = MeetingDetails(
    join_url="https://teams.microsoft.com/l/meetup-join/19%3ameeting_R%40thread.v2/0?context=%7b%7d",
    meeting_id="496119491249482",
    passcode="nb9N9R8V",
    conference_id="291633251",
    toll_numbers=(PhoneNumber("+1 323-555-0166", "United States, Los Angeles"),),
    toll_free_numbers=(PhoneNumber("+1 800-555-0100", "United States"),),
    dial_in_url="https://dialin.teams.microsoft.com/x?id=291633251",
    meeting_options_url="https://teams.microsoft.com/meetingOptions/?organizerId=1&tenantId=2",
    reset_pin_url="https://dialin.teams.microsoft.com/usp/pstnconferencing",
)
SKYPE_DETAILS = MeetingDetails(
    join_url="https://meet.contoso.com/ann/ABC123",
    conference_id="70412233",
    toll_numbers=(PhoneNumber("+49 30 5555 0100", "(Berlin)"),),
    dial_in_url="https://dialin.contoso.com/",
    reset_pin_url="https://dialin.contoso.com/",
)

# What Microsoft's current Teams invitation holds (en_teams_meet_invite_block.html).
TEAMS_HTML_FEATURES = [
    '<div class="me-email-text" lang="',
    'aria-hidden="true"',
    'id="meet_invite_block.action.join_link"',
    'id="meet_invite_block.action.help"',
    'id="meet_invite_block.action.organizer_meet_options"',
    "me-email-text-secondary",
    "#5B5FC7",
]
# What a Skype for Business invitation holds (en_skype.html).
SKYPE_HTML_FEATURES = [
    '<a name="OutJoinLink">',
    '<a name="OutSharedNoteBorder">',
    '<a name="OutSharedNoteLink">',
    "ABC123?sl=1",
    'class="MsoNormal"',
]

LABELS = {
    "en": ("Join the meeting now", "Meeting ID:", "Passcode:", "Need help?", "For organizers:"),
    "de": ("Besprechung jetzt beitreten", "Besprechungs-ID:", "Kenncode:", "Besprechungsoptionen"),
    "zh": ("立即加入会议", "会议 ID:", "密码:", "会议选项"),
}
SKYPE_LABELS = {
    "en": ("Join Skype Meeting", "Trouble Joining?", "Try Skype Web App", "[!OC([1033])!]"),
    "de": ("An Skype-Besprechung teilnehmen", "Konferenz-ID:", "[!OC([1031])!]"),
    "zh": ("加入 Skype 会议", "试用 Skype Web App", "[!OC([2052])!]"),
}


@pytest.mark.parametrize("lang", ["en", "de", "zh"])
@pytest.mark.parametrize("ctype", ["html", "text"])
def test_rendered_teams_block_has_the_current_layout_in_its_language(lang: str, ctype: str) -> None:
    block = render_block("teams", DETAILS, content_type=ctype, language=lang)
    assert block.count(U80) == 2
    for label in LABELS[lang]:
        assert label in block
    if ctype == "html":
        for feature in TEAMS_HTML_FEATURES:
            assert feature in block
    assert "496 119 491 249 482" in block
    assert "291 633 251#" in block
    found = find_block(f"Agenda\n{block}\nEnd", ctype)
    assert isinstance(found, FoundBlock)
    assert found.format is BlockFormat.MEET_INVITE_BLOCK
    assert (found.join_url, found.meeting_id, found.passcode, found.conference_id) == (
        DETAILS.join_url,
        "496119491249482",
        "nb9N9R8V",
        "291633251",
    )
    assert found.language is not None and found.language.startswith(lang)


@pytest.mark.parametrize("lang", ["en", "de", "zh"])
@pytest.mark.parametrize("ctype", ["html", "text"])
def test_rendered_skype_block_has_the_skype_layout_in_its_language(lang: str, ctype: str) -> None:
    block = render_block("skype", SKYPE_DETAILS, content_type=ctype, language=lang)
    assert block.count(D137) == 2
    for label in SKYPE_LABELS[lang]:
        assert label in block
    if ctype == "html":
        for feature in SKYPE_HTML_FEATURES:
            assert feature in block
    found = find_block(f"Agenda\n{block}\nEnd", ctype)
    assert isinstance(found, FoundBlock)
    assert found.kind is BlockKind.SKYPE
    assert found.join_url == SKYPE_DETAILS.join_url
    assert found.conference_id == "70412233"


def test_unknown_language_renders_in_english() -> None:
    block = render_block("teams", DETAILS, content_type="html", language="fi-FI")
    assert "Join the meeting now" in block and 'lang="en-US"' in block


@pytest.mark.parametrize("ctype", ["html", "text"])
def test_values_cannot_inject_markup_or_delimiters(ctype: str) -> None:
    evil = MeetingDetails(
        join_url='https://teams.microsoft.com/l/meetup-join/x"><script>alert(1)</script>',
        meeting_id="1<b>2",
        passcode='"><img src=x onerror=alert(1)>',
        conference_id="123",
        toll_numbers=(PhoneNumber("", "_" * 80), PhoneNumber("+1\n" + "_" * 80, "</div>")),
        meeting_options_url="javascript:alert(1)",
    )
    block = render_block("teams", evil, content_type=ctype)
    if ctype == "html":
        assert "<script" not in block and "<img" not in block and "javascript:" not in block
        assert "<b>" not in block
    assert block.count(U80) == 2
    found = find_block(f"x\n{block}\ny", ctype)
    assert isinstance(found, FoundBlock)
    assert found.start == 2 and found.end == 2 + len(block)


def _inner_line_breaks(block: str, ctype: str) -> list[int]:
    """Offsets of the line breaks strictly between the block's first and last delimiter lines."""
    rule = U80 if U80 in block else D137
    first, last = block.index(rule) + len(rule), block.rindex(rule)
    out = []
    for i in range(first, last):
        if block[i] != "\n":
            continue
        if ctype == "html" and block.rfind("<", 0, i) > block.rfind(">", 0, i):
            continue  # inside a tag
        out.append(i)
    return out


@pytest.mark.parametrize("g", GOLDENS, ids=[g.file for g in GOLDENS])
def test_a_line_added_by_hand_at_any_line_break_is_reported(g: Golden) -> None:
    if g.language is not None and g.language.split("-")[0] not in ("en", "de", "zh"):
        pytest.skip("blocks in languages without strings are never reported (compare.py)")
    body, ctype, start, end = load(g)
    block = body[start:end]
    added = (
        "\n<div>Please bring the Q3 figures</div>\n"
        if ctype == "html"
        else "\nPlease bring the Q3 figures\n"
    )
    new = render_block(g.kind, MeetingDetails(join_url=g.join_url), content_type=ctype)
    breaks = _inner_line_breaks(block, ctype)
    assert len(breaks) >= 3
    missed = []
    for i in breaks:
        edited = body[:start] + block[:i] + added + block[i:] + body[end:]
        result = replace_block(edited, ctype, new)
        assert not isinstance(result, BlockProblem), (i, result)
        if not result.hand_edited:
            missed.append(block[max(0, i - 40) : i])
    assert missed == []
