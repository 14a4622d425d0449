"""The simulator's control surface under ``/_sim/`` (no auth, loopback only).

Admin changes answer ``{"trigger": {...} | null, "user": {...}}``: the trigger body
mmsd would receive for the change (SPEC section 2: ``type``, ``identity`` and
``conferencing`` = the profile after it, with only the SPEC's seven conferencing
keys), or ``null`` for a change SPEC section 2 has no trigger for (a switch to a
third-party provider), and the user as ``GET /_sim/users/{id}`` shows it. Each also changes what
Graph returns (licences in ``/users`` and ``users/delta``, dial-in in
``audioConferencing``, calendar access for a moved mailbox).

Users and admin changes
- ``GET /_sim/users``: ``{"value": [{id, userPrincipalName, kind, mailbox, audioConferencing, conferencing}]}``
- ``GET /_sim/users/{id}``: one of those
- ``GET /_sim/users/{id}/conferencing``; ``PUT`` the same keys (any subset) to change them silently
- ``POST /_sim/users/{id}/license`` ``{"assigned": bool}``: Audio Conferencing licence
  (``audioConferencingLicenseAssigned|Removed``; a plan inside a bundle is switched
  through ``disabledPlans``)
- ``POST /_sim/users/{id}/dial-in`` ``{"enabled": bool}`` (``dialInConferencingEnabled|Disabled``)
- ``POST /_sim/users/{id}/conference-id/reset`` (``conferenceIdReset``)
- ``POST /_sim/users/{id}/bridge`` ``{"bridgeId"?, "tollNumbers"?, "tollFreeNumbers"?}``:
  move to a new bridge with new numbers (``bridgeChanged``)
- ``POST /_sim/users/{id}/bridge-number/unassign`` ``{"number"?}``: drop a toll number,
  default the first (``bridgeNumberUnassigned``)
- ``POST /_sim/users/{id}/acp-provider`` ``{"provider": "microsoft"|"thirdParty"}``
  (``acpProviderSwitchedToMicrosoft`` when switched to microsoft; ``null`` to thirdParty)
- ``POST /_sim/users/{id}/mailbox`` ``{"location": "exchangeOnline"|"onPremises"}``
  (``userMovedToOnline`` / ``userMovedToOnPremises``)

Raw state
- ``GET /_sim/events/{mailbox}``: every stored event ``{copy, organizerId, patchCount, data}``
- ``GET /_sim/messages/{mailbox}``: every delivered message, oldest first
- ``GET /_sim/online-meetings/{user}``: stored online meetings, as Graph would answer them

Knobs
- ``GET|PUT /_sim/faults`` ``{"rates": {kind: rate}, "slowSeconds"?, "timeoutSeconds"?}``
  (kinds: ``http503 http504 slow timeout reset lostPatchAnswer``)
- ``GET /_sim/holds``; ``POST /_sim/holds`` ``{"eventId": id|null}`` -> ``{"holdId"}`` arms a
  hold on the next applied PATCH of that event (null: any); ``POST /_sim/holds/release``
  ``{"holdId"?}`` (none: all); ``POST /_sim/holds/wait`` ``{"holdId"?}`` waits until held
- ``GET /_sim/limits``; ``PUT`` a whole profile; ``PATCH`` some fields
- ``GET /_sim/clock`` -> ``{"now", "monotonic"}``; ``POST /_sim/clock/advance`` ``{"seconds"}``
- ``GET /_sim/counters``: requests by method+route, PATCHes by event, messages by mailbox,
  429s by scope, online meetings created, faults injected, sending (delayed, bounced, pending)
- ``POST /_sim/bounds`` ``{"wave": WaveShape JSON, "latencySeconds"?}`` (or the wave itself)
  -> the throttle-bound minimum (``seconds``, ``binding``, ``scope``, ``terms``, ...)
- ``POST /_sim/certificates`` ``{"pem"}`` -> ``{"thumbprint"}`` (for CertificateCredential)
- ``GET /_sim/config``: the ready line plus seed, latency and tenant size
"""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any

