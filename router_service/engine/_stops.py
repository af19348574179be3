"""Stop sequences past an upstream's cap, enforced by the router.

An upstream takes so many stop sequences (OpenAI's 4, Gemini's and Cohere's 5: the adapter's
`stop_cap`), and Anthropic none of whitespace alone (`refuses_blank_stops`). A call sends the
first that many it takes, in the caller's order; the rest are the router's to enforce on the
answer: each choice's content is cut before the earliest of them it holds (the stop itself
left out, as upstreams do), and the choice ends with finish_reason `stop`, naming the stop
that matched (`matched_stop`); its `logprobs.content` loses the entries past the cut
(_stop_logprobs.py). Reasoning is left as the upstream sent it. Tool calls
that came with the text the stop is in (one message, one chunk) go with the text past it: the
order of the two inside one is unknowable, and upstreams generate a turn's text before its tool
calls (OpenAI's and Anthropic's streams send it first), so an upstream that had honoured the
stop would not have made them; a call and a stream thus end such a choice alike, its text cut,
no tool call, finish `stop`. A stream's tool calls sent in a chunk before the stop's came
before it and stay (they are the caller's already). A non-streamed answer's usage is the
upstream's (it generated the text past the cut). A stream holds back the last (longest stop
− 1) characters of each choice's content, releases the rest as it comes, and on a match ends
the choice there (where the call would cut the same text: `_pending`); once every choice ended
and a match ended the last, `cut` tells the relay to read the upstream no further (its call is
closed), after a usage chunk of the router's estimate (the prompt's, and the text, reasoning
and tool call arguments the upstream sent), the upstream's own never having come.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol

from clients.codec import CHARS_PER_TOKEN, estimate_prompt_tokens
from clients.switchboard.v1 import chat_pb2
from router_service.engine._model import Deployment
from router_service.engine._reasoning_hidden import without_chunk_reasoning
from router_service.engine._stop_citations import StopCitations, cut_message_citations
from router_service.engine._stop_logprobs import HeldLogprobs, cut_logprobs
from router_service.errors import UpstreamFailure
from router_service.guardrails._texts import REASONING_KEYS, json_object
from router_service.providers._mapping import unsupported

__all__ = [
    "MAX_ENFORCED_STOPS",
    "MAX_ENFORCED_STOP_CHARS",
    "ChainedFilters",
    "ChunkFilter",
    "StreamStops",
    "beyond_cap",
    "cannot_enforce",
    "choices_of",
    "cut_completion",
    "has_stops",
    "stops_for",
    "stops_past",
    "stream_filters",
]

Chunk = chat_pb2.ChatCompletionChunk
# The most stops past a deployment's cap the router enforces, and their longest: each chunk of
# a stream is matched against every one (Python's work, per chunk, on the router's loop), and a
# choice holds back the longest's length. Past them, a deployment with that cap is passed over
# (the caller gets a 400 when every one is). OpenAI itself refuses more than 4.
MAX_ENFORCED_STOPS = 256
MAX_ENFORCED_STOP_CHARS = 256


def stop_values(params: chat_pb2.ChatParams) -> Sequence[str]:
    """The stop sequences of `params`, a list's or the one string's (none: empty)."""
    which = params.WhichOneof("stop")
    if which == "stop_list":
        return params.stop_list.values
    return (params.stop_text,) if which == "stop_text" else ()


def has_stops(params: chat_pb2.ChatParams) -> bool:
    return params.WhichOneof("stop") is not None


def beyond_cap(
    params: chat_pb2.ChatParams, cap: int | None, blank_refused: bool = False
) -> tuple[chat_pb2.ChatParams, tuple[str, ...]]:
    """`params` as a call may send them (the first `cap` stops; none at all where the API takes
    none, as the Responses API; `blank_refused`: none of whitespace alone, which Anthropic
    refuses) and the stops left to the router; `params` itself, and none, when its stops fit."""
    values = stop_values(params)
    if _fit(values, cap, blank_refused):
        return params, ()
    kept, stops = _split(values, cap, blank_refused)  # none left when those are empty: cut
    sent = chat_pb2.ChatParams()
    sent.CopyFrom(params)
    if not kept:
        sent.ClearField("stop")
    elif len(kept) < len(values):  # a list: the one string fits, or is not sent
        del sent.stop_list.values[:]
        sent.stop_list.values.extend(kept)
    return sent, stops


def stops_past(
    params: chat_pb2.ChatParams, cap: int | None, blank_refused: bool = False
) -> tuple[str, ...]:
    """The stops of `params` a call does not send (`beyond_cap`), empty ones dropped: they
    match nothing."""
    values = stop_values(params)
    return () if _fit(values, cap, blank_refused) else _split(values, cap, blank_refused)[1]


def _fit(values: Sequence[str], cap: int | None, blank_refused: bool) -> bool:
    if blank_refused and not all(stop.strip() for stop in values):
        return False
    return cap is None or len(values) <= cap


def _split(
    values: Sequence[str], cap: int | None, blank_refused: bool
) -> tuple[list[str], tuple[str, ...]]:
    """(the stops sent: the first `cap` the upstream takes, in order; the others, not empty)."""
    sent: list[str] = []
    left: list[str] = []
    for stop in values:
        taken = (cap is None or len(sent) < cap) and not (blank_refused and not stop.strip())
        (sent if taken else left).append(stop)
    return sent, tuple(stop for stop in left if stop)


def _earliest(text: str, stops: Sequence[str]) -> tuple[int, str] | None:
    """Where the earliest of `stops` begins in `text`, and which (the first listed on a tie)."""
    found: tuple[int, str] | None = None
    for stop in stops:
        at = text.find(stop)
        if at >= 0 and (found is None or at < found[0]):
            found = (at, stop)
    return found


def _pending(text: str, stops: Sequence[str], found: tuple[int, str]) -> bool:
    """Whether a stop the whole text would cut at instead of `found` may still complete: one
    `text` ends with the beginning of, starting before `found` (or where it does, listed before
    it). A stream waits for it, so that it cuts where the call would, whatever its pieces."""
    at, stop = found
    first = stops.index(stop)
    for rank, other in enumerate(stops):
        last = at if rank < first else at - 1
        for begin in range(max(len(text) - len(other) + 1, 0), last + 1):
            if other.startswith(text[begin:]):
                return True
    return False


def _generated_besides(delta: chat_pb2.ChatMessage) -> int:
    """The characters a delta's reasoning and tool call arguments hold: the upstream generated
    them too (a cut stream's usage estimate counts them)."""
    size = sum(len(call.function.arguments) for call in delta.tool_calls)
    if any(key in delta.extra_json for key in REASONING_KEYS):
        extra = json_object(delta.extra_json) or {}
        size += sum(len(v) for k, v in extra.items() if k in REASONING_KEYS and isinstance(v, str))
    return size


def _stopped(choice: chat_pb2.Choice | chat_pb2.ChunkChoice, stop: str) -> None:
    choice.finish_reason = chat_pb2.FINISH_REASON_STOP
    choice.finish_reason_raw = "stop"
    choice.matched_stop = stop


def _without_calls(message: chat_pb2.ChatMessage) -> None:
    """Drop the tool calls that came with the text a stop cut (generated after it)."""
    del message.tool_calls[:]
    message.ClearField("function_call")


def cut_completion(completion: chat_pb2.ChatCompletion, stops: Sequence[str]) -> None:
    """Cut each choice's text content before the earliest of `stops` (in place)."""
    for choice in completion.choices:
        message = choice.message
        if message.WhichOneof("content") != "text":
            continue
        found = _earliest(message.text, stops)
        if found is None:
            continue
        message.text = message.text[: found[0]]
        cut_message_citations(message, found[0])
        if choice.logprobs_json:  # placed in bytes: a token may be part of a character
            choice.logprobs_json = cut_logprobs(choice.logprobs_json, len(message.text.encode()))
        _without_calls(message)
        _stopped(choice, found[1])


class ChunkFilter(Protocol):
    """What the relay runs a stream's chunks through (stop sequences, answer guardrails)."""

    @property
    def cut(self) -> bool: ...

    def chunks(self, chunks: list[Chunk]) -> list[Chunk]: ...


class ChainedFilters:
    """Filters in turn, each seeing what the one before let through: the stops cut first, so
    the guardrails screen the text the caller will see."""

    __slots__ = ("_filters",)

    def __init__(self, *filters: ChunkFilter) -> None:
        self._filters = filters

    @property
    def cut(self) -> bool:
        return any(f.cut for f in self._filters)

    def chunks(self, chunks: list[Chunk]) -> list[Chunk]:
        for f in self._filters:
            chunks = f.chunks(chunks)
        return chunks


class StreamStops:
    """A stream's stops past the cap, matched per choice across deltas."""

    __slots__ = (
        "_choices",
        "_cites",
        "_cut",
        "_ended",
        "_finished",
        "_held",
        "_keep",
        "_logprobs",
        "_prompt",
        "_seen",
        "_stops",
    )

    def __init__(self, stops: Sequence[str], choices: int, prompt_tokens: int) -> None:
        self._stops = tuple(stops)
        self._keep = max(len(s) for s in stops) - 1
        self._choices = max(choices, 1)
        self._prompt = prompt_tokens
        self._held: dict[int, str] = {}
        self._logprobs: HeldLogprobs | None = None  # the entries held with the text, if any
        self._cites = StopCitations()  # the annotations, held until the text they cite is out
        self._ended: set[int] = set()  # choices a stop ended: what follows of them is dropped
        self._finished: set[int] = set()  # choices ended either way
        self._seen = 0  # characters of content the upstream sent
        self._cut = False  # a match ended the last choice still running

    @property
    def cut(self) -> bool:
        return self._cut

    def chunks(self, chunks: list[Chunk]) -> list[Chunk]:
        out: list[Chunk] = []
        for chunk in chunks:
            if self.cut:
                break
            ended_before = len(self._ended)
            kept = [c for c in chunk.choices if self._choice(c)]
            if len(kept) != len(chunk.choices):
                if not kept:
                    continue  # nothing but what an ended choice went on to say
                del chunk.choices[:]
                chunk.choices.extend(kept)
            out.append(chunk)
            if len(self._ended) > ended_before and len(self._finished) >= self._choices:
                self._cut = True
                out.append(self._usage(chunk))
        return out

    def _choice(self, choice: chat_pb2.ChunkChoice) -> bool:
        """Match and release one choice's delta (in place); False: drop it (its choice ended)."""
        index = choice.index
        if index in self._ended:
            return False
        delta = choice.delta
        held = self._held.get(index, "")
        self._cites.take(choice)
        if choice.logprobs_json:
            self._hold_logprobs(choice, held)
        if delta.WhichOneof("content") == "text":
            self._seen += len(delta.text)
            held += delta.text
        if delta.extra_json or delta.tool_calls:
            self._seen += _generated_besides(delta)
        final = bool(choice.finish_reason or choice.finish_reason_raw)
        # A tool call ends the text: what is held goes out before it, settled now.
        settled = final or bool(delta.tool_calls) or delta.HasField("function_call")
        found = _earliest(held, self._stops) if held else None
        if found is not None and (settled or not _pending(held, self._stops, found)):
            delta.text = held[: found[0]]
            _without_calls(delta)
            self._release_logprobs(choice, delta.text, end=True)
            self._cites.release(choice, delta.text, cut=True)
            _stopped(choice, found[1])
            self._ended.add(index)
            self._finished.add(index)
            self._held.pop(index, None)
            return True
        if settled:
            released, rest = held, ""
            if final:
                self._finished.add(index)
        else:
            split = max(len(held) - self._keep, 0)
            released, rest = held[:split], held[split:]
        self._held[index] = rest
        self._release_logprobs(choice, released)
        self._cites.release(choice, released, final=final)
        if released or delta.WhichOneof("content") == "text":
            delta.text = released
        return True

    def _hold_logprobs(self, choice: chat_pb2.ChunkChoice, held: str) -> None:
        """Hold the delta's logprobs entries with its text (which follows `held`, the text the
        choice holds; placed in bytes, _stop_logprobs.py)."""
        if self._logprobs is None:
            self._logprobs = HeldLogprobs()
        if self._logprobs.take(choice.index, choice.logprobs_json, len(held.encode())):
            choice.ClearField("logprobs_json")

    def _release_logprobs(self, choice: chat_pb2.ChunkChoice, text: str, end: bool = False) -> None:
        """The held entries of the text released (`text`, the first of what is held)."""
        if self._logprobs is not None:
            released = self._logprobs.release(choice.index, len(text.encode()), end=end)
            if released:
                choice.logprobs_json = released

    def _usage(self, last: Chunk) -> Chunk:
        """The usage chunk of a stream cut here: the router's estimate."""
        completion = -(-self._seen // CHARS_PER_TOKEN)
        usage = chat_pb2.Usage(
            prompt_tokens=self._prompt,
            completion_tokens=completion,
            total_tokens=self._prompt + completion,
        )
        return Chunk(id=last.id, created=last.created, model=last.model, usage=usage)


def choices_of(params: chat_pb2.ChatParams) -> int:
    """How many choices `params` ask for (`n`)."""
    return params.n if params.HasField("n") else 1


def stops_for(deployment: Deployment, params: chat_pb2.ChatParams) -> tuple[str, ...]:
    """The stop sequences of `params` past what `deployment` takes: the router's to enforce."""
    return stops_past(params, deployment.stop_cap, deployment.adapter.refuses_blank_stops)


def cannot_enforce(deployment: Deployment, params: chat_pb2.ChatParams) -> UpstreamFailure | None:
    """Why the router will not enforce the stops of `params` past what `deployment` takes
    (too many of them, or one too long), as the failure that passes it over; None: it will."""
    if not has_stops(params):
        return None
    stops = stops_for(deployment, params)
    cap = deployment.stop_cap
    if len(stops) > MAX_ENFORCED_STOPS:
        return unsupported(
            f"'stop': {len(stop_values(params))} sequences; this model takes {cap} and the "
            f"router enforces at most {MAX_ENFORCED_STOPS} more",
            "stop",
        )
    if any(len(stop) > MAX_ENFORCED_STOP_CHARS for stop in stops):
        return unsupported(
            f"'stop': a sequence past the first {cap} is longer than the "
            f"{MAX_ENFORCED_STOP_CHARS} characters the router enforces",
            "stop",
        )
    return None


def stream_filters(
    deployment: Deployment,
    params: chat_pb2.ChatParams,
    screen: ChunkFilter | None,
    hidden: bool,
) -> tuple[ChunkFilter | None, bool]:
    """What a stream's chunks go through: the stops past the upstream's cap, then the answer's
    guardrails (`screen`, which screen the text the caller will see); and whether the reasoning
    is still to be taken out before them (`hidden`: the caller's ask). With stops to enforce,
    it is taken out between: they count the reasoning the upstream generated."""
    stops = stops_for(deployment, params) if has_stops(params) else ()
    if not stops:
        return screen, hidden
    choices = choices_of(params)
    chain: list[ChunkFilter] = [StreamStops(stops, choices, estimate_prompt_tokens(params))]
    if hidden:
        chain.append(_HiddenReasoning())
    if screen is not None:
        chain.append(screen)
    return (chain[0] if len(chain) == 1 else ChainedFilters(*chain)), False


class _HiddenReasoning:
    """The reasoning taken out (the caller's `reasoning.exclude`), as a filter of the chain."""

    cut = False

    def chunks(self, chunks: list[Chunk]) -> list[Chunk]:
        return without_chunk_reasoning(chunks)
