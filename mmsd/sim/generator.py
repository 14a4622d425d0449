"""Deterministic generated tenants: users of every kind and their meetings, as Graph holds them.

``generate_tenant(seed, now, users, meetings)`` builds a :class:`TenantState`
from nothing but its arguments (no wall clock, no uuid4, no set order): the
same arguments give the same state, byte for byte as JSON.

Users, in ``GET /users`` order: the first four are ordinary (Exchange Online,
Audio Conferencing on, provider ``microsoft``; English, German, Chinese and
Japanese), then the special kinds of :class:`UserKind` cycle, interleaved with
ordinary users. Each user organizes about ``meetings`` meetings: future and
past single instances, series (ongoing with a future exception carrying its
own body, ended, numbered), and now and then a non-online meeting with a pasted
block, a meeting without block, one with two blocks, one with a damaged block;
``largeMeetings`` users have meetings over 250 attendees. Every meeting has an
organizer copy, an attendee copy per in-tenant attendee (same iCalUId) and,
for a ``delegateBoss``, a delegate copy in the ``delegate``'s mailbox; every
Teams meeting has an online-meeting record whose ``joinWebUrl`` is the link
in the body.
"""

from __future__ import annotations

import base64
import enum
import functools
import gc
import html
import itertools
import random
import unicodedata
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, time, timedelta
from urllib.parse import quote

from mmsd.sim.eventjson import NULL_TIME, graph_datetime_tz, graph_time, new_event
from mmsd.sim.invites import (
    SKYPE_RULE,
    TEAMS_RULE,
    DialIn,
    InviteDetails,
    InviteKind,
    group_digits,
    render_invite,
    strings_language,
    wrap_body,
)
from mmsd.sim.model import (
    AUDIO_CONFERENCING_PLAN_ID,
    AUDIO_CONFERENCING_SKU_ID,
    JSON,
    ConferencingProfile,
    CopyKind,
    MailboxLocation,
    SimUser,
    TenantState,
)
from mmsd.sim.recurrence import WEEKDAYS, graph_instant, occurrence_ical_uid, occurrence_starts

DOMAIN = "contoso-sim.example"
EXTERNAL_DOMAINS = ("fabrikam-sim.example", "northwind-sim.example", "adatum-sim.example")
LARGE_MEETING_MIN_ATTENDEES = 256  # plus the organizer: over the 250 limit


class UserKind(enum.StrEnum):
    """What is special about a generated user; ``GET /_sim/users`` names it."""

    ORDINARY = "ordinary"
    ON_PREMISES_MAILBOX = "onPremisesMailbox"
    THIRD_PARTY_ACP = "thirdPartyAcp"
    NO_AUDIO_CONFERENCING = "noAudioConferencing"
    AUDIO_CONFERENCING_DISABLED_PLAN = "audioConferencingDisabledPlan"
    SFB_USER = "sfbUser"
    DELEGATE_BOSS = "delegateBoss"
    DELEGATE = "delegate"
    LARGE_MEETINGS = "largeMeetings"


ORDINARY_PREFIX = 4
KIND_CYCLE: tuple[UserKind, ...] = (
    UserKind.ON_PREMISES_MAILBOX,
    UserKind.THIRD_PARTY_ACP,
    UserKind.NO_AUDIO_CONFERENCING,
    UserKind.AUDIO_CONFERENCING_DISABLED_PLAN,
    UserKind.SFB_USER,
    UserKind.DELEGATE_BOSS,
    UserKind.DELEGATE,
    UserKind.LARGE_MEETINGS,
    UserKind.ORDINARY,
    UserKind.ORDINARY,
    UserKind.ORDINARY,
    UserKind.ORDINARY,
)


class Shape(enum.StrEnum):
    """The kind of meeting a generated slot holds."""

    FUTURE = "future"
    PAST = "past"
    SERIES_ONGOING = "seriesOngoing"
    SERIES_ENDED = "seriesEnded"
    SERIES_NUMBERED = "seriesNumbered"
    PASTED_NOT_ONLINE = "pastedNotOnline"
    NO_BLOCK = "noBlock"
    IN_PERSON = "inPerson"
    TWO_BLOCKS = "twoBlocks"
    DAMAGED_BLOCK = "damagedBlock"
    LARGE = "large"
    SPECIAL = "special"  # a slot filled from SPECIAL_CYCLE


SLOT_SHAPES: tuple[Shape, ...] = (
    Shape.FUTURE,
    Shape.SERIES_ONGOING,
    Shape.SPECIAL,
    Shape.PAST,
    Shape.FUTURE,
    Shape.SERIES_ENDED,
    Shape.FUTURE,
    Shape.SERIES_NUMBERED,
    Shape.FUTURE,
    Shape.PAST,
)
SPECIAL_CYCLE: tuple[Shape, ...] = (
    Shape.PASTED_NOT_ONLINE,
    Shape.NO_BLOCK,
    Shape.TWO_BLOCKS,
    Shape.DAMAGED_BLOCK,
    Shape.IN_PERSON,
    Shape.FUTURE,
)

# --- licences -------------------------------------------------------------------

E5_SKU_ID = "06ebc4ee-1bb5-47dd-8120-11324bc54e06"  # Microsoft 365 E5
E3_SKU_ID = "05e9a617-0261-4cee-bb44-138d3ef5d965"  # Microsoft 365 E3
EXCHANGE_PLAN = ("efb87545-963c-4e0d-99df-69c6916d9eb0", "exchange")
TEAMS_PLAN = ("57ff2da0-773e-42df-b2af-ffb7a2317929", "TeamsForBusiness")
SFB_PLAN = ("0feaeb32-d00e-4d66-bd5a-43b5b83db82c", "MicrosoftCommunicationsOnline")
PHONE_PLAN = ("4828c8ec-dc2e-4779-b502-87ac9ce28ab7", "MicrosoftCommunicationsOnline")
SHAREPOINT_PLAN = ("5dbe027f-2339-4123-9542-606e4d348a72", "SharePoint")
AUDIO_PLAN = (AUDIO_CONFERENCING_PLAN_ID, "MicrosoftCommunicationsOnline")
E3_PLANS = (EXCHANGE_PLAN, TEAMS_PLAN, SFB_PLAN, SHAREPOINT_PLAN)
E5_PLANS = (EXCHANGE_PLAN, TEAMS_PLAN, SFB_PLAN, AUDIO_PLAN, PHONE_PLAN, SHAREPOINT_PLAN)

