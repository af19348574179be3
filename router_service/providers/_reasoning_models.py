"""Which models take a reasoning knob, by name, where a provider refuses the knob at the others
(a 400): a deployment that takes none is sent none (engine/_reasoning_off.py), as with
`reasoning: false`, which, like `reasoning: true`, overrides what the name says.

- OpenAI-format kinds (openai, azure, cloudflare): OpenAI's chat models before its reasoning
  models refuse `reasoning_effort` ("Unrecognized request argument" / "reasoning_effort is not
  supported with this model"): gpt-4o*, chatgpt-4o*, gpt-4.1*, gpt-4 and gpt-4-*, gpt-3.5*,
  by name or after a namespace (`openai/gpt-4o` at OpenRouter), fine-tuned ones too (OpenAI
  names them `ft:<base model>:<org>:<suffix>:<id>`); and GPT-5's chat model, gpt-5-chat*
  ("reasoning_effort is not supported with this model"); and the first o1 models, o1-mini and
  o1-preview (`reasoning_effort` came with o1 and o3-mini). Every other name takes it (o1, o3,
  o4-mini, gpt-5, gpt-5-mini…; and servers that ignore it).
- Cohere: only its reasoning models take `thinking` (https://docs.cohere.com/v2/docs/reasoning):
  command-a-reasoning*. Command A, Command R… do not.
- Claude before 3.7 is told by `claude_mode` (_reasoning.py), where a caller's own `thinking`
  is still sent; the other kinds take their knob.
"""

from __future__ import annotations

import re

__all__ = ["takes_reasoning"]

_OPENAI_FORMAT = frozenset({"openai", "azure", "cloudflare"})
_GPT_WITHOUT_REASONING = re.compile(
    r"(?:^|/)(?:ft:)?(?:chatgpt-4o|gpt-4o|gpt-4\.1|gpt-4(?:-|$)|gpt-3\.5|gpt-5-chat"
    r"|o1-mini|o1-preview)",
    re.IGNORECASE,
)
_COHERE_REASONING = "command-a-reasoning"


def takes_reasoning(kind: str, model: str) -> bool:
    """Whether a deployment of a `kind` provider serving `model` takes a reasoning knob, as
    far as the model's name tells (true where it tells nothing)."""
    if kind in _OPENAI_FORMAT:
        return _GPT_WITHOUT_REASONING.search(model) is None
    if kind == "cohere":
        return _COHERE_REASONING in model.lower()
    return True