from aiohttp import web

from mmsd.clock import format_rfc3339
from mmsd.sim.model import (
    AUDIO_CONFERENCING_PLAN_ID,
    AUDIO_CONFERENCING_SKU_ID,
    JSON,
    MailboxLocation,
    SimUser,
)

if TYPE_CHECKING:
    from mmsd.sim.server import Simulator

TRIGGER_PROFILE_KEYS = (
    "audioConferencingProvider",
    "sipAddress",
    "meetUrlBase",
    "conferenceId",
    "tollNumbers",
    "tollFreeNumbers",
    "dialInUrl",
)
_PROFILE_FIELDS = {
    "audioConferencingProvider": "audio_conferencing_provider",
    "sipAddress": "sip_address",
    "meetUrlBase": "meet_url_base",
    "conferenceId": "conference_id",
    "tollNumbers": "toll_numbers",
    "tollFreeNumbers": "toll_free_numbers",
    "dialInUrl": "dial_in_url",
    "bridgeId": "bridge_id",
    "dialInEnabled": "dial_in_enabled",
}
PROVIDERS = ("microsoft", "thirdParty")

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


def _json(payload: Any, status: int = 200) -> web.Response:
    return web.Response(
        status=status,
        text=json.dumps(payload, ensure_ascii=False),
        content_type="application/json",
    )


def _error(status: int, code: str, message: str) -> web.Response:
    return _json({"error": {"code": code, "message": message}}, status)


class _Bad(Exception):
    def __init__(self, status: int, code: str, message: str) -> None:
        super().__init__(message)
        self.status, self.code, self.message = status, code, message


async def _body(request: web.Request) -> JSON:
    if not request.body_exists:
        return {}
    try:
        data = json.loads(await request.read() or b"{}")
    except ValueError as exc:
        raise _Bad(400, "badRequest", "the body is not JSON") from exc
    if not isinstance(data, dict):
        raise _Bad(400, "badRequest", "the body must be a JSON object")
    return data


def trigger_profile(user: SimUser) -> JSON:
    """The ``conferencing`` object of a trigger body: the profile's seven SPEC keys.

    A value the user does not have (an empty string, e.g. no conference ID without
    dial-in) is left out, as a provisioning system reports it, rather than sent empty.
    """
    full = user.conferencing.to_json()
    return {k: full[k] for k in TRIGGER_PROFILE_KEYS if full[k] != ""}


def user_view(user: SimUser) -> JSON:
    """A user as ``GET /_sim/users`` lists it."""
    return {
        "id": user.id,
        "userPrincipalName": user.user_principal_name,
        "displayName": user.display_name,
        "kind": user.kind,
        "mailbox": str(user.mailbox),
        "audioConferencing": user.has_audio_conferencing(),
        "conferencing": user.conferencing.to_json(),
    }


