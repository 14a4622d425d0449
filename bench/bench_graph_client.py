"""CPU per Graph request of mmsd's client paths: typed models vs raw bytes vs $batch.

Measures daemon-side CPU only: the HTTP answers come from an in-process httpx
``MockTransport`` holding a realistic event (every default v1.0 property, a Teams
invitation body), so no server CPU is counted. Each path runs through the same
msgraph request adapter (auth provider with a cached token, msgraph_core transport,
no kiota retry handler):

  (a) typed   GraphServiceClient ... events.by_event_id().get() / .patch(Event)
  (b) raw     GraphClient.get_event / patch_event: send_primitive_async(bytes) + json.loads
  (c) batch   GraphClient.batch with 20 PATCHes per $batch request

With ``--sim`` the answers come instead from ``mmsd sim`` started as a separate
process (so its CPU is not counted), over real loopback HTTP with a token from its
authority: the figure then includes httpx's HTTP/1.1 work.

Usage: ``.venv/bin/python bench/bench_graph_client.py [--n 400] [--sim] [--json]``
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import sys
import tempfile
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
from azure.core.credentials import AccessToken

from mmsd.clock import SystemClock
from mmsd.graph import BatchItem, GraphClient, GraphLimits, MailboxNotEnabled, TenantPacer
from mmsd.graph.auth import CachingCredential
from mmsd.graph.client import build_request_adapter

BASE = "http://127.0.0.1:9/v1.0"

BODY_HTML = (
    '<html><head><meta http-equiv="Content-Type" content="text/html; charset=utf-8"></head><body>'
    "<div><p>Agenda: quarterly planning – Grüße ✓</p></div>"
    + '<div style="width:100%"><span style="white-space:nowrap;color:#5F5F5F;opacity:.36">'
    + "_" * 80
    + '</span></div><div class="me-email-text" lang="en-US" style="color:#252424">'
    '<div style="margin-top:24px;margin-bottom:20px"><span style="font-size:24px">Microsoft Teams meeting</span></div>'
    '<div style="margin-bottom:20px"><div style="margin-top:0;margin-bottom:0;font-weight:bold">'
    '<span style="font-size:14px">Join on your computer, mobile app or room device</span></div>'
    '<a href="https://teams.microsoft.com/l/meetup-join/19%3ameeting_NjA1%40thread.v2/0?context=%7b%22Tid%22%3a%22t%22%7d">'
    "Click here to join the meeting</a></div><div>Meeting ID: 123 456 789 012<br>Passcode: aB3cD4</div>"
    + '<div><a href="tel:+14255550100,,123456789#">+1 425-555-0100,,123456789#</a> United States, Seattle</div>'
    * 4
    + '<div>Phone Conference ID: 123 456 789#</div><div><a href="https://dialin.teams.microsoft.com/">Find a local number</a>'
    ' | <a href="https://dialin.teams.microsoft.com/usp/pstnconferencing">Reset PIN</a></div>'
    '<div><a href="https://aka.ms/JoinTeamsMeeting">Learn More</a> | <a href="https://teams.microsoft.com/meetingOptions/">Meeting options</a></div>'
    '</div><div style="font-size:14px">' + "_" * 80 + "</div></body></html>"
)


def _attendee(i: int) -> dict[str, Any]:
    return {
        "type": "required",
        "status": {"response": "none", "time": "0001-01-01T00:00:00Z"},
        "emailAddress": {"name": f"Person {i}", "address": f"person{i}@contoso.example"},
    }


EVENT: dict[str, Any] = {
    "@odata.etag": 'W/"DwAAABYAAAB"',
    "id": "AAMkAGI2TG93AAA=",
    "createdDateTime": "2026-01-02T10:00:00.0000000Z",
    "lastModifiedDateTime": "2026-01-02T10:00:00.0000000Z",
    "changeKey": "DwAAABYAAAB",
    "categories": [],
    "transactionId": None,
    "originalStartTimeZone": "UTC",
    "originalEndTimeZone": "UTC",
    "iCalUId": "040000008200E00074C5B7101A82E00800000000",
    "uid": "040000008200E00074C5B7101A82E00800000000",
    "reminderMinutesBeforeStart": 15,
    "isReminderOn": True,
    "hasAttachments": False,
    "subject": "Quarterly planning",
    "bodyPreview": "Agenda: quarterly planning",
    "importance": "normal",
    "sensitivity": "normal",
    "isAllDay": False,
    "isCancelled": False,
    "isOrganizer": True,
    "responseRequested": True,
    "seriesMasterId": None,
    "showAs": "busy",
    "type": "singleInstance",
    "webLink": "https://outlook.office365.com/owa/?itemid=AAMkAGI2TG93AAA%3D&exvsurl=1&path=/calendar/item",
    "onlineMeetingUrl": None,
    "isOnlineMeeting": True,
    "onlineMeetingProvider": "teamsForBusiness",
    "allowNewTimeProposals": True,
    "occurrenceId": None,
    "isDraft": False,
    "hideAttendees": False,
    "responseStatus": {"response": "organizer", "time": "0001-01-01T00:00:00Z"},
    "body": {"contentType": "html", "content": BODY_HTML},
    "start": {"dateTime": "2026-03-02T15:00:00.0000000", "timeZone": "UTC"},
    "end": {"dateTime": "2026-03-02T16:00:00.0000000", "timeZone": "UTC"},
    "location": {
        "displayName": "",
        "locationType": "default",
        "uniqueIdType": "unknown",
        "address": {},
        "coordinates": {},
    },
    "locations": [],
    "recurrence": None,
    "attendees": [_attendee(i) for i in range(8)],
    "organizer": {"emailAddress": {"name": "Organizer", "address": "organizer@contoso.example"}},
    "onlineMeeting": {
        "joinUrl": "https://teams.microsoft.com/l/meetup-join/19%3ameeting_NjA1%40thread.v2/0"
    },
}


class _Token:
    async def get_token(self, *scopes: str, **kwargs: Any) -> AccessToken:
        return AccessToken("bench-token", int(time.time()) + 3600)

    async def close(self) -> None:
        return None


def _handler(request: httpx.Request) -> httpx.Response:
    if request.url.path.endswith("/$batch"):
        items = json.loads(request.content)["requests"]
        body = {
            "responses": [
                {
                    "id": r["id"],
                    "status": 200,
                    "headers": {"Content-Type": "application/json"},
                    "body": EVENT,
                }
                for r in items
            ]
        }
    else:
        body = EVENT
    return httpx.Response(
        200, content=json.dumps(body).encode(), headers={"Content-Type": "application/json"}
    )


def _adapter() -> Any:
    return build_request_adapter(
        CachingCredential(_Token()), BASE, transport=httpx.MockTransport(_handler)
    )


async def _cpu_per(label: str, n: int, units_per_call: int, call: Any) -> dict[str, Any]:
    for _ in range(20):  # warm-up: imports, caches
        await call()
    start = time.process_time()
    for _ in range(n):
        await call()
    cpu = time.process_time() - start
    return {
        "path": label,
        "calls": n,
        "ms_cpu_per_request": round(cpu * 1000 / (n * units_per_call), 3),
    }


@contextlib.asynccontextmanager
async def _target(use_sim: bool) -> AsyncIterator[tuple[Any, Any, str, str]]:
    """(adapter for mmsd's client, adapter for the typed client, user id, event id)."""
    if not use_sim:
        yield _adapter(), _adapter(), "u-1", "AAMkAGI2TG93AAA="
        return
    from mmsd.graph.auth import build_credential

    args = ["sim", "--port", "0", "--users", "4", "--meetings", "4", "--latency-ms", "0"]
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "mmsd",
        *args,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.DEVNULL,
    )
    try:
        assert proc.stdout is not None
        ready = json.loads(await proc.stdout.readline())
        with tempfile.TemporaryDirectory() as tmp:
            secret = Path(tmp) / "secret"
            secret.write_text(ready["clientSecret"])
            config = {
                "tenant_id": ready["tenantId"],
                "client_id": ready["clientId"],
                "client_secret_file": str(secret),
                "authority": ready["authority"],
                "ca_file": ready["caFile"],
            }
            base = ready["graphBaseUrl"]
            credential = build_credential(config)  # one token cache shared by every adapter
            probe = GraphClient(build_request_adapter(credential, base), TenantPacer(SystemClock()))
            found: tuple[str, str] | None = None
            for user in (await probe.users_delta(None, ["id"])).users:
                try:
                    async for event in probe.list_events(
                        user["id"], "isOrganizer eq true", ["id"], 1
                    ):
                        found = (user["id"], event["id"])
                        break
                except MailboxNotEnabled:
                    continue
                if found:
                    break
            if found is None:
                raise RuntimeError("no user with a meeting in the simulator")
            raw = build_request_adapter(credential, base)
            typed = build_request_adapter(credential, base)
            try:
                yield raw, typed, found[0], found[1]
            finally:
                for adapter in (raw, typed, probe._adapter):
                    await adapter._http_client.aclose()
                await credential.close()
    finally:
        proc.terminate()
        await proc.wait()


