"""Graph's directory routes: ``/users``, ``/users/{id|upn}``, ``/users/delta`` and ``/users/delta()``.

Delta semantics: the first call (query parameters such as ``$select`` allowed) pages
through every user with ``@odata.nextLink`` and ends with an ``@odata.deltaLink``
whose token is the tenant's change serial at the first call. A call on that link
returns only users with a property changed since (``/_sim/`` admin changes record
them), again paged, and a fresh delta link. ``Prefer: return=minimal`` returns only
the changed properties (plus ``id``) and is echoed in ``Preference-Applied``.
Tokens are opaque base64url JSON and carry the ``$select`` list and the page size
along: ``$top`` (first call only, as Graph allows query parameters only there) or
``Prefer: odata.maxpagesize`` (any call; it overrides the carried size), default 200,
at most 999.
"""

from __future__ import annotations

import base64
import binascii
import json

from mmsd.sim.graph_http import (
    GraphError,
    GraphRequest,
    GraphResponse,
    Resource,
    Router,
    SimContext,
    ok,
    page_size,
    parse_select,
    project,
)
from mmsd.sim.model import JSON, SimUser

USERS_CONTEXT = "https://graph.microsoft.com/v1.0/$metadata#users"
DELTA_PAGE = 200
MAX_DELTA_PAGE = 999


def _encode(token: JSON) -> str:
    raw = json.dumps(token, separators=(",", ":")).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def _decode(text: str) -> JSON:
    try:
        pad = "=" * (-len(text) % 4)
        value = json.loads(base64.urlsafe_b64decode(text + pad))
    except (ValueError, binascii.Error) as exc:
        raise GraphError(400, "BadRequest", "The delta token is invalid.") from exc
    if not isinstance(value, dict):
        raise GraphError(400, "BadRequest", "The delta token is invalid.")
    return value


def user_json(user: SimUser, select: list[str] | None) -> JSON:
    """A user as Graph returns it, restricted to ``$select`` (``id`` always kept)."""
    return project(user.graph_json(), select, ("id",))


async def list_users(ctx: SimContext, req: GraphRequest, params: dict[str, str]) -> GraphResponse:
    """``GET /users``: pages of ``$top`` (default 100, max 999) in tenant order."""
    select = parse_select(req)
    size = page_size(req, 100, 999)
    skip = _skiptoken_offset(req)
    users = ctx.state.users
    page = users[skip : skip + size]
    body: JSON = {
        "@odata.context": USERS_CONTEXT,
        "value": [user_json(u, select) for u in page],
    }
    if skip + size < len(users):
        body["@odata.nextLink"] = ctx.next_link(
            req, skiptoken=_encode({"o": skip + size}), top=str(size), skip=None
        )
    return ok(body)


def _skiptoken_offset(req: GraphRequest) -> int:
    raw = req.query.get("$skiptoken")
    if raw is None:
        return 0
    offset = _decode(raw).get("o")
    if not isinstance(offset, int) or offset < 0:
        raise GraphError(400, "BadRequest", "The skip token is invalid.")
    return offset


async def get_user(ctx: SimContext, req: GraphRequest, params: dict[str, str]) -> GraphResponse:
    """``GET /users/{id | userPrincipalName}``."""
    user = ctx.require_user(params["user"])
    body = {"@odata.context": USERS_CONTEXT + "/$entity", **user_json(user, parse_select(req))}
    return ok(body)


async def users_delta(ctx: SimContext, req: GraphRequest, params: dict[str, str]) -> GraphResponse:
    """``GET /users/delta`` (and ``delta()``): full sync pages, then changes since a token."""
    state = ctx.state
    minimal = req.prefer().get("return") == "minimal"
    if "$skiptoken" in req.query:
        token = _decode(req.query["$skiptoken"])
    elif "$deltatoken" in req.query:
        start = _decode(req.query["$deltatoken"])
        token = {
            "o": 0,
            "v": state.serial,
            "since": start.get("v", 0),
            "s": start.get("s"),
            "n": start.get("n"),
        }
    else:
        token = {"o": 0, "v": state.serial, "since": None, "s": parse_select(req)}
        token["n"] = page_size(req, DELTA_PAGE, MAX_DELTA_PAGE)
    select = token.get("s")
    since = token.get("since")
    offset = int(token.get("o", 0))
    version = int(token.get("v", 0))
    carried = token.get("n")
    size = carried if isinstance(carried, int) and carried > 0 else DELTA_PAGE
    # Prefer: odata.maxpagesize may come on any call; $top only on the first (carried).
    size = page_size(GraphRequest(req.method, req.path, {}, req.headers), size, MAX_DELTA_PAGE)
    if since is None:
        candidates = state.users
    else:
        changed = [
            uid
            for uid, props in state.user_changes.items()
            if max(props.values(), default=0) > since and state.user(uid) is not None
        ]
        changed.sort(key=state.user_position)
        candidates = [u for u in (state.user(uid) for uid in changed) if u is not None]
    page = candidates[offset : offset + size]
    items: list[JSON] = []
    for user in page:
        data = user_json(user, select)
        if minimal and since is not None:
            props = {k for k, v in state.user_changes.get(user.id, {}).items() if v > since}
            data = {k: v for k, v in data.items() if k == "id" or k in props}
        items.append(data)
    body: JSON = {"@odata.context": USERS_CONTEXT, "value": items}
    base = f"{ctx.base_url}/users/delta()"
    if offset + size < len(candidates):
        nxt = {"o": offset + size, "v": version, "since": since, "s": select, "n": size}
        body["@odata.nextLink"] = f"{base}?$skiptoken={_encode(nxt)}"
    else:
        last = {"v": version, "s": select, "n": token.get("n")}
        body["@odata.deltaLink"] = f"{base}?$deltatoken={_encode(last)}"
    headers = {"Preference-Applied": "return=minimal"} if minimal else None
    return ok(body, headers=headers)


def add_user_routes(router: Router) -> None:
    """Register the directory routes (delta before the ``{user}`` pattern)."""
    router.add("GET", "/users", list_users, "users", Resource.DIRECTORY, None)
    router.add("GET", "/users/delta", users_delta, "users/delta", Resource.DIRECTORY, None)
    router.add("GET", "/users/delta()", users_delta, "users/delta", Resource.DIRECTORY, None)
    router.add("GET", "/users/{user}", get_user, "users/{id}", Resource.DIRECTORY)
