"""Graph JSON batching: ``POST /v1.0/$batch``.

At most ``batch_max_requests`` (20) requests, each ``{"id", "method", "url",
"headers"?, "body"?, "dependsOn"?}`` with a relative URL; a body needs a
``Content-Type`` header. A malformed batch answers 400 as a whole. Every request
runs through the same pipeline as a direct call (routed, counted, throttled on its
own — a 429 appears inside ``responses`` —, delayed by the latency). Without
``dependsOn`` the requests run concurrently, Outlook ones at most
``batch_outlook_parallel`` (4) at a time; with any ``dependsOn`` the batch runs
sequentially in the given order, and a request whose prerequisite failed (status
>= 400) answers 424 without running. Answers come in completion order.

Faults reach the parts as they reach direct calls: each part draws from the
:class:`~mmsd.sim.faults.FaultPlan` with its own method and path (sharing the
attempt counter with direct calls of that path). ``http503``/``http504`` answer
the part with that status (nothing applied); ``timeout`` answers the part 504, as
Graph's gateway does for a part that took too long; ``slow`` adds nothing inside a
batch. ``reset`` (the part not applied) and ``lostPatchAnswer`` (the PATCH applied)
lose the *whole* batch's answer: the other parts run to their end, then the
connection closes without an answer, so the client cannot know which parts were
applied. Holds apply to PATCH parts as to direct ones: the part is applied, and the
batch's answer waits until the hold is released.
"""

from __future__ import annotations

import asyncio
import json
from typing import Any

from mmsd.sim.faults import FaultKind
from mmsd.sim.graph_http import (
    JSON_CONTENT_TYPE,
    GraphError,
    GraphRequest,
    GraphResponse,
    Handler,
    Resource,
    Router,
    SimContext,
    dispatch,
    error_json,
    error_response,
    ok,
    split_url,
)
from mmsd.sim.model import JSON


def _bad(message: str) -> GraphError:
    return GraphError(400, "BadRequest", message)


def _parse_part(raw: Any, ids: set[str]) -> tuple[str, GraphRequest, list[str]]:
    if not isinstance(raw, dict):
        raise _bad("Invalid batch payload format.")
    rid, method, url = raw.get("id"), raw.get("method"), raw.get("url")
    if not isinstance(rid, str) or not rid:
        raise _bad("Invalid batch payload format: every request needs a string id.")
    if rid in ids:
        raise _bad(f"Batch request ids must be unique: '{rid}'.")
    if not isinstance(method, str) or method.upper() not in (
        "GET",
        "POST",
        "PATCH",
        "PUT",
        "DELETE",
    ):
        raise _bad(f"Invalid method for request '{rid}'.")
    if not isinstance(url, str) or not url or "://" in url:
        raise _bad(f"Invalid url for request '{rid}': a relative URL is required.")
    headers = raw.get("headers") or {}
    if not isinstance(headers, dict) or not all(
        isinstance(k, str) and isinstance(v, str) for k, v in headers.items()
    ):
        raise _bad(f"Invalid headers for request '{rid}'.")
    body = b""
    if raw.get("body") is not None:
        if not any(k.lower() == "content-type" for k in headers):
            raise _bad(f"Content-Type header is required for request '{rid}' with a body.")
        value = raw["body"]
        body = value.encode() if isinstance(value, str) else json.dumps(value).encode()
    depends = raw.get("dependsOn") or []
    if not isinstance(depends, list) or not all(isinstance(d, str) for d in depends):
        raise _bad(f"Invalid dependsOn for request '{rid}'.")
    path, query = split_url(url)
    if path.strip("/").lower() == "$batch":
        raise _bad("A batch cannot contain another batch.")
    req = GraphRequest(method.upper(), path, query, headers, body, in_batch=True)
    return rid, req, depends


def _item(rid: str, resp: GraphResponse) -> JSON:
    body: Any = resp.payload
    if body is None and resp.body:
        try:
            body = json.loads(resp.body)
        except ValueError:
            body = resp.body.decode(errors="replace")
    headers = {k: v for k, v in resp.headers.items() if k.lower() != "content-length"}
    item: JSON = {"id": rid, "status": resp.status, "headers": headers}
    if body is not None:
        item["body"] = body
    return item


