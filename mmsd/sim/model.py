"""The simulator's in-memory tenant: users, mailboxes, events, online meetings, messages.

Events, online meetings and messages are kept as Graph JSON dictionaries (the
wire shape Graph v1.0 returns by default), plus a little simulator-only
metadata beside them. Users are dataclasses rendered to Graph JSON on demand.
"""

from __future__ import annotations

import enum
import hashlib
from dataclasses import dataclass, field
from typing import Any

AUDIO_CONFERENCING_PLAN_ID = "3e26ee1f-8a5f-4d52-aee2-b81ce45c8f40"
AUDIO_CONFERENCING_SKU_ID = "0c266dff-15dd-4b49-8397-2bb16070ed52"

JSON = dict[str, Any]


class MailboxLocation(enum.StrEnum):
    """Where a user's mailbox lives; calendar calls need Exchange Online."""

    EXCHANGE_ONLINE = "exchangeOnline"
    ON_PREMISES = "onPremises"


class CopyKind(enum.StrEnum):
    """Whose copy of a meeting an event is."""

    ORGANIZER = "organizer"
    ATTENDEE = "attendee"
    DELEGATE = "delegate"  # isOrganizer true, but another user organizes it


@dataclass
class ConferencingProfile:
    """A user's conferencing settings as Teams/Skype hold them (not Graph-visible directly)."""

    audio_conferencing_provider: str  # "microsoft" | "thirdParty"
    sip_address: str
    meet_url_base: str  # Skype for Business meet URL base, e.g. https://meet.contoso.example/alice
    conference_id: str
    toll_numbers: list[str]
    toll_free_numbers: list[str]
    dial_in_url: str
    bridge_id: str = "bridge-1"
    dial_in_enabled: bool = True

    def to_json(self) -> JSON:
        """The profile in the camelCase shape mmsd's triggers use."""
        return {
            "audioConferencingProvider": self.audio_conferencing_provider,
            "sipAddress": self.sip_address,
            "meetUrlBase": self.meet_url_base,
            "conferenceId": self.conference_id,
            "tollNumbers": list(self.toll_numbers),
            "tollFreeNumbers": list(self.toll_free_numbers),
            "dialInUrl": self.dial_in_url,
            "bridgeId": self.bridge_id,
            "dialInEnabled": self.dial_in_enabled,
        }


@dataclass
class SimUser:
    """One directory user with a mailbox."""

    id: str
    user_principal_name: str
    display_name: str
    given_name: str
    surname: str
    mail: str
    kind: str  # "ordinary" or a special case, listed by GET /_sim/users
    mailbox: MailboxLocation
    assigned_licenses: list[JSON]
    assigned_plans: list[JSON]
    conferencing: ConferencingProfile
    preferred_language: str = "en-US"
    job_title: str | None = None
    office_location: str | None = None
    mobile_phone: str | None = None
    business_phones: list[str] = field(default_factory=list)

    def graph_json(self) -> JSON:
        """The user as ``GET /users/{id}`` returns it (default properties plus licences)."""
        return {
            "id": self.id,
            "businessPhones": list(self.business_phones),
            "displayName": self.display_name,
            "givenName": self.given_name,
            "jobTitle": self.job_title,
            "mail": self.mail,
            "mobilePhone": self.mobile_phone,
            "officeLocation": self.office_location,
            "preferredLanguage": self.preferred_language,
            "surname": self.surname,
            "userPrincipalName": self.user_principal_name,
            "assignedLicenses": [dict(x) for x in self.assigned_licenses],
            "assignedPlans": [dict(x) for x in self.assigned_plans],
        }

    def has_audio_conferencing(self) -> bool:
        """True when the Audio Conferencing plan is assigned, enabled and not disabled."""
        for lic in self.assigned_licenses:
            if AUDIO_CONFERENCING_PLAN_ID in (lic.get("disabledPlans") or []):
                return False
        return any(
            p.get("servicePlanId") == AUDIO_CONFERENCING_PLAN_ID
            and p.get("capabilityStatus") == "Enabled"
            for p in self.assigned_plans
        )


