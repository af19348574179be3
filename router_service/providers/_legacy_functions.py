"""OpenAI's legacy `functions` / `function_call` at a kind whose API has no such fields."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from router_service.providers._mapping import unsupported

__all__ = ["no_forced_legacy_call"]


def no_forced_legacy_call(body: Mapping[str, Any]) -> None:
    """Raise UNSUPPORTED_INPUT for a `function_call` that forces a call the legacy `functions`
    left here can make none of, at a kind that reads `tools` alone (every native mapping, the
    Responses API's): dropped with them, the model would answer in text a caller that asked for
    a call. The group's next deployment may take it (OpenAI's chat API does); a 400 when none
    can, as a forced `tool_choice` with nothing to call is. Unforced or naming one of them, the
    engine sends them as the tools they stand for (engine/_legacy_functions.py), so only a name
    none of them has (or another shape) reaches a mapping."""
    choice = body.get("function_call")
    if body.get("functions") and choice is not None and choice not in ("none", "auto"):
        raise unsupported(
            "legacy 'functions' and 'function_call' are OpenAI's chat API's alone: this "
            "deployment's API has no such fields, so the call 'function_call' forces cannot be "
            "asked for (send 'tools' and 'tool_choice')",
            "function_call",
        )
