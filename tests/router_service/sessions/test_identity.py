"""Which conversation a request belongs to."""

from __future__ import annotations

from clients.switchboard.v1 import chat_pb2
from router_service.sessions import session_id_for


def conversation(
    *turns: tuple[chat_pb2.Role.ValueType, str], user: str | None = None
) -> chat_pb2.ChatParams:
    params = chat_pb2.ChatParams(
        model="m", messages=[chat_pb2.ChatMessage(role=role, text=text) for role, text in turns]
    )
    if user is not None:
        params.user = user
    return params


SYSTEM, USER, ASSISTANT = chat_pb2.ROLE_SYSTEM, chat_pb2.ROLE_USER, chat_pb2.ROLE_ASSISTANT


def test_explicit_beats_user_beats_hash() -> None:
    params = conversation((USER, "hi"), user="alice")
    assert session_id_for("thread-7", params) == "thread-7"
    assert session_id_for("", params) == "user:alice"
    assert session_id_for("", conversation((USER, "hi"))).startswith("h:")


def test_hash_is_stable_across_turns_and_differs_across_conversations() -> None:
    first = conversation((SYSTEM, "be brief"), (USER, "plan a trip"))
    later = conversation(
        (SYSTEM, "be brief"), (USER, "plan a trip"), (ASSISTANT, "where?"), (USER, "Rome")
    )
    other = conversation((SYSTEM, "be brief"), (USER, "write a poem"))
    assert session_id_for("", first) == session_id_for("", later)
    assert session_id_for("", first) != session_id_for("", other)
