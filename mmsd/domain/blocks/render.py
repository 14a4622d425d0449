"""Render a new online-meeting block (Teams or Skype for Business, HTML or text).

Teams blocks follow Microsoft's current invitation layout (``meet_invite_block``:
"Join the meeting now", "Meeting ID", "Passcode", dial-in, "For organizers:
Meeting options"); Skype for Business blocks follow its Outlook add-in layout
(137-dot lines, ``OutJoinLink``, "Trouble Joining? Try Skype Web App", "Join by
phone", the ``[!OC([lcid])!]`` marker). Every value placed into HTML is
escaped, and links are only written for ``https``/``http``/``tel`` targets; in
text, values lose line breaks and control characters so that no value can
start a line of its own (and so fake a delimiter). Newlines are ``\\n``;
:func:`mmsd.domain.blocks.replace.replace_block` adapts them to the body.
"""

from __future__ import annotations

import html
import re
from functools import lru_cache

from mmsd.domain.blocks import strings
from mmsd.domain.blocks.model import BlockKind, ContentType, MeetingDetails, PhoneNumber

TEAMS_RULE = "_" * 80
SKYPE_RULE = "." * 137
_DEFAULT_TEAMS_HELP = "https://aka.ms/JoinTeamsMeeting?omkt={tag}"
_DEFAULT_SKYPE_HELP = "https://go.microsoft.com/fwlink/?LinkId=389737"
_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f\u2028\u2029]+")
_LONG_UNDERSCORES = re.compile(r"_{20,}")
_LONG_DOTS = re.compile(r"\.{20,}")
_SAFE_HREF = re.compile(r"^(?:https?://|tel:)", re.I)
_SPACE = re.compile(r"\s")
_NOT_DIAL = re.compile(r"[^\d+]")
_LANGUAGE_TAG = re.compile(r"[A-Za-z]{2,3}(?:-[A-Za-z0-9]{2,8})*")

_FONT = "font-family:'Segoe UI','Helvetica Neue',Helvetica,Arial,sans-serif"
_SECONDARY = 'class="me-email-text-secondary" style="font-size:14px; color:#616161"'
_PRIMARY = 'class="me-email-text" style="font-size:14px; color:#242424"'
_LINK = 'class="me-email-link" style="font-size:14px; text-decoration:underline; color:#5B5FC7"'
_RULE_DIV = (
    '<div aria-hidden="true" style="margin-bottom:24px; overflow:hidden; white-space:nowrap">'
)
_MSO = 'class="MsoNormal" style="text-autospace:none"'


def render_block(
    target: BlockKind | str,
    details: MeetingDetails,
    *,
    content_type: ContentType | str,
    language: str | None = None,
) -> str:
    """A complete new block for ``target`` in the body's content type and the old block's language."""
    kind = BlockKind(target)
    ctype = ContentType.of(content_type)
    if kind is BlockKind.TEAMS:
        ts = strings.teams_strings(language)
        tag = _tag_for(language, ts.tag)
        if ctype is ContentType.HTML:
            return _teams_html(details, ts, tag)
        return _teams_text(details, ts, tag)
    ss = strings.skype_strings(language)
    if ctype is ContentType.HTML:
        return _skype_html(details, ss)
    return _skype_text(details, ss)


def _tag_for(language: str | None, fallback: str) -> str:
    """Keep the caller's tag (``de-AT``) when its language has strings, else the strings' tag."""
    if (
        language
        and _LANGUAGE_TAG.fullmatch(language)
        and language.split("-", 1)[0].casefold() == fallback.split("-", 1)[0].casefold()
    ):
        return language
    return fallback


def group_digits(value: str) -> str:
    """Digits in groups of three from the left (``291633251`` → ``291 633 251``), as Teams shows them."""
    digits = _SPACE.sub("", value)
    if not digits.isdigit():
        return value
    return " ".join(digits[i : i + 3] for i in range(0, len(digits), 3))


@lru_cache(maxsize=1024)
def _plain(value: str) -> str:
    """A value safe for one line of text: no line breaks, no control characters, no rule runs.

    Cached, like :func:`_e`: the strings of a language recur in every block rendered.
    """
    value = _LONG_UNDERSCORES.sub("_" * 19, _CONTROL.sub(" ", value))
    return _LONG_DOTS.sub("." * 19, value).strip()


def _digits_only(value: str) -> str:
    """A conference ID without the spaces people put into it."""
    return _SPACE.sub("", value)


@lru_cache(maxsize=1024)
def _e(value: str) -> str:
    """A value safe inside HTML text or a quoted attribute."""
    return html.escape(_plain(value), quote=True)


def _a(href: str | None, text: str, attrs: str = "") -> str:
    """A link, or only its escaped text when the target is missing or not http(s)/tel."""
    if not href or not _SAFE_HREF.match(href.strip()):
        return f"<span>{_e(text)}</span>"
    sep = " " if attrs else ""
    return f'<a{sep}{attrs} href="{_e(href.strip())}">{_e(text)}</a>'


