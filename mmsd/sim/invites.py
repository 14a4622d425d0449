"""The simulator's own invitation templates: the online-meeting blocks Outlook and Teams write.

Written from Microsoft's published invitation formats (GRAPH-FACTS.md,
"Invitation blocks") and independently of mmsd's block engine, with which it
shares no code or constants, so that each checks the other. Four block kinds:

- ``teamsClassic``: 80-underscore lines, "Join Microsoft Teams Meeting",
  dial-in numbers, "Conference ID: … #", "Local numbers | Reset PIN | …";
- ``teams2023``: "Microsoft Teams meeting", "Click here to join the meeting",
  "Meeting ID:", "Passcode:";
- ``teamsMeetInviteBlock``: the newest ``meet_invite_block`` layout;
- ``skype``: Skype for Business, 137-dot lines, ``OutJoinLink``.

Each renders in HTML or plain text and in English, German, Chinese or Japanese.
"""

from __future__ import annotations

import enum
import html
import re
from dataclasses import dataclass

TEAMS_RULE = "_" * 80
SKYPE_RULE = "." * 137
CRLF = "\r\n"


class InviteKind(enum.StrEnum):
    """Which invitation block layout to render."""

    TEAMS_CLASSIC = "teamsClassic"
    TEAMS_2023 = "teams2023"
    TEAMS_MEET_INVITE_BLOCK = "teamsMeetInviteBlock"
    SKYPE = "skype"


TEAMS_KINDS = (InviteKind.TEAMS_CLASSIC, InviteKind.TEAMS_2023, InviteKind.TEAMS_MEET_INVITE_BLOCK)
LANGUAGES = ("en", "de", "zh", "ja")
FORMATS = ("html", "text")


@dataclass(frozen=True)
class DialIn:
    """One dial-in number as an invitation shows it."""

    number: str  # "+1 425-555-0100"
    label: str  # "United States, Seattle"
    toll_free: bool = False


@dataclass(frozen=True)
class InviteDetails:
    """What an invitation block carries; Teams and Skype use different subsets."""

    join_url: str  # Teams meetup-join link, or the Skype meet URL
    conference_id: str | None = None  # phone conference ID, digits only
    dial_ins: tuple[DialIn, ...] = ()
    meeting_id: str | None = None  # Teams meeting ID, digits only
    passcode: str | None = None
    dial_in_url: str | None = None  # "Local numbers" / "Find a local number"
    meeting_options_url: str | None = None
    reset_pin_url: str = "https://dialin.teams.microsoft.com/usp/pstnconferencing"
    help_url: str = "https://aka.ms/JoinTeamsMeeting"


@dataclass(frozen=True)
class _Strings:
    """The fixed wording of every block in one language."""

    lcid: int
    locale: str
    # Teams classic
    classic_join: str
    conference_id: str
    local_numbers: str
    reset_pin: str
    learn_more_teams: str
    meeting_options: str
    # Teams 2023
    teams_meeting: str
    join_on_device: str
    click_to_join: str
    meeting_id: str
    passcode: str
    download_teams: str
    join_on_web: str
    call_in: str
    phone_conference_id: str
    find_local_number: str
    learn_more: str
    # Teams newest
    need_help: str
    join_now: str
    dial_in_by_phone: str
    for_organizers: str
    reset_dial_in_pin: str
    # Skype for Business
    skype_join: str
    skype_trouble: str
    skype_web_app: str
    join_by_phone: str
    skype_find_local: str
    skype_conference_id: str
    forgot_pin: str
    help: str
    toll_free: str
    toll: str


