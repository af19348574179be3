"""Conversations: identity, sticky routing, thread protection, active marks."""

from clients import MAX_SESSION_ID_BYTES
from router_service.sessions._identity import (
    caller_session_id,
    checked_session_id,
    client_document,
    client_scoped,
    named_session_id,
    opening_session,
    pin_session,
    session_id_for,
    session_key,
    stored_name,
    user_session_id,
)
from router_service.sessions._marks import LocalMarks
from router_service.sessions._protection import ThreadActions, ThreadProtection, thread_actions
from router_service.sessions._sessions import ActiveMark, SessionState

__all__ = [
    "MAX_SESSION_ID_BYTES",
    "ActiveMark",
    "LocalMarks",
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
    "session_id_for",
    "session_key",
    "stored_name",
    "thread_actions",
    "user_session_id",
]
