"""Conversations: identity, sticky routing, thread protection, active marks.

Names are imported on first use (`clients._lazy`): the edge names a stored conversation's
session (`caller_session_id`, `stored_name`) without the router's session state and config
models (tests/router_service/config/test_edge_config.py)."""

from typing import TYPE_CHECKING

from clients._lazy import lazy_names

if TYPE_CHECKING:  # for the type checker: at run time each name is imported on first use
    from clients import MAX_SESSION_ID_BYTES
    from router_service.sessions._identity import (
        caller_session_id,
        checked_session_id,
        client_document,
        client_scoped,
        named_session_id,
        opening_session,
        pin_session,
        session_digest,
        session_id_for,
        session_key,
        stored_name,
        user_session_id,
    )
    from router_service.sessions._marks import LocalMarks
    from router_service.sessions._protection import ThreadActions, ThreadProtection, thread_actions
    from router_service.sessions._renames import Renames
    from router_service.sessions._sessions import ActiveMark, SessionState

_WHERE = {
    "caller_session_id": "_identity",
    "checked_session_id": "_identity",
    "client_document": "_identity",
    "client_scoped": "_identity",
    "named_session_id": "_identity",
    "opening_session": "_identity",
    "pin_session": "_identity",
    "session_digest": "_identity",
    "session_id_for": "_identity",
    "session_key": "_identity",
    "stored_name": "_identity",
    "user_session_id": "_identity",
    "MAX_SESSION_ID_BYTES": "_identity",  # as `clients` names it: _identity imports it
    "LocalMarks": "_marks",
    "ThreadActions": "_protection",
    "ThreadProtection": "_protection",
    "thread_actions": "_protection",
    "Renames": "_renames",
    "ActiveMark": "_sessions",
    "SessionState": "_sessions",
}
# Hidden from type checkers: a module `__getattr__` makes every name it lacks `Any` to them.
if not TYPE_CHECKING:
    __getattr__, __dir__ = lazy_names(__name__, _WHERE)

__all__ = [
    "MAX_SESSION_ID_BYTES",
    "ActiveMark",
    "LocalMarks",
    "Renames",
    "SessionState",
    "ThreadActions",
    "ThreadProtection",
    "caller_session_id",
    "checked_session_id",
    "client_document",
    "client_scoped",
    "named_session_id",
    "opening_session",
    "pin_session",
    "session_digest",
    "session_id_for",
    "session_key",
    "stored_name",
    "thread_actions",
    "user_session_id",
]
