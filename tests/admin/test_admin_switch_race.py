"""Concurrent PATCHes of different switches never lose each other (the per-tenant lock).

A PATCH names some switches and writes all three back; two PATCHes that
interleave their read and write would restore the field the other changed.
Each round sends the two PATCHes at once — configuration on the Unix socket,
dial-in settings on TCP, as two admins would — against the real engine.
"""

from __future__ import annotations

import asyncio

import aiohttp
from admin_testkit import TENANT, TOKEN
from conftest import Daemon

from mmsd.domain.model import TenantSwitches
from mmsd.store import Store

BASE = f"/v1/tenants/{TENANT}"
ROUNDS = 12


async def test_concurrent_patches_of_different_switches_both_apply(
    api: aiohttp.ClientSession, daemon: Daemon, store: Store
) -> None:
    auth = {"Authorization": "Bearer " + TOKEN.decode()}
    async with aiohttp.ClientSession(base_url=daemon.url, headers=auth) as tcp:
        for round_ in range(ROUNDS):
            enabled, replace_acp = round_ % 2 == 1, round_ % 2 == 0
            migrate = round_ % 3 != 0

            async def configuration(value: bool = enabled) -> int:
                body = {"meetingMigrationEnabled": value}
                async with api.patch(BASE + "/configuration", json=body) as r:
                    return r.status

            async def dial_in(acp: bool = replace_acp, auto: bool = migrate) -> int:
                body = {
                    "automaticallyReplaceAcpProvider": acp,
                    "automaticallyMigrateUserMeetings": auto,
                }
                async with tcp.patch(BASE + "/dialInConferencingSettings", json=body) as r:
                    return r.status

            statuses = await asyncio.gather(configuration(), dial_in(), configuration())
            assert list(statuses) == [200] * 3
            expected = TenantSwitches(enabled, migrate, replace_acp)
            assert await store.get_switches(TENANT) == expected, f"round {round_}"
    async with api.get(BASE + "/configuration") as r:
        assert (await r.json()) == {"meetingMigrationEnabled": (ROUNDS - 1) % 2 == 1}
