"""The configuration file: every key, defaults, and clear errors for broken files."""

from __future__ import annotations

from pathlib import Path

import pytest

from mmsd.config import (
    DEFAULT_RETRY_DELAYS,
    ConfigError,
    default_admin_socket,
    default_state_dir,
    load_config,
)

GOOD = """
state_dir = "state"
coalesce_seconds = 5
delta_poll_seconds = 30

[tenants.contoso]
tenant_id = "00000000-0000-0000-0000-000000000001"
client_id = "app"
graph_base_url = "http://127.0.0.1:9999/v1.0/"
authority = "https://127.0.0.1:9998"
ca_file = "ca.pem"
client_secret_file = "secret"

[tenants.contoso.limits]
outlook_concurrency = 2
"""


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "mmsd.toml"
    path.write_text(text, encoding="utf-8")
    return path


def test_good_file_and_defaults(tmp_path: Path) -> None:
    cfg = load_config(write(tmp_path, GOOD), env={})
    assert cfg.state_dir == tmp_path / "state"
    assert cfg.admin_socket == Path("/run/mmsd/admin.sock")
    assert cfg.metrics_listen == "127.0.0.1:9464"
    assert cfg.coalesce_seconds == 5.0
    assert cfg.retention_days == 150.0
    assert cfg.retry_delays_seconds == DEFAULT_RETRY_DELAYS
    assert len(cfg.retry_delays_seconds) == 9
    assert 23 * 3600 < sum(cfg.retry_delays_seconds) <= 24 * 3600
    t = cfg.tenants["contoso"]
    assert t.graph_base_url == "http://127.0.0.1:9999/v1.0"
    assert t.ca_file == tmp_path / "ca.pem"
    assert t.credential_kind == "client_secret"
    assert t.limits == {"outlook_concurrency": 2}


def test_state_dir_and_socket_from_systemd_environment() -> None:
    env = {"STATE_DIRECTORY": "/var/lib/mmsd:/var/lib/other", "RUNTIME_DIRECTORY": "/run/x"}
    assert default_state_dir(env) == Path("/var/lib/mmsd")
    assert default_state_dir({}) == Path("/var/lib/mmsd")
    assert default_state_dir({"STATE_DIRECTORY": "/srv/m"}) == Path("/srv/m")
    assert default_admin_socket(env) == Path("/run/x/admin.sock")


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("bogus = 1", "bogus: unknown key"),
        ("coalesce_seconds = 'soon'", "coalesce_seconds: must be a number"),
        ("coalesce_seconds = -1", "coalesce_seconds: must be >= 0"),
        ("max_user_actors = 1.5", "max_user_actors: must be an integer"),
        ("log_level = 'loud'", "log_level: must be one of"),
        ("retry_delays_seconds = [1, 'x']", "retry_delays_seconds"),
        ("admin_listen = '127.0.0.1:8080'", "needs admin_token_file"),
        ("[tenants.a]\nclient_id = 'c'\nmanaged_identity = true", "tenants.a.tenant_id: required"),
        ("[tenants.a]\ntenant_id = 't'\nclient_id = 'c'", "exactly one credential"),
        (
            "[tenants.a]\ntenant_id = 't'\nclient_id = 'c'\nmanaged_identity = true\n"
            "client_secret_file = 's'",
            "exactly one credential",
        ),
        (
            "[tenants.a]\ntenant_id = 't'\nclient_id = 'c'\nsecret = 's'",
            "tenants.a.secret: unknown",
        ),
        ("this is = not toml [", "not valid TOML"),
    ],
)
def test_broken_files_name_the_key(tmp_path: Path, text: str, message: str) -> None:
    with pytest.raises(ConfigError, match=message.replace("[", r"\[").replace(".", r"\.")):
        load_config(write(tmp_path, text), env={})


def test_missing_file(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="cannot read"):
        load_config(tmp_path / "nope.toml")


def test_graph_settings_feed_the_graph_client(tmp_path: Path) -> None:
    cfg = load_config(write(tmp_path, GOOD), env={})
    settings = cfg.tenants["contoso"].graph_settings()
    assert settings["client_secret_file"] == str(tmp_path / "secret")
    assert settings["ca_file"] == str(tmp_path / "ca.pem")
    assert settings["authority"] == "https://127.0.0.1:9998"
    assert "certificate_file" not in settings


@pytest.mark.parametrize(
    ("limits", "message"),
    [
        ("outlook_concurency = 2", "tenants.a.limits.outlook_concurency: unknown key"),
        (
            "outlook_concurrency = 'four'",
            "tenants.a.limits.outlook_concurrency: must be a positive integer",
        ),
        (
            "outlook_concurrency = 2.5",
            "tenants.a.limits.outlook_concurrency: must be a positive integer",
        ),
        ("outlook_window_s = 0", "tenants.a.limits.outlook_window_s: must be a positive number"),
    ],
)
def test_broken_limits_name_the_key(tmp_path: Path, limits: str, message: str) -> None:
    text = (
        "[tenants.a]\ntenant_id = 't'\nclient_id = 'c'\nmanaged_identity = true\n"
        f"[tenants.a.limits]\n{limits}\n"
    )
    with pytest.raises(ConfigError, match=message.replace(".", r"\.")):
        load_config(write(tmp_path, text), env={})


def test_good_limits_accepted(tmp_path: Path) -> None:
    text = (
        "[tenants.a]\ntenant_id = 't'\nclient_id = 'c'\nmanaged_identity = true\n"
        "[tenants.a.limits]\noutlook_concurrency = 2\noutlook_window_s = 60\n"
    )
    assert load_config(write(tmp_path, text), env={}).tenants["a"].limits == {
        "outlook_concurrency": 2,
        "outlook_window_s": 60,
    }
