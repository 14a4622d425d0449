"""Pinned fingerprints: ``fingerprint()`` and ``block_digest`` must never drift.

The store keeps ``block_digest`` values of earlier runs to recognise a PATCH
applied before an upgrade, so every value here was computed with the engine as
it was before its per-meeting path was optimised; a change to any of them is a
compatibility break, never a test to update.
"""

from __future__ import annotations

import hashlib

import pytest
from test_blocks_golden import GOLDENS, load

from mmsd.domain.blocks import (
    ContentType,
    FoundBlock,
    MeetingDetails,
    PhoneNumber,
    find_block,
    render_block,
    text,
)
from mmsd.domain.blocks.compare import fingerprint, same_block
from mmsd.engine.details import block_digest

GOLDEN_FINGERPRINTS = {
    "en_teams_classic.html": "59f8f41d7c7e8213b919fa443d6f2231",
    "en_teams_2023.html": "d8866ad0b11088c19677efb30d17d3ac",
    "en_teams_meet_invite_block.html": "697c9e93fc576858c1b7206ef4041225",
    "en_skype.html": "d72b62b30037173123d4269e9dd591aa",
    "en_skype.txt": "31b121f465f171309f4c2810111bd9be",
    "en_teams_2023.txt": "57c4fdda4fe75fec3bd9c154d88b9483",
    "en_teams_2023_three_rules.txt": "a6ace7837df3b8d94dd775b6e2577692",
    "de_teams_2023.html": "c7d77ce65e1628dd5a4dfcd62b8fa510",
    "de_teams_classic.txt": "02e7e187b41c2f04422c8f347ecddd9c",
    "zh_teams_2023.txt": "46d6fad932603edd8c8fa5f12daeedf5",
    "zh_teams_classic.html": "80eb30c47135d2690b4f21b854eafe6a",
    "en_teams_meet_invite_block.txt": "ee86d8ac08da3188ed50f756fae69069",
    "de_teams_meet_invite_block.html": "b8880a9decdf31b6f154a35898fdae3e",
    "zh_teams_meet_invite_block.txt": "0b9b796fe182df2fb58c90941fc8fd74",
    "en_teams_classic.txt": "db5da310c4811b9c21e8ea6877670171",
    "zh_teams_classic.txt": "b517f847b1c93bc486ee947b3adf6b53",
    "ja_teams_2023.html": "3942aa1b98a76989d2df0e723f684c9c",
    "de_skype.html": "7320269830cc169c8b9ce1f83d802a8b",
    "zh_skype.txt": "0e7b983d2ab5245692b3ffb1bb012fa3",
    "de_skype.txt": "7aea6cec9e5284f337c57d411b1c31d8",
    "zh_skype.html": "05e437d6887cf4beebb710fa0d95503b",
}
"""sha256 (first 32 hex digits) of each golden block's fingerprint."""

DETAILS = MeetingDetails(
    join_url="https://teams.microsoft.com/l/meetup-join/19%3aPIN%40thread.v2/0?context=%7b%7d",
    meeting_id="355132640047",
    passcode="Ab（1）：x",
    conference_id="291633251",
    toll_numbers=(PhoneNumber("+1 323-555-0166", "United States, Los Angeles"),),
    toll_free_numbers=(PhoneNumber("+1 800-555-0100", "US"),),
    dial_in_url="https://dialin.teams.microsoft.com/x?id=1&amp;a=b",
    meeting_options_url="https://teams.microsoft.com/meetingOptions/?organizerId=1&tenantId=2",
    reset_pin_url="https://dialin.teams.microsoft.com/usp/pstnconferencing",
)

