"""Graph's online-meeting routes: ``/users/{id}/onlineMeetings``, ``createOrGet``, list by JoinWebUrl.

Every answer is built from the stored meeting JSON plus the organizer's *current*
conferencing state: ``audioConferencing`` (conference ID, toll and toll-free
numbers, dial-in URL) comes live from the user's :class:`ConferencingProfile` — or
is ``null`` when the user has no enabled Audio Conferencing plan, dial-in is off, or
the provider is a third party — and ``joinInformation`` is the invitation rendered
from it (``data:text/html,<url-encoded HTML>``). A ``createOrGet`` that finds its
``externalId`` answers 200 with the same meeting, else 201; creating counts toward
the per-user monthly cap (429 beyond it).
"""

from __future__ import annotations

import base64
import urllib.parse
from datetime import timedelta

from mmsd.clock import format_rfc3339, parse_rfc3339
from mmsd.sim.graph_http import (
    GraphError,
    GraphRequest,
    GraphResponse,
    Resource,
    Router,
    SimContext,
    ok,
    parse_select,
    project,
)
from mmsd.sim.model import JSON, SimUser


def _ctx_url(user: SimUser) -> str:
    return f"https://graph.microsoft.com/v1.0/$metadata#users('{user.id}')/onlineMeetings"


def audio_conferencing(user: SimUser) -> JSON | None:
    """The ``audioConferencing`` Graph shows for the user's meetings now (None: no dial-in)."""
    prof = user.conferencing
    if (
        not user.has_audio_conferencing()
        or not prof.dial_in_enabled
        or prof.audio_conferencing_provider != "microsoft"
    ):
        return None
    toll = list(prof.toll_numbers)
    free = list(prof.toll_free_numbers)
    return {
        "conferenceId": prof.conference_id,
        "tollNumber": toll[0] if toll else None,
        "tollNumbers": toll,
        "tollFreeNumber": free[0] if free else None,
        "tollFreeNumbers": free,
        "dialinUrl": prof.dial_in_url,
    }


def join_html(meeting: JSON, audio: JSON | None, lang: str = "en") -> str:
    """The meeting's ``joinInformation`` HTML: the simulator's Teams 2023 invitation block."""
    from mmsd.sim.generator import NUMBER_LABELS
    from mmsd.sim.invites import DialIn, InviteDetails, render_invite

    ids = meeting.get("joinMeetingIdSettings") or {}
    dial_ins: list[DialIn] = []
    if audio is not None:
        # Labelled as the generated invitations label them (a number added later
        # through /_sim/ has no label, there as here).
        dial_ins += [
            DialIn(str(n), NUMBER_LABELS.get(str(n), "")) for n in audio.get("tollNumbers") or []
        ]
        dial_ins += [
            DialIn(str(n), NUMBER_LABELS.get(str(n), ""), toll_free=True)
            for n in audio.get("tollFreeNumbers") or []
        ]
    details = InviteDetails(
        join_url=str(meeting.get("joinWebUrl") or ""),
        conference_id=str(audio["conferenceId"]) if audio and audio.get("conferenceId") else None,
        dial_ins=tuple(dial_ins),
        meeting_id=str(ids.get("joinMeetingId") or "") or None,
        passcode=str(ids.get("passcode") or "") or None,
        dial_in_url=str(audio.get("dialinUrl") or "") or None if audio else None,
        meeting_options_url="https://teams.microsoft.com/meetingOptions/",
    )
    return render_invite("teams2023", "html", lang, details)


def render_meeting(ctx: SimContext, user: SimUser, meeting: JSON) -> JSON:
    """A stored meeting as Graph answers it now (live dial-in and join information)."""
    audio = audio_conferencing(user)
    cache_key = (meeting.get("id"), repr(audio))
    cache = ctx.join_cache
    join = cache.get(cache_key)
    if join is None:
        join = {
            "content": "data:text/html," + urllib.parse.quote(join_html(meeting, audio), safe=""),
            "contentType": "html",
        }
        cache[cache_key] = join
    return {**meeting, "audioConferencing": audio, "joinInformation": join}


def _new_meeting(ctx: SimContext, user: SimUser, fields: JSON) -> JSON:
    """Create and store a new online meeting for ``user``."""
    state = ctx.state
    ctx.throttler.online_meeting_created(user.id)
    serial = state.next_serial()
    token = state.make_id("om-thread", user.id, serial, length=40)
    thread = f"19:meeting_{token}@thread.v2"
    meeting_id = base64.b64encode(f"1*{user.id}*0**{thread}".encode()).decode()
    context = urllib.parse.quote(f'{{"Tid":"{state.tenant_id}","Oid":"{user.id}"}}', safe="")
    join_url = (
        "https://teams.microsoft.com/l/meetup-join/"
        + urllib.parse.quote(thread, safe="").lower().replace("%3a", "%3a")
        + f"/0?context={context}"
    )
    now = ctx.now()
    try:
        start = parse_rfc3339(str(fields["startDateTime"])) if fields.get("startDateTime") else now
        end = (
            parse_rfc3339(str(fields["endDateTime"]))
            if fields.get("endDateTime")
            else start + timedelta(hours=1)
        )
    except ValueError as exc:
        raise GraphError(400, "BadRequest", "Invalid startDateTime or endDateTime.") from exc
    digits = str(int(state.make_id("om-join", meeting_id, length=16), 16))[:12].rjust(12, "1")
    passcode = state.make_id("om-pass", meeting_id, length=6)
    meeting: JSON = {
        "id": meeting_id,
        "creationDateTime": format_rfc3339(now),
        "startDateTime": format_rfc3339(start),
        "endDateTime": format_rfc3339(end),
        "joinWebUrl": join_url,
        "subject": fields.get("subject"),
        "externalId": fields.get("externalId"),
        "isBroadcast": False,
        "videoTeleconferenceId": None,
        "allowedPresenters": "everyone",
        "isEntryExitAnnounced": True,
        "allowMeetingChat": "enabled",
        "allowTeamworkReactions": True,
        "recordAutomatically": False,
        "participants": {
            "organizer": {
                "upn": user.user_principal_name,
                "role": "presenter",
                "identity": {"user": {"id": user.id, "displayName": None}},
            },
            "attendees": [],
        },
        "chatInfo": {"threadId": thread, "messageId": "0", "replyChainMessageId": None},
        "joinMeetingIdSettings": {
            "isPasscodeRequired": True,
            "joinMeetingId": digits,
            "passcode": passcode,
        },
        "lobbyBypassSettings": {"scope": "organization", "isDialInBypassEnabled": False},
    }
    state.online_meetings.setdefault(user.id, {})[meeting_id] = meeting
    ctx.counters.online_meetings_created += 1
    return meeting


