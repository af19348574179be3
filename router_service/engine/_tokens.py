"""A cheap, pre-call estimate of a request's token cost, for per-key tpm windows. Corrected from
the upstream's reported usage after the call (KeyLease.settle_tokens)."""

from __future__ import annotations

from clients.switchboard.v1 import chat_pb2

# Roughly four characters per token for English text with common tokenizers.
_CHARS_PER_TOKEN = 4
# When the caller sets no output bound, assume this many output tokens.
_DEFAULT_OUTPUT_TOKENS = 256


def estimate_chat_tokens(params: chat_pb2.ChatParams) -> int:
    """The prompt's tokens and the most the answer may take (`max_tokens` for each of `n`)."""
    if params.HasField("max_completion_tokens"):
        output = params.max_completion_tokens
    elif params.HasField("max_tokens"):
        output = params.max_tokens
    else:
        output = _DEFAULT_OUTPUT_TOKENS
    # Each of `n` choices is generated (and billed) upstream: a budget or tpm counts them all.
    choices = params.n if params.HasField("n") and params.n > 1 else 1
    return estimate_prompt_tokens(params) + max(0, output) * choices


def estimate_prompt_tokens(params: chat_pb2.ChatParams) -> int:
    """The prompt's tokens alone."""
    chars = 0
    for message in params.messages:
        which = message.WhichOneof("content")
        if which == "text":
            chars += len(message.text)
        elif which == "parts":
            chars += sum(len(p.text.text) for p in message.parts.parts if p.HasField("text"))
        for call in message.tool_calls:
            chars += len(call.function.arguments)
    for tool in params.tools:
        chars += len(tool.function.parameters_json) + len(tool.function.description)
    return chars // _CHARS_PER_TOKEN + 4 * len(params.messages)


def estimate_chunk_tokens(chunk: chat_pb2.ChatCompletionChunk) -> int:
    """The tokens a stream chunk's deltas carry (text, tool arguments, reasoning in extras), by
    their encoded size: what a stream that reports no usage relayed."""
    size = sum(choice.delta.ByteSize() for choice in chunk.choices)
    return -(-size // _CHARS_PER_TOKEN)
