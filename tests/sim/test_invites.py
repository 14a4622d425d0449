"""The simulator's invitation templates: every kind, format and language, delimiters, escaping."""

from __future__ import annotations

import re

import pytest

from mmsd.sim.eventjson import body_as
from mmsd.sim.invites import (
    FORMATS,
    LANGUAGES,
    SKYPE_RULE,
    TEAMS_KINDS,
    TEAMS_RULE,
    DialIn,
    InviteDetails,
    InviteKind,
    lcid,
    render_invite,
    strings_language,
    wrap_body,
)

JOIN = "https://teams.microsoft.com/l/meetup-join/19%3ameeting_abc%40thread.v2/0?context=%7b%22Tid%22%3a%22t%22%7d&x=1"
OPTIONS = (
    "https://teams.microsoft.com/meetingOptions/?organizerId=o&tenantId=t&threadId=19_x&messageId=0"
)
TEAMS = InviteDetails(
    join_url=JOIN,
    conference_id="123456789",
    dial_ins=(
        DialIn("+1 425-555-0100", "United States, Seattle"),
        DialIn("+1 844-555-0101", "US", toll_free=True),
    ),
    meeting_id="246813579024",
    passcode="Ab3xYz",
    dial_in_url="https://dialin.teams.microsoft.com/t?id=123456789",
    meeting_options_url=OPTIONS,
)
SKYPE = InviteDetails(
    join_url="https://meet.contoso-sim.example/alice.smith/ABCD1234",
    conference_id="87654321",
    dial_ins=(DialIn("+49 69 5555 0100", "Germany, Frankfurt"),),
    dial_in_url="https://dialin.contoso-sim.example/",
)
NO_DIAL_IN = InviteDetails(
    join_url=JOIN, meeting_id="246813579024", passcode="Ab3xYz", meeting_options_url=OPTIONS
)
ALL_KINDS = [*TEAMS_KINDS, InviteKind.SKYPE]


def _max_run(text: str, char: str) -> list[int]:
    """Lengths of every run of ``char`` in ``text``."""
    return [len(m.group(0)) for m in re.finditer(re.escape(char) + "+", text)]


@pytest.mark.parametrize("kind", ALL_KINDS)
@pytest.mark.parametrize("fmt", FORMATS)
@pytest.mark.parametrize("lang", LANGUAGES)
def test_every_block_has_two_exact_delimiters_and_the_link(
    kind: InviteKind, fmt: str, lang: str
) -> None:
    details = SKYPE if kind is InviteKind.SKYPE else TEAMS
    block = render_invite(kind, fmt, lang, details)
    if kind is InviteKind.SKYPE:
        assert [n for n in _max_run(block, ".") if n > 3] == [137, 137]
        assert block.startswith(SKYPE_RULE) or block.index(SKYPE_RULE) < 80
    else:
        assert [n for n in _max_run(block, "_") if n >= 80] == [80, 80]
        assert block.count(TEAMS_RULE) == 2
    if fmt == "html":
        assert "&amp;" in block or kind is InviteKind.SKYPE  # values are escaped
        assert f'href="{details.join_url.replace("&", "&amp;")}"' in block
    else:
        assert f"<{details.join_url}>" in block
        assert "<div" not in block and "&amp;" not in block
        assert "\r\n" in block and "\n" not in block.replace("\r\n", "")


def test_teams_classic_english_wording() -> None:
    text = render_invite("teamsClassic", "text", "en", TEAMS)
    assert text.splitlines()[1] == f"Join Microsoft Teams Meeting<{JOIN}>"
    assert "Conference ID: 123 456 789#" in text
    assert re.search(
        r"Local numbers<[^>]+> \| Reset PIN<[^>]+> \| Learn more about Teams<[^>]+> \| Meeting options<",
        text,
    )
    html = render_invite("teamsClassic", "html", "en", TEAMS)
    assert 'span style="white-space:nowrap;color:#5F5F5F;opacity:.36">' + TEAMS_RULE in html
    as_text = body_as(html, "html", "text")
    assert f"Join Microsoft Teams Meeting<{JOIN}>" in as_text
    assert "Conference ID: 123 456 789#" in as_text


def test_teams_2023_wording() -> None:
    html = render_invite("teams2023", "html", "en", TEAMS)
    for fixed in (
        "Microsoft Teams meeting",
        "Join on your computer, mobile app or room device",
        "Click here to join the meeting",
        "Meeting ID: ",
        "246 813 579 024",
        "Passcode: ",
        "Ab3xYz",
        "Phone Conference ID: ",
    ):
        assert fixed in html
    text = render_invite("teams2023", "text", "en", TEAMS)
    assert "Meeting ID: 246 813 579 024" in text and "Passcode: Ab3xYz" in text


