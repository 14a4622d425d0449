"""The simulator's OAuth2 authority, driven by the real azure-identity credentials over HTTPS."""

from __future__ import annotations

import asyncio
import base64
import json
import ssl
import time
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from aiohttp import web
from aiohttp.typedefs import Handler
from azure.core.exceptions import ClientAuthenticationError, ServiceRequestError
from azure.identity import CertificateCredential, ClientSecretCredential
from azure.identity.aio import CertificateCredential as AsyncCertificateCredential
from azure.identity.aio import ClientSecretCredential as AsyncClientSecretCredential
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa
from kiota_abstractions.method import Method
from kiota_abstractions.request_information import RequestInformation
from kiota_authentication_azure.azure_identity_authentication_provider import (
    AzureIdentityAuthenticationProvider,
)
from kiota_http.httpx_request_adapter import HttpxRequestAdapter
from kiota_http.kiota_client_factory import KiotaClientFactory

from mmsd.clock import SimulatedClock
from mmsd.sim.auth import GRAPH_SCOPE, JWT_BEARER_ASSERTION, SimAuthority, TokenProblem

TENANT = "5a0d3c1e-7f42-4b8e-9c61-2d7e8f90ab12"
START = datetime(2025, 3, 3, 9, 0, tzinfo=UTC)
LIFETIME_S = 3600


@pytest.fixture
def clock() -> SimulatedClock:
    return SimulatedClock(START)


@pytest.fixture
def authority(tmp_path: Path, clock: SimulatedClock) -> SimAuthority:
    return SimAuthority(TENANT, tmp_path / "auth", token_lifetime_s=LIFETIME_S, clock=clock)


async def _serve(app: web.Application, **site_kwargs: Any) -> tuple[web.AppRunner, int]:
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0, **site_kwargs)
    await site.start()
    port: int = runner.addresses[0][1]
    return runner, port


@pytest.fixture
async def base_url(authority: SimAuthority) -> AsyncIterator[str]:
    """The authority served over HTTPS on a free loopback port: ``https://127.0.0.1:Q``."""
    runner, port = await _serve(authority.app(), ssl_context=authority.server_ssl_context())
    yield f"https://127.0.0.1:{port}"
    await runner.cleanup()


def _credential_kwargs(authority: SimAuthority, base_url: str) -> dict[str, Any]:
    return {
        "authority": base_url,
        "disable_instance_discovery": True,
        "connection_verify": str(authority.ca_file),
    }


def _claims(token: str) -> dict[str, Any]:
    payload = token.split(".")[1]
    decoded: dict[str, Any] = json.loads(
        base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4))
    )
    return decoded


def _client_ssl(authority: SimAuthority) -> ssl.SSLContext:
    return ssl.create_default_context(cafile=str(authority.ca_file))


def _bearer(token: str) -> str:
    return f"Bearer {token}"


# --- credentials -------------------------------------------------------------


async def test_async_client_secret_credential_gets_a_graph_token(
    authority: SimAuthority, base_url: str
) -> None:
    async with AsyncClientSecretCredential(
        TENANT,
        authority.client_id,
        authority.client_secret,
        **_credential_kwargs(authority, base_url),
    ) as credential:
        token = await credential.get_token(GRAPH_SCOPE)
    assert authority.validate_bearer(_bearer(token.token))
    assert authority.tokens_issued == 1
    claims = _claims(token.token)
    assert claims["aud"] == "https://graph.microsoft.com"
    assert claims["tid"] == TENANT
    assert claims["appid"] == claims["azp"] == authority.client_id
    assert claims["appidacr"] == "1"
    assert claims["iss"] == f"https://sts.windows.net/{TENANT}/"
    assert claims["iat"] == claims["nbf"]
    assert START.timestamp() <= claims["iat"] < START.timestamp() + 60  # the simulated clock
    assert claims["exp"] - claims["iat"] == LIFETIME_S
    assert "Calendars.ReadWrite" in claims["roles"]
    # azure-identity computes expiry from expires_in with its own (real) clock
    assert abs(token.expires_on - (time.time() + LIFETIME_S)) < 60


