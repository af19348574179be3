"""The GenerateContentRequest fields a Gemini caller sends that only a Gemini deployment reads.

`labels` (billing labels, a map of strings), `serviceTier` (the tier the request is served at:
flex, standard, priority) and `generationConfig.mediaResolution` (the tokens an image or a
video frame costs) change how a request is served or billed, not what it says. So the entrance
takes them (google-genai sends them from GenerateContentConfig) and carries them under one key
of the OpenAI body, `GEMINI_ONLY`: the router's Gemini provider puts them back where Gemini
reads them, and every other kind drops the key (no other upstream has a word for them, and
OpenAI-format servers refuse a property they do not know).

Followed: GenerateContentRequest, GenerationConfig: https://ai.google.dev/api/generate-content
"""

from __future__ import annotations

from typing import Any

from clients.codec._json import at, expect_object, expect_str

__all__ = ["CARRIED", "CARRIED_CONFIG", "GEMINI_ONLY", "carried_fields"]

JsonObject = dict[str, Any]

GEMINI_ONLY = "gemini_only"
CARRIED = frozenset({"labels", "serviceTier"})
CARRIED_CONFIG = frozenset({"mediaResolution"})


def carried_fields(body: JsonObject) -> JsonObject:
    """The `GEMINI_ONLY` object for a generateContent `body` (empty: none of its fields), each
    value's type checked (a 400 naming its path); values are Google's to judge."""
    out: JsonObject = {}
    if body.get("labels") is not None:
        labels = expect_object(body["labels"], "labels")
        out["labels"] = {k: expect_str(v, at("labels", k)) for k, v in labels.items()}
    if body.get("serviceTier") is not None:
        out["serviceTier"] = expect_str(body["serviceTier"], "serviceTier")
    config = body.get("generationConfig")
    if isinstance(config, dict) and config.get("mediaResolution") is not None:
        where = "generationConfig.mediaResolution"
        resolution = expect_str(config["mediaResolution"], where)
        out["generationConfig"] = {"mediaResolution": resolution}
    return out
