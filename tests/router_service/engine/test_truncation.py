"""The shortening schedule of `truncation: auto` on inputs the gRPC tests do not reach: nothing
that may go, no user message, and the bound on retries."""

from __future__ import annotations

from clients.switchboard.v1 import chat_pb2
from router_service.engine._truncation import MAX_TRUNCATIONS, Truncation

SYSTEM, USER, ASSISTANT = chat_pb2.ROLE_SYSTEM, chat_pb2.ROLE_USER, chat_pb2.ROLE_ASSISTANT


def params(*roles: chat_pb2.Role.ValueType) -> chat_pb2.ChatParams:
    messages = [chat_pb2.ChatMessage(role=role, text=str(n)) for n, role in enumerate(roles)]
    return chat_pb2.ChatParams(model="m", messages=messages)


def texts(truncation: Truncation) -> list[str]:
    return [message.text for message in truncation.sent.messages]


def test_nothing_that_may_go_is_no_retry() -> None:
    for roles in ((SYSTEM,), (SYSTEM, USER), (USER, ASSISTANT), (SYSTEM, USER, SYSTEM)):
        truncation = Truncation(params(*roles))
        assert not truncation.shorter()
        assert truncation.dropped == 0 and len(texts(truncation)) == len(roles)


def test_without_a_user_message_the_oldest_go_on_the_schedule() -> None:
    truncation = Truncation(params(SYSTEM, *[ASSISTANT] * 9))  # 8 may go: not the last
    shortened = []
    while truncation.shorter():
        shortened.append(texts(truncation))
    assert [len(sent) for sent in shortened] == [6, 4, 2]  # half, three quarters, all
    assert shortened[-1] == ["0", "9"]
    assert len(shortened) == MAX_TRUNCATIONS


def test_the_retries_are_bounded_even_with_more_left() -> None:
    truncation = Truncation(params(SYSTEM, *[USER] * 1001))
    count = 0
    while truncation.shorter():
        count += 1
    assert count == MAX_TRUNCATIONS
    assert texts(truncation) == ["0", "1001"]  # the last retry leaves out all that may go
