"""Conversations: identity, sticky routing, thread protection, active marks."""

from router_service.sessions._identity import session_id_for
from router_service.sessions._protection import ThreadActions, ThreadProtection, thread_actions
from router_service.sessions._sessions import ActiveMark, SessionState

__all__ = [
    "ActiveMark",
    "SessionState",
    "ThreadActions",
    "ThreadProtection",
    "session_id_for",
    "thread_actions",
]
