"""Fault-injection scenarios and the (key, model) rule table that selects them."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from ._error_bodies import default_error_body, default_wrapped_error

WILDCARD = "*"

# Gemini answers a bad key with 400 + this exact body; routers must recognise it as an auth error.
_GEMINI_INVALID_KEY: dict[str, Any] = {
    "error": {
        "code": 400,
        "message": "API key not valid. Please pass a valid API key.",
        "status": "INVALID_ARGUMENT",
    }
}
_OPENAI_INVALID_KEY: dict[str, Any] = {
    "error": {
        "message": "Incorrect API key provided: sk-...",
        "type": "invalid_request_error",
        "param": None,
        "code": "invalid_api_key",
    }
}
_QUOTA_EXHAUSTED: dict[str, Any] = {
    "error": {
        "message": "You exceeded your current quota, please check your plan and billing details.",
        "type": "insufficient_quota",
        "param": None,
        "code": "insufficient_quota",
    }
}
# vLLM's answer at /rerank for a model it serves without the score task (a chat model, one
# started with another `--task`): HTTP 400, its own error shape (not wrapped in "error").
_VLLM_NO_RERANK: dict[str, Any] = {
    "object": "error",
    "message": "The model does not support Rerank (Score) API",
    "type": "BadRequestError",
    "param": None,
    "code": 400,
}


@dataclass(frozen=True)
class Scenario:
    """How the fake upstream should (mis)behave for one request. Defaults = healthy provider.

    Stream "chunks" are SSE data events in order (role chunk, content chunks, finish chunk,
    usage chunk, [DONE]); the `*_chunks` counts and `wrapped_error_at_chunk` refer to them.
    For non-stream answers the `*_after_chunks` faults act after the headers (see send_answer).
    For healthy streams `latency_ms` is time-to-first-chunk: headers go out immediately.
    """

    kind: str | None = None
    latency_ms: float = 0.0
    chunk_interval_ms: float = 0.0
    status: int | None = None
    error_body: dict[str, Any] | None = None
    headers: dict[str, str] = field(default_factory=dict)
    retry_after: str | None = None
    wrapped_error: dict[str, Any] | None = None
    wrapped_error_at_chunk: int | None = None
    stall_before_first_byte: bool = False
    stall_before_ms: float | None = None
    stall_after_chunks: int | None = None
    # A stream sends this many events, then waits at the state's gate until the test calls
    # `FakeUpstreamState.release` (`held` counts it); the rest follows. A stream certainly
    # under way while the test looks, however slow the machine (a chunk interval is not).
    held_after_chunks: int | None = None
    # `stepped_chunks`: the events after the first, this many, each wait there for a release of
    # their own: a test steps the stream (moves a router's clock between two events).
    stepped_chunks: int | None = None
    truncate_after_chunks: int | None = None
    reset_before_response: bool = False
    reset_after_chunks: int | None = None
    tool_call: bool = False
    tool_arguments: dict[str, Any] | None = None  # that tool call's arguments (default `{}`)
    # The tool that call is of, by name (default: the request's first). When the request
    # declares it a custom tool (OpenAI's chat completions, the Responses API), the call is a
    # custom call whose input is `tool_input`.
    tool_name: str | None = None
    tool_input: str | None = None
    content: str | None = None
    # The finish reason of an OpenAI-dialect answer instead of "stop" (e.g. "length": the answer
    # was cut at max_tokens); a tool call still finishes with "tool_calls", but for "stop" (as
    # some OpenAI-compatible servers finish a call). A Bedrock answer's `stopReason`, as
    # Converse says it (e.g. "malformed_model_output"). A Gemini answer's: a candidate without
    # content that ends with it (e.g. "SAFETY": withheld whole by Gemini's filter). Cohere's too.
    finish_reason: str | None = None
    # The provider's content filter withholds the answer, for this reason (e.g. "SAFETY"), in
    # the provider's own way (Gemini: a 200 with promptFeedback.blockReason; others a 400).
    blocked: str | None = None
    chunks: int | None = None
    times: int | None = None
    # An OpenAI-dialect answer without `usage` (a stream's too, asked for it), as some send.
    no_usage: bool = False
    # An OpenAI-dialect answer's usage says this many of its prompt tokens were cached
    # (`prompt_tokens_details.cached_tokens`, at most the prompt's), as a prompt cache reports.
    cached_tokens: int | None = None
    # An Anthropic or Bedrock answer's usage says this many prompt tokens were read from
    # (`cached_tokens`) or written to its prompt cache, beside the uncached input tokens
    # (Anthropic `cache_creation_input_tokens`, Bedrock `cacheWriteInputTokens`); this many of
    # the writes to the 1-hour cache (Anthropic `cache_creation.ephemeral_1h_input_tokens`,
    # Bedrock `cacheDetails`), at most the writes.
    cache_write_tokens: int | None = None
    cache_write_1h_tokens: int | None = None
    # An OpenAI-dialect answer's reasoning, as DeepSeek and vLLM give it: the message's
    # `reasoning_content`, streamed a word a chunk before the content; an Anthropic answer's
    # signed thinking block, before its content; a Gemini answer's thought parts, before its
    # text, when the request asked for them (thinkingConfig.includeThoughts).
    reasoning: str | None = None
    # An Anthropic answer's `redacted_thinking` block (its `data`), after its thinking block.
    redacted_thinking: str | None = None
    # An OpenAI-dialect stream's chunks end with OpenAI's `"obfuscation"` padding (after the
    # `"usage": null` of a stream asked for usage), as OpenAI's own have since 2025.
    obfuscation: bool = False
    # An OpenAI-dialect answer is structured outputs' refusal: its text (`content`, or the
    # echo) is the message's `refusal`, streamed as `refusal` deltas, its content null.
    refusal: bool = False
    # An OpenAI-dialect server older than `stream_options` (vLLM before 0.5, some proxies):
    # a request with it is a 400 naming it.
    refuses_stream_options: bool = False
    # An OpenAI-dialect stream asked for its usage carries it on its finish chunk, then ends
    # with a chunk of no choices and no usage (as xAI's do).
    usage_on_finish: bool = False
    # A Responses answer calling a hosted tool (`tool_call`) says this in a message of its own
    # before the call; its text (`content`) is a second message after it.
    preamble: str | None = None
    # An OpenAI-dialect stream's content deltas each carry `"annotations": []` (no citation).
    empty_annotations: bool = False
    # A Responses stream's annotation events come after this many text deltas, not all of them.
    cite_after_deltas: int | None = None
    # A Responses stream's call says its arguments (a custom call its input) whole in its done
    # events alone, no delta before them (as gpt-5.3-codex-spark streams its calls).
    call_input_on_done: bool = False
    call_empty_delta: bool = False  # its input's events open with a delta of empty text
    # Written between every two events of a stream (and, once it stalls, every chunk_interval_ms:
    # sse-starlette pings on while its model is stuck): a keep-alive (`: ping`, an empty `data:`),
    # or llama.cpp's mid-stream `error: {...}` line.
    between_events: str | None = None
    floats_only: bool = False  # embeddings listed as floats whatever `encoding_format` asks
    embedding: list[float] | str | None = None  # every embedding answered is this, as it is
    # An OpenAI-dialect chat whose prompt (its words: the answer's `prompt_tokens`) is past
    # this many tokens is refused as OpenAI refuses one past the model's context window
    # (400 `context_length_exceeded`); a Responses API call too (its input's words), unless it
    # asks `truncation: "auto"`: its oldest items are then left out until it fits, as OpenAI's.
    # An embeddings input past it (its words) is refused alike (Gemini's, as Gemini refuses).
    context_window: int | None = None

    def __post_init__(self) -> None:
        # Fail at configuration time rather than producing a confusing fake response later.
        for name in ("latency_ms", "chunk_interval_ms", "stall_before_ms"):
            value = getattr(self, name)
            if value is not None and value < 0:
                raise ValueError(f"Scenario.{name} must be >= 0, got {value!r}")
        for name in (
            "wrapped_error_at_chunk",
            "stall_after_chunks",
            "held_after_chunks",
            "stepped_chunks",
            "truncate_after_chunks",
            "reset_after_chunks",
            "chunks",
            "times",
            "cached_tokens",
            "cache_write_tokens",
            "cache_write_1h_tokens",
            "context_window",
        ):
            value = getattr(self, name)
            if value is not None and (not isinstance(value, int) or value < 0):
                raise ValueError(f"Scenario.{name} must be a non-negative int, got {value!r}")
        if self.times == 0:
            raise ValueError("Scenario.times must be >= 1 (or None for unlimited)")
        if self.status is not None and not 100 <= self.status <= 599:
            raise ValueError(f"Scenario.status must be an HTTP status, got {self.status!r}")

    # ---- derived behaviour -------------------------------------------------------------

    @property
    def effective_status(self) -> int | None:
        """Status to answer with; a bare retry_after implies 429, a bare error_body 400."""
        if self.status is not None:
            return self.status
        if self.retry_after is not None:
            return 429
        if self.error_body is not None:
            return 400
        return None

    @property
    def is_error(self) -> bool:
        status = self.effective_status
        return self.error_body is not None or (status is not None and status >= 400)

    def error_response_body(self) -> dict[str, Any]:
        status = self.effective_status or 400
        return self.error_body if self.error_body is not None else default_error_body(status)

    def wrapped_error_body(self) -> dict[str, Any]:
        """The `{"error": {...}}` payload; wrapped_error may omit the "error" wrapper."""
        inner = self.wrapped_error if self.wrapped_error is not None else default_wrapped_error()
        if set(inner) == {"error"}:
            return inner
        return {"error": inner}

    @classmethod
    def rate_limited(cls, retry_after: str | None = "1", **overrides: Any) -> Scenario:
        return cls(kind="rate_limited", status=429, retry_after=retry_after, **overrides)

    @classmethod
    def server_error(cls, status: int = 500, **overrides: Any) -> Scenario:
        return cls(kind="server_error", status=status, **overrides)

    @classmethod
    def invalid_key(cls, style: str = "gemini", **overrides: Any) -> Scenario:
        """An invalid-key reply. `gemini` and `openai` send those providers' bodies on every
        route; `native` answers in the words (status and body) of the route's own provider."""
        if style == "native":
            return cls(kind="invalid_key_native", status=401, **overrides)
        if style == "gemini":
            return cls(kind="invalid_key", status=400, error_body=_GEMINI_INVALID_KEY, **overrides)
        if style == "openai":
            return cls(
                kind="invalid_key_openai", status=401, error_body=_OPENAI_INVALID_KEY, **overrides
            )
        raise ValueError(
            f"unknown invalid_key style {style!r} (expected 'gemini', 'openai' or 'native')"
        )

    @classmethod
    def quota_exhausted(cls, **overrides: Any) -> Scenario:
        return cls(kind="quota_exhausted", status=429, error_body=_QUOTA_EXHAUSTED, **overrides)

    @classmethod
    def rerank_unsupported(cls, **overrides: Any) -> Scenario:
        """vLLM's 400 for a rerank of a model that cannot score (`_VLLM_NO_RERANK`)."""
        return cls(kind="rerank_unsupported", status=400, error_body=_VLLM_NO_RERANK, **overrides)

    @classmethod
    def stall(cls, **overrides: Any) -> Scenario:
        return cls(kind="stall", stall_before_first_byte=True, **overrides)

    def to_dict(self) -> dict[str, Any]:
        """Only non-default fields, so YAML/JSON stays readable and round-trips via from_dict."""
        out: dict[str, Any] = {}
        for f in dataclasses.fields(self):
            value = getattr(self, f.name)
            default = (
                f.default_factory() if f.default_factory is not dataclasses.MISSING else f.default
            )
            if value != default:
                out[f.name] = dict(value) if isinstance(value, dict) else value
        return out

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Scenario:
        """Build from YAML/JSON. `kind` names a preset; other keys override the preset's fields."""
        names = {f.name for f in dataclasses.fields(cls)}
        unknown = set(data) - names
        if unknown:
            raise ValueError(f"unknown Scenario field(s): {sorted(unknown)}")
        fields = dict(data)
        # YAML turns `retry_after: 2` / `X-Foo: 1` into ints; HTTP header values must be str.
        if fields.get("retry_after") is not None:
            fields["retry_after"] = str(fields["retry_after"])
        if isinstance(fields.get("headers"), Mapping):
            fields["headers"] = {str(k): str(v) for k, v in fields["headers"].items()}
        kind = fields.get("kind")
        if kind is not None and kind in _PRESETS:
            return dataclasses.replace(_PRESETS[kind](), **fields)
        return cls(**fields)


