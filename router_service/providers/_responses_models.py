"""Which models OpenAI serves only on its Responses API (`POST /responses`), by name: at
`/chat/completions` they are refused with a 400 ("This model is only supported in v1/responses
and not in v1/chat/completions."), so a deployment of one at kinds openai and azure is called on
the Responses API unless its `api` says otherwise (_responses_map.py maps the call).

From OpenAI's model pages (each lists the endpoints a model has): gpt-5-pro and the later pro
models (gpt-5.2-pro…), o1-pro, o3-pro, the deep-research models (o3-deep-research,
o4-mini-deep-research), the codex models (gpt-5-codex, gpt-5.1-codex, -mini, -max, and later
ones; codex-mini-latest) and computer-use-preview. A name is read after a fine-tune's `ft:`
wrapping, dated snapshots included (`o3-pro-2025-06-10`). A namespaced name (`openai/o3-pro`)
is another gateway's (OpenRouter, Together, a LiteLLM proxy), whose chat endpoint serves the
model itself: it stays on chat completions unless its `api` says `responses`.
"""

from __future__ import annotations

import re

from router_service.config._routing import RESPONSES_API_KINDS, UpstreamApi
from router_service.providers._reasoning_efforts import base_model_name

__all__ = ["responses_only", "upstream_api"]

_RESPONSES_ONLY = re.compile(
    r"(?:gpt-5(?:\.\d+)?-pro|o1-pro|o3-pro|o3-deep-research|o4-mini-deep-research"
    r"|gpt-5(?:\.\d+)?-codex|codex-mini|computer-use-preview)(?:$|-)"
)


def responses_only(model: str) -> bool:
    """Whether OpenAI serves `model` only on the Responses API, as far as its name tells."""
    return _RESPONSES_ONLY.match(base_model_name(model)) is not None


def upstream_api(kind: str, model: str, configured: UpstreamApi | None) -> UpstreamApi:
    """The API a deployment is called with: as configured, else `responses` for a
    Responses-only model named as OpenAI names it at a kind that has the API, else `chat`."""
    if configured is not None:
        return configured
    if kind not in RESPONSES_API_KINDS or "/" in model:  # a namespace: another gateway's name
        return "chat"
    return "responses" if responses_only(model) else "chat"