def _tel(number: str, conference_id: str | None) -> str:
    dial = _NOT_DIAL.sub("", number)
    return f"tel:{dial},,{conference_id}#" if conference_id else f"tel:{dial}"


def _numbers(details: MeetingDetails, toll: str, toll_free: str) -> list[tuple[PhoneNumber, str]]:
    return [(p, toll) for p in details.toll_numbers] + [
        (p, toll_free) for p in details.toll_free_numbers
    ]


# -- Teams -------------------------------------------------------------------


def _teams_html(d: MeetingDetails, s: strings.TeamsStrings, tag: str) -> str:
    help_url = d.help_url or _DEFAULT_TEAMS_HELP.format(tag=tag)
    conf = _digits_only(d.conference_id) if d.conference_id else None
    out = [
        f'<div class="me-email-text" lang="{_e(tag)}" style="max-width:1024px; color:#242424; {_FONT}">',
        f"{_RULE_DIV}{TEAMS_RULE}</div>",
        '<div style="margin-bottom:12px"><span class="me-email-text" style="font-size:24px; '
        f'font-weight:700; margin-right:12px">{_e(s.heading)}</span> '
        + _a(help_url, s.need_help, f'id="meet_invite_block.action.help" {_LINK}')
        + "</div>",
        '<div style="margin-bottom:6px">'
        + _a(
            d.join_url,
            s.join_now,
            'id="meet_invite_block.action.join_link" class="me-email-headline" '
            'style="font-size:20px; font-weight:600; text-decoration:underline; color:#5B5FC7"',
        )
        + "</div>",
    ]
    if d.meeting_id:
        out.append(
            f'<div style="margin-bottom:6px"><span {_SECONDARY}>{_e(s.meeting_id)} </span>'
            f"<span {_PRIMARY}>{_e(group_digits(d.meeting_id))}</span></div>"
        )
    if d.passcode:
        out.append(
            f'<div style="margin-bottom:6px"><span {_SECONDARY}>{_e(s.passcode)} </span>'
            f"<span {_PRIMARY}>{_e(d.passcode)}</span></div>"
        )
    out.append(
        '<div style="margin-top:26px; margin-bottom:12px; max-width:1024px">'
        '<hr style="border:0; background:#616161; height:1px"></div>'
    )
    numbers = _numbers(d, s.toll, s.toll_free)
    if numbers or conf:
        out.append(
            f'<div style="margin-bottom:4px"><span {_SECONDARY}>{_e(s.dial_in)}</span></div>'
        )
        for phone, kind in numbers:
            shown = f"{phone.number},,{conf}#" if conf else phone.number
            where = " ".join(x for x in (phone.label, kind) if x)
            out.append(
                '<div style="margin-bottom:4px">'
                + _a(
                    _tel(phone.number, conf),
                    shown,
                    f'id="meet_invite_block.action.dial_in_number" {_LINK}',
                )
                + f" <span {_SECONDARY}>{_e(where)}</span></div>"
            )
        if d.dial_in_url:
            out.append(
                '<div style="margin-bottom:4px">'
                + _a(
                    d.dial_in_url,
                    s.find_local_number,
                    f'id="meet_invite_block.action.find_a_local_number" {_LINK}',
                )
                + "</div>"
            )
        if conf:
            out.append(
                f'<div style="margin-bottom:24px"><span {_SECONDARY}>{_e(s.phone_conference_id)} </span>'
                f"<span {_PRIMARY}>{_e(group_digits(conf))}#</span></div>"
            )
    organizer = []
    if d.meeting_options_url:
        organizer.append(
            _a(
                d.meeting_options_url,
                s.meeting_options,
                f'id="meet_invite_block.action.organizer_meet_options" {_LINK}',
            )
        )
    if d.reset_pin_url:
        organizer.append(
            _a(
                d.reset_pin_url,
                s.reset_pin,
                f'id="meet_invite_block.action.organizer_reset_dialin_pin" {_LINK}',
            )
        )
    if organizer:
        out.append(
            f"<div><span {_SECONDARY}>{_e(s.for_organizers)} </span>"
            + ' <span style="color:#616161">|</span> '.join(organizer)
            + "</div>"
        )
    out.append('<div style="margin-top:24px; margin-bottom:6px"></div>')
    out.append(f"{_RULE_DIV}{TEAMS_RULE}</div>")
    out.append("</div>")
    return "\n".join(out)


def _link_text(label: str, url: str | None) -> str:
    return f"{_plain(label)}<{_plain(url)}>" if url else _plain(label)