_PRESETS: dict[str, Callable[[], Scenario]] = {
    "rate_limited": Scenario.rate_limited,
    "server_error": Scenario.server_error,
    "invalid_key": Scenario.invalid_key,
    "invalid_key_openai": lambda: Scenario.invalid_key(style="openai"),
    "invalid_key_native": lambda: Scenario.invalid_key(style="native"),
    "quota_exhausted": Scenario.quota_exhausted,
    "stall": Scenario.stall,
}


@dataclass
class Rule:
    """One entry of the scenario table; `remaining` counts down when the scenario has `times`."""

    key: str
    model: str
    scenario: Scenario
    remaining: int | None = None
    # The last user message's text a request must carry (WILDCARD: any): one line of a batch,
    # all of one model, picked out.
    text: str = WILDCARD

    def to_dict(self) -> dict[str, Any]:
        return {
            "key": self.key,
            "model": self.model,
            "text": self.text,
            "scenario": self.scenario.to_dict(),
            "remaining": self.remaining,
        }


class ScenarioTable:
    """Rules keyed by (key, model, text); the most specific live rule wins for a request (one
    naming its text first)."""

    def __init__(self) -> None:
        self._rules: dict[tuple[str, str, str], Rule] = {}

    def set(
        self, scenario: Scenario, key: str = WILDCARD, model: str = WILDCARD, text: str = WILDCARD
    ) -> None:
        self._rules[(key, model, text)] = Rule(key, model, scenario, scenario.times, text)

    def remove(self, key: str = WILDCARD, model: str = WILDCARD, text: str = WILDCARD) -> bool:
        return self._rules.pop((key, model, text), None) is not None

    def clear(self) -> None:
        self._rules.clear()

    def rules(self) -> list[Rule]:
        return list(self._rules.values())

    def peek(self, key: str, model: str, text: str = "") -> Scenario | None:
        rule = self._lookup(key, model, text)
        return rule.scenario if rule is not None else None

    def take(self, key: str, model: str, text: str = "") -> Scenario | None:
        """Select the scenario for a request, consuming one use of a `times`-limited rule.

        A used-up rule is removed, so the next most specific rule (or normal behaviour) applies.
        """
        rule = self._lookup(key, model, text)
        if rule is None:
            return None
        if rule.remaining is not None:
            rule.remaining -= 1
            if rule.remaining <= 0:
                del self._rules[(rule.key, rule.model, rule.text)]
        return rule.scenario

    def _lookup(self, key: str, model: str, text: str) -> Rule | None:
        for said in (text, WILDCARD):
            for candidate in (
                (key, model),
                (key, WILDCARD),
                (WILDCARD, model),
                (WILDCARD, WILDCARD),
            ):
                rule = self._rules.get((*candidate, said))
                if rule is not None:
                    return rule
        return None

    def load(self, rules: Iterable[Mapping[str, Any]]) -> None:
        """Add rules shaped `{key?, model?, text?, scenario: {...}}` (the YAML file / HTTP PUT
        format)."""
        rules = list(rules)
        parsed = [parse_rule(raw) for raw in rules]  # validate all before mutating anything
        for raw, (key, model, scenario) in zip(rules, parsed, strict=True):
            self.set(scenario, key=key, model=model, text=str(raw.get("text", WILDCARD)))


def parse_rule(raw: Mapping[str, Any]) -> tuple[str, str, Scenario]:
    if not isinstance(raw, Mapping):
        raise ValueError(f"scenario rule must be a mapping, got {type(raw).__name__}")
    extra = set(raw) - {"key", "model", "text", "scenario"}
    if extra:
        raise ValueError(f"unknown scenario rule field(s): {sorted(extra)}")
    scenario_data = raw.get("scenario") or {}
    if not isinstance(scenario_data, Mapping):
        raise ValueError("rule 'scenario' must be a mapping")
    key = str(raw.get("key", WILDCARD))
    model = str(raw.get("model", WILDCARD))
    return key, model, Scenario.from_dict(scenario_data)


def load_rules_file(path: str | Path) -> list[dict[str, Any]]:
    """Read a YAML (or JSON) scenarios file: a list of rules, or `{scenarios: [...]}`."""
    data = yaml.safe_load(Path(path).read_text(encoding="utf-8"))
    if data is None:
        return []
    if isinstance(data, dict) and "scenarios" in data:
        data = data["scenarios"]
    if not isinstance(data, list):
        raise ValueError("expected a list of {key, model, scenario} rules")  # the caller names it
    return data
