"""``users/delta`` on the simulator: full sync, then only users changed through ``/_sim/``."""

from __future__ import annotations

from typing import Any

import aiohttp
from sim_server_helpers import control_url

from mmsd.sim.model import AUDIO_CONFERENCING_PLAN_ID
from mmsd.sim.server import Simulator


async def sync(http: aiohttp.ClientSession, url: str, **headers: str) -> tuple[list[Any], str]:
    """Follow nextLinks to the deltaLink; (users, deltaLink)."""
    users: list[Any] = []
    while True:
        async with http.get(url, headers=headers) as r:
            assert r.status == 200
            page = await r.json()
        users += page["value"]
        if "@odata.deltaLink" in page:
            return users, page["@odata.deltaLink"]
        url = page["@odata.nextLink"]


def plan_enabled(user: dict[str, Any]) -> bool:
    """Whether the Audio Conferencing plan shows as enabled in a delta item."""
    disabled = {d for lic in user.get("assignedLicenses", []) for d in lic["disabledPlans"]}
    return AUDIO_CONFERENCING_PLAN_ID not in disabled and any(
        p["servicePlanId"] == AUDIO_CONFERENCING_PLAN_ID and p["capabilityStatus"] == "Enabled"
        for p in user.get("assignedPlans", [])
    )


async def test_delta_reports_licence_changes(sim: Simulator, http: aiohttp.ClientSession) -> None:
    select = "id,userPrincipalName,assignedLicenses,assignedPlans"
    for path in ("users/delta", "users/delta()"):
        users, link = await sync(http, f"{sim.graph_base_url}/{path}?$select={select}")
        assert [u["id"] for u in users] == [u.id for u in sim.state.users]
        assert all(set(u) == set(select.split(",")) for u in users)
    empty, link = await sync(http, link)
    assert empty == []

    target = sim.state.users[0]
    assert target.has_audio_conferencing()
    async with http.post(
        f"{control_url(sim)}/users/{target.id}/license", json={"assigned": False}
    ) as r:
        assert (await r.json())["trigger"]["type"] == "audioConferencingLicenseRemoved"
    changed, link2 = await sync(http, link)
    assert [u["id"] for u in changed] == [target.id]
    assert not plan_enabled(changed[0])
    async with http.get(f"{sim.graph_base_url}/users/{target.id}") as r:
        assert not plan_enabled(await r.json())

    async with http.post(
        f"{control_url(sim)}/users/{target.id}/license", json={"assigned": True}
    ) as r:
        assert (await r.json())["trigger"]["type"] == "audioConferencingLicenseAssigned"
    changed, _ = await sync(http, link2, Prefer="return=minimal")
    assert [u["id"] for u in changed] == [target.id]
    assert set(changed[0]) <= {"id", "assignedLicenses", "assignedPlans"}
    assert "userPrincipalName" not in changed[0]
    assert plan_enabled(changed[0])
