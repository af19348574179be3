"""Background responses, the codec's side (`clients.codec._responses_background`): the queued
Response a request answers at once, and what the router's job turns it into."""

from __future__ import annotations

from clients import (
    FINAL_STATUSES,
    ResponseIds,
    background_cancelled,
    background_failed,
    background_finished,
    background_response,
    responses_request_from_openai,
)
from clients.switchboard.v1 import chat_pb2

BODY = {"model": "chain", "input": "hi", "background": True, "metadata": {"k": "v"}}


def queued() -> dict[str, object]:
    request = responses_request_from_openai(BODY)
    return background_response(request, ResponseIds("resp_ab12"), 1_700_000_000)


def test_the_queued_response_repeats_the_request_and_says_background() -> None:
    response = queued()
    assert (response["id"], response["status"], response["output"]) == ("resp_ab12", "queued", [])
    assert (response["background"], response["store"]) == (True, True)
    assert response["metadata"] == {"k": "v"} and response["model"] == "chain"


def test_a_finished_call_fills_in_the_answer_and_keeps_the_rest() -> None:
    message = chat_pb2.ChatMessage(role=chat_pb2.ROLE_ASSISTANT, text="Hello!")
    choice = chat_pb2.Choice(message=message, finish_reason=chat_pb2.FINISH_REASON_STOP)
    completion = chat_pb2.ChatCompletion(model="model-a", choices=[choice])
    done = background_finished(queued(), completion, 1_700_000_009)
    assert (done["status"], done["model"], done["completed_at"]) == (
        "completed",
        "model-a",
        1_700_000_009,
    )
    assert done["output"][0]["id"] == "msg_ab12"
    assert done["output"][0]["content"][0]["text"] == "Hello!"
    assert (done["background"], done["metadata"], done["created_at"]) == (
        True,
        {"k": "v"},
        1_700_000_000,
    )


def test_failed_and_cancelled_are_final_without_output() -> None:
    failed = background_failed(queued(), "server_error", "It broke.")
    assert failed["error"] == {"code": "server_error", "message": "It broke."}
    cancelled = background_cancelled({**queued(), "status": "in_progress"})
    assert (cancelled["status"], cancelled["output"]) == ("cancelled", [])
    assert {failed["status"], cancelled["status"]} <= FINAL_STATUSES