def _part_fault(ctx: SimContext, sub: GraphRequest) -> FaultKind | None:
    """The fault a batch part draws, as a direct call of its method and path would."""
    if not ctx.faults.rates:
        return None
    fault = ctx.faults.decide(sub.method, "/v1.0" + sub.path)
    if fault is not None:
        ctx.counters.faults[str(fault)] += 1
    return fault


async def _run_part(
    ctx: SimContext, router: Router, sub: GraphRequest
) -> tuple[GraphResponse, bool]:
    """One part through the pipeline, with its fault; True when the batch's answer is lost."""
    fault = _part_fault(ctx, sub)
    if fault is FaultKind.HTTP_503:
        err = GraphError(
            503,
            "serviceNotAvailable",
            "Service is temporarily unavailable. Please retry.",
            {"Retry-After": "1"},
        )
        return error_response(err, sub, ctx.now()), False
    if fault in (FaultKind.HTTP_504, FaultKind.TIMEOUT):
        err = GraphError(504, "UnknownError", "The gateway did not receive a timely response.")
        return error_response(err, sub, ctx.now()), False
    if fault is FaultKind.RESET:
        err = GraphError(504, "UnknownError", "The connection was reset.")
        return error_response(err, sub, ctx.now()), True  # never answered: the batch is lost
    resp = await dispatch(ctx, router, sub)
    return resp, fault is FaultKind.LOST_PATCH_ANSWER and resp.status < 300


def make_batch_handler(router: Router) -> Handler:
    """The ``$batch`` handler, dispatching its parts through ``router``."""

    async def batch(ctx: SimContext, req: GraphRequest, params: dict[str, str]) -> GraphResponse:
        """``POST /$batch``."""
        payload = req.json_object()
        parts = payload.get("requests")
        if not isinstance(parts, list) or not parts:
            raise _bad("Invalid batch payload format.")
        limit = ctx.limits.batch_max_requests
        if len(parts) > limit:
            raise _bad(f"Number of batch request steps exceeds the maximum of {limit}.")
        parsed: list[tuple[str, GraphRequest, list[str]]] = []
        ids: set[str] = set()
        for raw in parts:
            rid, sub, depends = _parse_part(raw, ids)
            for dep in depends:
                if dep not in ids:
                    raise _bad(f"Request '{rid}' depends on an unknown or later request '{dep}'.")
            ids.add(rid)
            parsed.append((rid, sub, depends))
        responses: list[JSON] = []
        lose_answer = False
        if any(depends for _, _, depends in parsed):
            status: dict[str, int] = {}
            for rid, sub, depends in parsed:
                if any(status.get(d, 424) >= 400 for d in depends):
                    status[rid] = 424
                    body = error_json(
                        "FailedDependency", "Dependent request failed.", sub, ctx.now()
                    )
                    responses.append(
                        {
                            "id": rid,
                            "status": 424,
                            "headers": {"Content-Type": JSON_CONTENT_TYPE},
                            "body": body,
                        }
                    )
                    continue
                resp, lost = await _run_part(ctx, router, sub)
                lose_answer = lose_answer or lost
                status[rid] = resp.status
                responses.append(_item(rid, resp))
        else:
            outlook = asyncio.Semaphore(ctx.limits.batch_outlook_parallel)

            async def run(rid: str, sub: GraphRequest) -> bool:
                try:
                    found = router.match(sub.method, sub.path)
                except GraphError:
                    found = None
                if found is not None and found[0].resource is Resource.OUTLOOK:
                    async with outlook:
                        resp, lost = await _run_part(ctx, router, sub)
                else:
                    resp, lost = await _run_part(ctx, router, sub)
                responses.append(_item(rid, resp))
                return lost

            lost_parts = await asyncio.gather(*(run(rid, sub) for rid, sub, _ in parsed))
            lose_answer = any(lost_parts)
        answer = ok({"responses": responses})
        answer.drop_connection = lose_answer
        return answer

    return batch


def add_batch_route(router: Router) -> None:
    """Register ``POST /$batch``."""
    router.add("POST", "/$batch", make_batch_handler(router), "$batch", Resource.BATCH, None)
