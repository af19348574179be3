"""One line of a batch, run as its client's own call to the endpoint would be: admitted by the
auth gate (the client's allowed models, request bounds, guardrails, rpm, tpm and budgets, as
the interceptor admits a Chat or Embed call), then routed by the engine (groups, key pools,
fallbacks, cooldowns), its usage settled as the interceptor settles it. A line the client's
rpm or tpm refuses waits until they admit it (the batch's completion window bounds the wait):
a batch takes what its client's limits leave, never more. A `/v1/completions` line's several
prompts are a Chat call each, admitted (and waiting) each on its own, so none is made twice.

What a line answers is its output-file line, OpenAI's: `{"id": "batch_req_…", "custom_id",
"response": {"status_code", "request_id", "body"}, "error": null}`, the body an OpenAI answer
or error JSON (the status and error the edge would have answered the same call with).

A `/v1/responses` line is a Responses call answered whole: the edge's translation onto a chat
call and back to a Response object (`clients.codec`), stored when `store` asks (as the edge's
`Keeper` stores it: through the gate as the client's StoreResponse call; a failure to store
costs the line its `store: true`, never its answer). What a batch cannot answer — `background`,
and what needs stored state loaded first (`previous_response_id`, `conversation`,
`item_reference`) — is the line's 400, naming the field (whether the id exists or not: it is
never looked up, so never the edge's 404); a line asking to `stream` fails the batch at
validation, whatever its endpoint (`router_service/batches/_lines.py`)."""

from __future__ import annotations

import logging
import secrets
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from functools import partial
from typing import Any, TypeVar

from clients import (
    ResponseIds,
    ResponsesRequest,
    SwitchboardClientError,
    chat_completion_to_openai,
    chat_params_from_openai,
    completion_to_openai,
    completions_field,
    completions_request_from_openai,
    embedding_params_from_openai,
    embedding_result_to_openai,
    http_status_for,
    is_item_reference,
    openai_error_body,
    response_to_openai,
    responses_field,
    responses_request_from_openai,
    said_in_callers_terms,
    stored_response,
)
from clients.switchboard.v1 import chat_pb2
from clients.switchboard.v1 import router_service_pb2 as pb
from clients.switchboard.v1.routing_pb2 import RoutingOptions
from router_service.auth import ROUTER_SERVICE, RULES, Attempt, Caller
from router_service.batches import BatchLine, LineResult
from router_service.cancellation import uncut
from router_service.engine import RequestContext, truncates
from router_service.engine._model import SetAside
from router_service.errors import (
    BudgetExhaustedError,
    ClientRateLimitedError,
    InvalidRequestError,
    SwitchboardError,
)
from router_service.guardrails import AnswerAudit
from router_service.runtime import Runtime
from router_service.server._answer_audit import audit_answer
from router_service.server._calls import validate_chat, validate_embed
from router_service.server._errors import error_details
from router_service.server._used import Used, give_back_if_refused
from router_service.sessions import named_session_id, session_id_for, session_key
from router_service.telemetry import chat_span, embed_span

__all__ = ["LineCaller", "run_line"]

log = logging.getLogger(__name__)

_T = TypeVar("_T")
# What a line used: input, output, cached input and reasoning output tokens.
Tokens = tuple[int, int, int, int]
_NO_TOKENS: Tokens = (0, 0, 0, 0)
_MAX_WAIT_S = 60.0  # a line refused by its client's rpm waits at most this before it asks again
# The endpoints whose lines are chat calls of another API: a refusal of a chat field (a
# guardrail's block of `messages[0].content`…) names the field as that API's caller wrote it.
_CALLERS_FIELDS = {"/v1/completions": completions_field, "/v1/responses": responses_field}
# A batch line is answered on its own, nothing stored read for it: what it names is refused
# as the batch's limit, one 400 whether the id exists or not (not looked up: never a 404).
_ON_ITS_OWN = (
    "A batch line is answered on its own: {what} cannot be used in a batch (nothing stored is "
    "read for a line, whatever the id). Send the whole conversation in 'input', or make this "
    "request with POST /v1/responses."
)
_STORED_FIELDS = {
    "previous_response_id": "'previous_response_id'",
    "conversation": "'conversation'",
}


@dataclass(frozen=True, slots=True)
class LineCaller:
    """Who runs a batch's lines, and where."""

    runtime: Runtime  # its gate admits each line
    caller: Caller
    client: str
    endpoint: str
    batch_id: str
    # A line's: its slot of `batches.concurrency`, given back while it waits out a cooldown.
    aside: SetAside | None = None


