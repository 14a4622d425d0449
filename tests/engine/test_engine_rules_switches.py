"""Every trigger type under each tenant switch, posted through the admin API (SPEC section 2).

The expectations are SPEC section 2's table written out again here, not
imported from ``mmsd.domain.rules``: ``migrated`` (Pending, the pair the table
gives, the MMS-disabled ``lastMessage`` when MMS is off) or ``ignored`` with the
reason. A coalescing window of an hour keeps every triggered migration Pending,
so each record can be read as the trigger left it (manual starts run at once,
unless MMS is off); with MMS off nothing is PATCHed.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import aiohttp
import pytest
from aiohttp.test_utils import TestServer
from engine_testkit import NOW, TENANT, Harness

from mmsd.admin.api import make_admin_app
from mmsd.domain.model import TenantSwitches
from mmsd.sim.server import SimConfig

BASE = f"/v1/tenants/{TENANT}"
MMS_DISABLED = (
    "Meeting migration is disabled for this tenant (meetingMigrationEnabled is false); "
    "this migration will run when it is enabled again."
)
AC_TYPES = (
    "audioConferencingLicenseAssigned",
    "audioConferencingLicenseRemoved",
    "dialInConferencingEnabled",
    "dialInConferencingDisabled",
    "conferenceIdReset",
    "bridgeChanged",
    "bridgeNumberUnassigned",
    "acpProviderSwitchedToMicrosoft",
)
ALL_CURRENT = ("All", "Current")
SFB_TEAMS = ("SfB", "Teams")
THIRD_PARTY = {"audioConferencingProvider": "thirdParty"}


@dataclass(frozen=True)
class Case:
    """One trigger body (identity filled in later) and what SPEC section 2 makes of it."""

    name: str
    body: dict[str, Any]
    pair: tuple[str, str] | None = None  # migrates to this (source, target)
    reason: str | None = None  # else ignored for this reason
    audio: bool = False  # an audio-conferencing trigger (automaticallyMigrateUserMeetings)
    acp_licence: bool = False  # a licence assignment for a thirdParty user (the ACP rule)
    user_kind: str = "any"  # "any", "acp", or "none" (tenant-scoped: no identity)


CASES: tuple[Case, ...] = (
    Case("move", {"type": "userMovedToOnline"}, ALL_CURRENT),
    *(
        Case(
            f"upgrade-{mode}",
            {"type": "teamsUpgradePolicyGranted", "scope": "user", "mode": mode},
            SFB_TEAMS,
        )
        for mode in ("TeamsOnly", "SfBWithTeamsCollabAndMeetings")
    ),
    *(Case(t, {"type": t}, ALL_CURRENT, audio=True) for t in AC_TYPES),
    Case(
        "acp-licence",
        {"type": "audioConferencingLicenseAssigned", "conferencing": THIRD_PARTY},
        ALL_CURRENT,
        audio=True,
        acp_licence=True,
        user_kind="acp",
    ),
    Case(
        "acp-dial-in",  # the ACP rule is about licence assignments only
        {"type": "dialInConferencingEnabled", "conferencing": THIRD_PARTY},
        ALL_CURRENT,
        audio=True,
        user_kind="acp",
    ),
    Case("manual-default", {"type": "manualStart"}, ALL_CURRENT),
    Case(
        "manual-sfb-teams",
        {"type": "manualStart", "sourceMeetingType": "SfB", "targetMeetingType": "Teams"},
        SFB_TEAMS,
    ),
    Case("sip", {"type": "sipAddressChanged"}, reason="nonTrigger"),
    Case("tenant-url", {"type": "tenantMeetingUrlUpdated"}, reason="tenantScope", user_kind="none"),
    Case(
        "upgrade-tenant",
        {"type": "teamsUpgradePolicyGranted", "scope": "tenant", "mode": "TeamsOnly"},
        reason="tenantScope",
        user_kind="none",
    ),
    Case(
        "upgrade-tenant-named",
        {"type": "teamsUpgradePolicyGranted", "scope": "tenant", "mode": "TeamsOnly"},
        reason="tenantScope",
    ),
    *(
        Case(
            f"upgrade-{mode}",
            {"type": "teamsUpgradePolicyGranted", "scope": "user", "mode": mode},
            reason="nonTrigger",
        )
        for mode in ("Islands", "SfBOnly", "SfBWithTeamsCollab")
    ),
    Case("cvi", {"type": "cviPartnerChanged"}, reason="manualStartRequired"),
    Case("on-premises", {"type": "userMovedToOnPremises"}, reason="notRunnable"),
)


def expected(case: Case, switches: TenantSwitches) -> tuple[str, str | None]:
    """(fate, ignore reason) by SPEC section 2."""
    if case.reason is not None:
        return "ignored", case.reason
    if case.audio and not switches.automatically_migrate_user_meetings:
        return "ignored", "automaticMigrationOff"
    if case.acp_licence and not switches.automatically_replace_acp_provider:
        return "ignored", "acpRule"
    return "migrated", None


SWITCHES = {
    "defaults": TenantSwitches(),
    "mms-off": TenantSwitches(meeting_migration_enabled=False),
    "automatic-off": TenantSwitches(automatically_migrate_user_meetings=False),
    "replace-acp": TenantSwitches(automatically_replace_acp_provider=True),
}


@pytest.fixture
def sim_config() -> SimConfig:
    """Enough users for one per migrating case (two third-party ACP users among them)."""
    return SimConfig(users=26, meetings=2, seed=11, now=NOW, latency_ms=1)


@pytest.fixture
async def api(harness: Harness) -> AsyncIterator[aiohttp.ClientSession]:
    """The admin API over the harness's engine, on a loopback port."""
    engine = await harness.start(coalesce_seconds=3600.0)
    assert harness.store is not None
    app = make_admin_app(engine, harness.store, clock=harness.sim.clock, readiness=lambda: True)
    async with TestServer(app, host="127.0.0.1", port=0) as server:
        async with aiohttp.ClientSession(base_url=str(server.make_url("/"))) as session:
            yield session