_STRINGS: dict[str, _Strings] = {
    "en": _Strings(
        lcid=1033,
        locale="en-US",
        classic_join="Join Microsoft Teams Meeting",
        conference_id="Conference ID:",
        local_numbers="Local numbers",
        reset_pin="Reset PIN",
        learn_more_teams="Learn more about Teams",
        meeting_options="Meeting options",
        teams_meeting="Microsoft Teams meeting",
        join_on_device="Join on your computer, mobile app or room device",
        click_to_join="Click here to join the meeting",
        meeting_id="Meeting ID:",
        passcode="Passcode:",
        download_teams="Download Teams",
        join_on_web="Join on the web",
        call_in="Or call in (audio only)",
        phone_conference_id="Phone Conference ID:",
        find_local_number="Find a local number",
        learn_more="Learn More",
        need_help="Need help?",
        join_now="Join the meeting now",
        dial_in_by_phone="Dial in by phone",
        for_organizers="For organizers:",
        reset_dial_in_pin="Reset dial-in PIN",
        skype_join="Join Skype Meeting",
        skype_trouble="Trouble Joining?",
        skype_web_app="Try Skype Web App",
        join_by_phone="Join by phone",
        skype_find_local="Find a local number",
        skype_conference_id="Conference ID:",
        forgot_pin="Forgot your dial-in PIN?",
        help="Help",
        toll_free="Toll-free",
        toll="Toll",
    ),
    "de": _Strings(
        lcid=1031,
        locale="de-DE",
        classic_join="An Microsoft Teams-Besprechung teilnehmen",
        conference_id="Konferenz-ID:",
        local_numbers="Lokale Nummern",
        reset_pin="PIN zurücksetzen",
        learn_more_teams="Weitere Informationen zu Teams",
        meeting_options="Besprechungsoptionen",
        teams_meeting="Microsoft Teams-Besprechung",
        join_on_device="Nehmen Sie von Ihrem Computer, Ihrer mobilen App oder Ihrem Raumgerät aus teil",
        click_to_join="Klicken Sie hier, um an der Besprechung teilzunehmen",
        meeting_id="Besprechungs-ID:",
        passcode="Kenncode:",
        download_teams="Teams herunterladen",
        join_on_web="Im Web beitreten",
        call_in="Oder rufen Sie an (nur Audio)",
        phone_conference_id="Telefonkonferenz-ID:",
        find_local_number="Ortsgebundene Nummer suchen",
        learn_more="Weitere Informationen",
        need_help="Benötigen Sie Hilfe?",
        join_now="Jetzt an der Besprechung teilnehmen",
        dial_in_by_phone="Telefonische Einwahl",
        for_organizers="Für Organisatoren:",
        reset_dial_in_pin="Einwahl-PIN zurücksetzen",
        skype_join="An Skype-Besprechung teilnehmen",
        skype_trouble="Probleme beim Teilnehmen?",
        skype_web_app="Skype Web App ausprobieren",
        join_by_phone="Telefonische Teilnahme",
        skype_find_local="Ortsgebundene Nummer suchen",
        skype_conference_id="Konferenz-ID:",
        forgot_pin="Einwahl-PIN vergessen?",
        help="Hilfe",
        toll_free="Gebührenfrei",
        toll="Gebührenpflichtig",
    ),
    "zh": _Strings(
        lcid=2052,
        locale="zh-CN",
        classic_join="加入 Microsoft Teams 会议",
        conference_id="会议 ID:",
        local_numbers="本地号码",
        reset_pin="重置 PIN",
        learn_more_teams="了解有关 Teams 的详细信息",
        meeting_options="会议选项",
        teams_meeting="Microsoft Teams 会议",
        join_on_device="在计算机、移动应用或会议室设备上加入",
        click_to_join="单击此处加入会议",
        meeting_id="会议 ID:",
        passcode="密码:",
        download_teams="下载 Teams",
        join_on_web="在网页上加入",
        call_in="或拨入(仅音频)",
        phone_conference_id="电话会议 ID:",
        find_local_number="查找本地号码",
        learn_more="了解详细信息",
        need_help="需要帮助?",
        join_now="立即加入会议",
        dial_in_by_phone="通过电话拨入",
        for_organizers="对于组织者:",
        reset_dial_in_pin="重置拨入 PIN",
        skype_join="加入 Skype 会议",
        skype_trouble="加入时遇到问题?",
        skype_web_app="试用 Skype Web App",
        join_by_phone="通过电话加入",
        skype_find_local="查找本地号码",
        skype_conference_id="会议 ID:",
        forgot_pin="忘记了拨入 PIN?",
        help="帮助",
        toll_free="免费",
        toll="收费",
    ),
    "ja": _Strings(
        lcid=1041,
        locale="ja-JP",
        classic_join="Microsoft Teams 会議に参加",
        conference_id="会議 ID:",
        local_numbers="市内番号",
        reset_pin="PIN のリセット",
        learn_more_teams="Teams の詳細を表示",
        meeting_options="会議のオプション",
        teams_meeting="Microsoft Teams 会議",
        join_on_device="コンピューター、モバイル アプリケーション、またはルーム デバイスで参加する",
        click_to_join="ここをクリックして会議に参加してください",
        meeting_id="会議 ID:",
        passcode="パスコード:",
        download_teams="Teams のダウンロード",
        join_on_web="Web に参加",
        call_in="または電話をかける (音声のみ)",
        phone_conference_id="電話会議 ID:",
        find_local_number="市内番号を検索",
        learn_more="詳細情報",
        need_help="ヘルプが必要ですか?",
        join_now="今すぐ会議に参加する",
        dial_in_by_phone="電話でダイヤルイン",
        for_organizers="開催者向け:",
        reset_dial_in_pin="ダイヤルイン PIN のリセット",
        skype_join="Skype 会議に参加",
        skype_trouble="参加できない場合",
        skype_web_app="Skype Web App をお試しください",
        join_by_phone="電話で参加",
        skype_find_local="市内番号を検索",
        skype_conference_id="会議 ID:",
        forgot_pin="ダイヤルイン PIN を忘れた場合",
        help="ヘルプ",
        toll_free="フリーダイヤル",
        toll="有料",
    ),
}