async def test_sync_client_secret_credential_gets_a_graph_token(authority: SimAuthority) -> None:
    requests: list[str] = []

    @web.middleware
    async def record(request: web.Request, handler: Handler) -> web.StreamResponse:
        requests.append(f"{request.method} {request.path}")
        return await handler(request)

    app = authority.app()
    app.middlewares.append(record)
    runner, port = await _serve(app, ssl_context=authority.server_ssl_context())
    credential = ClientSecretCredential(
        TENANT,
        authority.client_id,
        authority.client_secret,
        **_credential_kwargs(authority, f"https://127.0.0.1:{port}"),
    )
    try:
        with credential:
            token = await asyncio.to_thread(credential.get_token, GRAPH_SCOPE)
    finally:
        await runner.cleanup()
    assert authority.validate_bearer(_bearer(token.token))
    assert _claims(token.token)["appidacr"] == "1"
    # MSAL's tenant discovery, then the token endpoint it names; nothing else (no instance
    # discovery, which would go to login.microsoftonline.com).
    assert requests == [
        f"GET /{TENANT}/v2.0/.well-known/openid-configuration",
        f"POST /{TENANT}/oauth2/v2.0/token",
    ]


async def test_async_certificate_credential_gets_a_graph_token(
    authority: SimAuthority, base_url: str
) -> None:
    cert_pem, key_pem = authority.make_client_certificate()
    async with AsyncCertificateCredential(
        TENANT,
        authority.client_id,
        certificate_data=cert_pem + key_pem,
        **_credential_kwargs(authority, base_url),
    ) as credential:
        token = await credential.get_token(GRAPH_SCOPE)
    assert authority.validate_bearer(_bearer(token.token))
    assert _claims(token.token)["appidacr"] == "2"


async def test_sync_certificate_credential_gets_a_graph_token(
    authority: SimAuthority, base_url: str
) -> None:
    cert_pem, key_pem = authority.make_client_certificate()
    credential = CertificateCredential(
        TENANT,
        authority.client_id,
        certificate_data=cert_pem + key_pem,
        **_credential_kwargs(authority, base_url),
    )
    with credential:
        token = await asyncio.to_thread(credential.get_token, GRAPH_SCOPE)
    assert authority.validate_bearer(_bearer(token.token))
    assert _claims(token.token)["appidacr"] == "2"


async def test_register_certificate_returns_sha1_thumbprint(authority: SimAuthority) -> None:
    cert_pem, _ = authority.make_client_certificate()
    thumbprint = authority.register_certificate(cert_pem)
    cert = x509.load_pem_x509_certificate(cert_pem)
    assert thumbprint == cert.fingerprint(hashes.SHA1()).hex().upper()


async def test_wrong_secret_raises_client_authentication_error(
    authority: SimAuthority, base_url: str
) -> None:
    kwargs = _credential_kwargs(authority, base_url)
    async with AsyncClientSecretCredential(
        TENANT, authority.client_id, "not-the-secret", **kwargs
    ) as credential:
        with pytest.raises(ClientAuthenticationError, match="AADSTS7000215"):
            await credential.get_token(GRAPH_SCOPE)
    sync_credential = ClientSecretCredential(
        TENANT, authority.client_id, "not-the-secret", **kwargs
    )
    with sync_credential, pytest.raises(ClientAuthenticationError, match="AADSTS7000215"):
        await asyncio.to_thread(sync_credential.get_token, GRAPH_SCOPE)
    assert authority.tokens_issued == 0


