"""The simulator's request throttling: every limit at its scope, with correct Retry-After."""

from __future__ import annotations

import time
from datetime import UTC, datetime

import pytest

from mmsd.sim.limits import LimitsProfile
from mmsd.sim.throttle import SlidingWindow, Throttled, Throttler, ThrottleScope


class FakeClock:
    """A clock moved by hand."""

    def __init__(self) -> None:
        self.t = 0.0

    def now(self) -> datetime:
        return datetime.fromtimestamp(self.t, UTC)

    def monotonic(self) -> float:
        return self.t


SMALL = LimitsProfile(
    outlook_requests=5,
    outlook_window_s=10.0,
    outlook_upload_bytes=1000,
    outlook_upload_window_s=20.0,
    teams_requests=3,
    teams_window_s=1.0,
    online_meetings_per_user=2,
    online_meetings_window_s=100.0,
    graph_requests=100,
    graph_window_s=10.0,
)


def hit(thr: Throttler, mailbox: str, upload_bytes: int = 0) -> None:
    """One Outlook request that starts and ends at once (or raises Throttled)."""
    slot = thr.outlook(mailbox, upload_bytes)
    slot.acquire()
    slot.release()


def make() -> tuple[Throttler, FakeClock]:
    clock = FakeClock()
    return Throttler(SMALL, clock), clock


async def test_concurrency_per_mailbox() -> None:
    thr = Throttler(LimitsProfile(), FakeClock())
    slots = [thr.outlook("a") for _ in range(4)]
    for s in slots:
        await s.__aenter__()
    assert thr.in_flight("a") == 4
    with pytest.raises(Throttled) as info:
        async with thr.outlook("a"):
            pass
    err = info.value
    assert (err.code, err.scope, err.retry_after) == (
        "ApplicationThrottled",
        ThrottleScope.MAILBOX_CONCURRENCY,
        1,
    )
    assert err.body() == {
        "error": {
            "code": "ApplicationThrottled",
            "message": "Application is over its MailboxConcurrency limit.",
        }
    }
    async with thr.outlook("b"):  # another mailbox is not affected
        assert thr.in_flight("b") == 1
    await slots[0].__aexit__(None, None, None)
    async with thr.outlook("a"):
        assert thr.in_flight("a") == 4
    assert thr.in_flight("a") == 3
    assert thr.counters()["mailboxConcurrency"] == 1


async def test_slot_released_when_the_body_raises() -> None:
    thr = Throttler(LimitsProfile(), FakeClock())
    with pytest.raises(KeyError):
        async with thr.outlook("a"):
            raise KeyError("x")
    assert thr.in_flight("a") == 0


def test_request_window_per_mailbox_and_retry_after() -> None:
    thr, clock = make()
    for _ in range(5):
        hit(thr, "a")
    clock.t = 2.5
    with pytest.raises(Throttled) as info:
        hit(thr, "a")
    assert info.value.scope == "mailboxRequests"
    assert info.value.message == "Application is over its MailboxRequests limit."
    assert info.value.retry_at == 10.0
    assert info.value.retry_after == 8  # 7.5 s rounded up
    assert isinstance(info.value.retry_after, int)
    hit(thr, "b")  # another mailbox has its own window
    clock.t = 9.999
    with pytest.raises(Throttled):
        hit(thr, "a")
    clock.t = 10.0
    hit(thr, "a")  # the burst at 0 freed at exactly 0 + window


def test_retry_after_is_exact_on_whole_seconds() -> None:
    thr, clock = make()
    for _ in range(5):
        hit(thr, "a")
    clock.t = 3.0
    with pytest.raises(Throttled) as info:
        hit(thr, "a")
    assert info.value.retry_after == 7


def test_sliding_window_frees_one_by_one() -> None:
    thr, clock = make()
    for t in (0.0, 1.0, 2.0, 3.0, 4.0):
        clock.t = t
        hit(thr, "a")
    clock.t = 5.0
    with pytest.raises(Throttled) as info:
        hit(thr, "a")
    assert info.value.retry_at == 10.0
    clock.t = 10.0
    hit(thr, "a")
    with pytest.raises(Throttled) as info:
        hit(thr, "a")
    assert info.value.retry_at == 11.0


def test_refused_requests_consume_nothing() -> None:
    thr, clock = make()
    for _ in range(5):
        hit(thr, "a")
    for i in range(100):
        clock.t = 1 + i * 0.05
        with pytest.raises(Throttled):
            hit(thr, "a")
    clock.t = 10.0
    for _ in range(5):
        hit(thr, "a")
    assert thr.counters()["mailboxRequests"] == 100


def test_upload_budget_per_mailbox() -> None:
    thr, clock = make()
    hit(thr, "a", 600)
    clock.t = 5.0
    with pytest.raises(Throttled) as info:
        hit(thr, "a", 500)
    assert info.value.scope == "mailboxUpload"
    assert info.value.retry_after == 15
    hit(thr, "a", 400)  # exactly fills the budget
    hit(thr, "b", 1000)
    clock.t = 20.0
    hit(thr, "a", 500)  # the 600 freed; 400 + 500 fit
    with pytest.raises(ValueError, match="larger than"):
        thr.outlook("a", 1001)