_DOWNLOAD_URL = "https://www.microsoft.com/microsoft-teams/download-app"
_WEB_JOIN_URL = "https://www.microsoft.com/microsoft-teams/join-a-meeting"
_SKYPE_HELP_URL = "https://o15.officeredir.microsoft.com/r/rlidLync15?clid={lcid}&p1=5&p2=2009"
_NON_DIGIT = re.compile(r"[^0-9+]")

_FONT = "'Segoe UI','Helvetica Neue',Helvetica,Arial,sans-serif"
_LINK = "text-decoration:underline;color:#6264A7"
_NEW_LINK = "font-size:14px;font-family:'Segoe UI','Helvetica Neue',Helvetica,Arial,sans-serif;text-decoration:underline;color:#5B5FC7"


def strings_language(lang: str) -> str:
    """Normalise ``lang`` ("de-DE", "zh-Hans", "ja") to a language this module knows, else "en"."""
    base = lang.split("-", 1)[0].lower()
    return base if base in _STRINGS else "en"


def lcid(lang: str) -> int:
    """The Windows LCID of ``lang`` (1033 English, 1031 German, 2052 Chinese, 1041 Japanese)."""
    return _STRINGS[strings_language(lang)].lcid


def group_digits(digits: str, size: int = 3) -> str:
    """Digits in groups of three from the left, as Teams prints IDs: ``123 456 789 012``."""
    return " ".join(digits[i : i + size] for i in range(0, len(digits), size))


def _tel(number: str, conference_id: str | None) -> str:
    """A ``tel:`` URI dialling ``number`` then the conference ID."""
    digits = _NON_DIGIT.sub("", number)
    return f"tel:{digits},,{conference_id}#" if conference_id else f"tel:{digits}"


def _e(value: str) -> str:
    """HTML-escape a value placed into a template."""
    return html.escape(value, quote=True)


def _dial_label(d: DialIn, s: _Strings) -> str:
    """The label printed after a number, with its toll kind."""
    kind = s.toll_free if d.toll_free else s.toll
    return f"{d.label} ({kind})" if d.label else f"({kind})"


