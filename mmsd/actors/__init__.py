"""mmsd's actor runtime: bounded mailboxes, supervision, groups, staged shutdown.

Generic: it knows nothing of tenants, users, Graph or SQLite. See ``actor.py`` for the
actor model, ``mailbox.py`` for the overflow rule, ``supervisor.py`` for restarts,
``registry.py`` for groups and the system, ``shutdown.py`` for the stop sequence.
"""

from mmsd.actors.actor import Actor, ActorRef, ActorState, ChildExit, StopReason, handles
from mmsd.actors.errors import (
    ActorCrashed,
    ActorError,
    ActorFailed,
    ActorStopped,
    AskTimeout,
    CapacityReached,
    MailboxFull,
    Rejected,
    SystemStopping,
    UnhandledMessage,
)
from mmsd.actors.eventloop import new_event_loop, run, uvloop_available
from mmsd.actors.mailbox import Envelope, Mailbox, Message, Replaceable, Request
from mmsd.actors.registry import ActorGroup, ActorSystem, KindStats, SystemStats
from mmsd.actors.shutdown import (
    ShutdownHook,
    ShutdownPlan,
    ShutdownReport,
    ShutdownStage,
    StageReport,
    install_stop_signals,
)
from mmsd.actors.supervisor import RestartDecision, SupervisionPolicy, Supervisor

__all__ = [
    "Actor",
    "ActorCrashed",
    "ActorError",
    "ActorFailed",
    "ActorGroup",
    "ActorRef",
    "ActorState",
    "ActorStopped",
    "ActorSystem",
    "AskTimeout",
    "CapacityReached",
    "ChildExit",
    "Envelope",
    "KindStats",
    "Mailbox",
    "MailboxFull",
    "Message",
    "Rejected",
    "Replaceable",
    "Request",
    "RestartDecision",
    "ShutdownHook",
    "ShutdownPlan",
    "ShutdownReport",
    "ShutdownStage",
    "StageReport",
    "StopReason",
    "SupervisionPolicy",
    "Supervisor",
    "SystemStats",
    "SystemStopping",
    "UnhandledMessage",
    "handles",
    "install_stop_signals",
    "new_event_loop",
    "run",
    "uvloop_available",
]
