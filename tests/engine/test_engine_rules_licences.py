"""Licence changes the poller sees in ``users/delta``: bundles, ``disabledPlans``, the SKU (SPEC section 2)."""

from __future__ import annotations

from typing import Any

from engine_testkit import TENANT, Harness

from mmsd.domain.model import Trigger, TriggerType
from mmsd.engine.delta import AUDIO_CONFERENCING_PLAN_ID, LicencePoller, has_audio_conferencing
from mmsd.sim.generator import E5_SKU_ID, SHAREPOINT_PLAN
from mmsd.sim.model import AUDIO_CONFERENCING_SKU_ID, SimUser

ASSIGNED = TriggerType.AUDIO_CONFERENCING_LICENSE_ASSIGNED
REMOVED = TriggerType.AUDIO_CONFERENCING_LICENSE_REMOVED
OTHER_PLAN = "57ff2da0-773e-42df-b2af-ffb7a2317929"


def _plan(plan_id: str, status: str = "Enabled") -> dict[str, str]:
    return {"servicePlanId": plan_id, "capabilityStatus": status, "service": "x"}


def test_plan_state_from_one_delta_record() -> None:
    bundle = {"assignedLicenses": [{"skuId": E5_SKU_ID, "disabledPlans": []}]}
    on = [_plan(OTHER_PLAN), _plan(AUDIO_CONFERENCING_PLAN_ID)]
    assert has_audio_conferencing({**bundle, "assignedPlans": on}) is True
    # switched off inside the bundle: disabledPlans wins over an Enabled plan
    disabled = {
        "assignedLicenses": [{"skuId": E5_SKU_ID, "disabledPlans": [AUDIO_CONFERENCING_PLAN_ID]}]
    }
    assert has_audio_conferencing({**disabled, "assignedPlans": on}) is False
    # another plan disabled does not matter
    other = {"assignedLicenses": [{"skuId": E5_SKU_ID, "disabledPlans": [OTHER_PLAN]}]}
    assert has_audio_conferencing({**other, "assignedPlans": on}) is True
    deleted = [_plan(AUDIO_CONFERENCING_PLAN_ID, "Deleted")]
    assert has_audio_conferencing({**bundle, "assignedPlans": deleted}) is False
    assert has_audio_conferencing({**bundle, "assignedPlans": [_plan(OTHER_PLAN)]}) is False
    # a record that says nothing about licences (return=minimal of another change)
    assert has_audio_conferencing({"id": "u", "userPrincipalName": "x"}) is None


async def _poller(h: Harness) -> LicencePoller:
    engine = await h.start(poll_licences=True, delta_poll_seconds=3600.0, coalesce_seconds=3600.0)
    poller = engine.poller(TENANT)
    assert poller is not None

    async def baselined() -> bool:
        return poller.baselined

    await h.wait_for(baselined, 15, "the baseline delta sync")
    return poller


def _sim_user(h: Harness, user_id: str) -> SimUser:
    user = h.sim.state.user(user_id)
    assert user is not None
    return user


def _only(triggers: list[Trigger], user: str) -> TriggerType:
    (found,) = triggers
    assert found.identity == user
    return found.type


async def test_bundle_and_disabled_plans_through_the_simulator(harness: Harness) -> None:
    h = harness
    poller = await _poller(h)
    disabled_plan = (await h.users("audioConferencingDisabledPlan"))[0]["id"]
    bundled = (await h.users("ordinary"))[0]["id"]
    licences: list[dict[str, Any]] = _sim_user(h, bundled).assigned_licenses
    assert [lic["skuId"] for lic in licences] == [E5_SKU_ID], "the plan comes from the E5 bundle"

    # E5 with the plan in disabledPlans: assigning re-enables it inside the bundle
    await h.send("POST", f"/users/{disabled_plan}/license", {"assigned": True})
    assert _only(await poller.poll_once(), disabled_plan) is ASSIGNED
    user = _sim_user(h, disabled_plan)
    assert all(
        AUDIO_CONFERENCING_PLAN_ID not in lic["disabledPlans"] for lic in user.assigned_licenses
    )
    assert all(lic["skuId"] != AUDIO_CONFERENCING_SKU_ID for lic in user.assigned_licenses)

    # removing it from a bundle switches it off through disabledPlans
    await h.send("POST", f"/users/{bundled}/license", {"assigned": False})
    assert _only(await poller.poll_once(), bundled) is REMOVED
    assert AUDIO_CONFERENCING_PLAN_ID in licences[0]["disabledPlans"]
    assert await poller.poll_once() == []


async def test_disabled_plans_alone_decide(harness: Harness) -> None:
    """Only ``disabledPlans`` changes (``assignedPlans`` still says Enabled): still a change."""
    h = harness
    poller = await _poller(h)
    bundled = (await h.users("ordinary"))[1]["id"]
    user = _sim_user(h, bundled)
    (licence,) = user.assigned_licenses
    plan = next(p for p in user.assigned_plans if p["servicePlanId"] == AUDIO_CONFERENCING_PLAN_ID)
    assert plan["capabilityStatus"] == "Enabled"

    licence["disabledPlans"] = [*licence["disabledPlans"], AUDIO_CONFERENCING_PLAN_ID]
    h.sim.state.touch_user(user, "assignedLicenses")
    assert _only(await poller.poll_once(), bundled) is REMOVED
    licence["disabledPlans"] = [SHAREPOINT_PLAN[0]]  # another plan off instead: plan back on
    h.sim.state.touch_user(user, "assignedLicenses")
    assert _only(await poller.poll_once(), bundled) is ASSIGNED
    assert plan["capabilityStatus"] == "Enabled"
    # a licence change that leaves the plan as it is makes no trigger
    licence["disabledPlans"] = []
    h.sim.state.touch_user(user, "assignedLicenses")
    assert await poller.poll_once() == []


async def test_standalone_sku_removed_and_assigned(harness: Harness) -> None:
    h = harness
    poller = await _poller(h)
    standalone = [
        u
        for u in h.sim.state.users
        if u.kind == "ordinary"
        and any(lic["skuId"] == AUDIO_CONFERENCING_SKU_ID for lic in u.assigned_licenses)
    ]
    assert standalone, "the tenant has a user with the stand-alone Audio Conferencing SKU"
    user = standalone[0].id
    await h.send("POST", f"/users/{user}/license", {"assigned": False})
    assert _only(await poller.poll_once(), user) is REMOVED
    await h.send("POST", f"/users/{user}/license", {"assigned": True})
    assert _only(await poller.poll_once(), user) is ASSIGNED
