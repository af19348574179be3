"""What an API of one answer and no token logprobs cannot give: `n` above 1 and `logprobs: true`.

Claude's Messages API (at Anthropic and Vertex AI), Bedrock's Converse and Cohere's Chat answer
one choice per request and no token log probabilities. Dropped, an app that asked for two
choices got one (`choices[1]`: an IndexError) and one that asked for logprobs got
`logprobs: null` (`.content`: an AttributeError), with nothing saying why. So each is the
deployment's UNSUPPORTED_INPUT, naming the field: the group's next deployment may give them
(OpenAI's, Gemini's), and a caller whose group has none hears OpenAI's 400 (Anthropic's own
OpenAI-compatible endpoint likewise takes `n` of 1 alone).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from clients.switchboard.v1 import chat_pb2
from router_service.providers._mapping import unsupported

__all__ = ["asks_choices_or_logprobs", "one_choice_only"]


def asks_choices_or_logprobs(params: chat_pb2.ChatParams) -> bool:
    """Whether `params` ask for more than one choice or for logprobs (a request a one-choice
    API's mapping refuses: `one_choice_only`)."""
    return (params.HasField("n") and params.n > 1) or params.logprobs


def one_choice_only(body: Mapping[str, Any], api: str) -> None:
    """Raise the UNSUPPORTED_INPUT of an OpenAI chat `body` asking `api` for what it cannot
    give: more than one choice, or token logprobs."""
    n = body.get("n")
    if isinstance(n, int) and n > 1:
        raise unsupported(
            f"Invalid value for 'n': {n}. {api} answers one choice per request; ask for 'n' "
            "of 1, or send the request once per choice.",
            "n",
        )
    if body.get("logprobs") is True:
        raise unsupported(
            f"'logprobs' cannot be given: {api} answers no token log probabilities.",
            "logprobs",
        )