async def run(n: int, use_sim: bool = False) -> list[dict[str, Any]]:
    """Measure every path; return one row per path."""
    async with _target(use_sim) as (raw_adapter, typed_adapter, user, event_id):
        return await _measure(n, raw_adapter, typed_adapter, user, event_id)


async def _measure(
    n: int, raw_adapter: Any, typed_adapter: Any, user: str, event_id: str
) -> list[dict[str, Any]]:
    from msgraph import GraphServiceClient
    from msgraph.generated.models.event import Event
    from msgraph.generated.models.item_body import ItemBody

    limits = GraphLimits(outlook_requests=10**9, graph_requests=10**9, outlook_upload_bytes=10**12)
    client = GraphClient(raw_adapter, TenantPacer(SystemClock(), limits), tenant="bench")
    typed = GraphServiceClient(request_adapter=typed_adapter)
    events = typed.users.by_user_id(user).events

    async def typed_get() -> None:
        event = await events.by_event_id(event_id).get()
        assert event is not None and event.body is not None

    async def typed_patch() -> None:
        patch = Event(body=ItemBody(content=BODY_HTML))
        await events.by_event_id(event_id).patch(patch)

    async def raw_get() -> None:
        event = await client.get_event(user, event_id)
        assert event["body"]["content"]

    async def raw_patch() -> None:
        await client.patch_event(
            user, event_id, {"body": {"contentType": "html", "content": BODY_HTML}}
        )

    patch_items = [
        BatchItem(
            "PATCH",
            f"/users/{user}/events/{event_id}",
            body={"body": {"contentType": "html", "content": BODY_HTML}},
            operation="patch_event",
        )
        for i in range(20)
    ]

    async def batch_patch() -> None:
        results = await client.batch(patch_items)
        assert all(r.ok for r in results)

    rows = [
        await _cpu_per("(a) typed model GET", n, 1, typed_get),
        await _cpu_per("(a) typed model PATCH", n, 1, typed_patch),
        await _cpu_per("(b) raw bytes GET", n, 1, raw_get),
        await _cpu_per("(b) raw bytes PATCH", n, 1, raw_patch),
        await _cpu_per("(c) $batch of 20 PATCH", max(1, n // 20), 20, batch_patch),
    ]
    await client.aclose()
    return rows


def main() -> None:
    """Print the CPU cost per request of each path."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--n", type=int, default=400, help="requests per path")
    parser.add_argument("--sim", action="store_true", help="answer from `mmsd sim` (a subprocess)")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    rows = asyncio.run(run(args.n, args.sim))
    if args.json:
        print(json.dumps(rows))
        return
    for row in rows:
        print(
            f"{row['path']:<28} {row['ms_cpu_per_request']:>8.3f} ms CPU / request  ({row['calls']} calls)"
        )


if __name__ == "__main__":
    main()