async def test_unregistered_certificate_is_refused(
    tmp_path: Path, authority: SimAuthority, base_url: str
) -> None:
    other = SimAuthority(TENANT, tmp_path / "other")
    cert_pem, key_pem = other.make_client_certificate()  # registered there, not here
    kwargs = _credential_kwargs(authority, base_url)
    async with AsyncCertificateCredential(
        TENANT, authority.client_id, certificate_data=cert_pem + key_pem, **kwargs
    ) as credential:
        with pytest.raises(ClientAuthenticationError, match="AADSTS700027"):
            await credential.get_token(GRAPH_SCOPE)
    sync_credential = CertificateCredential(
        TENANT, authority.client_id, certificate_data=cert_pem + key_pem, **kwargs
    )
    with sync_credential, pytest.raises(ClientAuthenticationError, match="AADSTS700027"):
        await asyncio.to_thread(sync_credential.get_token, GRAPH_SCOPE)
    assert authority.tokens_issued == 0


async def test_untrusted_ca_is_refused_by_the_client(
    tmp_path: Path, authority: SimAuthority, base_url: str
) -> None:
    other = SimAuthority(TENANT, tmp_path / "other")
    kwargs = _credential_kwargs(authority, base_url) | {
        "connection_verify": str(other.ca_file),
        "retry_total": 0,  # azure-core would retry the failed handshake with back-off
    }
    async with AsyncClientSecretCredential(
        TENANT, authority.client_id, authority.client_secret, **kwargs
    ) as credential:
        with pytest.raises(ServiceRequestError, match="CERTIFICATE_VERIFY_FAILED"):
            await credential.get_token(GRAPH_SCOPE)
    assert authority.tokens_issued == 0


# --- bearer validation -------------------------------------------------------


async def _graph_token(authority: SimAuthority, base_url: str, scope: str = GRAPH_SCOPE) -> str:
    async with AsyncClientSecretCredential(
        TENANT,
        authority.client_id,
        authority.client_secret,
        **_credential_kwargs(authority, base_url),
    ) as credential:
        token: str = (await credential.get_token(scope)).token
    return token


def _tamper(segment: str) -> str:
    middle = len(segment) // 2
    flipped = "A" if segment[middle] != "A" else "B"
    return segment[:middle] + flipped + segment[middle + 1 :]


async def test_validate_bearer_rejects_bad_headers(authority: SimAuthority, base_url: str) -> None:
    token = await _graph_token(authority, base_url)
    header, payload, signature = token.split(".")
    claims = _claims(token) | {"roles": ["Directory.ReadWrite.All"]}
    forged_payload = base64.urlsafe_b64encode(json.dumps(claims).encode()).decode().rstrip("=")
    cases: dict[str | None, TokenProblem] = {
        None: TokenProblem.MISSING,
        "": TokenProblem.MISSING,
        "Bearer ": TokenProblem.MISSING,
        f"Basic {token}": TokenProblem.WRONG_SCHEME,
        token: TokenProblem.WRONG_SCHEME,
        "Bearer garbage": TokenProblem.MALFORMED,
        "Bearer a.b.c": TokenProblem.MALFORMED,
        "Bearer ä.ö.ü": TokenProblem.MALFORMED,
        _bearer(f"{header}.{payload}.{_tamper(signature)}"): TokenProblem.BAD_SIGNATURE,
        _bearer(f"{header}.{forged_payload}.{signature}"): TokenProblem.BAD_SIGNATURE,
        _bearer(f"{header}.{payload}.{signature}!"): TokenProblem.MALFORMED,
    }
    for value, problem in cases.items():
        assert authority.bearer_problem(value) is problem, value
        assert not authority.validate_bearer(value)
    assert authority.validate_bearer(_bearer(token))
    assert authority.validate_bearer(f"bearer {token}")  # the scheme is case-insensitive


