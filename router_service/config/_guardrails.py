"""Guardrails: what a request's text must not carry to a provider, and what a model's answer
must not carry back to its caller (`guardrails:`)."""

from __future__ import annotations

import importlib
import re
from typing import Any, Literal

from pydantic import Field, field_validator, model_validator

from router_service.config._base import _Strict

__all__ = [
    "MAX_PATTERN_CHARS",
    "GuardrailAction",
    "GuardrailConfig",
    "GuardrailDetector",
    "GuardrailSide",
]

GuardrailAction = Literal["block", "redact"]
# What a rule screens: the text a caller sends (`request`), the text a model answers (`response`).
GuardrailSide = Literal["request", "response"]
GuardrailDetector = Literal["api_key", "private_key", "email", "credit_card", "phone"]
# An operator's regex runs on every request it applies to: long ones are refused at load.
MAX_PATTERN_CHARS = 512


def _requests_only() -> list[GuardrailSide]:
    return ["request"]


class GuardrailConfig(_Strict):
    """One rule: what it detects, what it does, whose calls it applies to."""

    name: str = Field(
        min_length=1,
        max_length=64,
        pattern=r"^[A-Za-z0-9][A-Za-z0-9_.\-]*$",
        description="Names the rule in errors, the x-switchboard-guardrails header, RouteInfo, "
        "audit lines and metrics (letters, digits, `_`, `.`, `-`).",
    )
    detect: list[GuardrailDetector] = Field(
        default_factory=list,
        description="Built-in detectors: api_key, private_key, email, credit_card, phone.",
    )
    patterns: list[str] = Field(
        default_factory=list,
        description="Operator regexes (Python `re` syntax), compiled at load; each at most "
        f"{MAX_PATTERN_CHARS} characters and without a repetition nested in another.",
    )
    action: GuardrailAction = Field(
        description="block: refuse the call (400 content_policy_violation); redact: replace "
        "what is found by `[REDACTED:<detector>]` before the upstream sees it."
    )
    apply_to: list[GuardrailSide] = Field(
        default_factory=_requests_only,
        min_length=1,
        description="What the rule screens: `request` (what callers send; the default), "
        "`response` (what a model answers: block withholds the choice and ends it with "
        "finish_reason `content_filter`), or both.",
    )
    clients: list[str] | None = Field(
        default=None,
        min_length=1,
        description="Only calls of these clients (auth.clients[].name); unset: every caller.",
    )
    models: list[str] | None = Field(
        default=None,
        min_length=1,
        description="Only calls naming these models (names or shell patterns, as "
        "auth.clients[].models matches them); unset: every model.",
    )

    @field_validator("patterns")
    @classmethod
    def _compiled(cls, patterns: list[str]) -> list[str]:
        for i, pattern in enumerate(patterns):
            if len(pattern) > MAX_PATTERN_CHARS:
                raise ValueError(
                    f"patterns[{i}] is {len(pattern)} characters; at most {MAX_PATTERN_CHARS}"
                )
            try:
                re.compile(pattern)
            except re.error as exc:
                raise ValueError(f"patterns[{i}] is not a valid regex: {exc}") from None
            if _nested_repetition(pattern):
                raise ValueError(
                    f"patterns[{i}] repeats a group that itself repeats without bound "
                    "(catastrophic backtracking on hostile input): bound the inner repetition"
                )
        return patterns

    @field_validator("apply_to")
    @classmethod
    def _sides_once(cls, sides: list[GuardrailSide]) -> list[GuardrailSide]:
        if len(set(sides)) != len(sides):
            raise ValueError("apply_to names a side twice")
        return sides

    @model_validator(mode="after")
    def _detects_something(self) -> GuardrailConfig:
        if not self.detect and not self.patterns:
            raise ValueError("a guardrail needs `detect` or `patterns` (or both)")
        return self


def _nested_repetition(pattern: str) -> bool:
    """Whether a group holding an unbounded repetition is itself repeated (star height > 1),
    read off the parsed pattern."""
    # The stdlib's own parse of the pattern, as `re` compiles it (no public name, no stub).
    parser: Any = importlib.import_module("re._parser")

    def walk(items: object, inside_repeat: bool) -> bool:
        for op, arg in items:  # type: ignore[attr-defined]
            name = str(op)
            if name in ("MAX_REPEAT", "MIN_REPEAT", "POSSESSIVE_REPEAT"):
                _low, high, sub = arg
                unbounded = high == parser.MAXREPEAT
                if unbounded and inside_repeat:
                    return True
                if walk(sub, inside_repeat or unbounded):
                    return True
            elif name == "SUBPATTERN":
                if walk(arg[-1], inside_repeat):
                    return True
            elif name == "BRANCH":
                if any(walk(branch, inside_repeat) for branch in arg[1]):
                    return True
            elif name in ("ASSERT", "ASSERT_NOT") and walk(arg[1], inside_repeat):
                return True
        return False

    return walk(parser.parse(pattern), False)
