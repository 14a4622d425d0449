"""Credentials for Graph: azure-identity from a tenant's config, behind a token cache.

``build_credential`` reads one tenant's config mapping (the keys of SPEC section 7):

- ``tenant_id`` and ``client_id`` (not needed for a system-assigned managed identity);
- exactly one of ``client_secret_file`` (a file holding the secret),
  ``certificate_file`` (PEM with the private key; ``certificate_password_file``
  optional) or ``managed_identity = true`` (``managed_identity_client_id`` optional
  for a user-assigned identity);
- ``authority`` (a non-Microsoft token endpoint such as the simulator's,
  ``https://host:port`` without a path);
- ``ca_file``: a CA bundle to verify the token endpoint with.

The credential is wrapped in :class:`CachingCredential`: one token is shared by
every request until shortly before it expires, one refresh at a time, and closing
it is the owner's job — never done per token fetch (kiota-python #528).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Protocol

from azure.core.credentials import AccessToken

#: Refresh a token this many seconds before it expires.
REFRESH_MARGIN_S = 300.0


class AsyncTokenSource(Protocol):
    """What mmsd needs of an azure-identity async credential."""

    async def get_token(self, *scopes: str, **kwargs: Any) -> AccessToken:
        """Fetch a token for ``scopes``."""
        ...

    async def close(self) -> None:
        """Release the credential's transport."""
        ...


class CachingCredential:
    """An async credential that fetches one token per scope set and reuses it until expiry.

    kiota asks for a token on every request; azure-identity caches too, but this cache
    costs a dict lookup, refreshes single-flight under concurrency, and counts fetches
    (``fetches``) so tests can prove tokens are not fetched per request.
    """

    def __init__(self, inner: AsyncTokenSource, refresh_margin_s: float = REFRESH_MARGIN_S) -> None:
        self._inner = inner
        self._margin = refresh_margin_s
        self._tokens: dict[tuple[str, ...], AccessToken] = {}
        self._lock = asyncio.Lock()
        self.fetches = 0

    async def get_token(self, *scopes: str, **kwargs: Any) -> AccessToken:
        """A cached token for ``scopes``; a CAE claims challenge always fetches anew."""
        key = tuple(scopes)
        claims = kwargs.get("claims")
        token = self._tokens.get(key)
        if not claims and token is not None and token.expires_on - self._margin > time.time():
            return token
        async with self._lock:
            token = self._tokens.get(key)
            if not claims and token is not None and token.expires_on - self._margin > time.time():
                return token
            token = await self._inner.get_token(*scopes, **kwargs)
            self.fetches += 1
            self._tokens[key] = token
            return token

    async def close(self) -> None:
        """Close the wrapped credential (once, by the owner of the Graph client)."""
        await self._inner.close()

    async def __aenter__(self) -> CachingCredential:
        return self

    async def __aexit__(self, *exc: object) -> None:
        # Deliberately not closing: a library that uses ``async with credential`` around
        # one token fetch must not tear down the shared transport.
        return None


def _read_secret(path: str, what: str) -> str:
    try:
        value = Path(path).read_text(encoding="utf-8").strip()
    except OSError as exc:
        raise ValueError(f"credential: cannot read {what} file {path}: {exc.strerror}") from exc
    if not value:
        raise ValueError(f"credential: {what} file {path} is empty")
    return value


def _require(config: Mapping[str, Any], key: str) -> str:
    value = config.get(key)
    if not isinstance(value, str) or not value:
        raise ValueError(f"credential: {key} is required")
    return value


def build_credential(config: Mapping[str, Any]) -> CachingCredential:
    """Build the tenant's azure-identity async credential from its config mapping."""
    from azure.identity.aio import (
        CertificateCredential,
        ClientSecretCredential,
        ManagedIdentityCredential,
    )

    kinds = [
        k
        for k in ("client_secret_file", "certificate_file", "managed_identity")
        if config.get(k) not in (None, False, "")
    ]
    if len(kinds) != 1:
        raise ValueError(
            "credential: set exactly one of client_secret_file, certificate_file, "
            f"managed_identity (found {', '.join(kinds) or 'none'})"
        )
    common: dict[str, Any] = {}
    authority = config.get("authority")
    if authority:
        if not isinstance(authority, str) or not authority.startswith("https://"):
            raise ValueError("credential: authority must be an https:// URL")
        # The async credentials talk to the token endpoint directly (no MSAL instance
        # discovery), so a non-Microsoft authority needs nothing more.
        common["authority"] = authority.rstrip("/")
    ca_file = config.get("ca_file")
    if ca_file:
        if not Path(str(ca_file)).is_file():
            raise ValueError(f"credential: ca_file {ca_file} does not exist")
        common["connection_verify"] = str(ca_file)

    inner: AsyncTokenSource
    kind = kinds[0]
    if kind == "managed_identity":
        if config.get("managed_identity") is not True:
            raise ValueError("credential: managed_identity must be true or absent")
        client_id = config.get("managed_identity_client_id")
        common.pop("authority", None)
        inner = ManagedIdentityCredential(client_id=client_id, **common)
    elif kind == "client_secret_file":
        secret = _read_secret(str(config["client_secret_file"]), "client secret")
        inner = ClientSecretCredential(
            _require(config, "tenant_id"), _require(config, "client_id"), secret, **common
        )
    else:
        password_file = config.get("certificate_password_file")
        password = (
            _read_secret(str(password_file), "certificate password") if password_file else None
        )
        cert_path = str(config["certificate_file"])
        if not Path(cert_path).is_file():
            raise ValueError(f"credential: certificate_file {cert_path} does not exist")
        inner = CertificateCredential(
            _require(config, "tenant_id"),
            _require(config, "client_id"),
            certificate_path=cert_path,
            password=password,
            **common,
        )
    return CachingCredential(inner)
