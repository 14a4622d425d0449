"""Meeting mail: invitations and updates an organizer's calendar changes send to attendees.

One *message* is what Exchange submits once: an invitation or update addressed to
every attendee (in-tenant and external), counted by the sender's
:class:`~mmsd.sim.sending.SendingLimiter` as one message with that many recipients.
Each in-tenant attendee with an Exchange Online mailbox gets an
``eventMessageRequest`` in ``/messages`` (and, for an invitation, an attendee copy
of the event; for an update, its copy refreshed). Within the limits a message is
delivered before the POST/PATCH answers; the excess waits for the simulator's clock
(drained on every request and by a background tick); beyond the daily recipient
quota the sender receives a non-delivery report with ``554 5.2.0
STOREDRV.Submission.Exception:SubmissionQuotaExceededException``.
"""

from __future__ import annotations

from dataclasses import dataclass

from mmsd.sim.graph_http import SimContext
from mmsd.sim.model import JSON, CopyKind, MailboxLocation, SimEvent, SimUser
from mmsd.sim.sending import NDR_STATUS

NEW = "newMeetingRequest"
UPDATE = "fullUpdate"
# Event properties an attendee's copy takes over from an organizer's update.
SHARED_PROPERTIES = (
    "subject",
    "body",
    "bodyPreview",
    "start",
    "end",
    "location",
    "locations",
    "attendees",
    "recurrence",
    "isAllDay",
    "importance",
    "sensitivity",
)


@dataclass(frozen=True)
class OutgoingMessage:
    """A meeting message accepted for sending: who sends what to which mailboxes."""

    sender_id: str
    event: JSON  # a snapshot of the organizer's event JSON at sending time
    request_type: str  # NEW or UPDATE
    mailboxes: tuple[str, ...]  # in-tenant recipient mailbox ids (Exchange Online)
    recipients: int  # every recipient address, external ones included


def attendee_addresses(event: JSON) -> list[str]:
    """Every attendee address of an event (as written, in order, without duplicates)."""
    seen: dict[str, str] = {}
    for att in event.get("attendees") or []:
        addr = ((att or {}).get("emailAddress") or {}).get("address")
        if isinstance(addr, str) and addr and addr.lower() not in seen:
            seen[addr.lower()] = addr
    return list(seen.values())