# --- conferencing bridges (fictional 555 numbers) ----------------------------------

BRIDGES: dict[str, tuple[DialIn, ...]] = {
    "bridge-us": (
        DialIn("+1 425-555-0100", "United States, Seattle"),
        DialIn("+1 844-555-0101", "United States", toll_free=True),
    ),
    "bridge-eu": (
        DialIn("+49 69 5555 0100", "Germany, Frankfurt"),
        DialIn("+44 20 5555 0100", "United Kingdom, London"),
        DialIn("+49 800 5555 010", "Germany", toll_free=True),
    ),
    "bridge-apac": (
        DialIn("+81 3-5555-0100", "Japan, Tokyo"),
        DialIn("+86 10 5555 0100", "China, Beijing"),
    ),
}
ACP_DIAL_INS = (
    DialIn("+1 212-555-0190", "ACP Conferencing, New York"),
    DialIn("+1 888-555-0191", "ACP Conferencing", toll_free=True),
)
BRIDGE_FOR_LANGUAGE = {
    "en": "bridge-us",
    "de": "bridge-eu",
    "zh": "bridge-apac",
    "ja": "bridge-apac",
}
NUMBER_LABELS: dict[str, str] = {
    d.number: d.label for ds in (*BRIDGES.values(), ACP_DIAL_INS) for d in ds
}

# --- names and texts ------------------------------------------------------------------


@dataclass(frozen=True)
class _Person:
    given: str
    surname: str
    display: str
    language: str  # preferredLanguage


def _people(language: str, rows: list[tuple[str, str, str]]) -> tuple[_Person, ...]:
    return tuple(_Person(g, s, d or f"{g} {s}", language) for g, s, d in rows)


CULTURES: tuple[tuple[_Person, ...], ...] = (
    _people(
        "en-US",
        [
            ("James", "Smith", ""),
            ("Olivia", "Johnson", ""),
            ("Liam", "Brown", ""),
            ("Emma", "Taylor", ""),
            ("Noah", "Wilson", ""),
            ("Ava", "Clarke", ""),
            ("Priya", "Sharma", ""),
            ("Chinedu", "Okafor", ""),
            ("Siobhán", "O'Brien", ""),
        ],
    ),
    _people(
        "de-DE",
        [
            ("Jürgen", "Müller", ""),
            ("Anna", "Schmidt", ""),
            ("Lukas", "Schneider", ""),
            ("Sophie", "Fischer", ""),
            ("Maximilian", "Weiß", ""),
            ("Lea", "Groß", ""),
            ("Björn", "Köhler", ""),
        ],
    ),
    _people(
        "zh-CN",
        [
            ("Wei", "Wang", "王伟"),
            ("Fang", "Li", "李芳"),
            ("Na", "Zhang", "张娜"),
            ("Min", "Liu", "刘敏"),
            ("Jing", "Chen", "陈静"),
            ("Lei", "Yang", "杨磊"),
        ],
    ),
    _people(
        "ja-JP",
        [
            ("Haruto", "Sato", "佐藤 陽翔"),
            ("Yui", "Suzuki", "鈴木 結衣"),
            ("Sota", "Takahashi", "高橋 蒼太"),
            ("Hina", "Tanaka", "田中 陽菜"),
            ("Ren", "Watanabe", "渡辺 蓮"),
        ],
    ),
    _people(
        "ar-SA",
        [
            ("Omar", "Haddad", "عمر حداد"),
            ("Layla", "Nasser", "ليلى ناصر"),
            ("Youssef", "Khalil", "يوسف خليل"),
        ],
    ),
    _people("he-IL", [("Noa", "Levi", "נועה לוי"), ("Itai", "Cohen", "איתי כהן")]),
    _people(
        "en-GB",
        [
            ("José", "García", ""),
            ("Zoë", "Lefèvre", ""),
            ("Łukasz", "Wójcik", ""),
            ("Çağla", "Yılmaz", ""),
            ("Søren", "Ødegård", ""),
        ],
    ),
)
CULTURE_WEIGHTS = (30, 18, 12, 12, 5, 4, 9)
# random.choices draws the same with cum_weights as with the weights they sum up to.
_CULTURE_CUM_WEIGHTS = tuple(itertools.accumulate(CULTURE_WEIGHTS))