async def test_validate_bearer_rejects_expired_tokens_by_the_injected_clock(
    authority: SimAuthority, clock: SimulatedClock, base_url: str
) -> None:
    token = await _graph_token(authority, base_url)
    fresh = await _graph_token(authority, base_url)  # never validated before expiry: no cache
    assert authority.validate_bearer(_bearer(token))  # now cached
    clock.advance(LIFETIME_S - 120)
    assert authority.validate_bearer(_bearer(token))
    clock.advance(121)
    assert authority.bearer_problem(_bearer(token)) is TokenProblem.EXPIRED
    assert authority.bearer_problem(_bearer(fresh)) is TokenProblem.EXPIRED


async def test_validate_bearer_rejects_other_audiences_and_other_authorities(
    tmp_path: Path, authority: SimAuthority, base_url: str
) -> None:
    arm_token = await _graph_token(authority, base_url, "https://management.azure.com/.default")
    assert _claims(arm_token)["aud"] == "https://management.azure.com"
    assert authority.bearer_problem(_bearer(arm_token)) is TokenProblem.WRONG_AUDIENCE

    other = SimAuthority(TENANT, tmp_path / "other")
    runner, port = await _serve(other.app(), ssl_context=other.server_ssl_context())
    try:
        foreign = await _graph_token(other, f"https://127.0.0.1:{port}")
    finally:
        await runner.cleanup()
    assert other.validate_bearer(_bearer(foreign))
    assert authority.bearer_problem(_bearer(foreign)) is TokenProblem.BAD_SIGNATURE


async def test_validate_bearer_cached_path_is_fast(authority: SimAuthority, base_url: str) -> None:
    header = _bearer(await _graph_token(authority, base_url))
    assert authority.validate_bearer(header)
    rounds = 20_000
    started = time.perf_counter()
    for _ in range(rounds):
        authority.validate_bearer(header)
    elapsed = time.perf_counter() - started
    # The simulator must sustain 2,000+ Graph requests/s; validation is a small part of each.
    assert rounds / elapsed > 50_000, f"{rounds / elapsed:.0f} validations/s"


# --- wire format -------------------------------------------------------------


async def _post_token(
    session: aiohttp.ClientSession, url: str, form: dict[str, str]
) -> tuple[int, dict[str, Any]]:
    async with session.post(url, data=form) as response:
        body: dict[str, Any] = await response.json()
        return response.status, body


async def test_token_endpoint_errors_have_entra_shape(
    authority: SimAuthority, base_url: str
) -> None:
    token_url = f"{base_url}/{TENANT}/oauth2/v2.0/token"
    good = {
        "grant_type": "client_credentials",
        "client_id": authority.client_id,
        "client_secret": authority.client_secret,
        "scope": GRAPH_SCOPE,
    }
    connector = aiohttp.TCPConnector(ssl=_client_ssl(authority))
    async with aiohttp.ClientSession(connector=connector) as session:
        status, body = await _post_token(session, token_url, good)
        assert status == 200
        assert body["token_type"] == "Bearer"
        assert body["expires_in"] == body["ext_expires_in"] == LIFETIME_S
        assert authority.validate_bearer(_bearer(body["access_token"]))

        cases: list[tuple[str, dict[str, str], int, str, int]] = [
            ("wrong secret", good | {"client_secret": "x"}, 401, "invalid_client", 7000215),
            ("no credential", {k: v for k, v in good.items() if k != "client_secret"}, 401, "invalid_client", 7000218),
            ("bad scope", good | {"scope": "User.Read"}, 400, "invalid_scope", 1002012),
            ("two resources", good | {"scope": f"{GRAPH_SCOPE} https://x/.default"}, 400, "invalid_scope", 1002012),
            ("grant type", good | {"grant_type": "password"}, 400, "unsupported_grant_type", 70003),
            ("no grant type", {k: v for k, v in good.items() if k != "grant_type"}, 400, "invalid_request", 900144),
            ("unknown app", good | {"client_id": "11111111-2222-3333-4444-555555555555"}, 400, "unauthorized_client", 700016),
            ("assertion type", {k: v for k, v in good.items() if k != "client_secret"} | {"client_assertion": "a.b.c"}, 400, "invalid_request", 90014),
            ("bad assertion", {k: v for k, v in good.items() if k != "client_secret"} | {"client_assertion": "a.b.c", "client_assertion_type": JWT_BEARER_ASSERTION}, 400, "invalid_request", 50027),
        ]  # fmt: skip
        for name, form, want_status, want_error, want_code in cases:
            status, body = await _post_token(session, token_url, form)
            assert (status, body["error"], body["error_codes"]) == (
                want_status,
                want_error,
                [want_code],
            ), name
            assert body["error_description"].startswith(f"AADSTS{want_code}: "), name
            assert {"timestamp", "trace_id", "correlation_id", "error_uri"} <= body.keys()
            assert authority.client_secret not in json.dumps(body)

        status, body = await _post_token(
            session, f"{base_url}/not-my-tenant/oauth2/v2.0/token", good
        )
        assert (status, body["error"], body["error_codes"]) == (400, "invalid_request", [90002])

        async with session.get(
            f"{base_url}/not-my-tenant/v2.0/.well-known/openid-configuration"
        ) as response:
            assert response.status == 400
            assert (await response.json())["error"] == "invalid_tenant"
    assert authority.tokens_issued == 1


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).decode().rstrip("=")


