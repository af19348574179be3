"""The request bodies of the edge's media routes in its OpenAPI document (as `_openapi`'s):
moderations, images (generations; edits and variations, forms), speech, transcriptions and
translations (forms), rerank (Cohere v2's body)."""

from __future__ import annotations

from typing import Any

from ._openapi import ERRORS, json_operation

__all__ = [
    "IMAGES",
    "IMAGE_EDITS",
    "IMAGE_VARIATIONS",
    "MODERATIONS",
    "RERANK",
    "SPEECH",
    "TRANSCRIPTIONS",
    "TRANSLATIONS",
]

_MODEL = {"type": "string", "minLength": 1}
_FILE = {"type": "string", "format": "binary"}
_IMAGE_FORMAT = {"enum": ["url", "b64_json"]}
_AUDIO_TEXT_FORMAT = {"enum": ["json", "text", "srt", "verbose_json", "vtt"]}
# Streamed answers (speech's `stream_format`, the others' `stream`): see README, Streaming.
_STREAM = {"type": "boolean"}
_PARTIAL_IMAGES = {"type": "integer", "minimum": 0, "maximum": 3}

_MODERATIONS_REQUEST = {
    "type": "object",
    "required": ["input"],
    "properties": {
        "model": _MODEL,
        "input": {"anyOf": [{"type": "string"}, {"type": "array", "items": {"type": "string"}}]},
    },
}
_RERANK_REQUEST = {
    "type": "object",
    "required": ["model", "query", "documents"],
    "properties": {
        "model": _MODEL,
        "query": {"type": "string", "minLength": 1},
        "documents": {
            "type": "array",
            "minItems": 1,
            "items": {
                "anyOf": [
                    {"type": "string"},
                    {
                        "type": "object",
                        "required": ["text"],
                        "properties": {"text": {"type": "string"}},
                    },
                ]
            },
        },
        "top_n": {"type": "integer", "minimum": 1},
        "return_documents": {"type": "boolean"},
        "max_tokens_per_doc": {"type": "integer", "minimum": 1},
    },
}
_IMAGES_REQUEST = {
    "type": "object",
    "required": ["model", "prompt"],
    "properties": {
        "model": _MODEL,
        "prompt": {"type": "string"},
        "n": {"type": "integer", "minimum": 1, "maximum": 10},
        "size": {"type": "string"},
        "response_format": _IMAGE_FORMAT,
        "stream": _STREAM,
        "partial_images": _PARTIAL_IMAGES,
    },
}
_SPEECH_REQUEST = {
    "type": "object",
    "required": ["model", "input", "voice"],
    "properties": {
        "model": _MODEL,
        "input": {"type": "string"},
        "voice": {"type": "string"},
        "response_format": {"enum": ["mp3", "opus", "aac", "flac", "wav", "pcm"]},
        "speed": {"type": "number", "minimum": 0.25, "maximum": 4.0},
        "stream_format": {"enum": ["audio", "sse"]},
    },
}
_TRANSCRIPTIONS_FORM = {
    "type": "object",
    "required": ["file", "model"],
    "properties": {
        "file": _FILE,
        "model": _MODEL,
        "language": {"type": "string"},
        "prompt": {"type": "string"},
        "response_format": _AUDIO_TEXT_FORMAT,
        "temperature": {"type": "number", "minimum": 0, "maximum": 1},
        "stream": _STREAM,
    },
}
_TRANSLATIONS_FORM = {
    "type": "object",
    "required": ["file", "model"],
    "properties": {
        "file": _FILE,
        "model": _MODEL,
        "prompt": {"type": "string"},
        "response_format": _AUDIO_TEXT_FORMAT,
        "temperature": {"type": "number", "minimum": 0, "maximum": 1},
    },
}
_IMAGE_EDITS_FORM = {
    "type": "object",
    "required": ["image", "model", "prompt"],
    "properties": {
        "image": _FILE,
        "image[]": {"type": "array", "items": _FILE, "maxItems": 16},
        "mask": _FILE,
        "model": _MODEL,
        "prompt": {"type": "string"},
        "n": {"type": "integer", "minimum": 1, "maximum": 10},
        "size": {"type": "string"},
        "response_format": _IMAGE_FORMAT,
        "stream": _STREAM,
        "partial_images": _PARTIAL_IMAGES,
    },
}
_IMAGE_VARIATIONS_FORM = {
    "type": "object",
    "required": ["image", "model"],
    "properties": {
        "image": _FILE,
        "model": _MODEL,
        "n": {"type": "integer", "minimum": 1, "maximum": 10},
        "size": {"type": "string"},
        "response_format": _IMAGE_FORMAT,
    },
}


def _form_operation(schema: dict[str, Any]) -> dict[str, Any]:
    return {
        "requestBody": {"required": True, "content": {"multipart/form-data": {"schema": schema}}},
        "responses": ERRORS,
    }


MODERATIONS = json_operation(_MODERATIONS_REQUEST)
RERANK = json_operation(_RERANK_REQUEST)
IMAGES = json_operation(_IMAGES_REQUEST)
SPEECH = json_operation(_SPEECH_REQUEST)
TRANSCRIPTIONS = _form_operation(_TRANSCRIPTIONS_FORM)
TRANSLATIONS = _form_operation(_TRANSLATIONS_FORM)
IMAGE_EDITS = _form_operation(_IMAGE_EDITS_FORM)
IMAGE_VARIATIONS = _form_operation(_IMAGE_VARIATIONS_FORM)