def test_upload_refusal_takes_no_request_unit_nor_slot() -> None:
    thr, _ = make()
    thr.outlook("a", 1000).acquire()
    for _ in range(10):
        with pytest.raises(Throttled):
            thr.outlook("a", 1).acquire()
    assert thr.in_flight("a") == 1
    for _ in range(3):
        thr.outlook("a").acquire()  # 4 requests of 5 admitted so far, 4 in flight
    assert thr.in_flight("a") == 4


def test_teams_per_tenant() -> None:
    thr, clock = make()
    for _ in range(3):
        thr.teams()
    clock.t = 0.4
    with pytest.raises(Throttled) as info:
        thr.teams()
    assert (info.value.code, info.value.message) == ("TooManyRequests", "Please retry again later.")
    assert info.value.scope == "teamsTenant"
    assert info.value.retry_after == 1
    clock.t = 1.0
    thr.teams()


def test_online_meetings_per_user() -> None:
    thr, clock = make()
    thr.online_meeting_created("u1")
    thr.online_meeting_created("u1")
    with pytest.raises(Throttled) as info:
        thr.online_meeting_created("u1")
    assert info.value.scope == "onlineMeetingsPerUser"
    assert info.value.retry_after == 100
    thr.online_meeting_created("u2")
    clock.t = 100.0
    thr.online_meeting_created("u1")


def test_app_overall_counts_every_kind_of_request() -> None:
    clock = FakeClock()
    thr = Throttler(SMALL.updated({"graph_requests": 8}), clock)
    for _ in range(6):
        thr.app()
    hit(thr, "a")
    thr.teams()
    clock.t = 9.5
    for call in (thr.app, thr.teams, lambda: hit(thr, "b")):
        with pytest.raises(Throttled) as info:
            call()
        assert info.value.scope == "application" and info.value.retry_after == 1
    clock.t = 10.0
    thr.app()


def test_one_call_is_all_or_nothing_and_names_the_latest_budget() -> None:
    clock = FakeClock()
    thr = Throttler(SMALL.updated({"graph_requests": 6}), clock)
    for _ in range(3):
        thr.teams()  # teams full until 1.0; app holds 3 of 6 until 10.0
    for _ in range(3):
        thr.app()  # app full until 10.0
    with pytest.raises(Throttled) as info:
        thr.teams()
    assert info.value.scope == "application" and info.value.retry_at == 10.0
    with pytest.raises(Throttled) as info:
        hit(thr, "a")
    assert info.value.scope == "application"
    assert thr.in_flight("a") == 0
    clock.t = 10.0
    for _ in range(5):
        hit(thr, "a")  # the refused request took no unit of the mailbox's 5


def test_creating_teams_request_checks_the_users_cap_too() -> None:
    thr, _ = make()
    thr.teams(creating_for="u1")
    thr.teams(creating_for="u1")
    with pytest.raises(Throttled) as info:
        thr.teams(creating_for="u1")
    assert info.value.scope == "onlineMeetingsPerUser" and info.value.retry_after == 100
    thr.teams()  # the refusal took no Teams unit: 3 of 3 now


def test_counters_start_at_zero_for_every_scope() -> None:
    thr, _ = make()
    assert thr.counters() == dict.fromkeys([str(s) for s in ThrottleScope], 0)


def test_set_profile_changes_limits_at_run_time() -> None:
    thr, _ = make()
    for _ in range(3):
        thr.teams()
    with pytest.raises(Throttled):
        thr.teams()
    thr.set_profile(SMALL.updated({"teams_requests": 10}))
    thr.teams()
    assert thr.profile.teams_requests == 10
    thr.set_profile(SMALL.updated({"teams_requests": 1}))
    with pytest.raises(Throttled) as info:
        thr.teams()
    assert info.value.retry_at == 1.0


def test_sliding_window_memory_stays_bounded() -> None:
    window = SlidingWindow()
    for i in range(100_000):
        now = i * 0.01
        assert window.free_at(now, 1.0, 1000, 1) is None
        window.record(now, 1)
    assert window.used(999.995, 1.0) == 100
    assert len(window._times) < 400


def test_throughput_is_far_above_the_simulators_needs() -> None:
    clock = FakeClock()
    thr = Throttler(LimitsProfile(), clock)
    n = 50_000
    start = time.perf_counter()
    for i in range(n):
        clock.t = i * 0.001
        thr.app()
        slot = thr.outlook(f"m{i % 100}", 2000)
        slot.acquire()
        slot.release()
        if i % 40 == 0:  # 25 per second
            thr.teams()
    rate = n / (time.perf_counter() - start)
    assert rate > 20_000, f"{rate:.0f} requests/s"
