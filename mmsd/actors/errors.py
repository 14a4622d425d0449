"""The exceptions of the actor runtime, one per way a send, an ask or a spawn can fail."""

from __future__ import annotations


class ActorError(Exception):
    """Base of every error the actor runtime raises."""


class ActorStopped(ActorError):
    """The actor no longer takes messages (stopped, passivated, failed or shut down)."""


class MailboxFull(ActorError):
    """``tell`` waited its whole timeout for space in a full mailbox (backpressure)."""


class AskTimeout(ActorError, TimeoutError):
    """``ask`` got no reply within its timeout; the request may still be handled later."""


class Rejected(ActorError):
    """An expected, protocol-level refusal raised by a handler: it reaches the asker, no crash.

    Validation errors are part of the protocol (Erlang/Orleans): the handler raises
    ``Rejected(code, message)``, the asker gets it, the actor keeps its state and runs on.
    """

    def __init__(self, code: str, message: str = "") -> None:
        super().__init__(f"{code}: {message}" if message else code)
        self.code = code
        self.message = message


class UnhandledMessage(Rejected):
    """The actor has no handler for the message's type (a caller bug; the actor runs on)."""

    def __init__(self, actor: str, message_type: type) -> None:
        super().__init__("unhandledMessage", f"{actor} has no handler for {message_type.__name__}")


class ActorCrashed(ActorError):
    """The handler of an asked message raised an unexpected exception (its ``__cause__``)."""


class ActorFailed(ActorError):
    """The actor exhausted its restart budget and was marked failed (escalated)."""


class CapacityReached(ActorError):
    """A group is at its cap of live actors; the caller keeps the work pending in the store."""


class SystemStopping(ActorError):
    """The actor system is shutting down and spawns no new actors or tasks."""
