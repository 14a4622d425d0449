"""The daemon's configuration: ``mmsd run --config /etc/mmsd/mmsd.toml``.

Every key is documented in the README ("Configuration"). Loading is strict:
an unknown key, a wrong type or a missing credential is a :class:`ConfigError`
that names the key, so a broken file never starts a half-configured daemon
(and a SIGHUP with a broken file keeps the running configuration).
"""

from __future__ import annotations

import os
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

DEFAULT_STATE_DIR = Path("/var/lib/mmsd")
DEFAULT_RUNTIME_DIR = Path("/run/mmsd")
GRAPH_BASE_URL = "https://graph.microsoft.com/v1.0"
AUTHORITY = "https://login.microsoftonline.com"

# Ten attempts (nine retries) spread over about 24 hours (85,860 s in all).
DEFAULT_RETRY_DELAYS: tuple[float, ...] = (
    60.0,
    300.0,
    900.0,
    1800.0,
    3600.0,
    7200.0,
    14400.0,
    21600.0,
    36000.0,
)


class ConfigError(ValueError):
    """The configuration file is unreadable or wrong; the message names the key."""


@dataclass(frozen=True)
class TenantConfig:
    """One ``[tenants.NAME]`` table."""

    name: str
    tenant_id: str
    client_id: str
    graph_base_url: str = GRAPH_BASE_URL
    authority: str = AUTHORITY
    ca_file: Path | None = None
    client_secret_file: Path | None = None
    certificate_file: Path | None = None
    managed_identity: bool = False
    certificate_password_file: Path | None = None
    managed_identity_client_id: str | None = None
    limits: Mapping[str, Any] = field(default_factory=dict)

    def graph_settings(self) -> dict[str, Any]:
        """The table as :meth:`mmsd.graph.GraphClient.from_config` takes it (paths as strings)."""
        out: dict[str, Any] = {
            "tenant_id": self.tenant_id,
            "client_id": self.client_id,
            "graph_base_url": self.graph_base_url,
            "authority": self.authority,
            "managed_identity": self.managed_identity,
        }
        for key in (
            "ca_file",
            "client_secret_file",
            "certificate_file",
            "certificate_password_file",
        ):
            value = getattr(self, key)
            if value is not None:
                out[key] = str(value)
        if self.managed_identity_client_id is not None:
            out["managed_identity_client_id"] = self.managed_identity_client_id
        return out

    @property
    def credential_kind(self) -> str:
        """``client_secret``, ``certificate`` or ``managed_identity``."""
        if self.client_secret_file is not None:
            return "client_secret"
        if self.certificate_file is not None:
            return "certificate"
        return "managed_identity"


@dataclass(frozen=True)
class Config:
    """The whole daemon configuration."""

    state_dir: Path
    admin_socket: Path
    admin_socket_group: str | None = "mmsd"
    admin_listen: str | None = None
    admin_token_file: Path | None = None
    metrics_listen: str = "127.0.0.1:9464"
    coalesce_seconds: float = 60.0
    delta_poll_seconds: float = 300.0
    retention_days: float = 150.0
    max_user_actors: int = 50
    retry_delays_seconds: tuple[float, ...] = DEFAULT_RETRY_DELAYS
    stop_timeout_seconds: float = 60.0
    log_level: str = "info"
    tenants: Mapping[str, TenantConfig] = field(default_factory=dict)


def default_state_dir(env: Mapping[str, str] = os.environ) -> Path:
    """``$STATE_DIRECTORY`` (its first entry, as systemd may list several) or /var/lib/mmsd."""
    value = env.get("STATE_DIRECTORY", "")
    first = value.split(":")[0]
    return Path(first) if first else DEFAULT_STATE_DIR


