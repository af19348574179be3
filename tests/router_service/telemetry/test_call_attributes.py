"""An upstream call's HTTP attributes (`_httpx._request_attributes`): made once per method and
URL (every attempt's call repeats its deployment's), the same as made anew, the cache bounded."""

from __future__ import annotations

import httpx

from router_service.telemetry import _httpx


def test_a_calls_attributes_are_made_once_per_method_and_url() -> None:
    _httpx._call_attributes.clear()
    url = "https://user:secret@api.example.com/v1/chat/completions?api-version=1"
    first = _httpx._request_attributes(httpx.Request("POST", url))
    assert first == {
        "http.request.method": "POST",
        "url.full": "https://api.example.com/v1/chat/completions",  # no credentials, no query
        "server.address": "api.example.com",
        "server.port": 443,
    }
    assert _httpx._request_attributes(httpx.Request("POST", url)) is first
    other = _httpx._request_attributes(httpx.Request("GET", "http://127.0.0.1:8080/v1/models"))
    assert other == _httpx._new_request_attributes(
        httpx.Request("GET", "http://127.0.0.1:8080/v1/models")
    )
    assert other["server.port"] == 8080 and other["http.request.method"] == "GET"


def test_the_cache_of_call_attributes_is_bounded() -> None:
    _httpx._call_attributes.clear()
    for n in range(_httpx._CALL_ATTRIBUTES_MAX * 2 + 1):
        made = _httpx._request_attributes(httpx.Request("GET", f"http://up.example/files/{n}"))
        assert made["url.full"] == f"http://up.example/files/{n}"
    assert 0 < len(_httpx._call_attributes) <= _httpx._CALL_ATTRIBUTES_MAX
