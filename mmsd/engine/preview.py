"""``preview``: what a user's migration would do, from Graph reads alone (SPEC section 5).

Sends nothing, creates nothing, records nothing: the online meeting of a
Teams block is looked up (a read); a Skype meeting converted to Teams gets a
placeholder join link where Graph's ``createOrGet`` would assign one. The
source and target are those of the user's Pending or InProgress migration,
else All -> Current.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from mmsd.domain.blocks import (
    BlockKind,
    ContentType,
    MeetingDetails,
    ReplaceResult,
    render_block,
    replace_block,
)
from mmsd.domain.model import MigrationState, SourceMeetingType, TargetMeetingType
from mmsd.engine.api import Preview, PreviewMeeting
from mmsd.engine.classify import Eligible, classify, parse_graph_time
from mmsd.engine.details import (
    ONLINE_MEETING_FIELDS,
    skype_details,
    teams_details,
    teams_details_from_block,
)

if TYPE_CHECKING:
    from mmsd.engine.tenant_actor import TenantRuntime

PLACEHOLDER_JOIN_URL = "https://teams.microsoft.com/l/meetup-join/assigned-by-graph"
"""The join link shown where Graph would assign a new Teams meeting."""


async def preview_user(runtime: TenantRuntime, user: dict[str, Any]) -> Preview:
    """The user's meetings, their classification, the block each loses and the one it gets."""
    user_id = str(user["id"])
    upn = user.get("userPrincipalName") if isinstance(user.get("userPrincipalName"), str) else None
    source, target = SourceMeetingType.ALL, TargetMeetingType.CURRENT
    for record in await runtime.store.status(runtime.name, identity=user_id):
        if record.state in (MigrationState.PENDING, MigrationState.IN_PROGRESS):
            source, target = record.source_meeting_type, record.target_meeting_type
    addresses = frozenset(
        str(user[k]).lower() for k in ("mail", "userPrincipalName") if user.get(k)
    )
    profile = await runtime.store.get_profile(runtime.name, user_id)
    runner = runtime.runner()
    meetings: list[PreviewMeeting] = []
    lookups: dict[str, dict[str, Any] | None] = {}
    for item in await runner.list_meetings(user_id):
        event = item.event
        subject = event.get("subject") if isinstance(event.get("subject"), str) else None
        start = parse_graph_time(event.get("start"))
        when = start.isoformat() if start is not None else None
        verdict = classify(event, addresses, source)
        if not isinstance(verdict, Eligible):
            meetings.append(
                PreviewMeeting(
                    str(event["id"]), subject, when, str(verdict), None, None, None, None
                )
            )
            continue
        block = verdict.block
        details: MeetingDetails | None
        if block.kind is BlockKind.TEAMS:
            kind = BlockKind.TEAMS
            url = block.join_url
            if url and url not in lookups:
                lookups[url] = await runtime.client.find_online_meeting_by_join_url(
                    user_id, url, ONLINE_MEETING_FIELDS
                )
            found = lookups.get(url) if url else None
            details = (
                teams_details(found, join_url=url)
                if found
                else teams_details_from_block(block, profile)
            )
        elif target is TargetMeetingType.TEAMS:
            kind = BlockKind.TEAMS
            details = MeetingDetails(join_url=PLACEHOLDER_JOIN_URL)
        else:
            kind = BlockKind.SKYPE
            details = skype_details(block, profile)
        new_block = (
            _as_spliced(
                verdict.body,
                verdict.content_type,
                render_block(
                    kind, details, content_type=verdict.content_type, language=block.language
                ),
            )
            if details is not None
            else None
        )
        meetings.append(
            PreviewMeeting(
                event_id=str(event["id"]),
                subject=subject,
                start=when,
                classification="migrate",
                old_block=verdict.body[block.start : block.end],
                new_block=new_block,
                old_join_url=block.join_url,
                new_join_url=None if details is None else details.join_url,
            )
        )
    return Preview(user_id, upn, source, target, meetings)


def _as_spliced(body: str, content_type: ContentType, rendered: str) -> str:
    """The block exactly as the migration would splice it in (CRLF fitted to the old one)."""
    result = replace_block(body, content_type, rendered)
    if isinstance(result, ReplaceResult):
        return result.body[result.new_start : result.new_end]
    return rendered