def render_invite(kind: str, fmt: str, lang: str, details: InviteDetails) -> str:
    """Render one online-meeting block (the block only, delimiters included)."""
    k = InviteKind(kind)
    if fmt not in FORMATS:
        raise ValueError(f"unknown body format {fmt!r}")
    s = _STRINGS[strings_language(lang)]
    html_fmt = fmt == "html"
    if k is InviteKind.TEAMS_CLASSIC:
        return _classic_html(s, details) if html_fmt else _classic_text(s, details)
    if k is InviteKind.TEAMS_2023:
        return _teams2023_html(s, details) if html_fmt else _teams2023_text(s, details)
    if k is InviteKind.TEAMS_MEET_INVITE_BLOCK:
        return _newest_html(s, details) if html_fmt else _newest_text(s, details)
    return _skype_html(s, details) if html_fmt else _skype_text(s, details)


# --- Teams classic -------------------------------------------------------------


def _teams_rule_html() -> str:
    return (
        '<div style="width:100%;height:20px">'
        f'<span style="white-space:nowrap;color:#5F5F5F;opacity:.36">{TEAMS_RULE}</span></div>'
    )


def _classic_html(s: _Strings, d: InviteDetails) -> str:
    lines = [
        _teams_rule_html(),
        f'<div class="me-email-text" lang="{s.locale}" style="color:#252424;font-family:{_FONT}">',
        '<div style="margin-top:24px;margin-bottom:10px">'
        f'<a class="me-email-headline" href="{_e(d.join_url)}" target="_blank" rel="noreferrer noopener" '
        f"style=\"font-size:14px;font-family:'Segoe UI Semibold','Segoe UI',sans-serif;{_LINK}\">"
        f"{_e(s.classic_join)}</a></div>",
    ]
    if d.dial_ins:
        lines.append('<div style="margin-bottom:10px">')
        for dial in d.dial_ins:
            lines.append(
                f'<a href="{_e(_tel(dial.number, d.conference_id))}" style="{_LINK}">'
                f"{_e(dial.number)}</a>&nbsp;&nbsp; {_e(_dial_label(dial, s))}<br>"
            )
        lines.append("</div>")
    if d.conference_id:
        lines.append(
            f'<div style="margin-bottom:10px">{_e(s.conference_id)} '
            f"{_e(group_digits(d.conference_id))}#</div>"
        )
    links = []
    if d.dial_in_url:
        links.append(f'<a href="{_e(d.dial_in_url)}" style="{_LINK}">{_e(s.local_numbers)}</a>')
        links.append(f'<a href="{_e(d.reset_pin_url)}" style="{_LINK}">{_e(s.reset_pin)}</a>')
    links.append(f'<a href="{_e(d.help_url)}" style="{_LINK}">{_e(s.learn_more_teams)}</a>')
    if d.meeting_options_url:
        links.append(
            f'<a href="{_e(d.meeting_options_url)}" style="{_LINK}">{_e(s.meeting_options)}</a>'
        )
    lines.append('<div style="font-size:12px">' + " | ".join(links) + "</div>")
    lines.append("</div>")
    lines.append(_teams_rule_html())
    return CRLF.join(lines)


def _classic_text(s: _Strings, d: InviteDetails) -> str:
    lines = [TEAMS_RULE, f"{s.classic_join}<{d.join_url}>"]
    for dial in d.dial_ins:
        lines.append(
            f"{dial.number}<{_tel(dial.number, d.conference_id)}>   {_dial_label(dial, s)}"
        )
    if d.conference_id:
        lines.append(f"{s.conference_id} {group_digits(d.conference_id)}#")
    links = []
    if d.dial_in_url:
        links.append(f"{s.local_numbers}<{d.dial_in_url}>")
        links.append(f"{s.reset_pin}<{d.reset_pin_url}>")
    links.append(f"{s.learn_more_teams}<{d.help_url}>")
    if d.meeting_options_url:
        links.append(f"{s.meeting_options}<{d.meeting_options_url}>")
    lines.append(" | ".join(links))
    lines.append(TEAMS_RULE)
    return CRLF.join(lines)


# --- Teams 2023 ----------------------------------------------------------------


