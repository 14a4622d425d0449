"""The admin surface of SPEC section 5: the HTTP API, its listeners, and the ``mmsctl`` CLI.

The API depends on the engine's protocol (:mod:`mmsd.engine.api`) and reads
straight from the :class:`~mmsd.store.Store`; nothing here knows the actors.
"""

from mmsd.admin.api import MAX_BODY_BYTES, make_admin_app
from mmsd.admin.listeners import (
    AdminListeners,
    ListenerError,
    read_token_file,
    start_admin_listeners,
)

__all__ = [
    "MAX_BODY_BYTES",
    "AdminListeners",
    "ListenerError",
    "make_admin_app",
    "read_token_file",
    "start_admin_listeners",
]
