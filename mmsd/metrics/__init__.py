"""Prometheus metrics (SPEC section 6): the registry and observers, and their listener."""

from mmsd.metrics.registry import (
    GRAPH_OPERATIONS,
    GRAPH_STATUS_CLASSES,
    MIGRATION_BUCKETS,
    Metrics,
    QueueSource,
    StatsSource,
)
from mmsd.metrics.server import MetricsServer, parse_listen

__all__ = [
    "GRAPH_OPERATIONS",
    "GRAPH_STATUS_CLASSES",
    "MIGRATION_BUCKETS",
    "Metrics",
    "MetricsServer",
    "QueueSource",
    "StatsSource",
    "parse_listen",
]