def _teams2023_html(s: _Strings, d: InviteDetails) -> str:
    span = '<span style="font-size:14px;color:#252424">'
    lines = [
        _teams_rule_html(),
        f'<div class="me-email-text" lang="{s.locale}" style="color:#252424;font-family:{_FONT}">',
        '<div style="margin-top:24px;margin-bottom:20px">'
        f'<span style="font-size:24px;color:#252424">{_e(s.teams_meeting)}</span></div>',
        '<div style="margin-bottom:20px">'
        '<div style="margin-top:0px;margin-bottom:0px;font-weight:bold">'
        f"{span}{_e(s.join_on_device)}</span></div>",
        f'<a class="me-email-headline" href="{_e(d.join_url)}" target="_blank" rel="noreferrer noopener" '
        f"style=\"font-size:14px;font-family:'Segoe UI Semibold','Segoe UI',sans-serif;{_LINK}\">"
        f"{_e(s.click_to_join)}</a></div>",
    ]
    if d.meeting_id:
        lines.append(
            f'<div style="margin-bottom:4px;margin-top:4px">{span}{_e(s.meeting_id)} </span>'
            f'<span style="font-size:16px;color:#252424">{_e(group_digits(d.meeting_id))}</span></div>'
        )
    if d.passcode:
        lines.append(
            f'<div style="margin-bottom:20px">{span}{_e(s.passcode)} </span>'
            f'<span style="font-size:16px;color:#252424">{_e(d.passcode)}</span></div>'
        )
    lines.append(
        f'<div style="margin-bottom:20px"><a href="{_DOWNLOAD_URL}" style="{_LINK}">'
        f"{_e(s.download_teams)}</a> | "
        f'<a href="{_WEB_JOIN_URL}" style="{_LINK}">{_e(s.join_on_web)}</a></div>'
    )
    if d.dial_ins:
        lines.append(
            '<div style="margin-bottom:4px;margin-top:20px;font-weight:bold">'
            f"{span}{_e(s.call_in)}</span></div>"
        )
        for dial in d.dial_ins:
            tel = _tel(dial.number, d.conference_id)
            lines.append(
                f'<div style="margin-bottom:4px"><a class="me-email-link" href="{_e(tel)}" style="{_LINK}">'
                f"{_e(dial.number)},,{_e(d.conference_id or '')}#</a>   "
                f"{span}{_e(_dial_label(dial, s))}</span></div>"
            )
    if d.conference_id:
        lines.append(
            f'<div style="margin-bottom:4px">{span}{_e(s.phone_conference_id)} </span>'
            f'<span style="font-size:16px;color:#252424">{_e(group_digits(d.conference_id))}#</span></div>'
        )
    if d.dial_in_url:
        lines.append(
            f'<div style="margin-bottom:20px"><a href="{_e(d.dial_in_url)}" style="{_LINK}">'
            f"{_e(s.find_local_number)}</a> | "
            f'<a href="{_e(d.reset_pin_url)}" style="{_LINK}">{_e(s.reset_pin)}</a></div>'
        )
    tail = [f'<a href="{_e(d.help_url)}" style="{_LINK}">{_e(s.learn_more)}</a>']
    if d.meeting_options_url:
        tail.append(
            f'<a href="{_e(d.meeting_options_url)}" style="{_LINK}">{_e(s.meeting_options)}</a>'
        )
    lines.append('<div style="margin-bottom:24px;font-size:12px">' + " | ".join(tail) + "</div>")
    lines.append("</div>")
    lines.append(_teams_rule_html())
    return CRLF.join(lines)


