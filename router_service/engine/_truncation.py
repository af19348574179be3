"""`truncation: auto` (OpenAI's Responses API, `RoutingOptions.truncation`): an input past the
deployment's context window is sent to it again with the conversation's oldest messages left out.

The upstream's own context-length refusal (Outcome.CONTEXT_TOO_LONG) is what tells: no estimate
of ours drops what the model could have taken (our token counts are not its tokenizer's). Kept
always: the system and developer messages (the instructions), the latest user message and the
last message; a tool result and the assistant message whose call it answers go together. The
others go oldest first, by a schedule that ends, on the last of `MAX_TRUNCATIONS` retries, with
all of them gone; never is a conversation left opening on the model's own turn before the latest
user message (as some APIs refuse).
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING

from clients.switchboard.v1 import chat_pb2, embeddings_pb2, routing_pb2
from router_service.engine._tokens import estimate_chat_tokens, estimate_embedding_tokens
from router_service.errors import InvalidRequestError, UpstreamFailure
from router_service.outcomes import Outcome

if TYPE_CHECKING:
    from router_service.engine._model import RequestContext

__all__ = [
    "MAX_TRUNCATIONS",
    "EmbeddingCut",
    "Shortening",
    "Truncation",
    "shortened",
    "truncates",
]

# Retries of one deployment with a shorter input, after its first context-length refusal.
MAX_TRUNCATIONS = 3
_KEPT_ROLES = (chat_pb2.ROLE_SYSTEM, chat_pb2.ROLE_DEVELOPER)
_RESULT_ROLES = (chat_pb2.ROLE_TOOL, chat_pb2.ROLE_FUNCTION)
_MODES = frozenset(routing_pb2.Truncation.values())  # per call, `values()` costs a µs


def truncates(routing: routing_pb2.RoutingOptions, where: str = "routing") -> bool:
    """Whether the caller asked for `truncation: auto`; an unknown value is its error (the
    field named as under `where`)."""
    mode = routing.truncation
    if mode not in _MODES:
        param = f"{where}.truncation"
        raise InvalidRequestError(f"Invalid enum value {mode} in '{param}'.", param=param)
    return mode == routing_pb2.TRUNCATION_AUTO


def _groups(messages: list[chat_pb2.ChatMessage]) -> list[list[int]]:
    """The messages' indexes that go (or stay) together, in order of their first, without the
    kept roles: each message alone, but for an assistant's tool calls with the results that
    answer them, wherever those come (after another call's message, a user's)."""
    groups: list[list[int]] = []
    made: dict[str, list[int]] = {}  # a tool call's id → the group of the message that made it
    for index, message in enumerate(messages):
        if message.role in _KEPT_ROLES:
            continue
        if message.role in _RESULT_ROLES and message.tool_call_id in made:
            made[message.tool_call_id].append(index)
            continue
        groups.append([index])
        made.update((call.id, groups[-1]) for call in message.tool_calls if call.id)
    return groups


class Truncation:
    """One request's shortening on one deployment: the whole input at first (`sent`), shorter
    at each `shorter()`."""

    __slots__ = (
        "_droppable",
        "_gone",
        "_kept_from",
        "_params",
        "_retries",
        "dropped",
        "sent",
        "tokens",
    )

    def __init__(self, params: chat_pb2.ChatParams) -> None:
        self._params = params
        self.sent = params
        self.dropped = 0  # messages left out of `sent`
        # `sent`'s estimate, for the key's tpm (set when shortened: the whole input's is the
        # request's own, counted by its first try).
        self.tokens = 0
        self._retries = 0
        self._gone = 0  # droppable groups left out of `sent`
        messages = params.messages
        groups = _groups(list(messages))
        users = [n for n, g in enumerate(groups) if messages[g[0]].role == chat_pb2.ROLE_USER]
        last = max(range(len(groups)), key=lambda n: groups[n][-1], default=-1)
        kept = {last, users[-1]} if users else {last}
        # The groups that may go, oldest first; where the first kept message is (the latest
        # user message's, or that of a tool call whose result is the last message).
        self._droppable = [g for n, g in enumerate(groups) if n not in kept]
        self._kept_from = min(groups[n][0] for n in kept) if users else 0  # none: no opening

    def shorter(self) -> bool:
        """Leave out more of the oldest messages; False when no retry is left, or nothing more
        can go."""
        total = len(self._droppable)
        if self._retries >= MAX_TRUNCATIONS or self._gone >= total:
            return False
        self._retries += 1
        share = 1.0 if self._retries == MAX_TRUNCATIONS else 1 - 0.5**self._retries
        count = min(total, max(self._gone + 1, math.ceil(total * share)))
        # Never opening on the model's turn before the kept messages (the latest question).
        while count < total and self._opens_badly(self._droppable[count]):
            count += 1
        self._drop(count)
        return True

    def _opens_badly(self, group: list[int]) -> bool:
        first = self._params.messages[group[0]]
        return group[0] < self._kept_from and first.role != chat_pb2.ROLE_USER

    def _drop(self, count: int) -> None:
        out = {index for group in self._droppable[:count] for index in group}
        sent = chat_pb2.ChatParams()
        sent.CopyFrom(self._params)
        del sent.messages[:]
        sent.messages.extend(m for i, m in enumerate(self._params.messages) if i not in out)
        self.sent, self.dropped, self._gone = sent, len(out), count
        self.tokens = estimate_chat_tokens(sent)


class EmbeddingCut:
    """One embeddings request's shortening on one deployment (Ollama's `truncate`, which cuts
    an input to the model's context length): each retry cuts every text longer than half, a
    quarter, then an eighth of the longest one's length to that length (`sent`); `dropped`:
    no message is left out. Token inputs are never cut (OpenAI's tokenizer's, not ours)."""

    __slots__ = ("_longest", "_params", "_retries", "dropped", "sent", "tokens")

    def __init__(self, params: embeddings_pb2.EmbeddingParams) -> None:
        self._params = params
        self.sent = params
        self.dropped = 0
        self.tokens = 0
        self._retries = 0
        texts = self._texts(params)
        self._longest = max(map(len, texts), default=0)

    @staticmethod
    def _texts(params: embeddings_pb2.EmbeddingParams) -> list[str]:
        which = params.WhichOneof("input")
        return [params.text] if which == "text" else list(params.texts.values)

    def shorter(self) -> bool:
        """Cut the texts shorter; False when no retry is left, or nothing can be cut."""
        if self._retries >= MAX_TRUNCATIONS or self._params.WhichOneof("input") not in (
            "text",
            "texts",
        ):
            return False
        self._retries += 1
        most = max(self._longest >> self._retries, 1)
        sent = embeddings_pb2.EmbeddingParams()
        sent.CopyFrom(self._params)
        if sent.WhichOneof("input") == "text":
            sent.text = sent.text[:most]
        else:
            del sent.texts.values[:]
            sent.texts.values.extend(text[:most] for text in self._texts(self._params))
        self.sent, self.tokens = sent, estimate_embedding_tokens(sent)
        return True


# A request's shortening on one deployment: a chat's or an embeddings request's.
Shortening = Truncation | EmbeddingCut


def shortened(ctx: RequestContext, failure: UpstreamFailure) -> bool:
    """Whether the deployment that answered `failure` is to be asked again, with a shorter
    input (`ctx.truncation.sent`): a context-length refusal of a chat (or an embeddings
    request, `ctx.embedding`) whose caller asked for `truncation: auto`, with something left
    to leave out."""
    if failure.outcome is not Outcome.CONTEXT_TOO_LONG or not ctx.truncates:
        return False
    if ctx.truncation is None and ctx.embedding is not None:
        ctx.truncation = EmbeddingCut(ctx.embedding)
    elif ctx.truncation is None and ctx.chat is not None:
        ctx.truncation = Truncation(ctx.chat)
    return ctx.truncation is not None and ctx.truncation.shorter()