def default_admin_socket(env: Mapping[str, str] = os.environ) -> Path:
    """``$RUNTIME_DIRECTORY/admin.sock``, by default /run/mmsd/admin.sock."""
    value = env.get("RUNTIME_DIRECTORY", "").split(":")[0]
    return (Path(value) if value else DEFAULT_RUNTIME_DIR) / "admin.sock"


_TOP_KEYS = {
    "state_dir",
    "admin_socket",
    "admin_socket_group",
    "admin_listen",
    "admin_token_file",
    "metrics_listen",
    "coalesce_seconds",
    "delta_poll_seconds",
    "retention_days",
    "max_user_actors",
    "retry_delays_seconds",
    "stop_timeout_seconds",
    "log_level",
    "tenants",
}
_TENANT_KEYS = {
    "tenant_id",
    "client_id",
    "graph_base_url",
    "authority",
    "ca_file",
    "client_secret_file",
    "certificate_file",
    "managed_identity",
    "limits",
}
_LOG_LEVELS = {"debug", "info", "warning", "error"}


def load_config(path: Path, env: Mapping[str, str] = os.environ) -> Config:
    """Read and validate a TOML configuration file."""
    try:
        raw = tomllib.loads(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read: {exc.strerror}") from exc
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{path}: not valid TOML: {exc}") from exc
    except UnicodeDecodeError as exc:
        raise ConfigError(f"{path}: not UTF-8") from exc
    return parse_config(raw, base=path.parent, env=env)


def parse_config(
    raw: Mapping[str, Any], *, base: Path = Path("."), env: Mapping[str, str] = os.environ
) -> Config:
    """Validate an already parsed TOML document; relative paths resolve against ``base``."""
    _reject_unknown(raw, _TOP_KEYS, "")
    tenants_raw = raw.get("tenants", {})
    if not isinstance(tenants_raw, Mapping):
        raise ConfigError("tenants: must be a table of [tenants.NAME] tables")
    tenants = {name: _tenant(name, t, base) for name, t in tenants_raw.items()}
    delays = raw.get("retry_delays_seconds", list(DEFAULT_RETRY_DELAYS))
    if not isinstance(delays, list) or not all(_is_number(d) and d >= 0 for d in delays):
        raise ConfigError("retry_delays_seconds: must be a list of non-negative numbers")
    level = _str(raw, "log_level", "info")
    if level not in _LOG_LEVELS:
        raise ConfigError(f"log_level: must be one of {sorted(_LOG_LEVELS)}")
    admin_listen = _opt_str(raw, "admin_listen")
    token_file = _opt_path(raw, "admin_token_file", base)
    if admin_listen is not None and token_file is None:
        raise ConfigError("admin_listen: a TCP admin listener needs admin_token_file")
    state_dir = _opt_path(raw, "state_dir", base) or default_state_dir(env)
    return Config(
        state_dir=state_dir,
        admin_socket=_opt_path(raw, "admin_socket", base) or default_admin_socket(env),
        admin_socket_group=_opt_str(raw, "admin_socket_group", "mmsd"),
        admin_listen=admin_listen,
        admin_token_file=token_file,
        metrics_listen=_str(raw, "metrics_listen", "127.0.0.1:9464"),
        coalesce_seconds=_number(raw, "coalesce_seconds", 60.0),
        delta_poll_seconds=_number(raw, "delta_poll_seconds", 300.0, minimum=1.0),
        retention_days=_number(raw, "retention_days", 150.0, minimum=1.0),
        max_user_actors=int(_number(raw, "max_user_actors", 50, minimum=1, integer=True)),
        retry_delays_seconds=tuple(float(d) for d in delays),
        stop_timeout_seconds=_number(raw, "stop_timeout_seconds", 60.0, minimum=1.0),
        log_level=level,
        tenants=tenants,
    )


def _tenant(name: str, raw: object, base: Path) -> TenantConfig:
    where = f"tenants.{name}"
    if not isinstance(raw, Mapping):
        raise ConfigError(f"{where}: must be a table")
    _reject_unknown(raw, _TENANT_KEYS, where + ".")
    for key in ("tenant_id", "client_id"):
        if not isinstance(raw.get(key), str) or not raw[key]:
            raise ConfigError(f"{where}.{key}: required, a non-empty string")
    secret = _opt_path(raw, "client_secret_file", base, where)
    cert = _opt_path(raw, "certificate_file", base, where)
    managed = raw.get("managed_identity", False)
    if not isinstance(managed, bool):
        raise ConfigError(f"{where}.managed_identity: must be true or false")
    chosen = [
        k
        for k, v in (
            ("client_secret_file", secret),
            ("certificate_file", cert),
            ("managed_identity", managed or None),
        )
        if v is not None
    ]
    if len(chosen) != 1:
        raise ConfigError(
            f"{where}: exactly one credential is needed: client_secret_file, "
            f"certificate_file or managed_identity = true (found {chosen or 'none'})"
        )
    limits = raw.get("limits", {})
    if not isinstance(limits, Mapping):
        raise ConfigError(f"{where}.limits: must be a table")
    _check_limits(limits, where + ".limits")
    return TenantConfig(
        name=name,
        tenant_id=raw["tenant_id"],
        client_id=raw["client_id"],
        graph_base_url=_str(raw, "graph_base_url", GRAPH_BASE_URL, where).rstrip("/"),
        authority=_str(raw, "authority", AUTHORITY, where).rstrip("/"),
        ca_file=_opt_path(raw, "ca_file", base, where),
        client_secret_file=secret,
        certificate_file=cert,
        managed_identity=managed,
        certificate_password_file=_opt_path(raw, "certificate_password_file", base, where),
        managed_identity_client_id=_opt_str(raw, "managed_identity_client_id"),
        limits=dict(limits),
    )


def _check_limits(limits: Mapping[str, Any], where: str) -> None:
    """Every key a field of :class:`~mmsd.graph.pacing.GraphLimits`, every value a positive number."""
    import dataclasses

    from mmsd.graph.pacing import GraphLimits

    fields = {f.name: f.type for f in dataclasses.fields(GraphLimits)}
    _reject_unknown(limits, set(fields), where + ".")
    for key, value in limits.items():
        integer = fields[key] == "int"
        if not _is_number(value) or (integer and not isinstance(value, int)) or value <= 0:
            kind = "a positive integer" if integer else "a positive number"
            raise ConfigError(f"{where}.{key}: must be {kind}")


def _reject_unknown(raw: Mapping[str, Any], known: set[str], prefix: str) -> None:
    unknown = sorted(set(raw) - known)
    if unknown:
        raise ConfigError(f"{prefix}{unknown[0]}: unknown key (known: {', '.join(sorted(known))})")


def _is_number(value: object) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def _number(
    raw: Mapping[str, Any],
    key: str,
    default: float,
    *,
    minimum: float = 0.0,
    integer: bool = False,
) -> float:
    value = raw.get(key, default)
    if not _is_number(value) or (integer and not isinstance(value, int)):
        kind = "an integer" if integer else "a number"
        raise ConfigError(f"{key}: must be {kind}")
    if value < minimum:
        raise ConfigError(f"{key}: must be >= {minimum:g}")
    return float(value)


def _str(raw: Mapping[str, Any], key: str, default: str, where: str = "") -> str:
    value = raw.get(key, default)
    if not isinstance(value, str) or not value:
        raise ConfigError(f"{where + '.' if where else ''}{key}: must be a non-empty string")
    return value


def _opt_str(raw: Mapping[str, Any], key: str, default: str | None = None) -> str | None:
    if key not in raw:
        return default
    return _str(raw, key, "")


def _opt_path(raw: Mapping[str, Any], key: str, base: Path, where: str = "") -> Path | None:
    if key not in raw:
        return None
    path = Path(_str(raw, key, "", where))
    return path if path.is_absolute() else base / path