def _assertion(key_pem: bytes, cert_pem: bytes, claims: dict[str, Any]) -> str:
    """A private_key_jwt client assertion, RS256 with x5t, as MSAL makes it."""
    key = serialization.load_pem_private_key(key_pem, password=None)
    assert isinstance(key, rsa.RSAPrivateKey)
    x5t = _b64(x509.load_pem_x509_certificate(cert_pem).fingerprint(hashes.SHA1()))
    header = {"alg": "RS256", "typ": "JWT", "x5t": x5t}
    signing_input = f"{_b64(json.dumps(header).encode())}.{_b64(json.dumps(claims).encode())}"
    signature = key.sign(signing_input.encode(), padding.PKCS1v15(), hashes.SHA256())
    return f"{signing_input}.{_b64(signature)}"


async def test_client_assertion_claims_are_checked(authority: SimAuthority, base_url: str) -> None:
    cert_pem, key_pem = authority.make_client_certificate()
    token_url = f"{base_url}/{TENANT}/oauth2/v2.0/token"
    now = int(time.time())
    good = {
        "aud": token_url,
        "iss": authority.client_id,
        "sub": authority.client_id,
        "jti": "1",
        "nbf": now,
        "exp": now + 600,
    }
    cases: list[tuple[dict[str, Any], int, int | None]] = [
        (good, 200, None),
        (good | {"aud": f"{base_url}/{TENANT}/oauth2/token"}, 401, 700022),
        (good | {"iss": "someone-else"}, 401, 700021),
        (good | {"exp": now - 3600, "nbf": now - 7200}, 401, 700024),
        (good | {"nbf": now + 3600, "exp": now + 7200}, 401, 700024),
    ]
    connector = aiohttp.TCPConnector(ssl=_client_ssl(authority))
    async with aiohttp.ClientSession(connector=connector) as session:
        for claims, want_status, want_code in cases:
            form = {
                "grant_type": "client_credentials",
                "client_id": authority.client_id,
                "scope": GRAPH_SCOPE,
                "client_assertion_type": JWT_BEARER_ASSERTION,
                "client_assertion": _assertion(key_pem, cert_pem, claims),
            }
            status, body = await _post_token(session, token_url, form)
            assert status == want_status, claims
            if want_code is not None:
                assert body["error_codes"] == [want_code], claims
    assert authority.tokens_issued == 1