RENDERED_DIGESTS = [
    ("teams", "html", "en-US", "html:a13cff9ffd1fa4ecd38a5bd3fa2bd12f"),
    ("teams", "html", "de-DE", "html:7e44fee4b7754ba8cc6d1fb996a588be"),
    ("teams", "html", "zh-CN", "html:b0ac4256d04e72687c2e802c2935358b"),
    ("teams", "text", "en-US", "text:9b7a80bcfccd7439eec1994a864b45f2"),
    ("teams", "text", "de-DE", "text:52a165c00ce5cbc19adfe51b6e23313e"),
    ("teams", "text", "zh-CN", "text:9d3bd86d23738135730aaa03b2ca08e7"),
    ("skype", "html", "en-US", "html:92473ec3217d6ef60b9a0caf5676fdfd"),
    ("skype", "html", "de-DE", "html:0592782813ea25192f4981ba79962364"),
    ("skype", "html", "zh-CN", "html:08e5082a1d4684422717e0698bee6031"),
    ("skype", "text", "en-US", "text:6aaf355f942b439111279c196034a5c0"),
    ("skype", "text", "de-DE", "text:f87bd568b17fad7fe93dbae3b410065f"),
    ("skype", "text", "zh-CN", "text:17669e60ad925184da07cb5423dc76a9"),
]
"""``block_digest`` of blocks rendered from DETAILS (the same with CRLF line breaks)."""

ODD_FRAGMENTS = [
    (
        ContentType.HTML,
        "<div>Meeting ID：\u00a0123 <b>456</b></div><!-- c <br> --><P/x>Pass&amp;code（1）<br/>\r\n"
        '<a HREF="https://nam.safelinks.protection.outlook.com/?url=https%3A%2F%2Fteams.microsoft.com'
        '%2Fl%2Fmeetup-join%2F1&amp;data=2">Join</a><span x <br> y>z</span><LI>ı</lı>\x00'
        "<td >t&nbsp;d</td>",
        "Meeting ID: 123 456 Pass&code(1) Joinz ı t d\x1ehttps://teams.microsoft.com/l/meetup-join/1",
    ),
    (
        ContentType.TEXT,
        "Join：<https://nam02.safelinks.protection.outlook.com/?url=https%3A%2F%2Fteams.microsoft.com"
        "%2Fmeet%2F1>\r\nID： 1\u00a02 3#\rPasscode（x）\n  https://example.com/a?b=1).",
        "Join:<https://teams.microsoft.com/meet/1> ID: 1 2 3# Passcode(x) https://example.com/a?b=1)."
        "\x1ehttps://teams.microsoft.com/meet/1\x1fhttps://example.com/a?b=1",
    ),
]
"""Hand-made fragments with full-width punctuation, no-break spaces, entities, Safe Links,
comments, upper-case and dotless-i tags, a tag spanning a line break, NUL and CR line breaks."""


def _clear_caches() -> None:
    fingerprint.cache_clear()
    text.clear_caches()


@pytest.mark.parametrize("file", sorted(GOLDEN_FINGERPRINTS))
def test_golden_block_fingerprint_is_pinned(file: str) -> None:
    _clear_caches()
    (g,) = [g for g in GOLDENS if g.file == file]
    body, ctype, _, _ = load(g)
    found = find_block(body, ctype)
    assert isinstance(found, FoundBlock)
    block = body[found.start : found.end]
    token = fingerprint(block, found.content_type).encode("utf-8", "surrogatepass")
    assert hashlib.sha256(token).hexdigest()[:32] == GOLDEN_FINGERPRINTS[file]
    assert block_digest(block, found.content_type) == (
        f"{found.content_type}:{GOLDEN_FINGERPRINTS[file]}"
    )


@pytest.mark.parametrize(("kind", "ctype", "language", "digest"), RENDERED_DIGESTS)
def test_rendered_block_digest_is_pinned_with_either_newline(
    kind: str, ctype: str, language: str, digest: str
) -> None:
    _clear_caches()
    block = render_block(kind, DETAILS, content_type=ctype, language=language)
    crlf = block.replace("\n", "\r\n")
    content_type = ContentType(ctype)
    assert block_digest(block, content_type) == digest
    assert block_digest(crlf, content_type) == digest
    _clear_caches()  # the other order: the CRLF block first, from cold caches
    assert block_digest(crlf, content_type) == digest
    assert block_digest(block, content_type) == digest
    assert same_block(block, crlf, content_type)


@pytest.mark.parametrize(("ctype", "fragment", "expected"), ODD_FRAGMENTS)
def test_odd_fragment_fingerprint_is_pinned(
    ctype: ContentType, fragment: str, expected: str
) -> None:
    _clear_caches()
    assert fingerprint(fragment, ctype) == expected
    _clear_caches()
    assert fingerprint(fragment.replace("\r\n", "\n"), ctype) == expected
