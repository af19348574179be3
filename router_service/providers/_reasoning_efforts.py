"""The `reasoning_effort` values each OpenAI reasoning model takes, by name: the others are
refused with a 400 ("Unsupported value: 'minimal' is not supported with this model. Supported
values are: 'none', 'low', 'medium', and 'high'"), so the knob (`for_openai`) sends the nearest
one the model takes. OpenAI's reference for `reasoning_effort`
(https://platform.openai.com/docs/api-reference/chat/create#chat_create-reasoning_effort):

- o1, o3, o4-mini and their kin: low, medium, high (so does gpt-oss, OpenAI's open weights,
  `gpt-oss-120b` at vLLM and Groq, `gpt-oss:20b` at Ollama, which refuses `minimal`);
- gpt-5, gpt-5-mini, gpt-5-nano: minimal, low, medium, high ("all models before gpt-5.1 ... do
  not support none"); gpt-5-codex and gpt-5.1-codex: low, medium, high;
- gpt-5-pro: high only ("defaults to (and only supports) high");
- gpt-5.1: none, low, medium, high; `xhigh` from gpt-5.1-codex-max on ("xhigh is supported for
  all models after gpt-5.1-codex-max"): gpt-5.2 and later none to xhigh, their codex models low
  to xhigh, their pro models medium to xhigh;
- gpt-5.1-chat-latest and later chat models: medium only ("Unsupported value: 'high' is not
  supported with the 'gpt-5.1-chat-latest' model. Supported values are: 'medium'").

A name is read after a namespace (`openai/o3` at OpenRouter) and a fine-tune's `ft:` (its base
model is the part before the next `:`); any other name gets the effort as asked (gpt-5's chat
model takes no effort at all: _reasoning_models.py). The nearest effort is by rank (none,
minimal, low, medium, high, xhigh), a tie going up: `none` is `minimal` at gpt-5 and `low` at
o3, `minimal` is `low` where refused, `xhigh` is `high`.
"""

from __future__ import annotations

import re

__all__ = ["EFFORT_RANKS", "accepted_efforts", "base_model_name", "fitted_effort"]

EFFORT_RANKS = ("none", "minimal", "low", "medium", "high", "xhigh")
_O_SERIES = ("low", "medium", "high")
_TO_XHIGH = ("low", "medium", "high", "xhigh")
# First match wins (the more specific names first); None: the name says nothing, as sent.
_TABLE: tuple[tuple[re.Pattern[str], tuple[str, ...] | None], ...] = tuple(
    (re.compile(pattern), efforts)
    for pattern, efforts in (
        (r"gpt-5-pro(?:$|-)", ("high",)),
        (r"gpt-5-codex", _O_SERIES),
        (r"gpt-5-chat", None),
        (r"gpt-5(?:$|-)", ("minimal", "low", "medium", "high")),
        (r"gpt-5\.1-codex-max", _TO_XHIGH),
        (r"gpt-5\.1-codex", _O_SERIES),
        (r"gpt-5\.\d+-chat", ("medium",)),
        (r"gpt-5\.1(?:$|-)", ("none", "low", "medium", "high")),
        (r"gpt-5\.\d+-pro", ("medium", "high", "xhigh")),
        (r"gpt-5\.\d+-codex", _TO_XHIGH),
        (r"gpt-5\.\d+(?:$|-)", EFFORT_RANKS[:1] + _TO_XHIGH),
        (r"o\d+(?:$|-)", _O_SERIES),
        (r"gpt-oss(?:$|[-:])", _O_SERIES),  # gpt-oss:20b: Ollama's tag
    )
)


def base_model_name(model: str) -> str:
    """`model` without a namespace (`openai/`) or a fine-tune's `ft:…:<org>:…` wrapping."""
    name = model.rsplit("/", 1)[-1].lower()
    if name.startswith("ft:"):
        name = name[3:].split(":", 1)[0]
    return name


def accepted_efforts(model: str) -> tuple[str, ...] | None:
    """The efforts `model` takes, as far as its name tells (None: it tells nothing)."""
    name = base_model_name(model)
    for pattern, efforts in _TABLE:
        if pattern.match(name):
            return efforts
    return None


def fitted_effort(effort: str, model: str) -> str:
    """`effort` if `model` takes it (or its name tells nothing), else the nearest it takes."""
    accepted = accepted_efforts(model)
    if accepted is None or effort in accepted or effort not in EFFORT_RANKS:
        return effort
    rank = EFFORT_RANKS.index(effort)
    return min(accepted, key=lambda e: (abs(EFFORT_RANKS.index(e) - rank), -EFFORT_RANKS.index(e)))
