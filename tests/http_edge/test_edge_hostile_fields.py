"""Hostile values at every known field of each JSON entrance, and hostile headers and framing,
through the real stack (fake upstream, router, edge on uvicorn): never a 5xx, always an error
object, and the edge still serves the next request. Found by it: a peer address that gRPC
refuses (a 500), a speech format or a content part of the wrong shape (the fake upstream's 500).

Deterministic (derandomize) and bounded: a few hundred requests, seconds on two cores.
"""

from __future__ import annotations

import gzip
import json
import socket
from typing import Any

import httpx
import orjson
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.http_edge.live_stack import (
    AUTH,
    CALL_TIMEOUT_S,
    LiveStack,
    assert_answered_well,
    assert_still_serves,
)

CHAT = {"model": "chain", "messages": [{"role": "user", "content": "hi"}]}
RESPONSES = {"model": "chain", "input": "hi"}
# Each entrance: a valid body, and the fields its codec reads.
ENTRANCES: dict[str, tuple[dict[str, Any], list[str]]] = {
    "/v1/chat/completions": (
        CHAT,
        [
            *("model", "messages", "max_tokens", "temperature", "top_p", "n", "stream", "stop"),
            *("tools", "tool_choice", "response_format", "stream_options", "metadata", "seed"),
            *("logit_bias", "logprobs", "reasoning_effort", "modalities", "audio", "prediction"),
        ],
    ),
    "/v1/completions": (
        {"model": "chain", "prompt": "hi"},
        ["model", "prompt", "max_tokens", "n", "stream", "stop", "echo", "suffix", "best_of"],
    ),
    "/v1/embeddings": (
        {"model": "chain", "input": "hi"},
        ["model", "input", "dimensions", "encoding_format"],
    ),
    "/v1/responses": (
        RESPONSES,
        [
            *("model", "input", "instructions", "max_output_tokens", "tools", "tool_choice"),
            *("text", "reasoning", "stream", "store", "previous_response_id", "include"),
            *("conversation", "prompt", "background", "truncation"),
        ],
    ),
    "/v1/responses/input_tokens": (RESPONSES, ["model", "input", "tools", "conversation"]),
    "/v1/moderations": ({"model": "chain", "input": "hi"}, ["model", "input"]),
    "/v1/images/generations": (
        {"model": "chain", "prompt": "cat"},
        ["model", "prompt", "n", "size", "response_format", "stream", "partial_images"],
    ),
    "/v1/audio/speech": (
        {"model": "chain", "input": "hi", "voice": "alloy"},
        ["model", "input", "voice", "response_format", "speed", "stream_format"],
    ),
    "/v1/messages": (
        {**CHAT, "max_tokens": 10},
        ["model", "max_tokens", "messages", "system", "stream", "tools", "thinking"],
    ),
    "/v1/rerank": (
        {"model": "chain", "query": "q", "documents": ["a", "b"]},
        ["model", "query", "documents", "top_n"],
    ),
    "/api/chat": ({**CHAT, "stream": False}, ["model", "messages", "options", "format"]),
}
FIELDS = [(path, field) for path, (_, fields) in ENTRANCES.items() for field in fields]
# Values as JSON text, some no JSON library writes (1e309, NaN, a lone surrogate, 40 digits).
RAW_VALUES = st.sampled_from(
    [
        *(b"null", b"[]", b"{}", b"[[[]]]", b"[null]", b"[{}]", b'["a",{}]', b'{"type":null}'),
        *(b"1e309", b"-1e309", b"NaN", b"Infinity", b"1e-400", b"1.5", b"-1", b"0", b"true"),
        *(b"1234567890123456789012345678901234567890", b"18446744073709551616"),
        *(b'"\\ud800"', b'"\\udfff x"', b'"\\u0000"', b'""', b'"\xff\xfe"'),
        b"[" * 3000 + b"]" * 3000,
        b'"' + b"m" * 100_000 + b'"',
    ]
)
JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=20),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=6), inner),
    max_leaves=8,
).map(lambda value: json.dumps(value).encode())


def assert_answered_in_kind(path: str, response: httpx.Response) -> None:
    """`assert_answered_well`, in the error shape of the entrance's API: Ollama's is
    `{"error": "message"}`, Anthropic's `{"type": "error", "error": {"type", "message"}}`."""
    if path.startswith("/api/") and response.status_code >= 400:
        assert response.status_code < 500, response.text[:500]
        assert isinstance(response.json()["error"], str)
    else:
        assert_answered_well(response)


def with_field(base: dict[str, Any], field: str, raw: bytes) -> bytes:
    """`base` with `field` set to the JSON text `raw`, written as it is."""
    items = [json.dumps({key: value})[1:-1].encode() for key, value in base.items() if key != field]
    return b"{" + b",".join([*items, json.dumps(field).encode() + b":" + raw]) + b"}"


@given(where=st.sampled_from(FIELDS), raw=RAW_VALUES | JSON)
@settings(
    max_examples=150, deadline=None, derandomize=True, suppress_health_check=list(HealthCheck)
)
def test_hostile_field_values_never_fail_the_server(
    live_http: httpx.Client, where: tuple[str, str], raw: bytes
) -> None:
    path, field = where
    body = with_field(ENTRANCES[path][0], field, raw)
    headers = {**AUTH, "content-type": "application/json"}
    assert_answered_in_kind(path, live_http.post(path, content=body, headers=headers))
    assert_still_serves(live_http)


