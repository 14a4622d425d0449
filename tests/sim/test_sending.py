"""Sending limits per sender: 30 messages a minute delayed, 10,000 recipients a day bounced."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from mmsd.sim.limits import LimitsProfile
from mmsd.sim.sending import NDR_STATUS, SendingLimiter


class FakeClock:
    """A clock moved by hand."""

    def __init__(self) -> None:
        self.t = 0.0

    def now(self) -> datetime:
        return datetime.fromtimestamp(self.t, UTC)

    def monotonic(self) -> float:
        return self.t


def make() -> tuple[SendingLimiter[str], FakeClock]:
    clock = FakeClock()
    return SendingLimiter(LimitsProfile(), clock), clock


def test_ndr_text() -> None:
    assert NDR_STATUS == (
        "554 5.2.0 STOREDRV.Submission.Exception:SubmissionQuotaExceededException"
    )


def test_thirty_a_minute_then_delayed_in_order() -> None:
    limiter, clock = make()
    plans = [limiter.plan("a", 2) for _ in range(65)]
    assert all(p.deliver_at is None and not p.bounced for p in plans[:30])
    assert [p.deliver_at for p in plans[30:60]] == [60.0] * 30
    assert [p.deliver_at for p in plans[60:]] == [120.0] * 5
    assert limiter.plan("b", 1).deliver_at is None  # another sender is not delayed
    for i, p in enumerate(plans[30:]):
        limiter.defer(p, f"m{i}")
    assert limiter.pending() == 35
    assert limiter.next_due() == 60.0
    assert limiter.due(59.99) == []
    clock.t = 60.0
    assert limiter.due() == [f"m{i}" for i in range(30)]
    assert limiter.due(500.0) == [f"m{i}" for i in range(30, 35)]
    assert limiter.next_due() is None
    assert limiter.counters() == {"delayed": 35, "bounced": 0}


def test_delay_follows_the_deliveries_not_the_submissions() -> None:
    limiter, clock = make()
    for i in range(30):
        clock.t = i * 1.0  # one a second: 0..29
        assert limiter.plan("a", 1).deliver_at is None
    clock.t = 30.0
    assert limiter.plan("a", 1).deliver_at == 60.0  # the first delivery at 0 frees at 60
    clock.t = 61.5
    assert limiter.plan("a", 1).deliver_at is None  # the one at 1 freed at 61
    clock.t = 61.6
    assert limiter.plan("a", 1).deliver_at == 62.0


def test_recipients_per_rolling_day_bounce_whole_messages() -> None:
    limiter, clock = make()
    for _ in range(20):
        assert not limiter.plan("a", 500).bounced
    assert limiter.recipients_used("a") == 10_000
    clock.t = 3600.0
    bounced = limiter.plan("a", 1)
    assert bounced.bounced and bounced.deliver_at is None
    assert limiter.recipients_free_at("a", 1) == 86_400.0
    assert not limiter.plan("b", 500).bounced  # another sender has its own quota
    clock.t = 86_400.0
    assert not limiter.plan("a", 500).bounced
    assert limiter.recipients_free_at("a", 500) is None
    assert limiter.counters()["bounced"] == 1


def test_a_bounce_takes_neither_quota_nor_a_sending_slot() -> None:
    limiter, _ = make()
    assert not limiter.plan("a", 9_999).bounced
    for _ in range(40):
        assert limiter.plan("a", 2).bounced
    assert not limiter.plan("a", 1).bounced
    assert limiter.recipients_used("a") == 10_000


def test_message_larger_than_the_quota_always_bounces() -> None:
    limiter, _ = make()
    assert limiter.plan("a", 10_001).bounced
    with pytest.raises(ValueError):
        limiter.recipients_free_at("a", 10_001)


def test_only_delayed_deliveries_can_be_deferred() -> None:
    limiter, _ = make()
    now = limiter.plan("a", 1)
    with pytest.raises(ValueError):
        limiter.defer(now, "x")


def test_set_profile() -> None:
    limiter, _ = make()
    limiter.set_profile(LimitsProfile(send_messages=2, send_messages_window_s=10.0))
    assert [limiter.plan("a", 1).deliver_at for _ in range(5)] == [None, None, 10.0, 10.0, 20.0]
