"""mmsd's durable state: SQLite (aiosqlite, WAL) behind the :class:`Store` API.

The store depends on the domain (records, states, the merge rule); the domain
knows nothing of it.
"""

from mmsd.store.store import (
    DEFAULT_RETENTION,
    Enqueued,
    EnqueueRequest,
    InvalidTransition,
    KnownUser,
    PruneResult,
    QueueMetrics,
    Recovery,
    Store,
    StoreError,
    UnknownMigration,
    database_path,
    default_state_dir,
)

__all__ = [
    "DEFAULT_RETENTION",
    "EnqueueRequest",
    "Enqueued",
    "InvalidTransition",
    "KnownUser",
    "PruneResult",
    "QueueMetrics",
    "Recovery",
    "Store",
    "StoreError",
    "UnknownMigration",
    "database_path",
    "default_state_dir",
]
