"""A cheap estimate of a chat prompt's tokens, without a tokenizer: what the router counts in
tpm windows before the upstream reports the usage, and what the edge's Anthropic
`count_tokens` answers."""

from __future__ import annotations

from clients.switchboard.v1 import chat_pb2

# Roughly four characters per token for English text with common tokenizers.
CHARS_PER_TOKEN = 4


def estimate_prompt_tokens(params: chat_pb2.ChatParams) -> int:
    """The prompt's tokens alone: its texts, tool call arguments and tool declarations, four
    characters a token, and four tokens a message."""
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
    return chars // CHARS_PER_TOKEN + 4 * len(params.messages)
