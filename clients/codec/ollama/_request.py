"""Ollama's `/api/chat` and `/api/generate` bodies → the OpenAI chat body the edge parses for
`/v1/chat/completions` (then `chat_params_from_openai`: one request proto for every entrance);
`/api/embed` and `/api/embeddings` bodies → OpenAI embeddings bodies.

Ollama streams unless told not to (`stream` defaults to true). Fields that only steer a local
runner are accepted and not read (`keep_alive`); those this gateway cannot honour, and whose
loss would change the answer, are refused when set, naming them (`suffix`: fill-in-the-middle,
which no chat deployment takes; `template`; `context`; `logprobs`; and a generate's `raw: true`,
a prompt already in the model's template, which a chat model would answer markup and all:
https://docs.ollama.com/api/generate). A field Ollama does not have is ignored, as
Ollama's own JSON binding ignores it: clients send their own (Open WebUI passes its form's
extra fields, `metadata`…) and work against Ollama.
"""

from __future__ import annotations

from typing import Any

from clients.codec._json import (
    at,
    at_index,
    expect_bool,
    expect_int,
    expect_list,
    expect_object,
    expect_str,
    fail_type,
    missing,
)
from clients.codec.ollama._messages import chat_messages, image_parts
from clients.codec.ollama._options import chat_options, response_format, think_effort
from clients.errors import InvalidRequestError

__all__ = ["chat_body", "embed_body", "generate_body", "is_load", "model_of", "streams"]

JsonObject = dict[str, Any]

# Fields Ollama has that ask for what this gateway cannot give: refused when set.
_REFUSED = {
    "suffix": "fill-in-the-middle (suffix) is not supported by this gateway",
    "template": "prompt templates are the deployment's own here; send the prompt alone",
    "context": "context tokens are not returned nor taken by this gateway; use /api/chat with "
    "the conversation's messages",
    "logprobs": "logprobs are not supported by this gateway's Ollama API",
    "top_logprobs": "logprobs are not supported by this gateway's Ollama API",
}
_RAW = (
    "a raw (already templated) prompt is not supported: the deployments here template the "
    "prompt themselves; send it without the template's markup"
)


def model_of(body: JsonObject) -> str:
    """The body's model, as the router names it: Ollama's default tag (`latest`: `llama3` is
    `llama3:latest`, and clients write either) is the untagged name, as a Gemini caller's
    `models/x` is `x`."""
    if "model" not in body:
        missing("model")
    model = expect_str(body["model"], "model").removesuffix(":latest")
    if not model:
        raise InvalidRequestError("model: is required", "model")
    return model


def streams(body: JsonObject) -> bool:
    """Whether the caller asked for a stream: Ollama's default is yes."""
    stream = body.get("stream")
    return True if stream is None else expect_bool(stream, "stream")


def is_load(body: JsonObject, key: str) -> bool:
    """Whether the body only asks to load (or unload) the model: no prompt, no messages, no
    input to embed (a value of another type is not one: its check refuses it)."""
    return body.get(key) in (None, "", []) and not body.get("images")


def _check(body: JsonObject) -> None:
    for key in sorted(_REFUSED.keys() & body.keys()):
        if body[key] not in (None, "", [], False):
            raise InvalidRequestError(f"{key}: {_REFUSED[key]}", key)


def _check_raw(body: JsonObject) -> None:
    """A generate's `raw`: false (or unset) is Ollama's default, the prompt templated, as a
    chat deployment does; true is refused (see the module's docstring)."""
    if body.get("raw") is not None and expect_bool(body["raw"], "raw"):
        raise InvalidRequestError(f"raw: {_RAW}", "raw")


def _common(model: str, body: JsonObject, stream: bool) -> JsonObject:
    out: JsonObject = {"model": model}
    if body.get("options") is not None:
        out.update(chat_options(body["options"]))
    format_ = response_format(body.get("format"))
    if format_ is not None:
        out["response_format"] = format_
    out.update(think_effort(body.get("think")))
    if stream:
        out |= {"stream": True, "stream_options": {"include_usage": True}}
    return {k: v for k, v in out.items() if v is not None}


def chat_body(body: JsonObject, stream: bool) -> JsonObject:
    """The OpenAI chat body that says what an `/api/chat` body says."""
    _check(body)
    model = model_of(body)
    out = _common(model, body, stream)
    out["messages"] = chat_messages(body.get("messages") or [])
    if body.get("tools"):
        out["tools"] = _tools(body["tools"])
    return out


def generate_body(body: JsonObject, stream: bool) -> JsonObject:
    """The OpenAI chat body for an `/api/generate` body: its `system`, then its `prompt` (with
    its `images`) as the user's one message."""
    _check(body)
    _check_raw(body)
    model = model_of(body)
    out = _common(model, body, stream)
    messages: list[JsonObject] = []
    if body.get("system"):
        messages.append({"role": "system", "content": expect_str(body["system"], "system")})
    prompt = expect_str(body.get("prompt") or "", "prompt")
    if body.get("images"):
        text = [{"type": "text", "text": prompt}] if prompt else []
        messages.append({"role": "user", "content": text + image_parts(body["images"], "images")})
    else:
        messages.append({"role": "user", "content": prompt})
    out["messages"] = messages
    return out


def _tools(value: Any) -> list[JsonObject]:
    """Ollama's tools are OpenAI's function tools (`{type: "function", function: {name,
    description, parameters}}`): taken as they are, the shared checks read them."""
    tools = expect_list(value, "tools")
    for i, tool in enumerate(tools):
        tool = expect_object(tool, at_index("tools", i))
        kind = tool.get("type", "function")
        if kind != "function":
            where = at(at_index("tools", i), "type")
            raise InvalidRequestError(f"{where}: only function tools are supported", where)
    return [{"type": "function", **tool} for tool in tools]


def embed_body(body: JsonObject, legacy: bool) -> JsonObject:
    """The OpenAI embeddings body for `/api/embed` (`input`: a string or strings;
    `dimensions`) or, `legacy`, `/api/embeddings` (`prompt`: one string); other fields are
    not read."""
    model = model_of(body)
    if body.get("options") is not None:
        expect_object(body["options"], "options")  # a local runner's: not read
    if legacy:
        return {"model": model, "input": expect_str(body.get("prompt") or "", "prompt")}
    if body.get("truncate") is not None:
        expect_bool(body["truncate"], "truncate")
    value = body.get("input")
    if value is None:
        missing("input")
    if isinstance(value, list):
        texts = [expect_str(text, at_index("input", i)) for i, text in enumerate(value)]
        out: JsonObject = {"model": model, "input": texts}
    elif isinstance(value, str):
        out = {"model": model, "input": value}
    else:
        fail_type("input", "a string or an array of strings", value)
    if body.get("dimensions") is not None:
        out["dimensions"] = expect_int(body["dimensions"], "dimensions")
    return out