def _teams2023_text(s: _Strings, d: InviteDetails) -> str:
    lines = [TEAMS_RULE, s.teams_meeting, s.join_on_device, f"{s.click_to_join}<{d.join_url}>"]
    if d.meeting_id:
        lines.append(f"{s.meeting_id} {group_digits(d.meeting_id)}")
    if d.passcode:
        lines.append(f"{s.passcode} {d.passcode}")
    lines.append(f"{s.download_teams}<{_DOWNLOAD_URL}> | {s.join_on_web}<{_WEB_JOIN_URL}>")
    if d.dial_ins:
        lines.append(s.call_in)
        for dial in d.dial_ins:
            tel = _tel(dial.number, d.conference_id)
            lines.append(f"{dial.number},,{d.conference_id or ''}#<{tel}>   {_dial_label(dial, s)}")
    if d.conference_id:
        lines.append(f"{s.phone_conference_id} {group_digits(d.conference_id)}#")
    if d.dial_in_url:
        lines.append(f"{s.find_local_number}<{d.dial_in_url}> | {s.reset_pin}<{d.reset_pin_url}>")
    tail = [f"{s.learn_more}<{d.help_url}>"]
    if d.meeting_options_url:
        tail.append(f"{s.meeting_options}<{d.meeting_options_url}>")
    lines.append(" | ".join(tail))
    lines.append(TEAMS_RULE)
    return CRLF.join(lines)


# --- Teams newest (meet_invite_block) -------------------------------------------


def _newest_rule_html() -> str:
    return (
        '<div aria-hidden="true" style="margin-bottom:24px;overflow:hidden;white-space:nowrap">'
        f"{TEAMS_RULE}</div>"
    )


def _newest_html(s: _Strings, d: InviteDetails) -> str:
    grey = '<span style="font-size:14px;color:#616161">'
    dark = '<span style="font-size:14px;color:#242424">'
    hr = '<div style="margin-bottom:24px;max-width:532px"><hr style="border:0;background:#D1D1D1;height:1px"></div>'
    help_url = f"{d.help_url}?omkt={s.locale}"
    lines = [
        f'<div style="max-width:1024px;font-family:{_FONT}" lang="{s.locale}">',
        _newest_rule_html(),
        '<div style="margin-bottom:12px"><span style="font-size:24px;font-weight:700;margin-right:12px">'
        "Microsoft Teams</span> "
        f'<a id="meet_invite_block.action.help" href="{_e(help_url)}" style="{_NEW_LINK}">'
        f"{_e(s.need_help)}</a></div>",
        '<div style="margin-bottom:6px">'
        f'<a id="meet_invite_block.action.join_link" title="{_e(d.join_url)}" href="{_e(d.join_url)}" '
        'style="font-size:20px;font-weight:700;text-decoration:underline;color:#5B5FC7">'
        f"{_e(s.join_now)}</a></div>",
    ]
    if d.meeting_id:
        lines.append(
            f'<div style="margin-bottom:6px">{grey}{_e(s.meeting_id)} </span>'
            f"{dark}{_e(group_digits(d.meeting_id))}</span></div>"
        )
    if d.passcode:
        lines.append(
            f'<div style="margin-bottom:24px">{grey}{_e(s.passcode)} </span>{dark}{_e(d.passcode)}</span></div>'
        )
    if d.dial_ins or d.conference_id:
        lines.append(hr)
        lines.append("<div>")
        lines.append(
            '<div style="margin-bottom:6px"><span style="font-size:16px;font-weight:700">'
            f"{_e(s.dial_in_by_phone)}</span></div>"
        )
        for dial in d.dial_ins:
            tel = _tel(dial.number, d.conference_id)
            lines.append(
                f'<div style="margin-bottom:6px"><a href="{_e(tel)}" style="{_NEW_LINK}">'
                f"{_e(dial.number)},,{_e(d.conference_id or '')}#</a> "
                f"{grey}{_e(_dial_label(dial, s))}</span></div>"
            )
        if d.dial_in_url:
            lines.append(
                '<div style="margin-bottom:6px"><a id="meet_invite_block.action.find_local_number" '
                f'href="{_e(d.dial_in_url)}" style="{_NEW_LINK}">{_e(s.find_local_number)}</a></div>'
            )
        if d.conference_id:
            lines.append(
                f'<div style="margin-bottom:24px">{grey}{_e(s.phone_conference_id)} </span>'
                f"{dark}{_e(group_digits(d.conference_id))}#</span></div>"
            )
        lines.append("</div>")
    organizer_links = []
    if d.meeting_options_url:
        organizer_links.append(
            '<a id="meet_invite_block.action.organizer_meet_options" '
            f'href="{_e(d.meeting_options_url)}" style="{_NEW_LINK}">{_e(s.meeting_options)}</a>'
        )
    if d.dial_in_url:
        organizer_links.append(
            '<a id="meet_invite_block.action.reset_dialin_pin" '
            f'href="{_e(d.reset_pin_url)}" style="{_NEW_LINK}">{_e(s.reset_dial_in_pin)}</a>'
        )
    if organizer_links:
        lines.append(hr)
        lines.append(
            f'<div style="margin-bottom:24px">{grey}{_e(s.for_organizers)} </span>'
            + f"{grey} | </span>".join(organizer_links)
            + "</div>"
        )
    lines.append(_newest_rule_html())
    lines.append("</div>")
    return CRLF.join(lines)