def test_newest_meet_invite_block_ids() -> None:
    html = render_invite("teamsMeetInviteBlock", "html", "en", TEAMS)
    assert '<div aria-hidden="true"' in html
    assert 'id="meet_invite_block.action.join_link"' in html
    assert ">Join the meeting now</a>" in html
    assert 'id="meet_invite_block.action.help"' in html and "Need help?" in html
    assert 'id="meet_invite_block.action.organizer_meet_options"' in html
    assert "For organizers:" in html
    assert html.count(TEAMS_RULE) == 2


def test_skype_html_markers() -> None:
    html = render_invite("skype", "html", "en", SKYPE)
    assert '<a name="OutJoinLink"></a>' in html
    assert ">Join Skype Meeting<" in html
    assert f'href="{SKYPE.join_url}?sl=1">Try Skype Web App</a>' in html
    for fixed in (
        "Join by phone",
        "Find a local number",
        "Conference ID: 87654321",
        "Forgot your dial-in PIN?",
        ">Help<",
    ):
        assert fixed in html
    assert "OutSharedNoteBorder" in html and "OutSharedNoteLink" in html
    assert '<div style="display:none"><span>[!OC([1033])!]</span></div>' in html
    assert '<span style="font-size:8pt;color:gray">' + SKYPE_RULE in html


def test_skype_text_has_angle_bracket_urls() -> None:
    text = render_invite("skype", "text", "de", SKYPE)
    lines = text.split("\r\n")
    assert lines[0] == SKYPE_RULE and lines[-1] == SKYPE_RULE
    assert f"An Skype-Besprechung teilnehmen<{SKYPE.join_url}>" in lines
    assert f"<{SKYPE.join_url}?sl=1>" in text
    assert "[!OC([1031])!]" in lines


@pytest.mark.parametrize(
    ("lang", "phrase"),
    [
        ("de", "An Microsoft Teams-Besprechung teilnehmen"),
        ("de-DE", "Konferenz-ID: 123 456 789#"),
        ("zh", "加入 Microsoft Teams 会议"),
        ("zh-CN", "本地号码"),
        ("ja", "Microsoft Teams 会議に参加"),
        ("ja-JP", "会議のオプション"),
        ("fr-FR", "Join Microsoft Teams Meeting"),  # unknown languages fall back to English
    ],
)
def test_classic_is_localized(lang: str, phrase: str) -> None:
    assert phrase in render_invite("teamsClassic", "text", lang, TEAMS)


def test_language_helpers() -> None:
    assert [lcid(x) for x in ("en-US", "de", "zh-Hans", "ja-JP", "ar-SA")] == [
        1033,
        1031,
        2052,
        1041,
        1033,
    ]
    assert strings_language("DE-at") == "de"


def test_no_dial_in_means_no_phone_section() -> None:
    for kind in TEAMS_KINDS:
        for fmt in FORMATS:
            block = render_invite(kind, fmt, "en", NO_DIAL_IN)
            assert "Conference ID" not in block and "tel:" not in block
            assert JOIN.replace("&", "&amp;" if fmt == "html" else "&") in block


def test_unknown_kind_or_format_is_refused() -> None:
    with pytest.raises(ValueError, match="zoom"):
        render_invite("zoom", "html", "en", TEAMS)
    with pytest.raises(ValueError, match="rtf"):
        render_invite("teams2023", "rtf", "en", TEAMS)


def test_wrap_body_html_keeps_unicode_escapes_and_marks_rtl() -> None:
    block = render_invite("teams2023", "html", "en", TEAMS)
    before = "Hi 👋 <team> & co\nשלום לכולם\n会议 🇯🇵"
    body = wrap_body(block, "html", before, "مع السلامة 🙏")
    assert body.startswith("<html>") and body.rstrip().endswith("</html>")
    assert "<head>" in body and "<body" in body
    assert block in body
    assert "<div>Hi 👋 &lt;team&gt; &amp; co</div>" in body
    assert '<div dir="rtl">שלום לכולם</div>' in body
    assert "<div>会议 🇯🇵</div>" in body
    assert '<div dir="rtl">مع السلامة 🙏</div>' in body
    assert body.index("Hi 👋") < body.index(TEAMS_RULE) < body.index("مع السلامة")


def test_wrap_body_text() -> None:
    block = render_invite("skype", "text", "ja", SKYPE)
    body = wrap_body(block, "text", "皆さん\nよろしく 🙏", "")
    assert body == "皆さん\r\nよろしく 🙏\r\n" + block + "\r\n"
    assert wrap_body("", "text", "only text", "") == "only text\r\n"
    with pytest.raises(ValueError):
        wrap_body(block, "markdown", "", "")