async def _json(response: aiohttp.ClientResponse, status: int = 200) -> Any:
    assert response.status == status, await response.text()
    return await response.json()


@pytest.mark.parametrize("setting", list(SWITCHES))
async def test_every_trigger_type_under_each_switch(
    harness: Harness, api: aiohttp.ClientSession, setting: str
) -> None:
    h = harness
    switches = SWITCHES[setting]
    async with api.patch(
        BASE + "/configuration",
        json={"meetingMigrationEnabled": switches.meeting_migration_enabled},
    ) as r:
        await _json(r)
    async with api.patch(
        BASE + "/dialInConferencingSettings",
        json={
            "automaticallyMigrateUserMeetings": switches.automatically_migrate_user_meetings,
            "automaticallyReplaceAcpProvider": switches.automatically_replace_acp_provider,
        },
    ) as r:
        await _json(r)

    users = await h.users()
    acp = [u["id"] for u in users if u["kind"] == "thirdPartyAcp"]
    others = [u["id"] for u in users if u["kind"] != "thirdPartyAcp"]
    assert len(acp) >= 2
    posted: dict[str, tuple[Case, str | None]] = {}
    for case in CASES:
        body = dict(case.body)
        identity: str | None = None
        if case.user_kind == "acp":
            identity = acp.pop()
        elif case.user_kind == "any":
            # a user of its own for each case that may migrate; ignored ones share one
            identity = others.pop() if case.pair is not None else others[0]
        if identity is not None:
            body["identity"] = identity
        async with api.post(BASE + "/triggers", json=body) as r:
            trigger_id = (await _json(r, 202))["triggerId"]
        posted[trigger_id] = (case, identity)

    async def all_decided() -> list[dict[str, Any]] | None:
        async with api.get(BASE + "/triggers") as r:
            listed: list[dict[str, Any]] = (await _json(r))["value"]
        mine = [t for t in listed if t["triggerId"] in posted]
        return mine if all(t["fate"] != "pending" for t in mine) else None

    decided = await h.wait_for(all_decided, 30, "every trigger's fate")
    assert {t["triggerId"] for t in decided} == set(posted)
    for listed in decided:
        case, identity = posted[listed["triggerId"]]
        fate, reason = expected(case, switches)
        assert (listed["fate"], listed["reason"]) == (fate, reason), (case.name, setting)
        if fate == "ignored":
            assert listed["correlationId"] is None, case.name
            continue
        async with api.get(BASE + "/migrations", params={"identity": str(identity)}) as r:
            (record,) = (await _json(r))["value"]
        assert record["correlationId"] == listed["correlationId"], case.name
        assert (record["sourceMeetingType"], record["targetMeetingType"]) == case.pair, case.name
        if not switches.meeting_migration_enabled:
            assert record["state"] == "Pending", case.name
            assert record["lastMessage"] == MMS_DISABLED, case.name
        elif case.body["type"] != "manualStart":  # a manual start runs at once
            assert record["state"] == "Pending", case.name
            assert record["lastMessage"] != MMS_DISABLED, case.name
    if not switches.meeting_migration_enabled:
        assert (await h.counters())["patchesByEvent"] == {}, "a migration ran with MMS off"