def _newest_text(s: _Strings, d: InviteDetails) -> str:
    short_rule = "_" * 32
    lines = [
        TEAMS_RULE,
        f"Microsoft Teams {s.need_help}<{d.help_url}?omkt={s.locale}>",
        "",
        f"{s.join_now}<{d.join_url}>",
    ]
    if d.meeting_id:
        lines.append(f"{s.meeting_id} {group_digits(d.meeting_id)}")
    if d.passcode:
        lines.append(f"{s.passcode} {d.passcode}")
    if d.dial_ins or d.conference_id:
        lines.append(short_rule)
        lines.append(s.dial_in_by_phone)
        for dial in d.dial_ins:
            tel = _tel(dial.number, d.conference_id)
            lines.append(f"{dial.number},,{d.conference_id or ''}#<{tel}> {_dial_label(dial, s)}")
        if d.dial_in_url:
            lines.append(f"{s.find_local_number}<{d.dial_in_url}>")
        if d.conference_id:
            lines.append(f"{s.phone_conference_id} {group_digits(d.conference_id)}#")
    organizer_links = []
    if d.meeting_options_url:
        organizer_links.append(f"{s.meeting_options}<{d.meeting_options_url}>")
    if d.dial_in_url:
        organizer_links.append(f"{s.reset_dial_in_pin}<{d.reset_pin_url}>")
    if organizer_links:
        lines.append(short_rule)
        lines.append(f"{s.for_organizers} " + " | ".join(organizer_links))
    lines.append(TEAMS_RULE)
    return CRLF.join(lines)


# --- Skype for Business -----------------------------------------------------------


def _skype_rule_html() -> str:
    return f'<div><span style="font-size:8pt;color:gray">{SKYPE_RULE}</span></div>'


def _skype_html(s: _Strings, d: InviteDetails) -> str:
    font = "font-family:'Segoe UI','Tahoma',sans-serif;font-size:10.5pt"
    help_url = _SKYPE_HELP_URL.format(lcid=s.lcid)
    lines = [
        _skype_rule_html(),
        '<div><a name="OutSharedNoteBorder"></a></div>',
        f'<div style="margin-bottom:.25in"><a name="OutJoinLink"></a><span style="{font}">'
        f'<a href="{_e(d.join_url)}"><span style="font-size:13.5pt">{_e(s.skype_join)}</span></a></span></div>',
        f'<div style="{font}">{_e(s.skype_trouble)} '
        f'<a href="{_e(d.join_url)}?sl=1">{_e(s.skype_web_app)}</a></div>',
    ]
    if d.dial_ins or d.conference_id:
        lines.append(f'<div style="{font};margin-top:.1in">{_e(s.join_by_phone)}</div>')
        for dial in d.dial_ins:
            lines.append(
                f'<div style="{font}"><a href="{_e(_tel(dial.number, None))}">{_e(dial.number)}</a> '
                f"{_e(_dial_label(dial, s))}</div>"
            )
        if d.dial_in_url:
            lines.append(
                f'<div style="{font}"><a href="{_e(d.dial_in_url)}">{_e(s.skype_find_local)}</a></div>'
            )
        if d.conference_id:
            lines.append(
                f'<div style="{font};margin-top:.1in">{_e(s.skype_conference_id)} {_e(d.conference_id)}</div>'
            )
    tail = []
    if d.dial_in_url:
        tail.append(f'<a href="{_e(d.dial_in_url)}">{_e(s.forgot_pin)}</a>')
    tail.append(f'<a href="{_e(help_url)}">{_e(s.help)}</a>')
    lines.append(f'<div style="{font}">' + " | ".join(tail) + "</div>")
    lines.append('<div><a name="OutSharedNoteLink"></a></div>')
    lines.append(f'<div style="display:none"><span>[!OC([{s.lcid}])!]</span></div>')
    lines.append(_skype_rule_html())
    return CRLF.join(lines)