SUBJECTS = (
    "Weekly sync 🗓️",
    "Quartalsplanung Q3 – Überblick",
    "项目评审会议",
    "週次定例会議",
    "مراجعة الميزانية",
    "סקירת ספרינט",
    "1:1 ☕",
    "Design review <draft> & Q&A",
    "Kundentermin Müller GmbH",
    "All-hands 🎉🚀",
    "Roadmap 2025: 🇩🇪 🇯🇵 🇨🇳",
    "Budget & forecast",
)
BEFORE_TEXTS = (
    "Hi all 👋\nPlease find the agenda below.",
    "Hallo zusammen,\nbitte pünktlich sein. Grüße, Jörg",
    "各位好，请准时参加会议。议程见下文。",
    "皆さん、よろしくお願いします 🙏\n資料は事前に共有します。",
    "مرحبا بالجميع، نراكم في الاجتماع",
    "שלום לכולם! נתראה בפגישה 😊",
    "Agenda:\n1. Status <update>\n2. Risks & issues\n3. AOB",
    "Ünïcödé: ẞ ǅ 𝔘𝔫𝔦𝔠𝔬𝔡𝔢 👩🏽‍💻 🇯🇵 — fine?",
)
AFTER_TEXTS = (
    "",
    "Thanks! 🙌",
    "Mit freundlichen Grüßen\nJürgen",
    "谢谢！",
    "よろしくお願いいたします。",
    "شكرا جزيلا",
    "תודה רבה",
    "P.S. Slides: \\\\fileserver\\share\\Q3 & notes",
)
JOB_TITLES = (
    "Engineer",
    "Product Manager",
    "Sales Lead",
    "Designer",
    "Consultant",
    "Director",
    None,
)
OFFICES = ("Seattle", "München", "北京", "東京", "Dubai", "Tel Aviv", None)
ROOMS = (
    "Konferenzraum Köln 🏢",
    "会议室 3A",
    "Building 4 / Room 1204",
    "会議室 さくら",
    "قاعة الاجتماعات",
)
_PH_JOIN = "QQJOINURLQQ"
_PH_MEETING_ID = "QQMEETINGIDQQ"
_PH_PASSCODE = "QQPASSCODEQQ"
_PH_OPTIONS = "QQOPTIONSURLQQ"
_PH_CONFERENCE_ID = "QQCONFERENCEIDQQ"
_PH_DIAL_IN_URL = "QQDIALINURLQQ"
_PASSCODE_ALPHABET = "ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz23456789"
_ASCII_FOLD = str.maketrans(
    {"ß": "ss", "ł": "l", "Ł": "L", "ı": "i", "ø": "o", "Ø": "O", "æ": "ae", "'": ""}
)


@functools.lru_cache(maxsize=8192)
def _ascii(text: str) -> str:
    """An ASCII alias for ``text`` (umlauts folded, other marks dropped)."""
    folded = text.replace("ä", "ae").replace("ö", "oe").replace("ü", "ue").translate(_ASCII_FOLD)
    decomposed = unicodedata.normalize("NFKD", folded)
    return "".join(c for c in decomposed if c.isascii() and (c.isalnum() or c in ".-")).lower()


def _encoded(value: str) -> str:
    """``value`` as it appears inside an HTML block that was then URL-encoded."""
    return quote(html.escape(value, quote=True), safe="")


@functools.lru_cache(maxsize=32)
def _encoded_placeholder(value: str) -> str:
    """``_encoded`` of a (constant) placeholder, computed once."""
    return _encoded(value)


def kind_for_index(index: int) -> UserKind:
    """The kind of the user at ``index`` in ``GET /users`` order."""
    if index < ORDINARY_PREFIX:
        return UserKind.ORDINARY
    return KIND_CYCLE[(index - ORDINARY_PREFIX) % len(KIND_CYCLE)]


def _guid(state: TenantState, *parts: object) -> str:
    h = state.make_id("guid", *parts)
    return f"{h[:8]}-{h[8:12]}-4{h[13:16]}-a{h[17:20]}-{h[20:32]}"


# --- users ----------------------------------------------------------------------------


def _plans(plans: tuple[tuple[str, str], ...], disabled: tuple[str, ...], when: str) -> list[JSON]:
    return [
        {
            "assignedDateTime": when,
            "capabilityStatus": "Deleted" if plan_id in disabled else "Enabled",
            "service": service,
            "servicePlanId": plan_id,
        }
        for plan_id, service in plans
    ]


def _licences(
    kind: UserKind, rng: random.Random, index: int, when: str
) -> tuple[list[JSON], list[JSON]]:
    """``assignedLicenses`` and ``assignedPlans`` for a user of ``kind``."""
    if kind in (UserKind.THIRD_PARTY_ACP, UserKind.NO_AUDIO_CONFERENCING):
        return [{"disabledPlans": [], "skuId": E3_SKU_ID}], _plans(E3_PLANS, (), when)
    if kind is UserKind.AUDIO_CONFERENCING_DISABLED_PLAN:
        disabled: tuple[str, ...] = (AUDIO_CONFERENCING_PLAN_ID,)
        return [{"disabledPlans": list(disabled), "skuId": E5_SKU_ID}], _plans(
            E5_PLANS, disabled, when
        )
    if kind is UserKind.ON_PREMISES_MAILBOX:
        disabled = (EXCHANGE_PLAN[0],)
        return [{"disabledPlans": list(disabled), "skuId": E5_SKU_ID}], _plans(
            E5_PLANS, disabled, when
        )
    if index >= ORDINARY_PREFIX and rng.random() < 0.25:
        # E3 plus the stand-alone Audio Conferencing SKU.
        licences = [
            {"disabledPlans": [], "skuId": E3_SKU_ID},
            {"disabledPlans": [], "skuId": AUDIO_CONFERENCING_SKU_ID},
        ]
        return licences, _plans((*E3_PLANS, AUDIO_PLAN), (), when)
    disabled = (SHAREPOINT_PLAN[0],) if index >= ORDINARY_PREFIX and rng.random() < 0.3 else ()
    return [{"disabledPlans": list(disabled), "skuId": E5_SKU_ID}], _plans(E5_PLANS, disabled, when)


