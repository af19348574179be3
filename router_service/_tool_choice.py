"""A `tool_choice` that forces a call with no tool to call, refused as OpenAI's API refuses it
(400, "'tool_choice' is only allowed when 'tools' are specified"): dropped, the model would
answer in text a caller that asked for a call. One check for every entrance: Chat's body (and
its legacy `function_call` / `functions`), a Realtime session's config and `session.update`."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from router_service.errors import InvalidRequestError

__all__ = ["check_forced_tool"]

# The tool choices that force no tool: without tools they are dropped (`without_idle_tool_fields`).
_UNFORCED = ("none", "auto")
_CHOICES = (("tool_choice", "tools"),)
_CHOICES_AND_LEGACY = (*_CHOICES, ("function_call", "functions"))


def check_forced_tool(body: Mapping[str, Any], *, where: str = "", legacy: bool = False) -> None:
    """Refuse `body`'s forcing `tool_choice` (with `legacy`: also `function_call`) beside no
    tools (functions), and (with `legacy`) legacy `functions` beside `tools`, as OpenAI does.
    "none" and "auto" ask for nothing (frameworks send them unbound). `where`: the path of
    `body` in the caller's request, for the error's `param`
    ("session." for a Realtime session's config)."""
    if legacy and body.get("functions") and body.get("tools"):
        # OpenAI's 400: a kind that reads `tools` alone would drop the functions unsaid.
        raise InvalidRequestError(
            "Invalid request: 'functions' and 'tools' cannot both be provided. 'functions' are "
            "deprecated; use the 'tools' parameter instead.",
            param="functions",
            code="invalid_value",
        )
    for choice, tools in _CHOICES_AND_LEGACY if legacy else _CHOICES:
        value = body.get(choice)
        if value is not None and value not in _UNFORCED and not body.get(tools):
            raise InvalidRequestError(
                f"Invalid value for '{choice}': '{choice}' is only allowed when '{tools}' are "
                "specified.",
                param=where + choice,
                code="invalid_value",
            )
