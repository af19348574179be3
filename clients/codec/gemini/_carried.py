"""The GenerateContentRequest fields a Gemini caller sends that only a Gemini deployment reads.

`labels` (billing labels, a map of strings), `serviceTier` (the tier the request is served at:
flex, standard, priority), `generationConfig.mediaResolution` (the tokens an image or a
video frame costs) and `safetySettings` (Google's own content filter thresholds, a list of
`{category, threshold[, method]}`) change how a request is served or billed, not what it says
(and no other provider has a word for them). So the entrance
takes them (google-genai sends them from GenerateContentConfig) and carries them under one key
of the OpenAI body, `GEMINI_ONLY`: the router's Gemini provider puts them back where Gemini
reads them, and every other kind drops the key (no other upstream has a word for them, and
OpenAI-format servers refuse a property they do not know).

Followed: GenerateContentRequest, GenerationConfig, SafetySetting:
https://ai.google.dev/api/generate-content; SafetySetting's `method` (HarmBlockMethod) is Vertex
AI's: https://cloud.google.com/vertex-ai/docs/reference/rest/v1/SafetySetting
"""

from __future__ import annotations

from typing import Any

from clients.codec._json import at, at_index, expect_list, expect_object, expect_str, missing
from clients.errors import InvalidRequestError

__all__ = [
    "CARRIED",
    "CARRIED_CONFIG",
    "GEMINI_ONLY",
    "SAFETY_SETTINGS",
    "carried_fields",
    "checked_carried",
    "safety_settings",
]

JsonObject = dict[str, Any]

GEMINI_ONLY = "gemini_only"
SAFETY_SETTINGS = "safetySettings"
CARRIED = frozenset({"labels", "serviceTier", SAFETY_SETTINGS})
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
    if body.get(SAFETY_SETTINGS) is not None:
        out[SAFETY_SETTINGS] = safety_settings(body[SAFETY_SETTINGS], SAFETY_SETTINGS)
    config = body.get("generationConfig")
    if isinstance(config, dict) and config.get("mediaResolution") is not None:
        where = "generationConfig.mediaResolution"
        resolution = expect_str(config["mediaResolution"], where)
        out["generationConfig"] = {"mediaResolution": resolution}
    return out


def checked_carried(value: Any) -> JsonObject:
    """A body's `GEMINI_ONLY` value checked (a 400 naming the first wrong field's path), as
    sent by an OpenAI caller (the Gemini entrance builds it checked): an object, its
    `safetySettings` as `safety_settings` reads them (a null: unset), its `generationConfig` an
    object. Returned with the settings as checked; the rest is Google's to judge."""
    carried = dict(expect_object(value, GEMINI_ONLY))
    given = carried.pop(SAFETY_SETTINGS, None)
    if given is not None:
        carried[SAFETY_SETTINGS] = safety_settings(given, at(GEMINI_ONLY, SAFETY_SETTINGS))
    if carried.get("generationConfig") is not None:
        expect_object(carried["generationConfig"], at(GEMINI_ONLY, "generationConfig"))
    return carried


_REQUIRED_SAFETY = ("category", "threshold")
_SAFETY_FIELDS = frozenset({*_REQUIRED_SAFETY, "method"})


def safety_settings(value: Any, path: str) -> list[JsonObject]:
    """`value` checked as `safetySettings` (at `path`): a list of `{category, threshold[,
    method]}` objects of strings, a 400 naming the first wrong one's path; the names are
    Google's to judge (its HarmCategory, HarmBlockThreshold and HarmBlockMethod grow)."""
    out: list[JsonObject] = []
    for i, given in enumerate(expect_list(value, path)):
        where = at_index(path, i)
        setting = expect_object(given, where)
        unknown = sorted(set(setting) - _SAFETY_FIELDS)
        if unknown:
            field = at(where, unknown[0])
            raise InvalidRequestError(
                f"{field}: not a safety setting's field (category, threshold, method)", field
            )
        checked: JsonObject = {}
        for key in _REQUIRED_SAFETY:
            if setting.get(key) is None:
                missing(at(where, key))
            checked[key] = expect_str(setting[key], at(where, key))
        if setting.get("method") is not None:
            checked["method"] = expect_str(setting["method"], at(where, "method"))
        out.append(checked)
    return out
