"""Localized invitation strings (English, German, Chinese) and the vocabulary of all templates.

The strings a new block is rendered with, and the lines Microsoft's own
templates write, so that an old block can be told apart from one edited by
hand. English strings are Microsoft's, as published (see
``tests/blocks/golden/README.md``); German and Chinese follow Microsoft's
localized Teams and Skype for Business invitations. Languages without strings
here render in English.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class TeamsStrings:
    """The strings of the current Teams invitation (``meet_invite_block``) in one language."""

    tag: str
    heading: str
    need_help: str
    join_now: str
    meeting_id: str
    passcode: str
    dial_in: str
    find_local_number: str
    phone_conference_id: str
    for_organizers: str
    meeting_options: str
    reset_pin: str
    toll: str
    toll_free: str


@dataclass(frozen=True, slots=True)
class SkypeStrings:
    """The strings of a Skype for Business invitation in one language."""

    tag: str
    lcid: int
    join: str
    trouble_joining: str
    try_web_app: str
    join_by_phone: str
    find_local_number: str
    conference_id: str
    forgot_pin: str
    help: str


TEAMS: dict[str, TeamsStrings] = {
    "en": TeamsStrings(
        tag="en-US",
        heading="Microsoft Teams",
        need_help="Need help?",
        join_now="Join the meeting now",
        meeting_id="Meeting ID:",
        passcode="Passcode:",
        dial_in="Dial in by phone",
        find_local_number="Find a local number",
        phone_conference_id="Phone conference ID:",
        for_organizers="For organizers:",
        meeting_options="Meeting options",
        reset_pin="Reset dial-in PIN",
        toll="(Toll)",
        toll_free="(Toll-free)",
    ),
    "de": TeamsStrings(
        tag="de-DE",
        heading="Microsoft Teams",
        need_help="Benötigen Sie Hilfe?",
        join_now="Besprechung jetzt beitreten",
        meeting_id="Besprechungs-ID:",
        passcode="Kenncode:",
        dial_in="Telefonische Einwahl",
        find_local_number="Lokale Nummer suchen",
        phone_conference_id="Telefonkonferenz-ID:",
        for_organizers="Für Organisatoren:",
        meeting_options="Besprechungsoptionen",
        reset_pin="Einwahl-PIN zurücksetzen",
        toll="(gebührenpflichtig)",
        toll_free="(gebührenfrei)",
    ),
    "zh": TeamsStrings(
        tag="zh-CN",
        heading="Microsoft Teams",
        need_help="需要帮助?",
        join_now="立即加入会议",
        meeting_id="会议 ID:",
        passcode="密码:",
        dial_in="通过电话拨入",
        find_local_number="查找本地号码",
        phone_conference_id="电话会议 ID:",
        for_organizers="对于组织者:",
        meeting_options="会议选项",
        reset_pin="重置拨入 PIN",
        toll="(收费)",
        toll_free="(免费)",
    ),
}

SKYPE: dict[str, SkypeStrings] = {
    "en": SkypeStrings(
        tag="en-US",
        lcid=1033,
        join="Join Skype Meeting",
        trouble_joining="Trouble Joining?",
        try_web_app="Try Skype Web App",
        join_by_phone="Join by phone",
        find_local_number="Find a local number",
        conference_id="Conference ID:",
        forgot_pin="Forgot your dial-in PIN?",
        help="Help",
    ),
    "de": SkypeStrings(
        tag="de-DE",
        lcid=1031,
        join="An Skype-Besprechung teilnehmen",
        trouble_joining="Probleme beim Beitreten?",
        try_web_app="Skype Web App testen",
        join_by_phone="Per Telefon teilnehmen",
        find_local_number="Lokale Nummer suchen",
        conference_id="Konferenz-ID:",
        forgot_pin="Einwahl-PIN vergessen?",
        help="Hilfe",
    ),
    "zh": SkypeStrings(
        tag="zh-CN",
        lcid=2052,
        join="加入 Skype 会议",
        trouble_joining="加入时遇到问题?",
        try_web_app="试用 Skype Web App",
        join_by_phone="通过电话加入",
        find_local_number="查找本地号码",
        conference_id="会议 ID:",
        forgot_pin="忘记了拨入 PIN?",
        help="帮助",
    ),
}

LCID_TO_TAG: dict[int, str] = {1033: "en-US", 2057: "en-GB", 1031: "de-DE", 2052: "zh-CN"}
"""Windows LCIDs of the Skype ``[!OC([lcid])!]`` marker that have strings here."""

# Lines of the older Teams layouts and their variants, per language: never
# rendered, only recognised (language detection and hand-edit detection).
_OLDER_TEAMS_LINES: dict[str, tuple[str, ...]] = {
    "en": (
        "Join Microsoft Teams Meeting",
        "Microsoft Teams meeting",
        "Microsoft Teams Meeting",
        "Join on your computer, mobile app or room device",
        "Join on your computer or mobile app",
        "Click here to join the meeting",
        "Click to join the meeting",
        "Download Teams",
        "Join on the web",
        "Or call in (audio only)",
        "Phone Conference ID:",
        "Conference ID:",
        "Local numbers",
        "Reset PIN",
        "Learn more about Teams",
        "Learn More",
        "Learn more",
        "Join:",
        "System reference",
        "Join with a video conferencing device",
        "Video Conference ID:",
        "Alternate VTC instructions",
        "Meeting options",
    ),
    "de": (
        "An Microsoft Teams-Besprechung teilnehmen",
        "Microsoft Teams-Besprechung",
        "Nehmen Sie von Ihrem Computer, einer mobilen App oder einem Raumgerät aus teil",
        "Nehmen Sie von Ihrem Computer oder der mobilen App aus teil",
        "Klicken Sie hier, um an der Besprechung teilzunehmen",
        "Teams herunterladen",
        "Im Web beitreten",
        "Oder rufen Sie an (nur Audio)",
        "Konferenz-ID:",
        "Lokale Nummern",
        "PIN zurücksetzen",
        "Weitere Informationen über Teams",
        "Weitere Infos",
        "Hilfe",
        "Beitreten:",
    ),
    "zh": (
        "加入 Microsoft Teams 会议",
        "Microsoft Teams 会议",
        "在计算机、移动应用或会议室设备上加入",
        "单击此处加入会议",
        "下载 Teams",
        "在 Web 上加入",
        "或拨打(仅音频)",
        "本地号码",
        "重置 PIN",
        "了解有关 Teams 的详细信息",
        "了解详细信息",
        "加入:",
    ),
}

# Wording that differs between Microsoft's releases of the same layout (and
# between its translation passes): recognised, never rendered. Where a public
# source shows the string, it is named; the others are the variants met in
# invitations the simulator writes independently, and are marked so.
_VARIANT_LINES: dict[str, tuple[str, ...]] = {
    "de": (
        # "Jetzt an der Besprechung teilnehmen <https://teams…/meetup-join/…>": quoted
        # in public invitation-parsing tests (GitHub code search, German Teams text).
        "Jetzt an der Besprechung teilnehmen",
        # "ortsgebundene Nummer suchen": matched by a public German calendar widget
        # that strips Teams dial-in lines (GitHub code search).
        "Ortsgebundene Nummer suchen",
        # Reconstructed (no captured invitation found): wording variants of the
        # lines above, as met in independently generated invitations.
        "Nehmen Sie von Ihrem Computer, Ihrer mobilen App oder Ihrem Raumgerät aus teil",
        "Weitere Informationen",
        "Weitere Informationen zu Teams",
        "Probleme beim Teilnehmen?",
        "Skype Web App ausprobieren",
        "Probleme beim Teilnehmen? Skype Web App ausprobieren",
        # Reconstructed: the German for the newest layout's "System reference" link.
        "Systemreferenz",
    ),
    "zh": (
        # Reconstructed (no captured invitation found): zh-CN wording variants.
        "在网页上加入",
        "或拨入(仅音频)",
        # Reconstructed: the Chinese for the newest layout's "System reference" link.
        "系统参考",
    ),
}

_SKYPE_EXTRA_LINES: tuple[str, ...] = (
    "This is an online meeting for Skype for Business, the professional meetings and "
    "communications app formerly known as Lync.",
    "English (United States)",
)

_FOLD = str.maketrans({"：": ":", "？": "?", "（": "(", "）": ")", "\u00a0": " ", "，": ","})
_FOLD_PUNCTUATION = "：？（），"


def fold(text: str) -> str:
    """Normalize a visible line for comparison: full-width punctuation, spaces, case."""
    if not text.isascii() and any(c in text for c in _FOLD_PUNCTUATION):
        text = text.translate(_FOLD)  # (its no-break space is whitespace to split anyway)
    return " ".join(text.split()).casefold()


def teams_strings(language: str | None) -> TeamsStrings:
    """The Teams strings for a language tag (``de-AT`` → German); English when there are none."""
    return TEAMS.get(_primary(language), TEAMS["en"])


def skype_strings(language: str | None) -> SkypeStrings:
    """The Skype for Business strings for a language tag; English when there are none."""
    return SKYPE.get(_primary(language), SKYPE["en"])


def _primary(language: str | None) -> str:
    return (language or "en").replace("_", "-").split("-", 1)[0].casefold()


def _build_vocabulary() -> tuple[dict[str, str], tuple[str, ...]]:
    """Every template line (folded) → its language, and the folded label prefixes."""
    lines: dict[str, str] = {}
    labels: set[str] = set()
    for lang, ts in TEAMS.items():
        for value in (
            ts.heading,
            ts.need_help,
            ts.join_now,
            ts.dial_in,
            ts.find_local_number,
            ts.meeting_options,
            ts.reset_pin,
            ts.for_organizers,
        ):
            lines.setdefault(fold(value), lang)
        lines.setdefault(fold(f"{ts.heading} {ts.need_help}"), lang)
        for label in (ts.meeting_id, ts.passcode, ts.phone_conference_id, ts.for_organizers):
            labels.add(fold(label))
            lines.setdefault(fold(label), lang)
    for lang, older in (*_OLDER_TEAMS_LINES.items(), *_VARIANT_LINES.items()):
        for value in older:
            lines.setdefault(fold(value), lang)
            if value.endswith(":"):
                labels.add(fold(value))
    for lang, ss in SKYPE.items():
        for value in (
            ss.join,
            ss.trouble_joining,
            ss.try_web_app,
            f"{ss.trouble_joining} {ss.try_web_app}",
            ss.join_by_phone,
            ss.find_local_number,
            ss.forgot_pin,
            ss.help,
        ):
            lines.setdefault(fold(value), lang)
        labels.add(fold(ss.conference_id))
    for value in _SKYPE_EXTRA_LINES:
        lines.setdefault(fold(value), "en")
    return lines, tuple(sorted(labels, key=len, reverse=True))


TEMPLATE_LINES, LABELS = _build_vocabulary()
"""Folded template lines (→ language primary subtag) and folded ``Label:`` prefixes."""