def _teams_text(d: MeetingDetails, s: strings.TeamsStrings, tag: str) -> str:
    help_url = d.help_url or _DEFAULT_TEAMS_HELP.format(tag=tag)
    conf = _digits_only(d.conference_id) if d.conference_id else None
    out = [
        TEAMS_RULE,
        f"{_plain(s.heading)} {_link_text(s.need_help, help_url)}",
        "",
        _link_text(s.join_now, d.join_url),
    ]
    if d.meeting_id:
        out.append(f"{s.meeting_id} {_plain(group_digits(d.meeting_id))}")
    if d.passcode:
        out.append(f"{s.passcode} {_plain(d.passcode)}")
    numbers = _numbers(d, s.toll, s.toll_free)
    if numbers or conf:
        out += ["", s.dial_in]
        for phone, kind in numbers:
            shown = f"{phone.number},,{conf}#" if conf else phone.number
            where = " ".join(x for x in (phone.label, kind) if x)
            out.append(_plain(f"{shown} {where}"))
        if d.dial_in_url:
            out.append(_link_text(s.find_local_number, d.dial_in_url))
        if conf:
            out.append(f"{s.phone_conference_id} {_plain(group_digits(conf))}#")
    organizer = []
    if d.meeting_options_url:
        organizer.append(_link_text(s.meeting_options, d.meeting_options_url))
    if d.reset_pin_url:
        organizer.append(_link_text(s.reset_pin, d.reset_pin_url))
    if organizer:
        out += ["", f"{s.for_organizers} " + " | ".join(organizer)]
    out.append(TEAMS_RULE)
    return "\n".join(out)


# -- Skype for Business ------------------------------------------------------


def _web_app_url(join_url: str) -> str:
    return f"{join_url}{'&' if '?' in join_url else '?'}sl=1"


def _skype_html(d: MeetingDetails, s: strings.SkypeStrings) -> str:
    rule = f'<p {_MSO}><span style="font-size:8.0pt; color:#404040">{SKYPE_RULE}</span></p>'
    out = [
        rule,
        f'<p {_MSO}><a name="OutJoinLink"></a>'
        + _a(d.join_url, s.join, 'style="font-size:16.0pt; color:#0066CC"')
        + '<span style="font-size:14.0pt">&nbsp; <a name="OutSharedNoteBorder">&nbsp;</a>'
        '&nbsp;&nbsp;<a name="OutSharedNoteLink">&nbsp;</a></span></p>',
        '<p class="MsoNormal" style="margin-left:16.0pt; margin-bottom:12.0pt; '
        'line-height:125%; text-autospace:none"><span style="font-size:10.0pt">'
        f"{_e(s.trouble_joining)} "
        + _a(_web_app_url(d.join_url), s.try_web_app, 'style="color:#0066CC"')
        + "</span></p>",
    ]
    numbers = _numbers(d, "", "")
    if numbers or d.conference_id or d.dial_in_url:
        out.append(f'<p {_MSO}><span style="font-size:10.0pt">{_e(s.join_by_phone)}</span></p>')
        for phone, _ in numbers:
            out.append(
                f'<p {_MSO}><span style="font-size:10.0pt">{_e(phone.number)}'
                + (f" {_e(phone.label)}" if phone.label else "")
                + "</span></p>"
            )
        if d.dial_in_url:
            out.append(
                f'<p {_MSO}><span style="font-size:10.0pt">'
                + _a(d.dial_in_url, s.find_local_number, 'style="color:#0066CC"')
                + "</span></p>"
            )
        if d.conference_id:
            out.append(
                f'<p {_MSO}><span style="font-size:10.0pt">{_e(s.conference_id)} '
                f"{_e(_digits_only(d.conference_id))}</span></p>"
            )
    footer = []
    if d.reset_pin_url:
        footer.append(_a(d.reset_pin_url, s.forgot_pin, 'style="color:#0066CC"'))
    footer.append(_a(d.help_url or _DEFAULT_SKYPE_HELP, s.help, 'style="color:#0066CC"'))
    out.append(f'<p {_MSO}><span style="font-size:10.0pt">' + " | ".join(footer) + "</span></p>")
    out.append(
        f'<p {_MSO}><sub><span style="font-size:1.0pt; color:white">[!OC([{s.lcid}])!]</span></sub></p>'
    )
    out.append(rule)
    return "\n".join(out)


def _skype_text(d: MeetingDetails, s: strings.SkypeStrings) -> str:
    out = [
        SKYPE_RULE,
        f"{_plain(s.join)} <{_plain(d.join_url)}>",
        f"{s.trouble_joining} {s.try_web_app} <{_plain(_web_app_url(d.join_url))}>",
    ]
    numbers = _numbers(d, "", "")
    if numbers or d.conference_id or d.dial_in_url:
        out += ["", s.join_by_phone]
        for phone, _ in numbers:
            out.append(_plain(f"{phone.number} {phone.label}"))
        if d.dial_in_url:
            out.append(f"{s.find_local_number} <{_plain(d.dial_in_url)}>")
        if d.conference_id:
            out.append(f"{s.conference_id} {_plain(_digits_only(d.conference_id))}")
    footer = []
    if d.reset_pin_url:
        footer.append(f"{s.forgot_pin} <{_plain(d.reset_pin_url)}>")
    footer.append(f"{s.help} <{_plain(d.help_url or _DEFAULT_SKYPE_HELP)}>")
    out += ["", " | ".join(footer), "", f"[!OC([{s.lcid}])!]", SKYPE_RULE]
    return "\n".join(out)