class Control:
    """The ``/_sim/`` handlers of one :class:`~mmsd.sim.server.Simulator`."""

    def __init__(self, sim: Simulator) -> None:
        self.sim = sim
        self.state = sim.state

    # --- helpers ------------------------------------------------------------

    def _user(self, request: web.Request) -> SimUser:
        key = request.match_info["user"]
        user = self.state.user(key)
        if user is None:
            raise _Bad(404, "userNotFound", f"no user {key!r}")
        return user

    def _changed(self, user: SimUser, trigger_type: str | None) -> web.Response:
        trigger: JSON | None = None
        if trigger_type is not None:
            trigger = {
                "type": trigger_type,
                "identity": user.id,
                "conferencing": trigger_profile(user),
            }
        self.sim.ctx.join_cache.clear()
        return _json({"trigger": trigger, "user": user_view(user)})

    def _new_digits(self, *parts: object, length: int) -> str:
        serial = self.state.next_serial()
        digits = str(int(self.state.make_id("digits", serial, *parts, length=24), 16))
        return digits[:length].rjust(length, "1")

    # --- users ---------------------------------------------------------------

    async def users(self, request: web.Request) -> web.StreamResponse:
        """``GET /_sim/users``."""
        return _json({"value": [user_view(u) for u in self.state.users]})

    async def user(self, request: web.Request) -> web.StreamResponse:
        """``GET /_sim/users/{id}``."""
        return _json(user_view(self._user(request)))

    async def get_conferencing(self, request: web.Request) -> web.StreamResponse:
        """``GET /_sim/users/{id}/conferencing``."""
        return _json(self._user(request).conferencing.to_json())

    async def put_conferencing(self, request: web.Request) -> web.StreamResponse:
        """``PUT /_sim/users/{id}/conferencing``: change profile fields (no trigger)."""
        user = self._user(request)
        body = await _body(request)
        unknown = sorted(set(body) - set(_PROFILE_FIELDS))
        if unknown:
            raise _Bad(400, "badRequest", f"unknown key(s): {', '.join(unknown)}")
        for key, value in body.items():
            attr = _PROFILE_FIELDS[key]
            current = getattr(user.conferencing, attr)
            if isinstance(current, bool):
                ok = isinstance(value, bool)
            elif isinstance(current, list):
                ok = isinstance(value, list) and all(isinstance(v, str) for v in value)
            else:
                ok = isinstance(value, str)
            if not ok:
                raise _Bad(400, "badRequest", f"{key} has the wrong type")
            if key == "audioConferencingProvider" and value not in PROVIDERS:
                raise _Bad(400, "badRequest", "audioConferencingProvider: microsoft|thirdParty")
        for key, value in body.items():
            setattr(
                user.conferencing,
                _PROFILE_FIELDS[key],
                list(value) if isinstance(value, list) else value,
            )
        self.sim.ctx.join_cache.clear()
        return _json(user.conferencing.to_json())

    async def license(self, request: web.Request) -> web.StreamResponse:
        """``POST /_sim/users/{id}/license`` ``{"assigned": bool}``."""
        user = self._user(request)
        assigned = (await _body(request)).get("assigned")
        if not isinstance(assigned, bool):
            raise _Bad(400, "badRequest", '"assigned" must be true or false')
        now = format_rfc3339(self.sim.clock.now())
        plan = next(
            (
                p
                for p in user.assigned_plans
                if p.get("servicePlanId") == AUDIO_CONFERENCING_PLAN_ID
            ),
            None,
        )
        if assigned:
            for lic in user.assigned_licenses:
                disabled = lic.get("disabledPlans") or []
                if AUDIO_CONFERENCING_PLAN_ID in disabled:
                    lic["disabledPlans"] = [d for d in disabled if d != AUDIO_CONFERENCING_PLAN_ID]
            if not any(
                lic.get("skuId") == AUDIO_CONFERENCING_SKU_ID for lic in user.assigned_licenses
            ) and (plan is None or plan.get("capabilityStatus") != "Enabled"):
                if plan is None or not _bundled(user):
                    user.assigned_licenses.append(
                        {"disabledPlans": [], "skuId": AUDIO_CONFERENCING_SKU_ID}
                    )
            if plan is None:
                plan = {
                    "assignedDateTime": now,
                    "capabilityStatus": "Enabled",
                    "service": "MicrosoftCommunicationsOnline",
                    "servicePlanId": AUDIO_CONFERENCING_PLAN_ID,
                }
                user.assigned_plans.append(plan)
            plan["capabilityStatus"] = "Enabled"
            plan["assignedDateTime"] = now
            trigger = "audioConferencingLicenseAssigned"
        else:
            user.assigned_licenses[:] = [
                lic
                for lic in user.assigned_licenses
                if lic.get("skuId") != AUDIO_CONFERENCING_SKU_ID
            ]
            for lic in user.assigned_licenses:
                disabled = list(lic.get("disabledPlans") or [])
                if AUDIO_CONFERENCING_PLAN_ID not in disabled:
                    lic["disabledPlans"] = [*disabled, AUDIO_CONFERENCING_PLAN_ID]
            if plan is not None:
                plan["capabilityStatus"] = "Deleted"
                plan["assignedDateTime"] = now
            trigger = "audioConferencingLicenseRemoved"
        self.state.touch_user(user, "assignedLicenses", "assignedPlans")
        return self._changed(user, trigger)

    async def dial_in(self, request: web.Request) -> web.StreamResponse:
        """``POST /_sim/users/{id}/dial-in`` ``{"enabled": bool}``."""
        user = self._user(request)
        enabled = (await _body(request)).get("enabled")
        if not isinstance(enabled, bool):
            raise _Bad(400, "badRequest", '"enabled" must be true or false')
        user.conferencing.dial_in_enabled = enabled
        kind = "dialInConferencingEnabled" if enabled else "dialInConferencingDisabled"
        return self._changed(user, kind)

    async def reset_conference_id(self, request: web.Request) -> web.StreamResponse:
        """``POST /_sim/users/{id}/conference-id/reset``: a new conference ID."""
        user = self._user(request)
        old = user.conferencing.conference_id
        new = old
        while new == old:
            new = self._new_digits("cid", user.id, length=max(7, len(old) or 9))
        user.conferencing.conference_id = new
        return self._changed(user, "conferenceIdReset")

    async def bridge(self, request: web.Request) -> web.StreamResponse:
        """``POST /_sim/users/{id}/bridge``: move the user to a new bridge with new numbers."""
        user = self._user(request)
        body = await _body(request)
        prof = user.conferencing
        serial = self.state.next_serial()
        bridge_id = body.get("bridgeId") or f"bridge-{serial}"
        toll = body.get("tollNumbers")
        free = body.get("tollFreeNumbers")
        for value, name in ((toll, "tollNumbers"), (free, "tollFreeNumbers")):
            if value is not None and not (
                isinstance(value, list) and all(isinstance(v, str) for v in value)
            ):
                raise _Bad(400, "badRequest", f"{name} must be a list of strings")
        if not isinstance(bridge_id, str):
            raise _Bad(400, "badRequest", "bridgeId must be a string")
        if toll is None:
            toll = [
                f"+1 206-555-{self._new_digits('toll', user.id, i, length=4)}" for i in range(2)
            ]
        if free is None:
            free = [f"+1 866-555-{self._new_digits('free', user.id, length=4)}"]
        prof.bridge_id = bridge_id
        prof.toll_numbers = list(toll)
        prof.toll_free_numbers = list(free)
        return self._changed(user, "bridgeChanged")

    async def unassign_number(self, request: web.Request) -> web.StreamResponse:
        """``POST /_sim/users/{id}/bridge-number/unassign`` ``{"number"?}``."""
        user = self._user(request)
        number = (await _body(request)).get("number")
        prof = user.conferencing
        if number is None:
            if not prof.toll_numbers:
                raise _Bad(409, "noNumber", "the user's bridge has no toll number left")
            number = prof.toll_numbers[0]
        if number in prof.toll_numbers:
            prof.toll_numbers = [n for n in prof.toll_numbers if n != number]
        elif number in prof.toll_free_numbers:
            prof.toll_free_numbers = [n for n in prof.toll_free_numbers if n != number]
        else:
            raise _Bad(404, "numberNotFound", "the number is not on the user's bridge")
        return self._changed(user, "bridgeNumberUnassigned")

    async def acp_provider(self, request: web.Request) -> web.StreamResponse:
        """``POST /_sim/users/{id}/acp-provider`` ``{"provider": "microsoft"|"thirdParty"}``."""
        user = self._user(request)
        provider = (await _body(request)).get("provider")
        if provider not in PROVIDERS:
            raise _Bad(400, "badRequest", '"provider" must be "microsoft" or "thirdParty"')
        user.conferencing.audio_conferencing_provider = str(provider)
        # SPEC section 2 has a trigger only for a switch to Microsoft's provider.
        kind = "acpProviderSwitchedToMicrosoft" if provider == "microsoft" else None
        return self._changed(user, kind)

    async def mailbox(self, request: web.Request) -> web.StreamResponse:
        """``POST /_sim/users/{id}/mailbox`` ``{"location": "exchangeOnline"|"onPremises"}``."""
        user = self._user(request)
        location = (await _body(request)).get("location")
        try:
            user.mailbox = MailboxLocation(str(location))
        except ValueError as exc:
            raise _Bad(400, "badRequest", '"location": exchangeOnline|onPremises') from exc
        kind = (
            "userMovedToOnline"
            if user.mailbox is MailboxLocation.EXCHANGE_ONLINE
            else "userMovedToOnPremises"
        )
        return self._changed(user, kind)

    # --- raw state -------------------------------------------------------------

    async def events(self, request: web.Request) -> web.StreamResponse:
        """``GET /_sim/events/{mailbox}``."""
        user = self._user(request)
        items = [
            {
                "copy": str(e.copy),
                "organizerId": e.organizer_id,
                "patchCount": e.patch_count,
                "data": e.data,
            }
            for e in self.state.mailbox_events(user.id).values()
        ]
        return _json({"value": items})

    async def messages(self, request: web.Request) -> web.StreamResponse:
        """``GET /_sim/messages/{mailbox}``: delivered messages, oldest first."""
        user = self._user(request)
        self.sim.ctx.deliver_due()
        return _json({"value": self.state.messages.get(user.id, [])})

    async def online_meetings(self, request: web.Request) -> web.StreamResponse:
        """``GET /_sim/online-meetings/{user}``."""
        from mmsd.sim.routes_meetings import render_meeting

        user = self._user(request)
        items = [
            render_meeting(self.sim.ctx, user, m)
            for m in self.state.online_meetings.get(user.id, {}).values()
        ]
        return _json({"value": items})

    # --- knobs -------------------------------------------------------------

    def _faults_view(self) -> JSON:
        return {
            "rates": {str(k): v for k, v in self.sim.faults.rates.items()},
            "slowSeconds": self.sim.fault_times.slow_s,
            "timeoutSeconds": self.sim.fault_times.timeout_s,
            "injected": self.sim.faults.injected(),
        }

    async def get_faults(self, request: web.Request) -> web.StreamResponse:
        """``GET /_sim/faults``."""
        return _json(self._faults_view())

    async def put_faults(self, request: web.Request) -> web.StreamResponse:
        """``PUT /_sim/faults``."""
        from mmsd.sim.faults import FaultKind

        body = await _body(request)
        unknown = sorted(set(body) - {"rates", "slowSeconds", "timeoutSeconds"})
        if unknown:
            raise _Bad(400, "badRequest", f"unknown key(s): {', '.join(unknown)}")
        rates = body.get("rates", {})
        if not isinstance(rates, dict):
            raise _Bad(400, "badRequest", "rates must be an object")
        times = {}
        for key in ("slowSeconds", "timeoutSeconds"):
            if key in body:
                value = body[key]
                if isinstance(value, bool) or not isinstance(value, int | float) or value < 0:
                    raise _Bad(400, "badRequest", f"{key} must be a number >= 0")
                times[key] = float(value)
        try:
            self.sim.faults.set_rates({FaultKind(k): v for k, v in rates.items()})
        except ValueError as exc:
            raise _Bad(400, "badRequest", str(exc)) from exc
        self.sim.fault_times.slow_s = times.get("slowSeconds", self.sim.fault_times.slow_s)
        self.sim.fault_times.timeout_s = times.get("timeoutSeconds", self.sim.fault_times.timeout_s)
        return _json(self._faults_view())

    async def holds(self, request: web.Request) -> web.StreamResponse:
        """``GET /_sim/holds``."""
        return _json({"value": [h.to_json() for h in self.sim.faults.held()]})

    async def add_hold(self, request: web.Request) -> web.StreamResponse:
        """``POST /_sim/holds`` ``{"eventId": id|null}``."""
        event_id = (await _body(request)).get("eventId")
        if event_id is not None and not isinstance(event_id, str):
            raise _Bad(400, "badRequest", "eventId must be a string or null")
        return _json({"holdId": self.sim.faults.hold_next_patch(event_id)}, 201)

    async def release_holds(self, request: web.Request) -> web.StreamResponse:
        """``POST /_sim/holds/release`` ``{"holdId"?}``."""
        hold_id = (await _body(request)).get("holdId")
        if hold_id is None:
            return _json({"released": self.sim.faults.release_all()})
        if not self.sim.faults.release(str(hold_id)):
            raise _Bad(404, "holdNotFound", f"no hold {hold_id!r}")
        return _json({"released": 1})

    async def wait_hold(self, request: web.Request) -> web.StreamResponse:
        """``POST /_sim/holds/wait`` ``{"holdId"?}``: answers once a PATCH is held."""
        hold_id = (await _body(request)).get("holdId")
        try:
            held = await self.sim.faults.wait_held(None if hold_id is None else str(hold_id))
        except LookupError as exc:
            raise _Bad(404, "holdNotFound", str(exc)) from exc
        return _json(held.to_json())

    async def get_limits(self, request: web.Request) -> web.StreamResponse:
        """``GET /_sim/limits``."""
        return _json(self.sim.ctx.limits.to_json())

    async def put_limits(self, request: web.Request) -> web.StreamResponse:
        """``PUT /_sim/limits`` (whole profile, missing fields default) / ``PATCH`` (some fields)."""
        from mmsd.sim.limits import LimitsProfile

        body = await _body(request)
        try:
            if request.method == "PATCH":
                profile = self.sim.ctx.limits.updated(body)
            else:
                profile = LimitsProfile.from_mapping(body)
        except (ValueError, TypeError) as exc:
            raise _Bad(400, "badRequest", str(exc)) from exc
        self.sim.set_limits(profile)
        return _json(profile.to_json())

    async def clock(self, request: web.Request) -> web.StreamResponse:
        """``GET /_sim/clock``."""
        return _json(
            {"now": format_rfc3339(self.sim.clock.now()), "monotonic": self.sim.clock.monotonic()}
        )

    async def advance(self, request: web.Request) -> web.StreamResponse:
        """``POST /_sim/clock/advance`` ``{"seconds": n}``."""
        seconds = (await _body(request)).get("seconds")
        if isinstance(seconds, bool) or not isinstance(seconds, int | float) or seconds < 0:
            raise _Bad(400, "badRequest", '"seconds" must be a number >= 0')
        self.sim.clock.advance(float(seconds))
        self.sim.ctx.deliver_due()
        return await self.clock(request)

    async def counters(self, request: web.Request) -> web.StreamResponse:
        """``GET /_sim/counters``."""
        self.sim.ctx.deliver_due()
        out = self.sim.counters.to_json()
        out["throttled"] = self.sim.throttler.counters()
        out["sending"] = {**self.sim.sender.counters(), "pending": self.sim.sender.pending()}
        out["faultsInjected"] = self.sim.faults.injected()
        return _json(out)

    async def bounds(self, request: web.Request) -> web.StreamResponse:
        """``POST /_sim/bounds``: the closed-form throttle-bound minimum of a wave."""
        from mmsd.sim.bounds import WaveShape, wave_bound

        body = await _body(request)
        latency = body.get("latencySeconds", self.sim.config.latency_ms * 0.75 / 1000.0)
        wave = body.get("wave", body if "wave" not in body and "mailboxes" in body else {})
        if isinstance(latency, bool) or not isinstance(latency, int | float) or latency < 0:
            raise _Bad(400, "badRequest", "latencySeconds must be a number >= 0")
        try:
            shape = WaveShape.from_json(wave)
        except (ValueError, TypeError) as exc:
            raise _Bad(400, "badRequest", str(exc)) from exc
        return _json(wave_bound(self.sim.ctx.limits, shape, float(latency)).to_json())

    async def certificates(self, request: web.Request) -> web.StreamResponse:
        """``POST /_sim/certificates`` ``{"pem"}``."""
        pem = (await _body(request)).get("pem")
        if not isinstance(pem, str):
            raise _Bad(400, "badRequest", '"pem" must be a PEM string')
        try:
            thumb = self.sim.authority_server.register_certificate(pem.encode())
        except ValueError as exc:
            raise _Bad(400, "badRequest", str(exc)) from exc
        return _json({"thumbprint": thumb}, 201)

    async def config(self, request: web.Request) -> web.StreamResponse:
        """``GET /_sim/config``."""
        cfg = self.sim.config
        return _json(
            {
                **self.sim.ready_line(),
                "seed": cfg.seed,
                "users": len(self.state.users),
                "latencyMs": cfg.latency_ms,
                "auth": cfg.auth,
            }
        )