def _profile(
    state: TenantState, kind: UserKind, rng: random.Random, upn: str, alias: str, lang: str
) -> ConferencingProfile:
    """The user's conferencing profile, as Teams/Skype hold it."""
    meet_base = f"https://meet.{state.domain}/{alias}"
    sip = f"sip:{upn}"
    if kind in (UserKind.NO_AUDIO_CONFERENCING, UserKind.AUDIO_CONFERENCING_DISABLED_PLAN):
        return ConferencingProfile(
            "microsoft", sip, meet_base, "", [], [], "", bridge_id="", dial_in_enabled=False
        )
    if kind is UserKind.THIRD_PARTY_ACP:
        code = str(rng.randint(1_000_000, 9_999_999))
        return ConferencingProfile(
            "thirdParty",
            sip,
            meet_base,
            code,
            [d.number for d in ACP_DIAL_INS if not d.toll_free],
            [d.number for d in ACP_DIAL_INS if d.toll_free],
            "https://numbers.acp-conferencing-sim.example/",
            bridge_id="acp",
        )
    bridge = BRIDGE_FOR_LANGUAGE.get(lang, "bridge-us")
    conference_id = str(rng.randint(100_000_000, 999_999_999))
    if kind in (UserKind.SFB_USER, UserKind.ON_PREMISES_MAILBOX):
        dial_in_url = f"https://dialin.{state.domain}/"
    else:
        dial_in_url = f"https://dialin.teams.microsoft.com/{state.tenant_id}?id={conference_id}"
    return ConferencingProfile(
        "microsoft",
        sip,
        meet_base,
        conference_id,
        [d.number for d in BRIDGES[bridge] if not d.toll_free],
        [d.number for d in BRIDGES[bridge] if d.toll_free],
        dial_in_url,
        bridge_id=bridge,
    )


def _make_users(state: TenantState, count: int, now: datetime) -> None:
    used: dict[str, int] = {}
    for index in range(count):
        rng = random.Random(f"mmsd-sim:{state.seed}:user:{index}")
        kind = kind_for_index(index)
        culture = (
            CULTURES[index]
            if index < ORDINARY_PREFIX
            else rng.choices(CULTURES, cum_weights=_CULTURE_CUM_WEIGHTS)[0]
        )
        person = rng.choice(culture)
        alias = f"{_ascii(person.given)}.{_ascii(person.surname)}"
        used[alias] = used.get(alias, 0) + 1
        if used[alias] > 1:
            alias = f"{alias}{used[alias]}"
        upn = f"{alias}@{state.domain}"
        when = graph_time(now - timedelta(days=400 + rng.randint(0, 300))).replace(".0000000Z", "Z")
        licences, plans = _licences(kind, rng, index, when)
        lang = strings_language(person.language)
        user = SimUser(
            id=_guid(state, "user", index),
            user_principal_name=upn,
            display_name=person.display,
            given_name=person.given,
            surname=person.surname,
            mail=upn,
            kind=str(kind),
            mailbox=MailboxLocation.ON_PREMISES
            if kind is UserKind.ON_PREMISES_MAILBOX
            else MailboxLocation.EXCHANGE_ONLINE,
            assigned_licenses=licences,
            assigned_plans=plans,
            conferencing=_profile(state, kind, rng, upn, alias, lang),
            preferred_language=person.language,
            job_title=rng.choice(JOB_TITLES),
            office_location=rng.choice(OFFICES),
            business_phones=[f"+1 425 555 {1000 + index % 9000:04d}"] if rng.random() < 0.6 else [],
        )
        state.users.append(user)
        state.events[user.id] = {}
        state.online_meetings[user.id] = {}
        state.messages[user.id] = []


# --- meetings ---------------------------------------------------------------------------


@dataclass(slots=True)
class _Attendee:
    email: JSON  # {"name", "address"}, shared
    user: SimUser | None
    response: str  # "none", "accepted", "tentativelyAccepted", "declined"
    kind: str  # "required" | "optional"


@dataclass
class _Exception:
    original_start: datetime
    start: datetime
    end: datetime
    body: str


@dataclass
class _Meeting:
    organizer: SimUser
    subject: str
    fmt: str
    body: str
    start: datetime
    end: datetime
    created: datetime
    ical: str
    attendees: list[_Attendee]
    is_online: bool
    provider: str
    online_meeting: JSON | None = None
    online_meeting_url: str | None = None
    location: str | None = None
    recurrence: JSON | None = None
    exceptions: list[_Exception] = field(default_factory=list)
    attendees_json: list[JSON] | None = None
    fields_cache: dict[tuple[datetime, datetime, str], JSON] = field(default_factory=dict)


def _dial_ins(profile: ConferencingProfile) -> tuple[DialIn, ...]:
    toll = tuple(DialIn(n, NUMBER_LABELS.get(n, ""), False) for n in profile.toll_numbers)
    free = tuple(DialIn(n, NUMBER_LABELS.get(n, ""), True) for n in profile.toll_free_numbers)
    return toll + free


