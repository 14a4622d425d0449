"""The user actor: one per user *being migrated*; it runs attempts and goes away when done.

Activated by its tenant actor for a migration it claimed (``InProgress`` in the
store). ``on_start`` looks the user's ``InProgress`` migration up in the store
and runs it, so a crashed incarnation, restarted by its supervisor, resumes
the same migration (the runner first reads back any PATCH whose outcome is
unknown). The tenant also tells :class:`RunMigration` after spawning; running
is idempotent (an attempt only runs a migration that is ``InProgress``), so a
duplicate does nothing. After an attempt the actor reports to its tenant and
stops: pending users are rows in the store, not actors.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime

from mmsd.actors import Actor, Message, handles
from mmsd.domain.model import MigrationState
from mmsd.engine.migrate import MigrationRunner, RunResult

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class RunMigration(Message):
    """Run an attempt of the migration with this correlation ID."""

    correlation_id: str


UserMessage = RunMigration
WakeCallback = Callable[[datetime | None], None]


class UserActor(Actor[UserMessage]):
    """Runs one user's migration attempts, one at a time, then stops."""

    def __init__(
        self, runner_factory: Callable[[Callable[[], bool]], MigrationRunner], wake: WakeCallback
    ) -> None:
        """``runner_factory(should_stop)`` builds a runner; ``wake(at)`` tells the tenant when to look again."""
        self._runner_factory = runner_factory
        self._wake = wake

    async def on_start(self) -> None:
        """Resume the user's InProgress migration, if the store holds one."""
        runner = self._runner_factory(lambda: self.stop_requested)
        user_id = str(self.key)
        running = await runner.store.status(
            runner.tenant, identity=user_id, state=MigrationState.IN_PROGRESS, latest_only=False
        )
        for record in running:
            if record.user_id == user_id:
                self.ref.try_tell(RunMigration(record.correlation_id))

    @handles(RunMigration)
    async def run(self, message: RunMigration) -> RunResult:
        """One attempt; then tell the tenant (and when to wake for a retry) and stop."""
        runner = self._runner_factory(lambda: self.stop_requested)
        result = await runner.run(message.correlation_id)
        self._wake(result.wake_at)
        if not self.stop_requested:
            self.stop()
        return result
