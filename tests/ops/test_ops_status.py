"""The daemon's ``STATUS=`` line: tenants served and users per state, from the metrics cache."""

from __future__ import annotations

from mmsd.daemon import status_line
from mmsd.domain.model import MigrationState
from mmsd.store import QueueMetrics


def _queue(pending: int, in_progress: int, succeeded: int = 0, failed: int = 0) -> QueueMetrics:
    return QueueMetrics(
        users_by_state={
            MigrationState.PENDING: pending,
            MigrationState.IN_PROGRESS: in_progress,
            MigrationState.SUCCEEDED: succeeded,
            MigrationState.FAILED: failed,
        },
        oldest_pending_seconds=0.0,
        oldest_in_progress_seconds=0.0,
        pending_waiting_for_quota=0,
        pending_total=pending,
    )


def test_before_the_first_refresh_only_tenants_are_known() -> None:
    assert status_line({"contoso": None, "fabrikam": None}) == "serving 2 tenant(s)"


def test_users_per_state_are_summed_over_tenants() -> None:
    line = status_line({"contoso": _queue(10, 3, 4, 1), "fabrikam": _queue(2, 1), "new": None})
    assert line == ("serving 3 tenant(s): 4 in progress, 12 pending, 4 succeeded, 1 failed")


def test_settle_heap_freezes_start_up_and_collects_young_objects_less_often() -> None:
    import gc

    from mmsd.daemon import GC_YOUNG_THRESHOLD, settle_heap

    before = gc.get_threshold()
    try:
        settle_heap()
        assert gc.get_threshold()[0] == GC_YOUNG_THRESHOLD > before[0]
        assert gc.get_freeze_count() > 0
        assert gc.isenabled()  # cycles are still collected
    finally:
        gc.unfreeze()
        gc.set_threshold(*before)
