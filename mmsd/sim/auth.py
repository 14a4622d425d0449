"""The simulator's OAuth2 authority: client-credentials tokens over HTTPS for one tenant.

:class:`SimAuthority` plays Microsoft Entra ID for the Graph simulator. It holds a
throwaway app registration (``client_id``, ``client_secret``, optional client
certificates), a one-off CA whose PEM it writes to ``work_dir/ca.pem``, a TLS
server certificate for ``127.0.0.1``/``::1``/``localhost`` signed by that CA, and
an RSA key with which it signs Graph-shaped access tokens (RS256 JWTs with
``aud`` ``https://graph.microsoft.com``, ``iss``, ``tid``, ``appid``/``azp``,
``roles``, ``iat``/``nbf``/``exp``). Graph requests are checked with
:meth:`SimAuthority.validate_bearer`, which caches verified tokens by their
string so that a hit costs a dictionary lookup and a clock read.

Routes served by :meth:`SimAuthority.app` (mount it on the HTTPS site):

- ``POST /{tenant}/oauth2/v2.0/token``: ``grant_type=client_credentials`` with a
  ``client_secret`` or a ``client_assertion`` (``jwt-bearer``, RS256 or PS256,
  key named by ``x5t`` or ``x5t#S256``); ``scope`` must be one ``…/.default``.
  Errors use Entra ID's JSON shape (``error``, ``error_description`` starting
  ``AADSTSnnn:``, ``error_codes``, ``timestamp``, ``trace_id``,
  ``correlation_id``, ``error_uri``).
- ``GET /{tenant}/v2.0/.well-known/openid-configuration``: what MSAL fetches
  ("tenant discovery") before its first token request.
- ``GET /{tenant}/discovery/v2.0/keys``: the JWKS of the token-signing key.

How to point azure-identity 1.27 at it (``authority`` is ``https://127.0.0.1:Q``,
no path; the same keywords work for the sync classes and for
``azure.identity.aio``)::

    ClientSecretCredential(tenant_id, client_id, client_secret,
                           authority=authority,
                           disable_instance_discovery=True,
                           connection_verify=str(ca_file))
    CertificateCredential(tenant_id, client_id,
                          certificate_data=cert_pem + key_pem,
                          authority=authority,
                          disable_instance_discovery=True,
                          connection_verify=str(ca_file))

Findings (verified by ``tests/sim/test_auth.py`` and by reading the sources):

- ``connection_verify=str(ca_file)`` is the right knob: azure-identity passes
  the credential's keywords to the azure-core transport it builds
  (``RequestsTransport`` for sync, ``AioHttpTransport`` for async), which turns
  a path into the trusted CA bundle. No environment variable is needed.
- ``disable_instance_discovery=True`` is required for the sync credentials:
  they go through MSAL, which otherwise asks
  ``https://login.microsoftonline.com/common/discovery/instance`` about any
  host it does not know, i.e. sends traffic off loopback and then fails with
  ``invalid_instance``. With it, MSAL fetches only
  ``{authority}/{tenant}/v2.0/.well-known/openid-configuration`` and then the
  ``token_endpoint`` named there. The async credentials do not use MSAL for the
  request and post straight to ``{authority}/{tenant}/oauth2/v2.0/token``; they
  accept the keyword too.
- Certificate assertions differ by flavour: sync (MSAL, given a SHA-1
  thumbprint by azure-identity) signs RS256 with ``x5t``; async (azure-identity's
  own client) signs PS256 with a padded base64url ``x5t#S256``. Both are
  accepted. Client assertions are made with the client's real clock, so their
  ``nbf``/``exp`` are checked against real wall time (5 min skew), not the
  simulator's clock; the access tokens this authority issues follow the
  injected clock.
- kiota-authentication-azure 1.16.0 does NOT close the credential after a token
  fetch (issue #528 is fixed in this version: its provider "does not own" the
  credential). Concurrent requests through ``AzureIdentityAuthenticationProvider``
  all carry valid tokens and the credential keeps working afterwards. kiota
  asks for tokens with ``enable_cae=True``, so azure-identity sends a
  ``claims`` parameter (``xms_cc``: ``CP1``), which this authority ignores.
- azure-identity's async credentials have no single-flight: N concurrent first
  requests fetch N tokens (16 of 16 in the test). The daemon should call
  ``get_token`` once before fanning out.
- An untrusted CA surfaces as ``azure.core.exceptions.ServiceRequestError``
  (``CERTIFICATE_VERIFY_FAILED``), not ``ClientAuthenticationError``.
- Throughput of :meth:`SimAuthority.validate_bearer` on one core: about 900,000
  checks/s for a cached token, about 34,000/s for first sightings (RSA verify).
"""

