"""Typed values of the block engine: what was found, why nothing was, what to render."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from enum import StrEnum


class ContentType(StrEnum):
    """The content type of an event body, as Graph names it in ``body.contentType``."""

    HTML = "html"
    TEXT = "text"

    @classmethod
    def of(cls, value: ContentType | str) -> ContentType:
        """Parse Graph's spelling (``html``, ``HTML``, ``text``) into the enum."""
        if isinstance(value, ContentType):
            return value
        return cls(str(value).strip().lower())


class BlockKind(StrEnum):
    """Which conferencing service an online-meeting block belongs to."""

    TEAMS = "teams"
    SKYPE = "skype"


class BlockFormat(StrEnum):
    """Which of Microsoft's invitation layouts a block was written in."""

    CLASSIC = "classic"
    """Teams: "Join Microsoft Teams Meeting", dial-in, "Conference ID: … #"."""
    TEAMS_2023 = "teams2023"
    """Teams: "Microsoft Teams meeting", "Click here to join the meeting", "Meeting ID"."""
    MEET_INVITE_BLOCK = "meetInviteBlock"
    """Teams, newest: elements with ids ``meet_invite_block.action.*``."""
    SKYPE_HTML = "skypeHtml"
    """Skype for Business, HTML: 137-dot lines, ``OutJoinLink``, ``[!OC([lcid])!]``."""
    SKYPE_TEXT = "skypeText"
    """Skype for Business, plain text: dot lines, URLs in angle brackets."""


class SkipReason(StrEnum):
    """Why a body has no single replaceable block (SPEC section 3 skip reasons)."""

    NO_BLOCK = "noBlock"
    AMBIGUOUS_BLOCK = "ambiguousBlock"
    DAMAGED_BLOCK = "damagedBlock"


@dataclass(frozen=True, slots=True)
class FoundBlock:
    """Exactly one online-meeting block, located by its offsets in the body string.

    ``body[start:end]`` is the whole block, delimiter lines included; everything
    before ``start`` and from ``end`` on is the organizer's and stays untouched.
    """

    kind: BlockKind
    format: BlockFormat
    content_type: ContentType
    start: int
    end: int
    join_url: str | None
    """The join link; for Teams the ``meetup-join`` form when the block has one."""
    join_urls: tuple[str, ...] = ()
    """Every distinct join link in the block, Safe Links unwrapped, in order."""
    meeting_id: str | None = None
    """Teams meeting ID, digits only."""
    passcode: str | None = None
    conference_id: str | None = None
    """Dial-in conference ID, digits only."""
    language: str | None = None
    """Language tag of the invitation (``en-US``, ``de-DE``, ``zh-CN``…), if stated."""


@dataclass(frozen=True, slots=True)
class BlockProblem:
    """No single replaceable block: the skip reason and a short, body-free explanation."""

    reason: SkipReason
    detail: str
    blocks_found: int = 0


FindResult = FoundBlock | BlockProblem


@dataclass(frozen=True, slots=True)
class PhoneNumber:
    """A dial-in number and the place or kind shown next to it (may be empty)."""

    number: str
    label: str = ""


@dataclass(frozen=True, slots=True)
class MeetingDetails:
    """The new meeting details a block is rendered from (Graph ``onlineMeeting`` or a profile).

    Teams uses join_url, meeting_id, passcode (``joinMeetingIdSettings``),
    conference_id and numbers (``audioConferencing``), dial_in_url, help_url,
    meeting_options_url and reset_pin_url. Skype for Business uses join_url (the
    ``https://<pool>/meet/<user>/<id>`` URL), conference_id, numbers, dial_in_url
    ("Find a local number"), reset_pin_url ("Forgot your dial-in PIN?") and help_url.
    """

    join_url: str
    meeting_id: str | None = None
    passcode: str | None = None
    conference_id: str | None = None
    toll_numbers: tuple[PhoneNumber, ...] = ()
    toll_free_numbers: tuple[PhoneNumber, ...] = ()
    dial_in_url: str | None = None
    help_url: str | None = None
    meeting_options_url: str | None = None
    reset_pin_url: str | None = None
    extra: tuple[tuple[str, str], ...] = field(default=())
    """Reserved for organizer-facing bits a caller wants recorded; not rendered."""

    def digest(self) -> str:
        """A stable 16-hex-digit digest of every rendered field, for logs and records."""
        parts: list[str] = [
            self.join_url,
            self.meeting_id or "",
            self.passcode or "",
            self.conference_id or "",
            "|".join(f"{p.number}={p.label}" for p in self.toll_numbers),
            "|".join(f"{p.number}={p.label}" for p in self.toll_free_numbers),
            self.dial_in_url or "",
            self.help_url or "",
            self.meeting_options_url or "",
            self.reset_pin_url or "",
        ]
        return hashlib.sha256("\x1f".join(parts).encode("utf-8", "surrogatepass")).hexdigest()[:16]


@dataclass(frozen=True, slots=True)
class ReplaceResult:
    """The outcome of replacing the block of a body with a newly rendered one."""

    body: str
    """The new body; equal to the input when ``already_current``."""
    already_current: bool
    """The body already carried the new block (compared semantically); nothing changed."""
    hand_edited: bool
    """The old block held lines that no Microsoft or mmsd template writes; they are overwritten."""
    old: FoundBlock
    """The block that was (or would have been) replaced."""
    new_start: int
    new_end: int
    """Offsets of the new block in ``body``."""