async def test_openid_configuration_names_this_authority(
    authority: SimAuthority, base_url: str
) -> None:
    connector = aiohttp.TCPConnector(ssl=_client_ssl(authority))
    async with aiohttp.ClientSession(connector=connector) as session:
        url = f"{base_url}/{TENANT}/v2.0/.well-known/openid-configuration"
        async with session.get(url) as response:
            assert response.status == 200
            config = await response.json()
        assert config["token_endpoint"] == f"{base_url}/{TENANT}/oauth2/v2.0/token"
        assert config["authorization_endpoint"] == f"{base_url}/{TENANT}/oauth2/v2.0/authorize"
        assert config["issuer"] == f"{base_url}/{TENANT}/v2.0"
        async with session.get(config["jwks_uri"]) as response:
            keys = (await response.json())["keys"]
        assert [key["kty"] for key in keys] == ["RSA"]


async def test_ca_and_server_certificate_cover_loopback(
    authority: SimAuthority, base_url: str
) -> None:
    assert authority.ca_file == authority.ca_file.parent / "ca.pem"
    ca = x509.load_pem_x509_certificate(authority.ca_file.read_bytes())
    assert ca.extensions.get_extension_for_class(x509.BasicConstraints).value.ca
    server = x509.load_pem_x509_certificate(
        (authority.ca_file.parent / "server-cert.pem").read_bytes()
    )
    sans = server.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert {str(ip) for ip in sans.get_values_for_type(x509.IPAddress)} == {"127.0.0.1", "::1"}
    assert sans.get_values_for_type(x509.DNSName) == ["localhost"]
    # The name "localhost" verifies too, not only the IP.
    port = base_url.rsplit(":", 1)[1]
    connector = aiohttp.TCPConnector(ssl=_client_ssl(authority))
    async with aiohttp.ClientSession(connector=connector) as session:
        url = f"https://localhost:{port}/{TENANT}/discovery/v2.0/keys"
        async with session.get(url) as response:
            assert response.status == 200


# --- kiota-authentication-azure (issue #528) ---------------------------------


async def test_kiota_provider_keeps_the_credential_usable_under_concurrency(
    authority: SimAuthority, base_url: str
) -> None:
    seen: list[bool] = []

    async def me(request: web.Request) -> web.Response:
        ok = authority.validate_bearer(request.headers.get("Authorization"))
        seen.append(ok)
        if not ok:
            return web.json_response({"error": {"code": "InvalidAuthenticationToken"}}, status=401)
        return web.json_response({"id": "me"})

    graph_app = web.Application()
    graph_app.router.add_get("/v1.0/me", me)
    runner, port = await _serve(graph_app)
    credential = AsyncClientSecretCredential(
        TENANT,
        authority.client_id,
        authority.client_secret,
        **_credential_kwargs(authority, base_url),
    )
    provider = AzureIdentityAuthenticationProvider(
        credential, scopes=[GRAPH_SCOPE], allowed_hosts=["127.0.0.1"]
    )
    http_client = KiotaClientFactory.create_with_default_middleware()
    adapter = HttpxRequestAdapter(provider, http_client=http_client)

    async def call() -> bytes:
        info = RequestInformation()
        info.http_method = Method.GET
        info.url = f"http://127.0.0.1:{port}/v1.0/me"
        body: bytes = await adapter.send_primitive_async(info, "bytes", None)
        return body

    try:
        first_wave = await asyncio.gather(*(call() for _ in range(16)))
        issued_after_first_wave = authority.tokens_issued
        second_wave = await asyncio.gather(*(call() for _ in range(16)))
    finally:
        await http_client.aclose()
        await credential.close()
        await runner.cleanup()
    assert all(json.loads(body) == {"id": "me"} for body in first_wave + second_wave)
    assert seen == [True] * 32
    # The credential stayed open and cached its token: the second wave fetched none. (The
    # first wave fetches one token per request: azure-identity's async credentials have no
    # single-flight, 16 here in practice.)
    assert 1 <= issued_after_first_wave <= 16
    assert authority.tokens_issued == issued_after_first_wave
