"""Background responses (OpenAI's ``background: true``), the codec's side: the Response a
background request is answered with at once (``queued``), and what it becomes once its chat
call ended (:func:`background_finished`, :func:`background_failed`) or was cancelled.

The HTTP edge builds the queued Response from the request (it has the request's settings to
repeat); the router, which runs the call, finishes it from the chat completion with the same
functions a foreground answer goes through (:func:`response_to_openai`), so a background
answer's output is the one the same call would have answered in the foreground.
"""

from __future__ import annotations

from typing import Any

from clients.codec._responses_output import ResponseIds, envelope, response_to_openai
from clients.codec._responses_request import ResponsesRequest
from clients.codec._responses_stream import ResponseEventStream
from clients.codec._responses_thinking import asks_encrypted
from clients.switchboard.v1 import chat_pb2

__all__ = [
    "FINAL_STATUSES",
    "background_cancelled",
    "background_events",
    "background_failed",
    "background_finished",
    "background_response",
]

# A Response in one of these is finished: it no longer changes, and cannot be cancelled.
FINAL_STATUSES = frozenset({"completed", "incomplete", "failed", "cancelled"})
# The Response's own fields: what a streamed background response's snapshots do not repeat.
_OWN = ("id", "object", "created_at", "status", "model", "output", "usage")
# What a finished chat call changes in the queued Response.
_ANSWERED = ("model", "output", "usage", "status", "incomplete_details", "completed_at")


def background_response(
    request: ResponsesRequest, ids: ResponseIds, created_at: int
) -> dict[str, Any]:
    """The Response a background request answers at once: no output, status ``queued``, kept
    (a background response is always stored)."""
    response = envelope(request, ids, created_at, "", "queued")
    response["background"] = True
    response["store"] = True
    return response


def background_finished(
    queued: dict[str, Any],
    completion: chat_pb2.ChatCompletion,
    completed_at: int,
    params: chat_pb2.ChatParams | None = None,
) -> dict[str, Any]:
    """The queued Response finished by `completion` (the answer to `params`, the call that
    ran): its output, usage, the answering model, and status ``completed`` (or ``incomplete``,
    as a foreground answer's); its text with logprobs when the call asked for them."""
    request = ResponsesRequest(_asked(queued, params), False)
    ids = ResponseIds(str(queued["id"]))
    answer = response_to_openai(
        completion, request, ids, int(queued.get("created_at", 0)), completed_at
    )
    return {**queued, **{key: answer[key] for key in _ANSWERED if key in answer}}


def background_failed(response: dict[str, Any], code: str, message: str) -> dict[str, Any]:
    """The Response failed: status ``failed``, with OpenAI's ``error`` object."""
    return {**response, "status": "failed", "error": {"code": code, "message": message}}


def background_cancelled(response: dict[str, Any]) -> dict[str, Any]:
    """The Response cancelled before it finished: status ``cancelled``, no output."""
    return {**response, "status": "cancelled", "output": [], "usage": None}


def background_events(
    queued: dict[str, Any], sequence: int = 0, params: chat_pb2.ChatParams | None = None
) -> ResponseEventStream:
    """The events of the queued Response's streamed run (``background`` with ``stream``; the
    answer to `params`, the call that runs), numbered from `sequence`, each snapshot repeating
    the queued Response's settings; its text with logprobs when the call asked for them."""
    echo = {key: value for key, value in queued.items() if key not in _OWN}
    request = ResponsesRequest(_asked(queued, params), True, echo)
    ids = ResponseIds(str(queued["id"]))
    return ResponseEventStream(request, ids, int(queued.get("created_at", 0)), sequence)


def _asked(queued: dict[str, Any], params: chat_pb2.ChatParams | None) -> chat_pb2.ChatParams:
    """What a background answer is shaped by: the queued model, the call's logprobs, and its
    `include` of `reasoning.encrypted_content` (Claude's signed thinking carried, as in the
    foreground: without it the next turn's thinking is lost)."""
    asked = chat_pb2.ChatParams(model=str(queued.get("model", "")))
    if params is not None and params.HasField("logprobs"):
        asked.logprobs = params.logprobs
    if params is not None and asks_encrypted(params):
        asked.extra_json = params.extra_json
    return asked