from __future__ import annotations

import base64
import enum
import hashlib
import hmac
import json
import logging
import os
import secrets
import ssl
import time
import uuid
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from aiohttp import web
from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa
from yarl import URL

from mmsd.clock import Clock, SystemClock
from mmsd.sim.tls import CertificateAuthority, b64url, self_signed_client_certificate, thumbprints

logger = logging.getLogger(__name__)

GRAPH_RESOURCE = "https://graph.microsoft.com"
GRAPH_APP_ID = "00000003-0000-0000-c000-000000000000"
GRAPH_SCOPE = GRAPH_RESOURCE + "/.default"
GRAPH_UNAUTHORIZED_CODE = "InvalidAuthenticationToken"
JWT_BEARER_ASSERTION = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"
APP_ROLES = ("Calendars.ReadWrite", "OnlineMeetings.ReadWrite.All", "User.Read.All")

_GRAPH_AUDIENCES = frozenset({GRAPH_RESOURCE, GRAPH_RESOURCE + "/", GRAPH_APP_ID})
_RESERVED_SCOPES = frozenset({"openid", "profile", "offline_access"})
_DEFAULT_SUFFIX = "/.default"
_SKEW_S = 300.0
_MAX_CACHED_TOKENS = 65_536
_NO_STORE = {"Cache-Control": "no-store, no-cache", "Pragma": "no-cache"}


class TokenProblem(enum.StrEnum):
    """Why a Graph request's bearer token was refused (None from ``bearer_problem`` = accepted)."""

    MISSING = "missing"
    WRONG_SCHEME = "wrongScheme"
    MALFORMED = "malformed"
    BAD_SIGNATURE = "badSignature"
    WRONG_AUDIENCE = "wrongAudience"
    WRONG_TENANT = "wrongTenant"
    NOT_YET_VALID = "notYetValid"
    EXPIRED = "expired"

    @property
    def message(self) -> str:
        """Graph's 401 message for this problem (code ``InvalidAuthenticationToken``)."""
        return _PROBLEM_MESSAGES[self]


_PROBLEM_MESSAGES: dict[TokenProblem, str] = {
    TokenProblem.MISSING: "Access token is empty.",
    TokenProblem.WRONG_SCHEME: "Access token validation failure. Invalid authentication scheme.",
    TokenProblem.MALFORMED: "IDX14100: JWT is not well formed.",
    TokenProblem.BAD_SIGNATURE: "Access token validation failure. Invalid signature.",
    TokenProblem.WRONG_AUDIENCE: "Access token validation failure. Invalid audience.",
    TokenProblem.WRONG_TENANT: "Access token validation failure. Invalid tenant.",
    TokenProblem.NOT_YET_VALID: "Lifetime validation failed, the token is not yet valid.",
    TokenProblem.EXPIRED: "Lifetime validation failed, the token is expired.",
}


class _AadError(Exception):
    """A token-endpoint refusal, rendered in Entra ID's error JSON shape."""

    def __init__(self, status: int, error: str, code: int, description: str) -> None:
        super().__init__(f"AADSTS{code}")
        self.status = status
        self.error = error
        self.code = code
        self.description = description


def _b64url_decode(segment: str) -> bytes:
    """Strict base64url decoding that tolerates missing or present padding."""
    padded = segment + "=" * (-len(segment) % 4)
    return base64.b64decode(padded, altchars=b"-_", validate=True)


def _decode_jws(token: str) -> tuple[dict[str, Any], dict[str, Any], bytes, bytes]:
    """Split a compact JWS into (header, claims, signing input, signature); ValueError if malformed."""
    if not token.isascii():
        raise ValueError("non-ASCII token")
    parts = token.split(".")
    if len(parts) != 3:
        raise ValueError("not three segments")
    try:
        header = json.loads(_b64url_decode(parts[0]))
        claims = json.loads(_b64url_decode(parts[1]))
        signature = _b64url_decode(parts[2])
    except ValueError as exc:  # binascii.Error and JSONDecodeError are ValueErrors
        raise ValueError("undecodable segment") from exc
    if not isinstance(header, dict) or not isinstance(claims, dict):
        raise ValueError("header or claims not an object")
    return header, claims, f"{parts[0]}.{parts[1]}".encode("ascii"), signature


