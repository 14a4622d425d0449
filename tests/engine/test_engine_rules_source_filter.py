"""``sourceTypeFiltered``: a manual start with a source type skips the other type's meetings."""

from __future__ import annotations

import pytest
from engine_checks import patch_delta
from engine_testkit import TENANT, Harness

from mmsd.domain.model import (
    MeetingOutcome,
    MigrationState,
    SkipReason,
    SourceMeetingType,
    TargetMeetingType,
)


@pytest.mark.parametrize(
    ("kind", "source", "target"),
    [
        ("ordinary", SourceMeetingType.SFB, TargetMeetingType.TEAMS),  # Teams meetings
        ("ordinary", SourceMeetingType.SFB, TargetMeetingType.CURRENT),
        ("sfbUser", SourceMeetingType.TEAMS, TargetMeetingType.TEAMS),  # Skype meetings
        ("sfbUser", SourceMeetingType.TEAMS, TargetMeetingType.CURRENT),
    ],
)
async def test_start_with_the_other_source_type_touches_nothing(
    harness: Harness, kind: str, source: SourceMeetingType, target: TargetMeetingType
) -> None:
    h = harness
    user = (await h.users(kind))[0]["id"]
    before = await h.counters()
    engine = await h.start()
    cid = await engine.start_migration(TENANT, user, source, target)
    record = await h.wait_state(user, MigrationState.SUCCEEDED, MigrationState.FAILED)
    assert record.state is MigrationState.SUCCEEDED, record.last_message
    assert record.correlation_id == cid
    assert h.store is not None
    history = await h.store.history(TENANT, user)
    filtered = [
        t
        for t in history
        if t.outcome is MeetingOutcome.SKIPPED and t.reason == str(SkipReason.SOURCE_TYPE_FILTERED)
    ]
    assert filtered, "the user's meetings of the other type are skipped as sourceTypeFiltered"
    assert all(t.outcome is MeetingOutcome.SKIPPED for t in history)
    assert record.succeeded_meeting == 0 and record.failed_meeting == 0
    assert record.skipped_meeting == len(history) == record.total_meeting
    after = await h.counters()
    assert patch_delta(before, after) == {}
    assert after["onlineMeetingsCreated"] == before["onlineMeetingsCreated"]
