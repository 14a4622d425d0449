"""New meeting details for a block, and the digests that make PATCHes recognisable.

* Teams -> Teams: the online meeting found by its join URL (``audioConferencing``,
  ``joinMeetingIdSettings``, ``meetingOptionsWebUrl``); the join link stays.
* SfB -> Teams: the online meeting ``createOrGet`` returned, keyed by
  :func:`external_id` (a digest of event ID and correlation ID, so a retry or a
  resumed run never creates a second meeting).
* SfB -> SfB: the user's stored conferencing profile; the conference key (the
  last path segment of the old join URL) is kept under the profile's
  ``meetUrlBase``.

:func:`block_digest` is what the store keeps with a PATCH intent: the content
type and a hash of the new block's fingerprint (visible text and links, see
:mod:`mmsd.domain.blocks.compare`). After a crash or a lost answer,
:func:`body_carries` recognises the new block in the event read back with
nothing else in hand.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from typing import Any

from mmsd.domain.blocks import BlockProblem, ContentType, FoundBlock, MeetingDetails, find_block
from mmsd.domain.blocks.compare import fingerprint
from mmsd.domain.blocks.model import PhoneNumber
from mmsd.domain.model import ConferencingProfile

JSON = dict[str, Any]


def external_id(event_id: str, correlation_id: str) -> str:
    """The ``externalId`` of a converted meeting: stable for (event, migration)."""
    digest = hashlib.sha256(f"{event_id}\x1f{correlation_id}".encode()).hexdigest()
    return f"mmsd-{digest[:40]}"


def block_digest(block: str, content_type: ContentType) -> str:
    """``"<contentType>:<hash>"`` of a rendered block's fingerprint, stored with the intent."""
    token = hashlib.sha256(fingerprint(block, content_type).encode("utf-8", "surrogatepass"))
    return f"{content_type}:{token.hexdigest()[:32]}"


def digest_content_type(digest: str) -> ContentType:
    """The content type a digest was made for (the body type to read the event back in)."""
    head = digest.split(":", 1)[0]
    try:
        return ContentType.of(head)
    except ValueError:
        return ContentType.HTML


def body_carries(body: str, content_type: ContentType, digest: str) -> bool:
    """Whether ``body``'s single block is the block whose :func:`block_digest` is ``digest``."""
    found = find_block(body, content_type)
    if isinstance(found, BlockProblem):
        return False
    return block_digest(body[found.start : found.end], found.content_type) == digest


def _numbers(values: object) -> tuple[PhoneNumber, ...]:
    if not isinstance(values, list | tuple):
        return ()
    return tuple(PhoneNumber(str(v)) for v in values if isinstance(v, str) and v)


ONLINE_MEETING_FIELDS: tuple[str, ...] = (
    "id",
    "joinWebUrl",
    "audioConferencing",
    "joinMeetingIdSettings",
    "meetingOptionsWebUrl",
)
"""The ``$select`` of an online-meeting lookup: what :func:`teams_details` reads. Graph
documents the OData query parameters for GET onlineMeeting; without it each answer also
carries ``joinInformation`` (the whole invitation, URL-encoded), ~4 KB of JSON a meeting."""


def teams_details(meeting: Mapping[str, Any], join_url: str | None = None) -> MeetingDetails:
    """Details from a Graph ``onlineMeeting``; ``join_url`` (the old link) wins when given."""
    audio = meeting.get("audioConferencing") or {}
    join_ids = meeting.get("joinMeetingIdSettings") or {}
    toll = _numbers(audio.get("tollNumbers")) or _numbers([audio.get("tollNumber")])
    toll_free = _numbers(audio.get("tollFreeNumbers")) or _numbers([audio.get("tollFreeNumber")])
    return MeetingDetails(
        join_url=join_url or str(meeting.get("joinWebUrl") or ""),
        meeting_id=join_ids.get("joinMeetingId") or None,
        passcode=join_ids.get("passcode") or None,
        conference_id=audio.get("conferenceId") or None,
        toll_numbers=toll,
        toll_free_numbers=toll_free,
        dial_in_url=audio.get("dialinUrl") or None,
        meeting_options_url=meeting.get("meetingOptionsWebUrl") or None,
    )


def teams_details_from_block(
    found: FoundBlock, profile: ConferencingProfile | None
) -> MeetingDetails | None:
    """Fallback when Graph has no online meeting for the link: the block's IDs, the profile's dial-in."""
    if not found.join_url:
        return None
    dial_in = profile is not None and profile.dial_in_enabled is not False
    return MeetingDetails(
        join_url=found.join_url,
        meeting_id=found.meeting_id,
        passcode=found.passcode,
        conference_id=found.conference_id if dial_in else None,
        toll_numbers=_numbers(list(profile.toll_numbers or ())) if profile and dial_in else (),
        toll_free_numbers=(
            _numbers(list(profile.toll_free_numbers or ())) if profile and dial_in else ()
        ),
        dial_in_url=profile.dial_in_url if profile and dial_in else None,
    )


def skype_details(found: FoundBlock, profile: ConferencingProfile | None) -> MeetingDetails | None:
    """SfB -> SfB: the stored profile's bridge, the meeting's own conference key."""
    old = found.join_url
    if not old:
        return None
    join_url = old
    if profile is not None and profile.meet_url_base:
        key = old.rstrip("/").rsplit("/", 1)[-1]
        join_url = f"{profile.meet_url_base.rstrip('/')}/{key}"
    if profile is None:
        return MeetingDetails(join_url=join_url, conference_id=found.conference_id)
    dial_in = profile.dial_in_enabled is not False
    return MeetingDetails(
        join_url=join_url,
        conference_id=(profile.conference_id or found.conference_id) if dial_in else None,
        toll_numbers=_numbers(list(profile.toll_numbers or ())) if dial_in else (),
        toll_free_numbers=_numbers(list(profile.toll_free_numbers or ())) if dial_in else (),
        dial_in_url=profile.dial_in_url if dial_in else None,
    )