@dataclass
class SimEvent:
    """One event in one mailbox: its Graph JSON plus simulator metadata."""

    mailbox_id: str
    data: JSON  # Graph JSON, including id, changeKey, @odata.etag, body, ...
    copy: CopyKind
    organizer_id: str | None  # the organizing user's id when in-tenant
    patch_count: int = 0

    @property
    def id(self) -> str:
        """The event's Graph ID (per mailbox)."""
        return str(self.data["id"])


@dataclass
class TenantState:
    """The whole simulated tenant; the single source of truth of a simulator process.

    Users are looked up in O(1) through indexes by object ID, lower-cased UPN and
    lower-cased mail address; the indexes rebuild themselves when ``users`` grew
    behind their back (the generator appends to the list directly). Changes to a
    user's properties are recorded per property with a tenant serial, so that
    ``users/delta`` can answer "what changed since token N".
    """

    tenant_id: str
    domain: str
    seed: int
    users: list[SimUser] = field(default_factory=list)
    events: dict[str, dict[str, SimEvent]] = field(default_factory=dict)  # mailbox -> id -> event
    online_meetings: dict[str, dict[str, JSON]] = field(
        default_factory=dict
    )  # user -> id -> meeting
    messages: dict[str, list[JSON]] = field(default_factory=dict)  # mailbox -> messages
    _serial: int = 0
    # user id -> property name -> serial of its last change (for users/delta)
    user_changes: dict[str, dict[str, int]] = field(default_factory=dict, repr=False)
    _by_id: dict[str, SimUser] = field(default_factory=dict, repr=False, compare=False)
    _by_upn: dict[str, SimUser] = field(default_factory=dict, repr=False, compare=False)
    _by_mail: dict[str, SimUser] = field(default_factory=dict, repr=False, compare=False)
    _position: dict[str, int] = field(default_factory=dict, repr=False, compare=False)

    def reindex_users(self) -> None:
        """Rebuild the user indexes from ``users`` (cheap; done lazily when needed)."""
        self._by_id = {u.id: u for u in self.users}
        self._by_upn = {u.user_principal_name.lower(): u for u in self.users}
        self._by_mail = {u.mail.lower(): u for u in self.users if u.mail}
        self._position = {u.id: i for i, u in enumerate(self.users)}

    def _fresh(self) -> None:
        if len(self._by_id) != len(self.users):
            self.reindex_users()

    def add_user(self, user: SimUser) -> None:
        """Append a user and index it."""
        self.users.append(user)
        self._fresh()

    def user(self, key: str) -> SimUser | None:
        """Find a user by object ID or userPrincipalName (case-insensitive), in O(1)."""
        self._fresh()
        found = self._by_id.get(key)
        if found is None:
            found = self._by_upn.get(key.lower())
        return found

    def user_by_address(self, address: str) -> SimUser | None:
        """Find an in-tenant user by e-mail address or UPN (case-insensitive), in O(1)."""
        self._fresh()
        low = address.lower()
        return self._by_mail.get(low) or self._by_upn.get(low)

    def user_position(self, user_id: str) -> int:
        """The user's index in ``GET /users`` order."""
        self._fresh()
        return self._position[user_id]

    def touch_user(self, user: SimUser, *properties: str) -> int:
        """Record that ``properties`` of ``user`` changed now; returns the change serial."""
        serial = self.next_serial()
        changes = self.user_changes.setdefault(user.id, {})
        for prop in properties:
            changes[prop] = serial
        return serial

    def mailbox_events(self, mailbox_id: str) -> dict[str, SimEvent]:
        """The events of one mailbox (created empty on first use)."""
        box = self.events.get(mailbox_id)
        if box is None:
            box = self.events[mailbox_id] = {}
        return box

    @property
    def serial(self) -> int:
        """The current value of the tenant-wide counter (without advancing it)."""
        return self._serial

    def next_serial(self) -> int:
        """A tenant-wide counter, for deterministic change keys and IDs."""
        self._serial += 1
        return self._serial

    def make_id(self, *parts: object, length: int = 32) -> str:
        """A deterministic opaque ID derived from the seed and ``parts``."""
        h = hashlib.sha256(repr((self.seed, *parts)).encode()).hexdigest()
        return h[:length]