class _MeetingFactory:
    """Decides and stores the meetings of one organizer; one random stream per user."""

    def __init__(
        self,
        state: TenantState,
        now: datetime,
        organizer: SimUser,
        index: int,
        addresses: dict[tuple[str, str], JSON] | None = None,
        join_templates: dict[tuple[object, ...], str] | None = None,
    ) -> None:
        self.state = state
        # joinInformation templates shared tenant-wide, by language and bridge.
        self.join_templates: dict[tuple[object, ...], str] = (
            {} if join_templates is None else join_templates
        )
        # emailAddress objects shared tenant-wide: large meetings draw their external
        # attendees from a small pool of names, so most repeat (a large saving in memory).
        self.addresses: dict[tuple[str, str], JSON] = {} if addresses is None else addresses
        self.now = now
        self.day0 = datetime.combine(now.astimezone(UTC).date(), time(0), tzinfo=UTC)
        self.user = organizer
        self.index = index
        self.kind = UserKind(organizer.kind)
        self.rng = random.Random(f"mmsd-sim:{state.seed}:meetings:{index}")
        self.lang = strings_language(organizer.preferred_language)

    # -- details of the online meeting ---------------------------------------------------

    def _teams_details(self, thread_key: object) -> tuple[InviteDetails, JSON]:
        """Fresh Teams meeting details and the matching online-meeting JSON skeleton."""
        rng, user, state = self.rng, self.user, self.state
        raw = bytes.fromhex(state.make_id("thread", user.id, thread_key, length=48))
        thread = f"19:meeting_{base64.urlsafe_b64encode(raw).decode().rstrip('=')}@thread.v2"
        context = '{"Tid":"%s","Oid":"%s"}' % (state.tenant_id, user.id)  # noqa: UP031 - Teams' own shape
        join_url = f"https://teams.microsoft.com/l/meetup-join/{quote(thread, safe='')}/0?context={quote(context, safe='')}"
        meeting_id = str(rng.randint(100_000_000_000, 999_999_999_999))
        passcode = "".join(rng.choice(_PASSCODE_ALPHABET) for _ in range(6))
        profile = user.conferencing
        has_dial_in = bool(profile.dial_in_enabled and profile.conference_id)
        options = (
            f"https://teams.microsoft.com/meetingOptions/?organizerId={user.id}&tenantId={state.tenant_id}"
            f"&threadId={thread.replace(':', '_')}&messageId=0&language={user.preferred_language}"
        )
        details = InviteDetails(
            join_url=join_url,
            conference_id=profile.conference_id if has_dial_in else None,
            dial_ins=_dial_ins(profile) if has_dial_in else (),
            meeting_id=meeting_id,
            passcode=passcode,
            dial_in_url=profile.dial_in_url if has_dial_in else None,
            meeting_options_url=options,
        )
        record: JSON = {"thread": thread, "meetingId": meeting_id, "passcode": passcode}
        return details, record

    def _skype_details(self) -> InviteDetails:
        profile = self.user.conferencing
        code = "".join(self.rng.choice("ABCDEFGHJKLMNPQRSTUVWXYZ0123456789") for _ in range(8))
        has_dial_in = bool(profile.dial_in_enabled and profile.conference_id)
        return InviteDetails(
            join_url=f"{profile.meet_url_base}/{code}",
            conference_id=profile.conference_id if has_dial_in else None,
            dial_ins=_dial_ins(profile) if has_dial_in else (),
            dial_in_url=profile.dial_in_url if has_dial_in else None,
        )

    def _event_online_meeting(self, details: InviteDetails) -> JSON:
        """The event's ``onlineMeeting`` (onlineMeetingInfo) for these details."""
        toll = [d.number for d in details.dial_ins if not d.toll_free]
        free = [d.number for d in details.dial_ins if d.toll_free]
        conf = details.conference_id
        return {
            "conferenceId": conf,
            "joinUrl": details.join_url,
            "phones": [{"number": n, "type": "business"} for n in toll],
            "quickDial": f"{toll[0]},,{conf}#" if toll and conf else None,
            "tollFreeNumbers": free,
            "tollNumber": toll[0] if toll else None,
        }

    # -- the meeting's shape --------------------------------------------------------------

    def _teams_kind(self) -> InviteKind:
        return self.rng.choices(
            (InviteKind.TEAMS_CLASSIC, InviteKind.TEAMS_2023, InviteKind.TEAMS_MEET_INVITE_BLOCK),
            (25, 35, 40),
        )[0]

    def _times(self, shape: Shape) -> tuple[datetime, timedelta]:
        rng = self.rng
        minutes = rng.choice((30, 60, 60, 90))
        hour = rng.randint(7, 17)
        if shape is Shape.PAST:
            day = self.day0 - timedelta(days=rng.randint(1, 60))
        else:
            day = self.day0 + timedelta(days=rng.randint(1, 45))
        return day + timedelta(hours=hour, minutes=rng.choice((0, 30))), timedelta(minutes=minutes)

    def _recurrence(self, shape: Shape) -> tuple[JSON, datetime, timedelta]:
        """A recurrence and the series' first start, for a series of ``shape``."""
        rng = self.rng
        minutes = rng.choice((30, 60))
        hour = rng.randint(7, 16)
        if shape is Shape.SERIES_ENDED:
            first = (self.day0 - timedelta(days=rng.randint(120, 200))).date()
        elif shape is Shape.SERIES_NUMBERED:
            first = (self.day0 - timedelta(days=rng.randint(0, 20))).date()
        else:
            first = (self.day0 - timedelta(days=rng.randint(14, 90))).date()
        kind = rng.choices(
            ("weekly", "daily", "absoluteMonthly", "relativeMonthly"), (55, 15, 15, 15)
        )[0]
        if shape is Shape.SERIES_NUMBERED:
            kind = "weekly"
        pattern: JSON = {
            "type": kind,
            "interval": 1,
            "month": 0,
            "dayOfMonth": 0,
            "daysOfWeek": [],
            "firstDayOfWeek": "sunday",
            "index": "first",
        }
        if kind == "weekly":
            extra = WEEKDAYS[rng.randint(0, 4)]
            own = WEEKDAYS[first.weekday()]
            pattern["daysOfWeek"] = sorted({own, extra}, key=WEEKDAYS.index)
            pattern["interval"] = rng.choice((1, 1, 2))
        elif kind == "daily":
            pattern["interval"] = rng.choice((1, 2, 7))
        elif kind == "absoluteMonthly":
            pattern["dayOfMonth"] = min(first.day, 28)
        else:
            pattern["daysOfWeek"] = [WEEKDAYS[rng.randint(0, 4)]]
            pattern["index"] = rng.choice(("first", "second", "last"))
        rng_json: JSON = {
            "type": "noEnd",
            "startDate": first.isoformat(),
            "endDate": "0001-01-01",
            "recurrenceTimeZone": "UTC",
            "numberOfOccurrences": 0,
        }
        if shape is Shape.SERIES_ENDED:
            rng_json["type"] = "endDate"
            rng_json["endDate"] = (
                (self.day0 - timedelta(days=rng.randint(2, 30))).date().isoformat()
            )
        elif shape is Shape.SERIES_NUMBERED:
            rng_json["type"] = "numbered"
            rng_json["numberOfOccurrences"] = rng.randint(8, 12)
        elif rng.random() < 0.5:
            rng_json["type"] = "endDate"
            rng_json["endDate"] = (
                (self.day0 + timedelta(days=rng.randint(30, 180))).date().isoformat()
            )
        recurrence = {"pattern": pattern, "range": rng_json}
        provisional = datetime.combine(first, time(hour), tzinfo=UTC)
        probe = {"start": graph_datetime_tz(provisional), "recurrence": recurrence}
        start = next(occurrence_starts(probe), provisional)
        return recurrence, start, timedelta(minutes=minutes)

    def _attendees(self, large: bool) -> list[_Attendee]:
        rng, users = self.rng, self.state.users
        out: list[_Attendee] = []
        seen = {self.user.id}
        in_tenant = 2 if large else rng.randint(1, 3)
        for _ in range(in_tenant):
            if len(users) < 2:
                break
            other = users[rng.randrange(len(users))]
            if other.id in seen:
                continue
            seen.add(other.id)
            response = rng.choice(("none", "accepted", "accepted", "tentativelyAccepted"))
            out.append(
                _Attendee(
                    self._address(other.display_name, other.mail), other, response, "required"
                )
            )
        externals = (
            rng.randint(LARGE_MEETING_MIN_ATTENDEES, 280) - len(out) if large else rng.randint(0, 3)
        )
        for n in range(externals):
            person = rng.choice(rng.choices(CULTURES, cum_weights=_CULTURE_CUM_WEIGHTS)[0])
            domain = EXTERNAL_DOMAINS[n % len(EXTERNAL_DOMAINS)]
            local = f"{_ascii(person.given)}.{_ascii(person.surname)}{n if large else ''}"
            response = rng.choice(("none", "accepted"))
            out.append(
                _Attendee(
                    self._address(person.display, f"{local}@{domain}"),
                    None,
                    response,
                    rng.choice(("required", "optional")),
                )
            )
        return out

    def _address(self, name: str, address: str) -> JSON:
        """The (shared) ``emailAddress`` object for ``name`` and ``address``."""
        key = (name, address)
        found = self.addresses.get(key)
        if found is None:
            found = self.addresses[key] = {"name": name, "address": address}
        return found

    def _texts(self) -> tuple[str, str]:
        return self.rng.choice(BEFORE_TEXTS), self.rng.choice(AFTER_TEXTS)

    def build(self, slot: int) -> _Meeting:
        """Decide the meeting in ``slot`` of this organizer's calendar."""
        rng, state = self.rng, self.state
        shape = SLOT_SHAPES[slot % len(SLOT_SHAPES)]
        if shape is Shape.SPECIAL:
            shape = SPECIAL_CYCLE[(self.index + slot // len(SLOT_SHAPES)) % len(SPECIAL_CYCLE)]
        if (
            self.kind is UserKind.LARGE_MEETINGS
            and shape is Shape.FUTURE
            and slot % len(SLOT_SHAPES) == 0
        ):
            shape = Shape.LARGE
        skype = self.kind in (UserKind.SFB_USER, UserKind.ON_PREMISES_MAILBOX)
        fmt = "html" if rng.random() < 0.75 else "text"
        before, after = self._texts()
        recurrence: JSON | None = None
        if shape in (Shape.SERIES_ONGOING, Shape.SERIES_ENDED, Shape.SERIES_NUMBERED):
            recurrence, start, duration = self._recurrence(shape)
        else:
            start, duration = self._times(shape)
        created = min(start, self.now) - timedelta(
            days=rng.randint(1, 30), minutes=rng.randint(0, 600)
        )
        meeting = _Meeting(
            organizer=self.user,
            subject=rng.choice(SUBJECTS),
            fmt=fmt,
            body="",
            start=start,
            end=start + duration,
            created=created,
            ical="",
            attendees=self._attendees(shape is Shape.LARGE),
            is_online=True,
            provider="skypeForBusiness" if skype else "teamsForBusiness",
            recurrence=recurrence,
        )
        meeting.ical = (
            "040000008200E00074C5B7101A82E008"
            + "00000000"
            + state.make_id("ical", self.user.id, slot, length=72)
        ).upper()
        kind = InviteKind.SKYPE if skype else self._teams_kind()
        record: JSON | None = None
        if skype:
            details = self._skype_details()
            meeting.online_meeting_url = details.join_url
        else:
            details, record = self._teams_details(slot)
            meeting.location = "Microsoft Teams Meeting"
        block = render_invite(kind, fmt, self.lang, details)
        if shape in (Shape.PASTED_NOT_ONLINE, Shape.IN_PERSON):
            meeting.is_online = False
            meeting.provider = "unknown"
            meeting.online_meeting_url = None
            meeting.location = rng.choice(ROOMS)
            record = None
            if shape is Shape.IN_PERSON:
                block = ""
        elif shape is Shape.NO_BLOCK:
            block = ""
        elif shape is Shape.TWO_BLOCKS:
            other, _ = self._teams_details(("other", slot))
            block = (
                block
                + ("\r\n<div><br></div>\r\n" if fmt == "html" else "\r\n\r\n")
                + render_invite(
                    InviteKind.SKYPE if not skype else InviteKind.TEAMS_2023, fmt, self.lang, other
                )
            )
        elif shape is Shape.DAMAGED_BLOCK:
            rule = SKYPE_RULE if skype else TEAMS_RULE
            cut = block.rfind(rule)
            block = block[:cut] + block[cut + len(rule) :]
        meeting.body = wrap_body(block, fmt, before, after)
        if meeting.is_online:
            meeting.online_meeting = self._event_online_meeting(details)
        if record is not None:
            self._store_online_meeting(meeting, details, record)
        if shape is Shape.SERIES_ONGOING:
            self._add_exception(meeting, kind, details)
        return meeting

    def _add_exception(self, meeting: _Meeting, kind: InviteKind, details: InviteDetails) -> None:
        """One future occurrence moved by an hour, carrying its own body."""
        duration = meeting.end - meeting.start
        probe = {"start": graph_datetime_tz(meeting.start), "recurrence": meeting.recurrence}
        horizon = self.now + timedelta(days=1)
        for original in occurrence_starts(probe):
            if original > self.now + timedelta(days=400):
                return
            if original >= horizon:
                moved = original + timedelta(hours=1)
                note = self.rng.choice(
                    (
                        "Moved by one hour this week ⏰",
                        "Diese Woche eine Stunde später ⏰",
                        "本周推迟一小时",
                        "今週は1時間遅れます",
                    )
                )
                before, after = self._texts()
                body = wrap_body(
                    render_invite(kind, meeting.fmt, self.lang, details),
                    meeting.fmt,
                    f"{note}\n{before}",
                    after,
                )
                meeting.exceptions.append(_Exception(original, moved, moved + duration, body))
                return

    def _join_information(self, details: InviteDetails) -> str:
        """``joinInformation.content``: the newest block as a URL-encoded ``data:`` URI.

        URL-encoding a whole block is slow, so the block is rendered and encoded
        once per language and bridge (tenant-wide) with placeholder values, which
        are then replaced by the encoded real ones (placeholders are letters only,
        unchanged by both HTML escaping and URL encoding; escaping and encoding
        work character by character, so replacing after encoding gives the bytes
        that encoding the real block would).
        """
        key = (
            self.lang,
            details.dial_ins,
            details.conference_id is not None,
            details.dial_in_url is not None,
            details.reset_pin_url,
            details.help_url,
        )
        template = self.join_templates.get(key)
        if template is None:
            probe = replace(
                details,
                join_url=_PH_JOIN,
                meeting_id=_PH_MEETING_ID,
                passcode=_PH_PASSCODE,
                meeting_options_url=_PH_OPTIONS,
                conference_id=None if details.conference_id is None else _PH_CONFERENCE_ID,
                dial_in_url=None if details.dial_in_url is None else _PH_DIAL_IN_URL,
            )
            block = render_invite(InviteKind.TEAMS_MEET_INVITE_BLOCK, "html", self.lang, probe)
            template = self.join_templates[key] = "data:text/html," + quote(block, safe="")
        out = template
        values = (
            (_PH_JOIN, details.join_url),
            (group_digits(_PH_MEETING_ID), group_digits(details.meeting_id or "")),
            (_PH_PASSCODE, details.passcode or ""),
            (_PH_OPTIONS, details.meeting_options_url or ""),
            (group_digits(_PH_CONFERENCE_ID), group_digits(details.conference_id or "")),
            (_PH_CONFERENCE_ID, details.conference_id or ""),
            (_PH_DIAL_IN_URL, details.dial_in_url or ""),
        )
        for placeholder, value in values:
            out = out.replace(_encoded_placeholder(placeholder), _encoded(value))
        return out

    def _store_online_meeting(
        self, meeting: _Meeting, details: InviteDetails, record: JSON
    ) -> None:
        """The Teams online-meeting record behind a meeting, as ``GET /onlineMeetings`` answers."""
        user, state = self.user, self.state
        thread = str(record["thread"])
        om_id = base64.urlsafe_b64encode(f"1*{user.id}*0**{thread}".encode()).decode().rstrip("=")
        profile = user.conferencing
        audio: JSON | None = None
        if profile.dial_in_enabled and profile.conference_id:
            audio = {
                "conferenceId": profile.conference_id,
                "dialinUrl": profile.dial_in_url,
                "tollFreeNumber": profile.toll_free_numbers[0]
                if profile.toll_free_numbers
                else None,
                "tollFreeNumbers": list(profile.toll_free_numbers),
                "tollNumber": profile.toll_numbers[0] if profile.toll_numbers else None,
                "tollNumbers": list(profile.toll_numbers),
            }
        join_information = self._join_information(details)
        attendees = [
            {
                "identity": {"user": {"id": a.user.id, "displayName": None}},
                "role": "attendee",
                "upn": a.user.user_principal_name,
            }
            for a in meeting.attendees
            if a.user is not None
        ]
        state.online_meetings[user.id][om_id] = {
            "id": om_id,
            "creationDateTime": graph_time(meeting.created),
            "startDateTime": graph_time(meeting.start),
            "endDateTime": graph_time(meeting.end),
            "joinWebUrl": details.join_url,
            "subject": meeting.subject,
            "externalId": None,
            "isBroadcast": False,
            "videoTeleconferenceId": None,
            "meetingOptionsWebUrl": details.meeting_options_url,
            "allowedPresenters": "everyone",
            "allowMeetingChat": "enabled",
            "allowTeamworkReactions": True,
            "isEntryExitAnnounced": False,
            "recordAutomatically": False,
            "audioConferencing": audio,
            "chatInfo": {"threadId": thread, "messageId": "0", "replyChainMessageId": None},
            "joinMeetingIdSettings": {
                "isPasscodeRequired": True,
                "joinMeetingId": record["meetingId"],
                "passcode": record["passcode"],
            },
            "lobbyBypassSettings": {"scope": "organization", "isDialInBypassEnabled": False},
            "participants": {
                "organizer": {
                    "identity": {"user": {"id": user.id, "displayName": None}},
                    "role": "presenter",
                    "upn": user.user_principal_name,
                },
                "attendees": attendees,
            },
            "joinInformation": {"content": join_information, "contentType": "html"},
        }


# --- events ---------------------------------------------------------------------------------


def _location(name: str | None) -> JSON:
    if not name:
        return {
            "displayName": "",
            "locationType": "default",
            "uniqueIdType": "unknown",
            "address": {},
            "coordinates": {},
        }
    return {
        "displayName": name,
        "locationType": "default",
        "uniqueId": name,
        "uniqueIdType": "private",
    }


def _attendees_json(m: _Meeting) -> list[JSON]:
    """The meeting's ``attendees``, built once and shared by all its copies (to save memory)."""
    if m.attendees_json is None:
        accepted_at = graph_time(m.created + timedelta(hours=2))
        # One status object per response, shared by the attendees who gave it: no code
        # mutates a stored event's nested values in place (a PATCH replaces them whole).
        statuses: dict[str, JSON] = {}
        out: list[JSON] = []
        for a in m.attendees:
            status = statuses.get(a.response)
            if status is None:
                time_ = NULL_TIME if a.response == "none" else accepted_at
                status = statuses[a.response] = {"response": a.response, "time": time_}
            out.append(
                {
                    "type": a.kind,
                    "status": status,
                    "emailAddress": a.email,
                }
            )
        m.attendees_json = out
    return m.attendees_json


def _fields(m: _Meeting, start: datetime, end: datetime, body: str) -> JSON:
    """Graph fields of one copy of ``m`` (a fresh dict each call).

    The nested values are built once per meeting and shared by all its copies, to
    save memory at 100,000 users: nothing mutates a stored event's nested values
    in place (a PATCH replaces a property whole, and readers copy before changing).
    """
    key = (start, end, body)
    shared = m.fields_cache.get(key)
    if shared is None:
        shared = m.fields_cache[key] = {
            "createdDateTime": graph_time(m.created),
            "iCalUId": m.ical,
            "subject": m.subject,
            "body": {"contentType": m.fmt, "content": body},
            "start": graph_datetime_tz(start),
            "end": graph_datetime_tz(end),
            "location": _location(m.location),
            "locations": [_location(m.location)] if m.location else [],
            "attendees": _attendees_json(m),
            "organizer": {
                "emailAddress": {"name": m.organizer.display_name, "address": m.organizer.mail}
            },
            "isOnlineMeeting": m.is_online,
            "onlineMeetingProvider": m.provider,
            "onlineMeeting": m.online_meeting,
            "onlineMeetingUrl": m.online_meeting_url,
            "recurrence": None,
        }
    return dict(shared)


def _store_copy(
    state: TenantState,
    m: _Meeting,
    mailbox: SimUser,
    copy: CopyKind,
    response: JSON | None,
    now: datetime,
) -> None:
    """Store one mailbox's copy of ``m`` (with its series exceptions)."""
    fields = _fields(m, m.start, m.end, m.body)
    if response is not None:
        fields["responseStatus"] = response
    if m.recurrence is not None:
        fields["type"] = "seriesMaster"
        fields["recurrence"] = m.recurrence
    master = new_event(state, mailbox.id, fields, copy=copy, organizer_id=m.organizer.id, now=now)
    box = state.events[mailbox.id]
    box[master.id] = master
    for exc in m.exceptions:
        ef = _fields(m, exc.start, exc.end, exc.body)
        if response is not None:
            ef["responseStatus"] = dict(response)
        ef["type"] = "exception"
        ef["seriesMasterId"] = master.id
        ef["originalStart"] = graph_instant(exc.original_start)
        ef["iCalUId"] = occurrence_ical_uid(m.ical, exc.original_start)
        event = new_event(state, mailbox.id, ef, copy=copy, organizer_id=m.organizer.id, now=now)
        box[event.id] = event


def _store_meeting(
    state: TenantState, m: _Meeting, delegate: SimUser | None, now: datetime
) -> None:
    _store_copy(state, m, m.organizer, CopyKind.ORGANIZER, None, now)
    for a in m.attendees:
        if a.user is None:
            continue
        response = "notResponded" if a.response == "none" else a.response
        when = NULL_TIME if a.response == "none" else graph_time(m.created + timedelta(hours=2))
        _store_copy(state, m, a.user, CopyKind.ATTENDEE, {"response": response, "time": when}, now)
    if delegate is not None:
        _store_copy(state, m, delegate, CopyKind.DELEGATE, None, now)


def generate_tenant(seed: int, now: datetime, users: int, meetings: int) -> TenantState:
    """A whole simulated tenant, deterministic in its arguments (see the module docstring)."""
    if now.tzinfo is None:
        raise ValueError("generate_tenant needs a timezone-aware now")
    probe = TenantState(tenant_id="", domain=DOMAIN, seed=seed)
    state = TenantState(tenant_id=_guid(probe, "tenant"), domain=DOMAIN, seed=seed)
    # The generator only allocates (no cycles to collect): with the collector on, its
    # full collections rescan the growing heap again and again (~15 % of the time at
    # 100,000 users).
    enabled = gc.isenabled()
    gc.disable()
    try:
        _generate(state, now, users, meetings)
    finally:
        if enabled:
            gc.enable()
    return state


def _generate(state: TenantState, now: datetime, users: int, meetings: int) -> None:
    _make_users(state, users, now)
    addresses: dict[tuple[str, str], JSON] = {}
    join_templates: dict[tuple[object, ...], str] = {}
    for index, user in enumerate(state.users):
        factory = _MeetingFactory(state, now, user, index, addresses, join_templates)
        delegate: SimUser | None = None
        if user.kind == UserKind.DELEGATE_BOSS and index + 1 < len(state.users):
            nxt = state.users[index + 1]
            delegate = nxt if nxt.kind == UserKind.DELEGATE else None
        for slot in range(meetings):
            _store_meeting(state, factory.build(slot), delegate, now)


def delegate_of(state: TenantState, boss: SimUser) -> SimUser | None:
    """The delegate who holds copies of ``boss``'s meetings, if any."""
    for i, u in enumerate(state.users):
        if u.id == boss.id and u.kind == UserKind.DELEGATE_BOSS and i + 1 < len(state.users):
            nxt = state.users[i + 1]
            return nxt if nxt.kind == UserKind.DELEGATE else None
    return None
