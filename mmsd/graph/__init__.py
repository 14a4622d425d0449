"""mmsd's Graph client and its pacing: the only code that talks to Microsoft Graph."""

from mmsd.graph.batch import BatchItem, BatchResult
from mmsd.graph.client import DeltaResult, GraphClient, GraphObserver, RequestEvent
from mmsd.graph.errors import (
    GraphError,
    MailboxNotEnabled,
    NotFound,
    OutcomeUnknown,
    PreconditionFailed,
    QuotaExhausted,
    TransportError,
    is_transient,
)
from mmsd.graph.pacing import (
    AppPacer,
    GraphLimits,
    MailboxPacer,
    RetryPolicy,
    SendingPacer,
    TenantPacer,
)

__all__ = [
    "AppPacer",
    "BatchItem",
    "BatchResult",
    "DeltaResult",
    "GraphClient",
    "GraphError",
    "GraphLimits",
    "GraphObserver",
    "MailboxNotEnabled",
    "MailboxPacer",
    "NotFound",
    "OutcomeUnknown",
    "PreconditionFailed",
    "QuotaExhausted",
    "RequestEvent",
    "RetryPolicy",
    "SendingPacer",
    "TenantPacer",
    "TransportError",
    "is_transient",
]
