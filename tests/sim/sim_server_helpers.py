"""Helpers shared by the simulator server tests (imported by conftest.py and the tests)."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import aiohttp

from mmsd.sim.model import SimUser
from mmsd.sim.server import SimConfig, Simulator

NOW = datetime(2030, 1, 1, tzinfo=UTC)
GRAPH_SCOPE = "https://graph.microsoft.com/.default"
UNICODE_BODY = (
    "<html><head><meta charset='utf-8'></head><body><p>Hello 👋🏽 team — ☕ "
    "会議の件、よろしくお願いします。 中文测试 مرحبا بالعالم שלום עולם "
    "&amp; <b>bold</b> &lt;kept&gt; e\u0301 \u200f</p></body></html>"
)


def make_config(tmp_path: Path, **changes: Any) -> SimConfig:
    """The tests' default simulator configuration, with changes."""
    base: dict[str, Any] = {
        "users": 20,
        "meetings": 10,
        "seed": 1,
        "now": NOW,
        "latency_ms": 0.0,
        "work_dir": tmp_path / "sim",
    }
    base.update(changes)
    return SimConfig(**base)


def credential(sim: Simulator) -> Any:
    """azure-identity's async ClientSecretCredential for the simulator's authority."""
    from azure.identity.aio import ClientSecretCredential

    return ClientSecretCredential(
        sim.tenant_id,
        sim.client_id,
        sim.client_secret,
        authority=sim.authority,
        disable_instance_discovery=True,
        connection_verify=str(sim.ca_file),
    )


async def fetch_token(sim: Simulator) -> str:
    """A Graph access token from the simulator's authority, through azure-identity."""
    cred = credential(sim)
    async with cred:
        tok = await cred.get_token(GRAPH_SCOPE)
    return str(tok.token)


def graph_client(sim: Simulator, cred: Any) -> Any:
    """An msgraph-sdk GraphServiceClient against ``sim``, without kiota's RetryHandler."""
    from kiota_authentication_azure.azure_identity_authentication_provider import (
        AzureIdentityAuthenticationProvider,
    )
    from kiota_http.kiota_client_factory import KiotaClientFactory
    from kiota_http.middleware import RetryHandler
    from msgraph import GraphRequestAdapter, GraphServiceClient
    from msgraph_core import GraphClientFactory

    auth = AzureIdentityAuthenticationProvider(
        cred, scopes=[GRAPH_SCOPE], allowed_hosts=["127.0.0.1"]
    )
    middleware = [
        m
        for m in KiotaClientFactory.get_default_middleware(None)
        if not isinstance(m, RetryHandler)
    ]
    client = GraphClientFactory.create_with_custom_middleware(middleware)
    adapter = GraphRequestAdapter(auth, client=client)
    adapter.base_url = sim.graph_base_url
    return GraphServiceClient(request_adapter=adapter)


def control_url(sim: Simulator) -> str:
    """The base URL of the ``/_sim/`` control surface."""
    return sim.graph_base_url.removesuffix("/v1.0") + "/_sim"


def attendee(user: SimUser) -> dict[str, Any]:
    """An attendee entry for an in-tenant user."""
    return {
        "type": "required",
        "emailAddress": {"name": user.display_name, "address": user.mail},
    }


def new_meeting(attendees: list[SimUser], *, subject: str = "Planning") -> dict[str, Any]:
    """A POST body for a future meeting with these attendees and one external one."""
    return {
        "subject": subject,
        "body": {"contentType": "html", "content": UNICODE_BODY},
        "start": {"dateTime": "2030-02-03T10:00:00.0000000", "timeZone": "UTC"},
        "end": {"dateTime": "2030-02-03T11:00:00.0000000", "timeZone": "UTC"},
        "attendees": [attendee(u) for u in attendees]
        + [
            {"type": "optional", "emailAddress": {"name": "Ext", "address": "ext@fabrikam.example"}}
        ],
    }


async def post_event(
    sim: Simulator, http: aiohttp.ClientSession, organizer: SimUser, body: dict[str, Any]
) -> dict[str, Any]:
    """POST an event and return its JSON (asserting 201)."""
    async with http.post(f"{sim.graph_base_url}/users/{organizer.id}/events", json=body) as r:
        assert r.status == 201, await r.text()
        data: dict[str, Any] = await r.json()
    return data


async def messages(sim: Simulator, http: aiohttp.ClientSession, user: SimUser) -> list[Any]:
    """Every message in a mailbox (raw, oldest first)."""
    async with http.get(f"{control_url(sim)}/messages/{user.id}") as r:
        value: list[Any] = (await r.json())["value"]
    return value