def _number(value: object) -> float | None:
    """A JSON number claim as float; None if absent or not a number."""
    if isinstance(value, int | float) and not isinstance(value, bool):
        return float(value)
    return None


def _same_endpoint(claimed: object, expected: URL) -> bool:
    """Whether an assertion's ``aud`` names this token endpoint (host, port, path; case-blind)."""
    if not isinstance(claimed, str):
        return False
    try:
        url = URL(claimed)
    except (ValueError, TypeError):
        return False
    return (
        url.scheme == expected.scheme
        and (url.host or "").lower() == (expected.host or "").lower()
        and url.port == expected.port
        and url.path.rstrip("/").lower() == expected.path.rstrip("/").lower()
    )


def _form_value(form: Mapping[str, object], name: str) -> str | None:
    value = form.get(name)
    return value if isinstance(value, str) else None


def _write_private(path: Path, data: bytes) -> None:
    """Write a key file readable by the owner only."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as handle:
        handle.write(data)


class SimAuthority:
    """OAuth2 client-credentials authority for one simulated tenant."""

    def __init__(
        self,
        tenant_id: str,
        work_dir: Path,
        *,
        token_lifetime_s: int = 3600,
        clock: Clock | None = None,
    ) -> None:
        if token_lifetime_s <= 0:
            raise ValueError("token_lifetime_s must be positive")
        self.tenant_id = tenant_id
        self.client_id = str(uuid.uuid4())
        self.client_secret = secrets.token_urlsafe(30)
        self._service_principal_id = str(uuid.uuid4())
        self._clock: Clock = clock if clock is not None else SystemClock()
        self._lifetime_s = token_lifetime_s
        self._tokens_issued = 0

        work_dir.mkdir(parents=True, exist_ok=True)
        ca = CertificateAuthority()
        server = ca.issue_server_certificate()
        self.ca_file = work_dir / "ca.pem"
        self.ca_file.write_bytes(ca.cert_pem)
        self._server_cert_file = work_dir / "server-cert.pem"
        self._server_cert_file.write_bytes(server.cert_pem + ca.cert_pem)
        self._server_key_file = work_dir / "server-key.pem"
        _write_private(self._server_key_file, server.key_pem)

        self._signing_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        self._verify_key = self._signing_key.public_key()
        spki = self._verify_key.public_bytes(
            serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
        )
        self._kid = b64url(hashlib.sha1(spki).digest())
        header = {"typ": "JWT", "alg": "RS256", "x5t": self._kid, "kid": self._kid}
        self._header_segment = b64url(json.dumps(header, separators=(",", ":")).encode())

        self._client_keys: dict[str, rsa.RSAPublicKey] = {}  # x5t and x5t#S256 -> key
        self._verified: dict[str, float] = {}  # token -> exp (epoch seconds)

    @property
    def tokens_issued(self) -> int:
        """How many access tokens the token endpoint has handed out (for tests and counters)."""
        return self._tokens_issued

    # --- TLS and app registration ------------------------------------------------

    def server_ssl_context(self) -> ssl.SSLContext:
        """A TLS server context with the loopback certificate signed by ``ca_file``'s CA."""
        context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        context.load_cert_chain(self._server_cert_file, self._server_key_file)
        return context

    def register_certificate(self, cert_pem: bytes) -> str:
        """Register an RSA client certificate (``CertificateCredential``); returns its SHA-1 hex thumbprint."""
        cert = x509.load_pem_x509_certificate(cert_pem)
        key = cert.public_key()
        if not isinstance(key, rsa.RSAPublicKey):
            raise ValueError("client certificates must carry an RSA key")
        prints = thumbprints(cert)
        self._client_keys[prints.x5t] = key
        self._client_keys[prints.x5t_s256] = key
        return prints.sha1_hex

    def make_client_certificate(self) -> tuple[bytes, bytes]:
        """Generate and register a self-signed client certificate; returns (cert_pem, key_pem)."""
        pair = self_signed_client_certificate(f"mmsd simulator app {self.client_id}")
        self.register_certificate(pair.cert_pem)
        return pair.cert_pem, pair.key_pem

    # --- bearer validation (hot path) --------------------------------------------

    def validate_bearer(self, authorization_header: str | None) -> bool:
        """Whether an ``Authorization`` header carries a valid, unexpired Graph token from us."""
        return self.bearer_problem(authorization_header) is None

    def bearer_problem(self, authorization_header: str | None) -> TokenProblem | None:
        """Why the header's token is refused, or None if it is accepted; cached per token string."""
        if not authorization_header:
            return TokenProblem.MISSING
        scheme, _, rest = authorization_header.partition(" ")
        if scheme.lower() != "bearer":
            return TokenProblem.WRONG_SCHEME
        token = rest.strip()
        if not token:
            return TokenProblem.MISSING
        now = self._clock.now().timestamp()
        expires = self._verified.get(token)
        if expires is not None:
            return None if now < expires else TokenProblem.EXPIRED
        problem, expires = self._verify_token(token, now)
        if problem is None:
            if len(self._verified) >= _MAX_CACHED_TOKENS:
                self._verified.clear()
            self._verified[token] = expires
        return problem

    def _verify_token(self, token: str, now: float) -> tuple[TokenProblem | None, float]:
        """Full check of one access token: signature, audience, tenant, lifetime."""
        try:
            header, claims, signing_input, signature = _decode_jws(token)
        except ValueError:
            return TokenProblem.MALFORMED, 0.0
        if header.get("alg") != "RS256" or header.get("kid") != self._kid:
            return TokenProblem.BAD_SIGNATURE, 0.0
        if b64url(signature) != token.rsplit(".", 1)[1]:
            return TokenProblem.BAD_SIGNATURE, 0.0  # non-canonical encoding of the signature
        try:
            self._verify_key.verify(signature, signing_input, padding.PKCS1v15(), hashes.SHA256())
        except InvalidSignature:
            return TokenProblem.BAD_SIGNATURE, 0.0
        if claims.get("aud") not in _GRAPH_AUDIENCES:
            return TokenProblem.WRONG_AUDIENCE, 0.0
        if str(claims.get("tid", "")).lower() != self.tenant_id.lower():
            return TokenProblem.WRONG_TENANT, 0.0
        expires, not_before = _number(claims.get("exp")), _number(claims.get("nbf"))
        if expires is None or (not_before is None and "nbf" in claims):
            return TokenProblem.MALFORMED, 0.0
        if not_before is not None and not_before > now + _SKEW_S:
            return TokenProblem.NOT_YET_VALID, 0.0
        if now >= expires:
            return TokenProblem.EXPIRED, 0.0
        return None, expires

    # --- HTTP surface ------------------------------------------------------------

    def app(self) -> web.Application:
        """A fresh aiohttp application with the token endpoint and the metadata routes."""
        app = web.Application()
        app.router.add_post("/{tenant}/oauth2/v2.0/token", self._token)
        app.router.add_get(
            "/{tenant}/v2.0/.well-known/openid-configuration", self._openid_configuration
        )
        app.router.add_get("/{tenant}/discovery/v2.0/keys", self._keys)
        return app

    def _check_tenant(self, tenant: str, error: str) -> None:
        if tenant.lower() != self.tenant_id.lower():
            raise _AadError(
                400,
                error,
                90002,
                f"Tenant '{tenant}' not found. Check to make sure you have the correct tenant ID "
                "and are signing into the correct cloud.",
            )

    async def _openid_configuration(self, request: web.Request) -> web.Response:
        try:
            self._check_tenant(request.match_info["tenant"], "invalid_tenant")
        except _AadError as err:
            return self._error_response(err, request)
        base = f"{request.url.origin()}/{self.tenant_id}"
        body = {
            "token_endpoint": f"{base}/oauth2/v2.0/token",
            "token_endpoint_auth_methods_supported": ["client_secret_post", "private_key_jwt"],
            "jwks_uri": f"{base}/discovery/v2.0/keys",
            "response_modes_supported": ["query", "fragment", "form_post"],
            "subject_types_supported": ["pairwise"],
            "id_token_signing_alg_values_supported": ["RS256"],
            "response_types_supported": ["code", "id_token", "code id_token", "id_token token"],
            "scopes_supported": ["openid", "profile", "email", "offline_access"],
            "issuer": f"{base}/v2.0",
            "request_uri_parameter_supported": False,
            "authorization_endpoint": f"{base}/oauth2/v2.0/authorize",
            "device_authorization_endpoint": f"{base}/oauth2/v2.0/devicecode",
            "end_session_endpoint": f"{base}/oauth2/v2.0/logout",
            "http_logout_supported": True,
            "frontchannel_logout_supported": True,
            "tenant_region_scope": "WW",
            "cloud_instance_name": "microsoftonline.com",
            "cloud_graph_host_name": "graph.windows.net",
            "msgraph_host": "graph.microsoft.com",
        }
        return web.json_response(body)

    async def _keys(self, request: web.Request) -> web.Response:
        try:
            self._check_tenant(request.match_info["tenant"], "invalid_tenant")
        except _AadError as err:
            return self._error_response(err, request)
        numbers = self._verify_key.public_numbers()
        n = numbers.n.to_bytes((numbers.n.bit_length() + 7) // 8, "big")
        e = numbers.e.to_bytes((numbers.e.bit_length() + 7) // 8, "big")
        key = {"kty": "RSA", "use": "sig", "kid": self._kid, "x5t": self._kid}
        key |= {"n": b64url(n), "e": b64url(e)}
        return web.json_response({"keys": [key]})

    async def _token(self, request: web.Request) -> web.Response:
        try:
            self._check_tenant(request.match_info["tenant"], "invalid_request")
            form = await request.post()
            endpoint = request.url.origin().with_path(request.path)
            body = self._grant(form, endpoint)
        except _AadError as err:
            logger.info("token request refused: AADSTS%d (%s)", err.code, err.error)
            return self._error_response(err, request)
        return web.json_response(body, headers=_NO_STORE)

    def _grant(self, form: Mapping[str, object], endpoint: URL) -> dict[str, object]:
        """Check a client-credentials request and issue a token, or raise :class:`_AadError`."""

        def required(name: str) -> str:
            value = _form_value(form, name)
            if not value:
                raise _AadError(
                    400,
                    "invalid_request",
                    900144,
                    f"The request body must contain the following parameter: '{name}'.",
                )
            return value

        grant_type = required("grant_type")
        if grant_type != "client_credentials":
            raise _AadError(
                400,
                "unsupported_grant_type",
                70003,
                f"The app requested an unsupported grant type '{grant_type}'.",
            )
        client_id = required("client_id")
        if client_id.lower() != self.client_id:
            raise _AadError(
                400,
                "unauthorized_client",
                700016,
                f"Application with identifier '{client_id}' was not found in the directory "
                f"'{self.tenant_id}'.",
            )
        resource = self._resource(required("scope"))
        secret = _form_value(form, "client_secret")
        assertion = _form_value(form, "client_assertion")
        if secret is not None:
            if not hmac.compare_digest(secret.encode(), self.client_secret.encode()):
                raise _AadError(
                    401,
                    "invalid_client",
                    7000215,
                    "Invalid client secret provided. Ensure the secret being sent in the request "
                    f"is the client secret value, not the client secret ID, for a secret added to "
                    f"app '{self.client_id}'.",
                )
            auth_class = "1"
        elif assertion is not None:
            if _form_value(form, "client_assertion_type") != JWT_BEARER_ASSERTION:
                raise _AadError(
                    400,
                    "invalid_request",
                    90014,
                    f"The request body must contain a 'client_assertion_type' of "
                    f"'{JWT_BEARER_ASSERTION}'.",
                )
            self._verify_assertion(assertion, endpoint)
            auth_class = "2"
        else:
            raise _AadError(
                401,
                "invalid_client",
                7000218,
                "The request body must contain the following parameter: 'client_assertion' or "
                "'client_secret'.",
            )
        token = self._issue(resource, auth_class)
        return {
            "token_type": "Bearer",
            "expires_in": self._lifetime_s,
            "ext_expires_in": self._lifetime_s,
            "access_token": token,
        }

    @staticmethod
    def _resource(scope: str) -> str:
        """The resource a client-credentials ``scope`` names (``…/.default`` required)."""
        scopes = [s for s in scope.split() if s not in _RESERVED_SCOPES]
        if len(scopes) == 1 and scopes[0].endswith(_DEFAULT_SUFFIX):
            resource = scopes[0][: -len(_DEFAULT_SUFFIX)]
            if resource:
                return resource
        raise _AadError(
            400,
            "invalid_scope",
            1002012,
            f"The provided value for scope {scope} is not valid. Client credential flows must "
            "have a scope value with /.default suffixed to the resource identifier "
            "(application ID URI).",
        )

    def _verify_assertion(self, assertion: str, endpoint: URL) -> None:
        """Check a ``private_key_jwt`` client assertion against the registered certificates."""
        try:
            header, claims, signing_input, signature = _decode_jws(assertion)
        except ValueError:
            raise _AadError(
                400, "invalid_request", 50027, "JWT token is invalid or malformed."
            ) from None
        key = None
        for name in ("x5t#S256", "x5t"):
            thumb = header.get(name)
            if isinstance(thumb, str) and key is None:
                key = self._client_keys.get(thumb.rstrip("="))
        if key is None:
            raise _AadError(
                401,
                "invalid_client",
                700027,
                "Client assertion failed signature validation. [Reason - The key was not found.]",
            )
        pad: padding.AsymmetricPadding
        if header.get("alg") == "RS256":
            pad = padding.PKCS1v15()
        elif header.get("alg") == "PS256":
            pad = padding.PSS(mgf=padding.MGF1(hashes.SHA256()), salt_length=padding.PSS.AUTO)
        else:
            raise _AadError(
                401, "invalid_client", 700027, "Client assertion uses an unsupported algorithm."
            )
        try:
            key.verify(signature, signing_input, pad, hashes.SHA256())
        except InvalidSignature:
            raise _AadError(
                401, "invalid_client", 700027, "Client assertion contains an invalid signature."
            ) from None
        if claims.get("iss") != self.client_id or claims.get("sub") != self.client_id:
            raise _AadError(
                401,
                "invalid_client",
                700021,
                "Client assertion application identifier doesn't match 'client_id' parameter.",
            )
        if not _same_endpoint(claims.get("aud"), endpoint):
            raise _AadError(
                401,
                "invalid_client",
                700022,
                "Client assertion audience claim does not match the token endpoint.",
            )
        wall = time.time()  # the client signs with its real clock, not the simulator's
        expires, not_before = _number(claims.get("exp")), _number(claims.get("nbf"))
        if (
            expires is None
            or wall >= expires + _SKEW_S
            or (not_before is not None and not_before > wall + _SKEW_S)
        ):
            raise _AadError(
                401,
                "invalid_client",
                700024,
                "Client assertion is not within its valid time range.",
            )

    def _issue(self, resource: str, auth_class: str) -> str:
        """Sign a Graph-shaped app-only access token (v1.0 claims) for ``resource``."""
        now = int(self._clock.now().timestamp())
        issuer = f"https://sts.windows.net/{self.tenant_id}/"
        claims = {
            "aud": resource,
            "iss": issuer,
            "iat": now,
            "nbf": now,
            "exp": now + self._lifetime_s,
            "app_displayname": "mmsd simulator",
            "appid": self.client_id,
            "appidacr": auth_class,
            "azp": self.client_id,
            "azpacr": auth_class,
            "idp": issuer,
            "idtyp": "app",
            "oid": self._service_principal_id,
            "roles": list(APP_ROLES),
            "sub": self._service_principal_id,
            "tid": self.tenant_id,
            "uti": b64url(secrets.token_bytes(16)),
            "ver": "1.0",
        }
        payload = b64url(json.dumps(claims, separators=(",", ":")).encode())
        signing_input = f"{self._header_segment}.{payload}"
        signature = self._signing_key.sign(
            signing_input.encode("ascii"), padding.PKCS1v15(), hashes.SHA256()
        )
        self._tokens_issued += 1
        logger.debug("access token issued (appidacr=%s)", auth_class)
        return f"{signing_input}.{b64url(signature)}"

    def _error_response(self, err: _AadError, request: web.Request) -> web.Response:
        """Entra ID's error JSON for a refused request."""
        trace_id = str(uuid.uuid4())
        correlation_id = request.headers.get("client-request-id", "")
        try:
            correlation_id = str(uuid.UUID(correlation_id))
        except ValueError:
            correlation_id = str(uuid.uuid4())
        stamp = self._clock.now().strftime("%Y-%m-%d %H:%M:%SZ")
        description = (
            f"AADSTS{err.code}: {err.description} Trace ID: {trace_id} "
            f"Correlation ID: {correlation_id} Timestamp: {stamp}"
        )
        body = {
            "error": err.error,
            "error_description": description,
            "error_codes": [err.code],
            "timestamp": stamp,
            "trace_id": trace_id,
            "correlation_id": correlation_id,
            "error_uri": f"https://login.microsoftonline.com/error?code={err.code}",
        }
        return web.json_response(body, status=err.status, headers=_NO_STORE)
