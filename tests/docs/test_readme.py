"""The README keeps up with the code: commands, metrics, runbooks, cmdlets, config keys."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from prometheus_client.parser import text_string_to_metric_families

from mmsd.config import _TENANT_KEYS, _TOP_KEYS
from mmsd.metrics.registry import Metrics

ROOT = Path(__file__).resolve().parents[2]
README = (ROOT / "README.md").read_text(encoding="utf-8")


def test_readme_opens_with_the_two_newcomer_commands() -> None:
    block = re.search(r"```sh\n(.*?)```", README, re.S)
    assert block is not None and README.index("```sh") < 200
    commands = [line for line in block.group(1).splitlines() if line and not line.startswith("#")]
    assert len(commands) == 2
    assert commands[0].endswith("mmsd demo")
    assert "pytest" in commands[1]
    ci = (ROOT / ".ci" / "run").read_text(encoding="utf-8")
    assert commands[1] in ci, "CI must run exactly the README's test command"


def test_every_metric_is_listed() -> None:
    metrics = Metrics(["contoso"])
    families = {f.name for f in text_string_to_metric_families(metrics.exposition().decode())}
    assert families
    for name in sorted(families):
        # counters are exposed without their _total suffix by the parser
        assert name in README or f"{name}_total" in README, f"{name} is not in the README"


@pytest.mark.parametrize(
    "alert",
    [
        "MmsdMigrationFailed",
        "MmsdMigrationStuck",
        "MmsdPendingTooLong",
        "MmsdGraphThrottlingSustained",
        "MmsdDown",
    ],
)
def test_every_alert_has_its_runbook_section(alert: str) -> None:
    assert f"### Runbook: {alert}\n" in README
    rules = (ROOT / "grafana" / "alerts.yml").read_text(encoding="utf-8")
    assert f"README.md#runbook-{alert.lower()}" in rules


@pytest.mark.parametrize(
    "cmdlet",
    [
        "Get-CsMeetingMigrationStatus",
        "Start-CsExMeetingMigration",
        "Get-CsMeetingMigrationTransactionHistory",
        "Get-CsTenantMigrationConfiguration",
        "Set-CsTenantMigrationConfiguration",
        "Get-CsOnlineDialInConferencingTenantSettings",
        "Set-CsOnlineDialInConferencingTenantSettings",
    ],
)
def test_every_cmdlet_is_mapped(cmdlet: str) -> None:
    assert re.search(rf"\| `{cmdlet}[^|]*` \| `[a-z]", README), cmdlet


def test_every_configuration_key_is_documented() -> None:
    assert "`[tenants.NAME]`" in README and "`[tenants.NAME.limits]`" in README
    for key in sorted((_TOP_KEYS - {"tenants"}) | (_TENANT_KEYS - {"limits"})):
        assert f"`{key}`" in README, f"configuration key {key} is not in the README"
