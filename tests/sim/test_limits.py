"""The simulator's limits profile: defaults, files, validation, time compression."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import pytest

from mmsd.sim.limits import LimitsProfile, builtin_profile, load_limits


def test_defaults_are_spec_section_4() -> None:
    p = LimitsProfile()
    assert (p.outlook_requests, p.outlook_window_s, p.outlook_concurrency) == (10_000, 600.0, 4)
    assert (p.outlook_upload_bytes, p.outlook_upload_window_s) == (150 * 1024 * 1024, 300.0)
    assert (p.teams_requests, p.teams_window_s) == (30, 1.0)
    assert (p.online_meetings_per_user, p.online_meetings_window_s) == (2_000, 30 * 86_400.0)
    assert (p.graph_requests, p.graph_window_s) == (130_000, 10.0)
    assert (p.batch_max_requests, p.batch_outlook_parallel) == (20, 4)
    assert (p.send_messages, p.send_messages_window_s) == (30, 60.0)
    assert (p.send_recipients, p.send_recipients_window_s) == (10_000, 86_400.0)
    assert p.attendees_per_event == 500


def test_builtin_default_file_equals_the_defaults() -> None:
    assert builtin_profile("default") == LimitsProfile()


def test_builtin_fast_is_default_time_compressed_tenfold() -> None:
    fast = builtin_profile("fast")
    expected = LimitsProfile().scaled(10)
    assert dataclasses.replace(fast, description="") == dataclasses.replace(
        expected, description=""
    )
    assert fast.outlook_window_s == 60.0 and fast.outlook_requests == 10_000


def test_unknown_builtin_profile() -> None:
    with pytest.raises(ValueError, match="no built-in"):
        builtin_profile("nope")


def test_partial_json_keeps_other_defaults(tmp_path: Path) -> None:
    path = tmp_path / "l.json"
    path.write_text(json.dumps({"outlook_requests": 50, "outlook_window_s": 6}))
    p = load_limits(path)
    assert p.outlook_requests == 50
    assert p.outlook_window_s == 6.0 and isinstance(p.outlook_window_s, float)
    assert p.teams_requests == 30


def test_partial_toml(tmp_path: Path) -> None:
    path = tmp_path / "l.toml"
    path.write_text('teams_requests = 3\nteams_window_s = 0.5\ndescription = "x"\n')
    p = load_limits(path)
    assert (p.teams_requests, p.teams_window_s, p.description) == (3, 0.5, "x")


def test_round_trip_through_to_json(tmp_path: Path) -> None:
    original = LimitsProfile(send_messages=7, graph_window_s=2.5)
    path = tmp_path / "p.json"
    path.write_text(json.dumps(original.to_json()))
    assert load_limits(path) == original


def test_unknown_key_is_rejected_by_name(tmp_path: Path) -> None:
    path = tmp_path / "l.json"
    path.write_text(json.dumps({"outlook_request": 5}))
    with pytest.raises(ValueError, match=r"unknown key.*outlook_request"):
        load_limits(path)


@pytest.mark.parametrize(
    ("key", "value"),
    [
        ("outlook_requests", "10"),
        ("outlook_requests", 1.5),
        ("outlook_requests", True),
        ("outlook_requests", 0),
        ("outlook_concurrency", -1),
        ("outlook_window_s", "600"),
        ("outlook_window_s", 0),
        ("outlook_window_s", False),
        ("description", 3),
    ],
)
def test_bad_values_are_rejected(tmp_path: Path, key: str, value: object) -> None:
    path = tmp_path / "l.json"
    path.write_text(json.dumps({key: value}))
    with pytest.raises(ValueError, match=key):
        load_limits(path)


def test_non_finite_window_is_rejected() -> None:
    with pytest.raises(ValueError, match="graph_window_s"):
        LimitsProfile.from_mapping({"graph_window_s": float("inf")})


@pytest.mark.parametrize(
    ("name", "text", "match"),
    [
        ("l.json", "{not json", "not valid JSON"),
        ("l.toml", "a = = 1", "not valid TOML"),
        ("l.json", "[1, 2]", "must be an object"),
        ("l.yaml", "{}", "must end in .json or .toml"),
    ],
)
def test_bad_files(tmp_path: Path, name: str, text: str, match: str) -> None:
    path = tmp_path / name
    path.write_text(text)
    with pytest.raises(ValueError, match=match):
        load_limits(path)


def test_missing_file(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="cannot read"):
        load_limits(tmp_path / "absent.json")


def test_scaled_divides_windows_and_keeps_counts() -> None:
    p = LimitsProfile()
    s = p.scaled(4)
    for f in dataclasses.fields(p):
        if f.name.endswith("_window_s"):
            assert getattr(s, f.name) == getattr(p, f.name) / 4
        elif f.name != "description":
            assert getattr(s, f.name) == getattr(p, f.name)
    with pytest.raises(ValueError):
        p.scaled(0)


def test_updated_validates() -> None:
    p = LimitsProfile().updated({"teams_requests": 5})
    assert p.teams_requests == 5
    with pytest.raises(ValueError, match="unknown"):
        p.updated({"bogus": 1})
    with pytest.raises(ValueError, match="teams_requests"):
        p.updated({"teams_requests": "many"})


def test_profile_is_frozen() -> None:
    with pytest.raises(dataclasses.FrozenInstanceError):
        LimitsProfile().outlook_requests = 1  # type: ignore[misc]