class Mailer:
    """Sends meeting messages through the sending limiter and delivers them to mailboxes."""

    def __init__(self, ctx: SimContext) -> None:
        self.ctx = ctx
        ctx.deliver_due = self.deliver_due

    def send_for_event(self, sender: SimUser, event: SimEvent, request_type: str) -> int:
        """Send one invitation/update for ``event`` (plus, for a series master update, one
        per exception of the series); returns how many messages were sent."""
        sent = self._send(sender, event.data, request_type)
        if request_type == UPDATE and event.data.get("type") == "seriesMaster":
            for other in list(self.ctx.state.mailbox_events(event.mailbox_id).values()):
                if (
                    other.data.get("seriesMasterId") == event.id
                    and other.data.get("type") == "exception"
                ):
                    sent += self._send(sender, other.data, request_type)
        return sent

    def _send(self, sender: SimUser, event: JSON, request_type: str) -> int:
        addresses = attendee_addresses(event)
        if not addresses:
            return 0
        mailboxes: list[str] = []
        for addr in addresses:
            user = self.ctx.state.user_by_address(addr)
            if user is None or user.id == sender.id:
                continue
            if user.mailbox is MailboxLocation.EXCHANGE_ONLINE:
                mailboxes.append(user.id)
        snapshot = dict(event)
        msg = OutgoingMessage(sender.id, snapshot, request_type, tuple(mailboxes), len(addresses))
        plan = self.ctx.sender.plan(sender.id, len(addresses))
        if plan.bounced:
            self._bounce(sender, snapshot)
        elif plan.deliver_at is None:
            self._deliver(msg)
        else:
            self.ctx.sender.defer(plan, msg)
        return 1

    def deliver_due(self) -> None:
        """Deliver every delayed message whose time has come on the simulator's clock."""
        for msg in self.ctx.sender.due():
            self._deliver(msg)

    def _deliver(self, msg: OutgoingMessage) -> None:
        state = self.ctx.state
        sender = state.user(msg.sender_id)
        if sender is None:
            return
        for mailbox in msg.mailboxes:
            recipient = state.user(mailbox)
            if recipient is None or recipient.mailbox is not MailboxLocation.EXCHANGE_ONLINE:
                continue
            state.messages.setdefault(mailbox, []).append(
                self._event_message(sender, recipient, msg)
            )
            self.ctx.counters.messages[mailbox] += 1
            if msg.request_type == NEW:
                self._add_attendee_copy(recipient, msg)
            else:
                self._refresh_attendee_copy(recipient, msg)

    def _add_attendee_copy(self, recipient: SimUser, msg: OutgoingMessage) -> None:
        from mmsd.sim.eventjson import new_event

        ical = msg.event.get("iCalUId")
        box = self.ctx.state.mailbox_events(recipient.id)
        if ical and any(e.data.get("iCalUId") == ical for e in box.values()):
            return
        fields = {k: msg.event[k] for k in SHARED_PROPERTIES if k in msg.event}
        for key in ("organizer", "isOnlineMeeting", "onlineMeetingProvider", "onlineMeeting"):
            if key in msg.event:
                fields[key] = msg.event[key]
        if ical:
            fields["iCalUId"] = ical
        fields["responseStatus"] = {"response": "notResponded", "time": "0001-01-01T00:00:00Z"}
        copy = new_event(
            self.ctx.state,
            recipient.id,
            fields,
            copy=CopyKind.ATTENDEE,
            organizer_id=msg.sender_id,
            now=self.ctx.now(),
        )
        box[copy.id] = copy

    def _refresh_attendee_copy(self, recipient: SimUser, msg: OutgoingMessage) -> None:
        from mmsd.sim.eventjson import touch_event

        ical = msg.event.get("iCalUId")
        if not ical:
            return
        for copy in self.ctx.state.mailbox_events(recipient.id).values():
            if copy.copy is CopyKind.ATTENDEE and copy.data.get("iCalUId") == ical:
                if copy.data.get("type") != msg.event.get("type"):
                    continue
                for key in SHARED_PROPERTIES:
                    if key in msg.event:
                        copy.data[key] = msg.event[key]
                touch_event(self.ctx.state, copy, self.ctx.now())

    def _message_base(self, mailbox: str, subject: str, body: JSON) -> JSON:
        state = self.ctx.state
        serial = state.next_serial()
        now = self.ctx.now_text()
        change_key = state.make_id("msg-ck", mailbox, serial, length=24)
        msg_id = "AAMk" + state.make_id("msg", mailbox, serial, length=40)
        content = str(body.get("content") or "")
        return {
            "@odata.etag": f'W/"{change_key}"',
            "id": msg_id,
            "createdDateTime": now,
            "lastModifiedDateTime": now,
            "changeKey": change_key,
            "categories": [],
            "receivedDateTime": now,
            "sentDateTime": now,
            "hasAttachments": False,
            "internetMessageId": f"<{state.make_id('imid', mailbox, serial, length=20)}@{state.domain}>",
            "subject": subject,
            "bodyPreview": _preview(content, str(body.get("contentType") or "text")),
            "importance": "normal",
            "parentFolderId": "AAMkInbox" + state.make_id("inbox", mailbox, length=20),
            "conversationId": "AAQk" + state.make_id("conv", subject, length=24),
            "isDeliveryReceiptRequested": False,
            "isReadReceiptRequested": False,
            "isRead": False,
            "isDraft": False,
            "webLink": f"https://outlook.office365.com/owa/?ItemID={msg_id}&viewmodel=ReadMessageItem",
            "inferenceClassification": "focused",
            "body": dict(body),
            "ccRecipients": [],
            "bccRecipients": [],
            "replyTo": [],
            "flag": {"flagStatus": "notFlagged"},
        }

    def _event_message(self, sender: SimUser, recipient: SimUser, msg: OutgoingMessage) -> JSON:
        event = msg.event
        data = self._message_base(
            recipient.id, str(event.get("subject") or ""), event.get("body") or {}
        )
        who = {"emailAddress": {"name": sender.display_name, "address": sender.mail}}
        to = [
            {"emailAddress": dict((a or {}).get("emailAddress") or {})}
            for a in event.get("attendees") or []
        ]
        data.update(
            {
                "@odata.type": "#microsoft.graph.eventMessageRequest",
                "sender": who,
                "from": who,
                "toRecipients": to,
                "meetingMessageType": "meetingRequest",
                "type": event.get("type", "singleInstance"),
                "isOutOfDate": False,
                "isAllDay": bool(event.get("isAllDay", False)),
                "isDelegated": False,
                "startDateTime": event.get("start"),
                "endDateTime": event.get("end"),
                "location": event.get("location"),
                "recurrence": event.get("recurrence"),
                "meetingRequestType": msg.request_type,
                "responseRequested": True,
                "allowNewTimeProposals": bool(event.get("allowNewTimeProposals", True)),
                "previousStartDateTime": None,
                "previousEndDateTime": None,
                "previousLocation": None,
            }
        )
        return data

    def _bounce(self, sender: SimUser, event: JSON) -> None:
        if sender.mailbox is not MailboxLocation.EXCHANGE_ONLINE:
            return
        subject = "Undeliverable: " + str(event.get("subject") or "")
        text = (
            "Delivery has failed to these recipients or groups. Your message wasn't delivered "
            "because you've exceeded your sending limit.\r\n\r\n"
            f"Remote Server returned '{NDR_STATUS}; Failed to process message due to a "
            "permanent exception with message [...] The message can't be submitted because "
            "the sender's submission quota was exceeded.'"
        )
        data = self._message_base(sender.id, subject, {"contentType": "text", "content": text})
        postmaster = {
            "emailAddress": {
                "name": "Microsoft Outlook",
                "address": f"MicrosoftExchange329e71ec88ae4615bbc36ab6ce41109e@{self.ctx.state.domain}",
            }
        }
        data.update(
            {
                "@odata.type": "#microsoft.graph.message",
                "sender": postmaster,
                "from": postmaster,
                "toRecipients": [
                    {"emailAddress": {"name": sender.display_name, "address": sender.mail}}
                ],
            }
        )
        self.ctx.state.messages.setdefault(sender.id, []).append(data)
        self.ctx.counters.messages[sender.id] += 1


def _preview(content: str, content_type: str) -> str:
    from mmsd.sim.eventjson import body_preview

    return body_preview(content, content_type)
