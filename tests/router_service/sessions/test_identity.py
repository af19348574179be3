"""Which conversation a request belongs to."""

from __future__ import annotations

from clients.switchboard.v1 import chat_pb2
from router_service.sessions import client_document, named_session_id, session_id_for


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


def test_a_calls_named_session_is_one_rule_for_chats_and_embeddings() -> None:
    # What an Embed (no messages to hash) names: a chat's id for the same caller, or none.
    assert named_session_id("", "alice") == session_id_for("", conversation(user="alice"))
    assert named_session_id("thread-7", "alice") == "thread-7"
    assert named_session_id("", "") == ""


def test_hash_is_stable_across_turns_and_differs_across_conversations() -> None:
    first = conversation((SYSTEM, "be brief"), (USER, "plan a trip"))
    later = conversation(
        (SYSTEM, "be brief"), (USER, "plan a trip"), (ASSISTANT, "where?"), (USER, "Rome")
    )
    other = conversation((SYSTEM, "be brief"), (USER, "write a poem"))
    assert session_id_for("", first) == session_id_for("", later)
    assert session_id_for("", first) != session_id_for("", other)


def test_a_client_documents_name_is_the_one_earlier_versions_wrote() -> None:
    """Stored responses, conversations and batches are read back by these names across an
    upgrade: pinned, a change of the rule would lose what replicas kept."""
    name = client_document("resp", "app", "resp_1")
    assert name == "resp:72a5a78d16b9e1b5224897313d46aec8:3b54116a8f435d1bf18ec5185025313a"
    assert client_document("batch", "other", "resp_1").split(":")[1:] != name.split(":")[1:]