def _skype_text(s: _Strings, d: InviteDetails) -> str:
    help_url = _SKYPE_HELP_URL.format(lcid=s.lcid)
    lines = [
        SKYPE_RULE,
        f"{s.skype_join}<{d.join_url}>",
        f"{s.skype_trouble} {s.skype_web_app}<{d.join_url}?sl=1>",
    ]
    if d.dial_ins or d.conference_id:
        lines.append(s.join_by_phone)
        lines.append("")
        for dial in d.dial_ins:
            lines.append(f"{dial.number} {_dial_label(dial, s)}")
        lines.append("")
        if d.dial_in_url:
            lines.append(f"{s.skype_find_local}<{d.dial_in_url}>")
            lines.append("")
        if d.conference_id:
            lines.append(f"{s.skype_conference_id} {d.conference_id}")
    tail = []
    if d.dial_in_url:
        tail.append(f"{s.forgot_pin}<{d.dial_in_url}>")
    tail.append(f"{s.help}<{help_url}>")
    lines.append(" |".join(tail))
    lines.append("")
    lines.append(f"[!OC([{s.lcid}])!]")
    lines.append(SKYPE_RULE)
    return CRLF.join(lines)


# --- whole bodies -------------------------------------------------------------------

_RTL = re.compile("[\u0590-\u08ff\ufb1d-\ufdff\ufe70-\ufeff]")
_HTML_HEAD = (
    "<html>\r\n<head>\r\n"
    '<meta http-equiv="Content-Type" content="text/html; charset=utf-8">\r\n'
    '<meta name="Generator" content="Microsoft Exchange Server">\r\n'
    "<style>\r\n<!--\r\np\r\n\t{margin-top:0;\r\n\tmargin-bottom:0}\r\n-->\r\n</style>\r\n"
    "</head>\r\n"
    '<body dir="ltr">\r\n'
)
_HTML_TAIL = "\r\n</body>\r\n</html>\r\n"


def _text_to_divs(text: str) -> str:
    """Organizer text as Outlook writes it: one escaped ``<div>`` a line, RTL lines marked."""
    out = []
    for line in text.splitlines():
        attrs = ' dir="rtl"' if _RTL.search(line[:8]) else ""
        out.append(f"<div{attrs}>{_e(line) if line else '<br>'}</div>")
    return CRLF.join(out)


def wrap_body(block: str, fmt: str, before: str, after: str) -> str:
    """A whole Outlook-like body: the organizer's plain text ``before`` and ``after`` the block.

    For HTML, ``before``/``after`` are escaped into ``<div>`` lines and the
    result is a full ``<html><head>…</head><body>…</body></html>`` document;
    for text, lines are joined with CRLF. An empty ``block`` gives a body
    without any online-meeting block.
    """
    if fmt == "html":
        parts = [p for p in (_text_to_divs(before), block, _text_to_divs(after)) if p]
        return _HTML_HEAD + "\r\n<div><br></div>\r\n".join(parts) + _HTML_TAIL
    if fmt == "text":
        norm_before = CRLF.join(before.splitlines())
        norm_after = CRLF.join(after.splitlines())
        return CRLF.join(p for p in (norm_before, block, norm_after) if p) + CRLF
    raise ValueError(f"unknown body format {fmt!r}")