async def create_meeting(
    ctx: SimContext, req: GraphRequest, params: dict[str, str]
) -> GraphResponse:
    """``POST /users/{id}/onlineMeetings``: 201 with a new meeting."""
    user = ctx.require_user(params["user"])
    meeting = _new_meeting(ctx, user, req.json_object())
    body = {"@odata.context": _ctx_url(user) + "/$entity", **render_meeting(ctx, user, meeting)}
    return ok(body, status=201)


async def create_or_get(
    ctx: SimContext, req: GraphRequest, params: dict[str, str]
) -> GraphResponse:
    """``POST .../onlineMeetings/createOrGet``: 201 when created, 200 when found by externalId."""
    user = ctx.require_user(params["user"])
    fields = req.json_object()
    external = fields.get("externalId")
    if not isinstance(external, str) or not external:
        raise GraphError(400, "BadRequest", "The externalId property is required.")
    for meeting in ctx.state.online_meetings.get(user.id, {}).values():
        if meeting.get("externalId") == external:
            body = {
                "@odata.context": _ctx_url(user) + "/$entity",
                **render_meeting(ctx, user, meeting),
            }
            return ok(body, status=200)
    meeting = _new_meeting(ctx, user, fields)
    body = {"@odata.context": _ctx_url(user) + "/$entity", **render_meeting(ctx, user, meeting)}
    return ok(body, status=201)


def _norm_url(url: str) -> str:
    return urllib.parse.unquote(url.strip()).lower()


async def list_meetings(
    ctx: SimContext, req: GraphRequest, params: dict[str, str]
) -> GraphResponse:
    """``GET /users/{id}/onlineMeetings?$filter=JoinWebUrl eq '...'`` (or joinMeetingId)."""
    user = ctx.require_user(params["user"])
    filt = (req.query.get("$filter") or "").strip()
    prop, _, rest = filt.partition(" ")
    op, _, value = rest.strip().partition(" ")
    value = value.strip()
    if op.lower() != "eq" or len(value) < 2 or value[0] != "'" or value[-1] != "'":
        raise GraphError(
            400,
            "BadRequest",
            "Filter expression expected - /onlineMeetings?$filter=JoinWebUrl eq 'joinWebUrl'.",
        )
    value = value[1:-1].replace("''", "'")
    meetings = ctx.state.online_meetings.get(user.id, {}).values()
    if prop.lower() == "joinweburl":
        want = _norm_url(value)
        found = [m for m in meetings if _norm_url(str(m.get("joinWebUrl") or "")) == want]
    elif prop.lower() == "joinmeetingidsettings/joinmeetingid":
        found = [
            m
            for m in meetings
            if (m.get("joinMeetingIdSettings") or {}).get("joinMeetingId") == value
        ]
    else:
        raise GraphError(400, "BadRequest", f"Filtering on '{prop}' is not supported.")
    select = parse_select(req)  # Graph: "supports the OData query parameters"
    body = {
        "@odata.context": _ctx_url(user),
        "value": [project(render_meeting(ctx, user, m), select, ("id",)) for m in found],
    }
    return ok(body)


async def get_meeting(ctx: SimContext, req: GraphRequest, params: dict[str, str]) -> GraphResponse:
    """``GET /users/{id}/onlineMeetings/{meetingId}``."""
    user = ctx.require_user(params["user"])
    meeting = ctx.state.online_meetings.get(user.id, {}).get(params["meeting"])
    if meeting is None:
        raise GraphError(404, "NotFound", "The requested online meeting was not found.")
    rendered = project(render_meeting(ctx, user, meeting), parse_select(req), ("id",))
    body = {"@odata.context": _ctx_url(user) + "/$entity", **rendered}
    return ok(body)


def add_meeting_routes(router: Router) -> None:
    """Register the onlineMeetings routes (Teams throttling family)."""
    t = Resource.TEAMS
    router.add(
        "POST",
        "/users/{user}/onlineMeetings/createOrGet",
        create_or_get,
        "onlineMeetings/createOrGet",
        t,
    )
    router.add("POST", "/users/{user}/onlineMeetings", create_meeting, "onlineMeetings", t)
    router.add("GET", "/users/{user}/onlineMeetings", list_meetings, "onlineMeetings", t)
    router.add(
        "GET", "/users/{user}/onlineMeetings/{meeting}", get_meeting, "onlineMeetings/{id}", t
    )