async def run_line(who: LineCaller, line: BatchLine) -> LineResult:
    """Run `line`; its result (a failure is the line's, never the batch's)."""
    request_id = f"req_{secrets.token_hex(12)}"
    try:
        body, tokens = await _call(who, line.body)
    except Exception as exc:  # the line's failure, as the edge would have answered it
        prompt, used = None, _NO_TOKENS
        if isinstance(exc, _PromptFailed):  # of several prompts, the one refused
            prompt, used, exc = exc.index, exc.used, exc.error
        details = error_details(exc)
        field_of = _CALLERS_FIELDS.get(who.endpoint)
        if field_of is not None:  # as the edge says it
            if prompt is not None:
                field_of = partial(completions_field, prompt=prompt)
            details = said_in_callers_terms(details, field_of)
        response = {
            "status_code": http_status_for(details),
            "request_id": request_id,
            "body": openai_error_body(details),
        }
        # What the prompts answered before it used (billed as calls) is the batch's usage too.
        return LineResult(line.number, _output(line, response), False, *used)
    response = {"status_code": 200, "request_id": request_id, "body": body}
    return LineResult(line.number, _output(line, response), True, *tokens)


def _output(line: BatchLine, response: dict[str, Any]) -> dict[str, Any]:
    return {
        "id": f"batch_req_{secrets.token_hex(12)}",
        "custom_id": line.custom_id,
        "response": response,
        "error": None,
    }


class _PromptFailed(Exception):
    """Prompt `index` of a legacy completion line's several failed with `error`, once those
    before it had `used` (input, output) tokens."""

    def __init__(self, index: int, error: Exception, used: Tokens) -> None:
        super().__init__(index, error)
        self.index, self.error, self.used = index, error, used


async def _admitted(who: LineCaller, call: Callable[[], Awaitable[_T]]) -> _T:
    """`call()`'s answer, once its client's limits admit it: each call of a line on its own
    (a legacy completion's prompts are several), so none is made twice."""
    while True:
        try:
            return await call()
        except BudgetExhaustedError:
            raise  # waiting a minute does not help
        except ClientRateLimitedError as exc:
            if exc.retry_after_s <= 0:
                raise
            await who.runtime.clock.sleep(min(exc.retry_after_s, _MAX_WAIT_S))


async def _call(who: LineCaller, body: dict[str, Any]) -> tuple[Any, Tokens]:
    if who.endpoint == "/v1/embeddings":
        embedding = embedding_params_from_openai(body)
        answer = await _admitted(who, lambda: _embed(who, pb.EmbedRequest(params=embedding)))
        usage = answer.result.usage
        return embedding_result_to_openai(answer.result), (usage.prompt_tokens, 0, 0, 0)
    if who.endpoint == "/v1/completions":
        return await _complete(who, body)
    if who.endpoint == "/v1/responses":
        return await _respond(who, body)
    params, _ = chat_params_from_openai(body)  # a batch's line answers whole: no stream
    chat = await _chat_admitted(who, params)
    return chat_completion_to_openai(chat.completion), _tokens(chat)


async def _complete(who: LineCaller, body: dict[str, Any]) -> tuple[Any, Tokens]:
    """A legacy completion line: as `POST /v1/completions` answers it, several prompts a chat
    call each (one after another: the batch runs its lines together), their usage added up."""
    parsed = completions_request_from_openai(body)
    chats: list[pb.ChatResponse] = []
    for index, params in enumerate(parsed.each_prompt()):
        try:
            chats.append(await _chat_admitted(who, params))
        except Exception as exc:
            if not parsed.more_prompts:
                raise
            raise _PromptFailed(index, exc, _tokens_of(chats)) from exc
    created = int(who.runtime.clock.now())
    cmpl_id = f"cmpl-{secrets.token_hex(12)}"
    out = completion_to_openai([chat.completion for chat in chats], parsed, cmpl_id, created)
    return out, _tokens_of(chats)


def _tokens_of(chats: list[pb.ChatResponse]) -> Tokens:
    tokens = [_tokens(chat) for chat in chats]
    return (
        sum(t[0] for t in tokens),
        sum(t[1] for t in tokens),
        sum(t[2] for t in tokens),
        sum(t[3] for t in tokens),
    )


async def _respond(who: LineCaller, body: dict[str, Any]) -> tuple[Any, Tokens]:
    """A Responses line: its Response object, as `POST /v1/responses` answers it."""
    _check_on_its_own(body)
    parsed = responses_request_from_openai(body)
    if parsed.background:  # its answer is the output line: nothing to poll
        raise InvalidRequestError(
            "A batch line is answered whole: `background: true` cannot be batched.",
            param="background",
        )
    chat = await _chat_admitted(who, parsed.params, parsed.routing)  # its `truncation`
    created = int(who.runtime.clock.now())
    ids = ResponseIds(f"resp_{secrets.token_hex(16)}")
    out = response_to_openai(chat.completion, parsed, ids, created, created)
    await _keep(who, parsed, out)
    return out, _tokens(chat)


def _check_on_its_own(body: Any) -> None:
    """Refuse what names stored state (a previous response, a conversation, an item reference)
    as what a batch cannot do, not as a failure to load it."""
    if not isinstance(body, dict):
        return  # the codec's refusal
    for field, what in _STORED_FIELDS.items():
        if body.get(field) is not None:
            raise InvalidRequestError(_ON_ITS_OWN.format(what=what), param=field)
    items = body.get("input")
    for i, item in enumerate(items if isinstance(items, list) else ()):
        if isinstance(item, dict) and is_item_reference(item):
            what = "an 'item_reference'"
            raise InvalidRequestError(_ON_ITS_OWN.format(what=what), param=f"input[{i}]")


