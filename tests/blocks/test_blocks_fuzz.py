"""Fuzz: random and truncated HTML and text never make the engine raise; answers stay typed."""

from __future__ import annotations

import random

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from test_blocks_golden import GOLDENS, load

from mmsd.domain.blocks import (
    BlockProblem,
    FoundBlock,
    MeetingDetails,
    ReplaceResult,
    SkipReason,
    carries_block,
    find_block,
    render_block,
    replace_block,
)

FUZZ = settings(
    derandomize=True,
    max_examples=300,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
TOKENS = (
    "<div>",
    "</div>",
    "<p class=MsoNormal>",
    "</p>",
    "<span style='x'>",
    "</span>",
    "<br>",
    "<",
    ">",
    "&",
    "&nbsp;",
    "&#",
    "<!--",
    "-->",
    '<div class="me-email-text">',
    '<a href="https://teams.microsoft.com/l/meetup-join/19%3a1%40thread.v2/0">',
    '<a href="https://meet.contoso.com/u/X1">',
    "</a>",
    '<a id="meet_invite_block.action.join_link" href="',
    '<a name="OutJoinLink">',
    "[!OC([1033])!]",
    "Meeting ID: 123 456 789",
    "Conference ID: 99 88#",
    "Passcode: ab",
    "_" * 79,
    "_" * 80,
    "_" * 81,
    "." * 136,
    "." * 137,
    "\r\n",
    "\n",
    " ",
    "\ud800",
    "ï ¿ ½ �",
)
NEW = MeetingDetails(join_url="https://teams.microsoft.com/l/meetup-join/19%3aNEW%40thread.v2/0")


def check(body: str, ctype: str) -> None:
    found = find_block(body, ctype)
    assert isinstance(found, (FoundBlock, BlockProblem))
    if isinstance(found, BlockProblem):
        assert isinstance(found.reason, SkipReason)
        return
    assert 0 <= found.start < found.end <= len(body)
    new = render_block("teams", NEW, content_type=ctype, language=found.language)
    result = replace_block(body, ctype, new)
    assert isinstance(result, ReplaceResult)
    assert result.body[: found.start] == body[: found.start]
    assert result.body[result.new_end :] == body[found.end :]
    assert isinstance(carries_block(result.body, ctype, new), bool)


@FUZZ
@given(
    st.lists(st.one_of(st.sampled_from(TOKENS), st.text(max_size=20)), max_size=60),
    st.sampled_from(["html", "text", "HTML", "bogus"]),
)
def test_random_token_soup_gives_typed_answers(parts: list[str], ctype: str) -> None:
    body = "".join(parts)
    if ctype == "bogus":
        assert isinstance(find_block(body, ctype), BlockProblem)
        return
    check(body, ctype)


@FUZZ
@given(st.sampled_from(GOLDENS), st.integers(0, 10**6), st.integers(0, 10**6))
def test_truncated_and_sliced_invitations_give_typed_answers(g: object, a: int, b: int) -> None:
    body, ctype, _, _ = load(g)  # type: ignore[arg-type]
    lo, hi = sorted((a % (len(body) + 1), b % (len(body) + 1)))
    check(body[:hi], ctype)
    check(body[lo:], ctype)
    check(body[lo:hi], ctype)


def test_seeded_byte_noise_over_every_invitation() -> None:
    rng = random.Random(20240611)
    for g in GOLDENS:
        body, ctype, _, _ = load(g)
        for _ in range(40):
            chars = list(body)
            for _ in range(rng.randint(1, 12)):
                i = rng.randrange(len(chars))
                chars[i] = rng.choice("<>&\"'_.\n\r x\u00a0\udc80")
            check("".join(chars), ctype)