def _gzipped_cut(body: dict[str, Any]) -> bytes:
    return gzip.compress(json.dumps(body).encode())[:-6]


FRAMINGS = st.sampled_from(
    [
        *({"content-type": kind} for kind in ("text/plain", "multipart/form-data", "garbage")),
        *({"content-type": "application/x-www-form-urlencoded"}, {"content-encoding": "br"}),
        *({"content-encoding": "gzip"}, {"content-encoding": "deflate"}),
        *({"content-encoding": "gzip, gzip"}, {"content-encoding": "gzip", "cut": "6"}),
    ]
)


@given(path=st.sampled_from(list(ENTRANCES)), framing=FRAMINGS)
@settings(max_examples=40, deadline=None, derandomize=True, suppress_health_check=list(HealthCheck))
def test_bodies_that_lie_about_their_framing_never_fail_the_server(
    live_http: httpx.Client, path: str, framing: dict[str, str]
) -> None:
    # Each claims a type or an encoding the body does not have (or one the edge does not read).
    headers = {**AUTH, **{k: v for k, v in framing.items() if k != "cut"}}
    base = ENTRANCES[path][0]
    body = _gzipped_cut(base) if "cut" in framing else json.dumps(base).encode()
    assert_answered_in_kind(path, live_http.post(path, content=body, headers=headers))
    assert_still_serves(live_http)


# The peer address uvicorn read from X-Forwarded-For (the edge's peer, loopback, is trusted):
# gRPC metadata must be printable ASCII, and the edge forwards it to the router.
@pytest.mark.parametrize(
    ("forwarded_for", "status"),
    [(b"\xe9", 400), (b"10.0.0.1, caf\xc3\xa9", 400), (b"h" * 300, 431)],
)
def test_a_peer_address_grpc_refuses_is_the_callers_error(
    live_http: httpx.Client, forwarded_for: bytes, status: int
) -> None:
    headers = [(b"authorization", AUTH["authorization"].encode())]
    response = live_http.post(
        "/v1/chat/completions", json=CHAT, headers=[*headers, (b"x-forwarded-for", forwarded_for)]
    )
    assert response.status_code == status, response.text[:500]
    assert response.json()["error"]["param"] == "x-forwarded-for"
    assert_still_serves(live_http)


def test_a_printable_peer_address_is_forwarded(live_http: httpx.Client) -> None:
    headers = {**AUTH, "x-forwarded-for": "203.0.113.7, 10.0.0.1"}
    response = live_http.post("/v1/chat/completions", json=CHAT, headers=headers)
    assert response.status_code == 200, response.text[:500]


@pytest.mark.parametrize("response_format", [[], {"type": "mp3"}, ["mp3"]])
def test_a_speech_format_not_a_string_is_a_400(
    live_http: httpx.Client, response_format: Any
) -> None:
    # OpenAI refuses it as the caller's; the fake upstream failed on it (a 500, then a 503).
    body = {"model": "chain", "input": "hi", "voice": "alloy", "response_format": response_format}
    response = live_http.post("/v1/audio/speech", json=body, headers=AUTH)
    assert response.status_code == 400, response.text[:500]
    assert "error" in response.json()


@pytest.mark.parametrize(
    "part",
    [
        {"type": "input_audio", "input_audio": "x"},
        {"type": "input_audio", "input_audio": [{}]},
        {"type": "file", "file": 7},
        {"type": "file", "file": ["a.pdf"]},
    ],
)
def test_a_content_part_of_the_wrong_shape_is_a_400(
    live_http: httpx.Client, part: dict[str, Any]
) -> None:
    # OpenAI refuses it as the caller's; the fake upstream failed on it (a 500, then a 503).
    messages = [{"role": "user", "content": [{"type": "text", "text": "hi"}, part]}]
    body = {"model": "chain", "messages": messages}
    response = live_http.post("/v1/chat/completions", json=body, headers=AUTH)
    assert response.status_code == 400, response.text[:500]
    assert "error" in response.json()


@pytest.mark.parametrize(
    "framing",
    [
        b"Transfer-Encoding: chunked\r\n\r\nzz\r\n{}\r\n0\r\n\r\n",  # a chunk size not hex
        b"Content-Length: 2\r\nContent-Length: 3\r\n\r\n{}",  # two lengths
        b"x-session-id: a\x01b\r\nContent-Length: 2\r\n\r\n{}",  # a control character
    ],
)
def test_a_request_http_cannot_read_is_a_400_in_openais_shape(
    live_stack: LiveStack, live_http: httpx.Client, framing: bytes
) -> None:
    host, port = live_stack.base_url.removeprefix("http://").split(":")
    head = b"POST /v1/chat/completions HTTP/1.1\r\nHost: edge\r\n"
    with socket.create_connection((host, int(port)), timeout=CALL_TIMEOUT_S) as connection:
        connection.sendall(head + framing)
        answer = b""
        while chunk := connection.recv(65536):  # the edge closes the connection after it
            answer += chunk
    status_line, _, rest = answer.partition(b"\r\n")
    headers, _, body = rest.partition(b"\r\n\r\n")
    assert status_line.startswith(b"HTTP/1.1 400"), answer[:300]
    assert b"content-type: application/json" in headers.lower()
    error = orjson.loads(body)["error"]
    assert error["type"] == "invalid_request_error" and error["code"] == "invalid_http_request"
    assert_still_serves(live_http)