async def _keep(who: LineCaller, parsed: ResponsesRequest, response: dict[str, Any]) -> None:
    """Store `response` if its line asked, its `store` set to what happened (as the edge's
    `Keeper` does)."""
    if not parsed.store:
        return
    response["store"] = False  # until the store says it kept it
    try:
        call = pb.StoreResponseRequest(response=stored_response(parsed, response))
        # `call.response` read once admitted: the gate's guardrails may have redacted it.
        responses = who.runtime.responses
        answer = await _as_call(
            who, "StoreResponse", call, lambda: responses.save(who.client, call.response)
        )
    except (SwitchboardError, SwitchboardClientError) as exc:  # the codec's, a router's
        log.warning("storing batch response %s failed: %s", response["id"], exc)
        return
    response["store"] = answer.stored


def _tokens(answer: pb.ChatResponse) -> Tokens:
    usage = answer.completion.usage
    cached = usage.prompt_tokens_details.cached_tokens
    reasoning = usage.completion_tokens_details.reasoning_tokens
    return usage.prompt_tokens, usage.completion_tokens, cached, reasoning


def _chat_admitted(
    who: LineCaller, params: chat_pb2.ChatParams, routing: RoutingOptions | None = None
) -> Awaitable[pb.ChatResponse]:
    # A new request each time it is asked: the gate's guardrails may have rewritten the last.
    return _admitted(who, lambda: _chat(who, pb.ChatRequest(params=params, routing=routing)))


async def _chat(who: LineCaller, request: pb.ChatRequest) -> pb.ChatResponse:
    params, runtime = request.params, who.runtime

    async def answer() -> pb.ChatResponse:
        validate_chat(params)
        # `routing.session_id`: the `user` as sent, when the gate's guardrails rewrote it
        # (`pin_session`), as a Chat call's.
        ctx = _context(who, params.model, session_id_for(request.routing.session_id, params))
        ctx.truncates = truncates(request.routing)
        ctx.answers = runtime.guardrails.answers(who.client, params.model, lambda: _audit(who))
        with chat_span(params, ctx, stream=False) as span:
            answered = await runtime.executor.chat(params, ctx)
            span.respond(answered)
        return answered

    return await _as_call(who, "Chat", request, answer)


async def _embed(who: LineCaller, request: pb.EmbedRequest) -> pb.EmbedResponse:
    params = request.params

    async def answer() -> pb.EmbedResponse:
        validate_embed(params)
        ctx = _context(who, params.model, named_session_id("", params.user))
        with embed_span(params, ctx) as span:
            answered = await who.runtime.executor.embed(params, ctx)
            span.respond_embeddings(answered)
        return answered

    return await _as_call(who, "Embed", request, answer)


async def _as_call(
    who: LineCaller, rpc: str, request: Any, answer: Callable[[], Awaitable[_T]]
) -> _T:
    """`answer()` once the gate admits `request` as the client's own `rpc` call, the tokens it
    used settled as the interceptor settles that call's: to its end, whatever cancels the line
    meanwhile (its batch cancelled, expired or stopped as it settles: the line, never written,
    is not run again, and a settlement cut there left its estimate charged, not its usage)."""
    method = ROUTER_SERVICE + rpc
    rule = RULES[method]
    attempt = _attempt(who, method)
    gate = who.runtime.gate
    gate.check_scope(attempt, who.caller, rule)  # made with `chat`: an Embed needs `embed`
    admission = await gate.admit(attempt, who.caller, rule, request)
    try:
        try:
            answered = await answer()
        except BaseException as error:
            await give_back_if_refused(admission, error)  # as the interceptor: it used nothing
            raise
        if admission.counts_tokens:  # as the interceptor's: else nothing to settle, no task
            used = Used(rule, request)
            used.see(answered)
            await uncut(used.settle(admission))
        return answered
    finally:
        if admission.holds_stream_slot:  # a line's call holds none: no task
            await uncut(admission.close())


def _audit(who: LineCaller) -> AnswerAudit:
    """What answer guardrails did to a line, audited as for the client's own Chat call."""
    redactions = who.runtime.config.auth.audit == "all"
    return audit_answer(ROUTER_SERVICE + "Chat", _peer(who), who.caller.name, None, redactions)


def _attempt(who: LineCaller, method: str) -> Attempt:
    # Audited as the call it is, from the batch (the client's key is not kept: its caller is).
    return Attempt(method=method, authorization=None, peer=_peer(who))


def _peer(who: LineCaller) -> str:
    return f"batch:{who.batch_id}"


def _context(who: LineCaller, model: str, session_id: str) -> RequestContext:
    if not model:
        raise InvalidRequestError("`model` is required.", param="model")
    session = session_key(who.client, session_id)
    clock = who.runtime.clock
    ctx = RequestContext(model, clock, session_id=session, client=who.client, unattended=True)
    ctx.set_aside = who.aside
    return ctx
