"""The engine's knobs, taken from :class:`~mmsd.config.Config` (and replaced on reload)."""

from __future__ import annotations

from dataclasses import dataclass

from mmsd.config import DEFAULT_RETRY_DELAYS, Config

ON_PREMISES_MESSAGE = (
    "The organizer's mailbox is on Exchange on-premises (MailboxNotEnabledForRESTAPI): "
    "use a client-side tool or move the mailbox to Exchange Online first."
)
"""The ``lastMessage`` of a migration that cannot reach the organizer's calendar (SPEC section 2)."""


@dataclass(frozen=True)
class EngineSettings:
    """What the actors need to know from the configuration.

    ``tick_seconds`` is the tenant actor's fallback wake-up: exact wake-ups are
    armed for every ``not_before`` the engine knows of, the tick catches what a
    restart forgot. ``patch_batch_size`` meetings of one mailbox go in one
    ``$batch`` (Graph's maximum is 20). ``decide_concurrency`` bounds the
    trigger decisions (each one Graph lookup) that run at once per tenant.
    """

    coalesce_seconds: float = 60.0
    retry_delays_seconds: tuple[float, ...] = DEFAULT_RETRY_DELAYS
    max_user_actors: int = 50
    delta_poll_seconds: float = 300.0
    tick_seconds: float = 10.0
    patch_batch_size: int = 20
    max_conflict_rounds: int = 3
    decide_concurrency: int = 16
    user_mailbox_size: int = 8
    tenant_mailbox_size: int = 1024

    @property
    def max_attempts(self) -> int:
        """Attempts a migration gets in all: one plus one per retry delay (SPEC: 10)."""
        return len(self.retry_delays_seconds) + 1

    def retry_delay(self, retry_count: int) -> float:
        """Seconds before the attempt that follows ``retry_count`` retries so far."""
        delays = self.retry_delays_seconds
        if not delays:
            return 0.0
        return delays[min(retry_count, len(delays) - 1)]

    @classmethod
    def from_config(cls, config: Config, **overrides: object) -> EngineSettings:
        """The settings a configuration asks for (``overrides`` for tests and the demo)."""
        values: dict[str, object] = {
            "coalesce_seconds": config.coalesce_seconds,
            "retry_delays_seconds": tuple(config.retry_delays_seconds),
            "max_user_actors": config.max_user_actors,
            "delta_poll_seconds": config.delta_poll_seconds,
        }
        values.update(overrides)
        return cls(**values)  # type: ignore[arg-type]
