"""The upstream request an adapter builds (`HttpAdapter._request`): byte for byte what httpx
builds from the same method, URL, body and headers (Host first, Content-Length last), from
header sets kept per key and host instead of normalized anew for every request."""

from __future__ import annotations

import sys
from types import FrameType
from typing import Any

import httpx
import orjson
import pytest

from router_service.clock import SYSTEM_CLOCK
from router_service.config import ProviderConfig
from router_service.providers import OpenAIAdapter
from router_service.providers._transport import _BASE_HEADERS
from router_service.telemetry import ATTEMPT_CALL

TIMEOUT: dict[str, float | None] = {"connect": 1.0, "read": 2.0, "write": 2.0, "pool": 2.0}
BODY = {"model": "m", "messages": [{"role": "user", "content": "hi"}]}


def adapter(headers: dict[str, str] | None = None) -> OpenAIAdapter:
    config = ProviderConfig(
        kind="openai",
        base_url="http://upstream.test:8080/v1",
        keys=["sk-one"],  # type: ignore[list-item]
        headers=headers or {},
    )
    return OpenAIAdapter("p", config, httpx.AsyncClient(), SYSTEM_CLOCK)


def httpx_way(
    built: OpenAIAdapter, method: str, url: str, key: str, **kwargs: Any
) -> httpx.Request:
    body = kwargs.get("body")
    return httpx.Request(
        method,
        url,
        params=kwargs.get("params"),
        content=None if body is None else orjson.dumps(body),
        headers=_BASE_HEADERS | built._headers(key),
        extensions={"timeout": TIMEOUT},
    )


def same(ours: httpx.Request, theirs: httpx.Request) -> None:
    assert (ours.method, str(ours.url)) == (theirs.method, str(theirs.url))
    assert ours.headers.raw == theirs.headers.raw  # names as written, in order
    assert ours.content == theirs.content
    assert isinstance(ours.stream, httpx.ByteStream)
    assert ours.extensions == {"timeout": TIMEOUT, ATTEMPT_CALL: True}  # an attempt's call


@pytest.mark.parametrize(
    ("headers", "method", "kwargs"),
    [
        ({}, "POST", {"body": BODY}),
        ({"x-portkey-api-key": "pk"}, "POST", {"body": BODY}),
        ({}, "GET", {}),
        ({}, "GET", {"params": {"limit": "2"}}),
        ({"Host": "gateway.test"}, "POST", {"body": BODY}),  # httpx's own way
        ({"Content-Length": "2"}, "POST", {"body": BODY}),  # httpx's own way
        ({}, "POST", {}),  # httpx's own way: Content-Length 0 goes first
    ],
)
def test_a_request_is_what_httpx_builds(
    headers: dict[str, str], method: str, kwargs: dict[str, Any]
) -> None:
    built = adapter(headers)
    url = "http://upstream.test:8080/v1/chat/completions"
    for key in ("sk-one", "sk-two", "sk-one"):  # kept per key: no key's headers on another's
        same(
            built._request(method, url, key, TIMEOUT, **kwargs),
            httpx_way(built, method, url, key, **kwargs),
        )


def test_the_kept_header_sets_are_bounded() -> None:
    built = adapter()
    url = "http://upstream.test:8080/v1/chat/completions"
    for n in range(600):  # tokens that rotate
        built._request("POST", url, f"token-{n}", TIMEOUT, body=BODY)
    assert built._header_cache is not None and len(built._header_cache) <= 256
    request = built._request("POST", url, "token-599", TIMEOUT, body=BODY)
    assert request.headers["authorization"] == "Bearer token-599"


def test_a_request_normalizes_no_header_anew() -> None:
    """Nor does it search its headers for the Content-Length it adds (`Headers.__setitem__`,
    which first works out their encoding), nor read its content from its stream (`read`)."""
    built = adapter()
    url = "http://upstream.test:8080/v1/chat/completions"
    built._request("POST", url, "sk-one", TIMEOUT, body=BODY)
    called: list[str] = []

    def seen(frame: FrameType, event: str, arg: object) -> None:
        if event == "call" and frame.f_code.co_filename.endswith("httpx/_models.py"):
            called.append(frame.f_code.co_qualname)

    sys.setprofile(seen)
    try:
        request = built._request("POST", url, "sk-one", TIMEOUT, body=BODY)
    finally:
        sys.setprofile(None)
    assert called == ["Headers.__init__", "Request.__init__", "Headers.__init__"]
    assert request.read() == request.content == orjson.dumps(BODY)