def _wrap(handler: Handler) -> Handler:
    async def run(request: web.Request) -> web.StreamResponse:
        try:
            return await handler(request)
        except _Bad as bad:
            return _error(bad.status, bad.code, bad.message)

    return run


def _bundled(user: SimUser) -> bool:
    """True when the user's plan comes from a bundle (some licence other than the SKU)."""
    return any(lic.get("skuId") != AUDIO_CONFERENCING_SKU_ID for lic in user.assigned_licenses)


def make_control_app(sim: Simulator) -> web.Application:
    """The ``/_sim/`` sub-application for ``sim``."""
    c = Control(sim)
    app = web.Application()
    routes: list[tuple[str, str, Handler]] = [
        ("GET", "/users", c.users),
        ("GET", "/users/{user}", c.user),
        ("GET", "/users/{user}/conferencing", c.get_conferencing),
        ("PUT", "/users/{user}/conferencing", c.put_conferencing),
        ("POST", "/users/{user}/license", c.license),
        ("POST", "/users/{user}/dial-in", c.dial_in),
        ("POST", "/users/{user}/conference-id/reset", c.reset_conference_id),
        ("POST", "/users/{user}/bridge", c.bridge),
        ("POST", "/users/{user}/bridge-number/unassign", c.unassign_number),
        ("POST", "/users/{user}/acp-provider", c.acp_provider),
        ("POST", "/users/{user}/mailbox", c.mailbox),
        ("GET", "/events/{user}", c.events),
        ("GET", "/messages/{user}", c.messages),
        ("GET", "/online-meetings/{user}", c.online_meetings),
        ("GET", "/faults", c.get_faults),
        ("PUT", "/faults", c.put_faults),
        ("GET", "/holds", c.holds),
        ("POST", "/holds", c.add_hold),
        ("POST", "/holds/release", c.release_holds),
        ("POST", "/holds/wait", c.wait_hold),
        ("GET", "/limits", c.get_limits),
        ("PUT", "/limits", c.put_limits),
        ("PATCH", "/limits", c.put_limits),
        ("GET", "/clock", c.clock),
        ("POST", "/clock/advance", c.advance),
        ("GET", "/counters", c.counters),
        ("POST", "/bounds", c.bounds),
        ("POST", "/certificates", c.certificates),
        ("GET", "/config", c.config),
    ]
    for method, path, handler in routes:
        app.router.add_route(method, path, _wrap(handler))
    return app
