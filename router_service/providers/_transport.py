"""What every HTTP+JSON adapter shares: requests with the call's timeouts, error bodies, wrapped
errors and opening a stream. Adapters differ in the hooks: headers, where an error object lives
in a body, and which HTTP status a wrapped error stands for."""

from __future__ import annotations

import functools
from abc import abstractmethod
from collections.abc import AsyncIterator, Callable, Mapping
from typing import Any

import httpx
import orjson

from clients import UpstreamFormatError, chunk_from_openai
from clients.switchboard.v1 import chat_pb2
from router_service._masking import cut_words
from router_service.errors import UpstreamFailure
from router_service.outcomes import Outcome
from router_service.providers._base import UPSTREAM_ALIVE, ProviderAdapter
from router_service.providers._classify import classify_http_error
from router_service.providers._http import (
    event_bytes,
    map_transport_errors,
    read_error_body,
    send_upstream,
)
from router_service.providers._in_answer import in_answer
from router_service.providers._mapping import json_body
from router_service.providers._openai_media import is_event_stream, is_json
from router_service.providers._sse import DONE, KEEPALIVE, SseDecoder, json_events
from router_service.telemetry import ATTEMPT_CALL
from router_service.telemetry._state import VERSION

JsonObject = dict[str, Any]
# Sent with every upstream request (an adapter's own headers win). No Accept-Encoding: answers
# are small JSON or event streams, where compression saves little and a compressing proxy may
# hold chunks back; a compressed body is still decoded (httpx reads Content-Encoding).
_BASE_HEADERS = {"accept": "application/json", "user-agent": f"switchboard/{VERSION}"}
# What mapping a malformed upstream body can raise: the codec's own error, and a wrong type or
# value where a mapping expected another (a list for an object, text for a number).
MAPPING_ERRORS = (UpstreamFormatError, AttributeError, KeyError, TypeError, ValueError)
# Methods whose request httpx gives a Content-Length even without a body (first, after Host).
_SENDS_BODY = frozenset({"POST", "PUT", "PATCH"})
# Header sets kept per adapter (`_fixed_headers`): more keys and hosts than a provider has.
_HEADER_SETS = 256
# Headers httpx sets itself for `content=` unless given: a config that gives one goes that way.
_HTTPX_SETS = frozenset({"host", "content-length", "transfer-encoding"})


@functools.lru_cache(maxsize=1024)
def _parsed(url: str) -> httpx.URL:
    """Endpoint URLs are few and repeat on every call; httpx parses a string URL each time."""
    return httpx.URL(url)


def parse_object(content: bytes) -> JsonObject | None:
    """The body as a JSON object, or None when it is not one."""
    try:
        data = orjson.loads(content)
    except orjson.JSONDecodeError:
        return None
    return data if isinstance(data, dict) else None


def root_error(data: Mapping[str, Any] | None, content: bytes = b"") -> JsonObject:
    """The error object of an error body, in whatever shape the upstream chose: a root-level
    `error` object or string, or the body itself when it carries a `message`."""
    if data is not None:
        error = data.get("error")
        if isinstance(error, dict):
            return error
        if isinstance(error, str):
            return {"message": error}
        if "message" in data:
            return dict(data)
    return {"message": cut_words(content[:2048].decode("utf-8", "replace"), 500)}


def _extensions(timeout: dict[str, float | None]) -> dict[str, Any]:
    """A request's httpx extensions: the `timeout` given, and the mark of the call an attempt
    makes (its span is the attempt's, `telemetry/_spans.py`; a token exchange is not one)."""
    return {"timeout": timeout, ATTEMPT_CALL: True}


def _exact(encoded: bytes) -> bytes:
    """`encoded` in a buffer of its own size. orjson hands back bytes in a buffer of at least
    4 KiB; a stream keeps its request (and so its body) for as long as it is open, which made
    the body ~4 KiB of every open stream's memory whatever its length."""
    return bytes(memoryview(encoded))


class HttpAdapter(ProviderAdapter):
    """A ProviderAdapter over JSON HTTP. Subclasses set `_headers` and may refine the hooks."""

    # (key, host) -> the headers of every request with them but Content-Length (`_request`).
    _header_cache: dict[tuple[str, bytes], httpx.Headers | None] | None = None

    @abstractmethod
    def _headers(self, api_key: str) -> dict[str, str]:
        """Request headers, the key among them in the provider's own auth header."""

    def _wrapped_error(self, data: JsonObject) -> tuple[int, JsonObject] | None:
        """(HTTP status it stands for, error object) when a 2xx body or a stream event is an
        error; the default is a root-level `error` (DESIGN.md §4, wrapped errors)."""
        if data.get("error") is not None:
            return 200, root_error(data)
        return None

    def _error_of(self, status: int, data: JsonObject | None, content: bytes) -> JsonObject:
        """The error object of a non-2xx response."""
        return root_error(data, content)

    def _failure(
        self, status: int, error: JsonObject, headers: Mapping[str, str], sent: bytes = b""
    ) -> UpstreamFailure:
        """`sent`: the request body the error answers, so that words the caller put in it and
        the upstream echoed are not read as its verdict (`classify_http_error`)."""
        return classify_http_error(status, error, headers, self.clock, sent=sent)

    def _timeout(self, total_s: float) -> dict[str, float | None]:
        """httpx's `timeout` request extension (what `httpx.Timeout.as_dict()` gives)."""
        connect = min(self.config.timeouts.connect_s, total_s)
        return {"connect": connect, "read": total_s, "write": total_s, "pool": total_s}

    def _request(
        self,
        method: str,
        url: str,
        api_key: str,
        timeout: dict[str, float | None],
        *,
        body: Mapping[str, Any] | None = None,
        params: Mapping[str, str] | None = None,
    ) -> httpx.Request:
        """One upstream request, complete: it is sent as built (see `send_upstream`).

        Its headers are what httpx writes for `content=` (Host first, Content-Length last), from
        a copy of those every request with this key to this host has (`_fixed_headers`): httpx
        normalizes each header of a new `Headers` and then each again for the two it adds, ~30
        calls a request; Content-Length is added to its list as `headers[...] = ` adds it,
        without working out the headers' encoding and searching them first, and the content set
        as `read()` sets it. Headers of the config's that httpx treats apart (Host,
        Content-Length, Transfer-Encoding) are left to httpx's own way."""
        endpoint = _parsed(url) if params is None else httpx.URL(url, params=params)
        content = None if body is None else _exact(json_body(body))
        extensions = _extensions(timeout)
        fixed = self._fixed_headers(api_key, endpoint.netloc)
        if fixed is None or (content is None and method in _SENDS_BODY):  # httpx's own way
            given = _BASE_HEADERS | self._headers(api_key)
            return httpx.Request(
                method, endpoint, content=content, headers=given, extensions=extensions
            )
        headers = httpx.Headers(fixed)
        if content is not None:  # as `headers["Content-Length"] = …` adds it (`fixed` has none)
            headers._list.append((b"Content-Length", b"content-length", b"%d" % len(content)))
        sent = content or b""
        request = httpx.Request(
            method, endpoint, headers=headers, stream=httpx.ByteStream(sent), extensions=extensions
        )
        request._content = sent  # as `request.read()` sets it (`content=` reads it so)
        return request

    def _fixed_headers(self, api_key: str, host: bytes) -> httpx.Headers | None:
        cache = self._header_cache
        if cache is None:
            cache = self._header_cache = {}
        key = (api_key, host)
        if key not in cache:
            if len(cache) >= _HEADER_SETS:  # keys that are rotating tokens: anew, not growing
                cache.clear()
            headers = _BASE_HEADERS | self._headers(api_key)
            own = {name.lower() for name in headers} & _HTTPX_SETS
            cache[key] = (
                None if own else httpx.Headers([("Host", host.decode("ascii")), *headers.items()])
            )
        return cache[key]

    async def _post_json(
        self, url: str, body: Mapping[str, Any], api_key: str, timeout_s: float
    ) -> JsonObject:
        data, _ = await self._post_json_answer(url, body, api_key, timeout_s)
        return data

    async def _post_json_answer(
        self, url: str, body: Mapping[str, Any], api_key: str, timeout_s: float
    ) -> tuple[JsonObject, httpx.Headers]:
        """`_post_json`'s body, with the response's headers (where some upstreams count)."""
        request = self._request("POST", url, api_key, self._timeout(timeout_s), body=body)
        with map_transport_errors():
            response = await send_upstream(self.http, request)
        data = self._checked_json(
            response.status_code, response.content, response.headers, request.content
        )
        return data, response.headers

    async def _post_content(
        self, url: str, content: bytes, content_type: str, api_key: str, timeout_s: float
    ) -> tuple[str, bytes, JsonObject | None]:
        """POST a body that is not (only) JSON: a form with a file, or JSON whose answer may be
        anything (audio). (content type, body, the body as a JSON object when it is JSON)."""
        headers = _BASE_HEADERS | self._headers(api_key)
        headers |= {"accept": "*/*", "content-type": content_type}
        timeout = self._timeout(timeout_s)
        request = httpx.Request(
            "POST", _parsed(url), content=content, headers=headers, extensions=_extensions(timeout)
        )
        with map_transport_errors():
            response = await send_upstream(self.http, request)
        status, body = response.status_code, response.content
        if status >= 400:
            error = self._error_of(status, parse_object(body), body)
            raise self._failure(status, error, response.headers, content)
        kind = response.headers.get("content-type", "application/octet-stream")
        data = None
        if is_json(kind):
            data = self._checked_json(status, body, response.headers, content)
        elif is_event_stream(kind):  # events answered whole (speech's `stream_format: "sse"`)
            data = self._last_event(body, response, content)
        return kind, body, data

    def _last_event(self, body: bytes, response: httpx.Response, sent: bytes) -> JsonObject | None:
        """The last JSON event of an event stream read whole (where its usage is: speech's
        `speech.audio.done`), each checked for a wrapped error as a streamed one is."""
        decoder, headers = SseDecoder(event_bytes(response)), response.headers
        last = None
        for event in [*decoder.feed(body), *decoder.close()]:
            if event.data.strip() == DONE:
                break
            data = parse_object(event.data)
            if data is not None:
                self.raise_if_wrapped(data, headers, sent)
                last = data
        return last

    async def _post_for_answer(
        self, url: str, content: bytes, content_type: str, api_key: str, timeout_s: float
    ) -> httpx.Response:
        """POST a body of any kind and take any successful answer as it is (its status, headers
        and body read): a refusal (4xx, 5xx) is the classified failure."""
        headers = _BASE_HEADERS | self._headers(api_key)
        headers |= {"accept": "*/*", "content-type": content_type}
        request = httpx.Request(
            "POST",
            _parsed(url),
            content=content,
            headers=headers,
            extensions=_extensions(self._timeout(timeout_s)),
        )
        with map_transport_errors():
            response = await send_upstream(self.http, request)
        if response.status_code >= 400:
            body = response.content
            error = self._error_of(response.status_code, parse_object(body), body)
            raise self._failure(response.status_code, error, response.headers, content)
        return response

    async def _get_json(
        self, url: str, api_key: str, timeout_s: float, params: Mapping[str, str] | None = None
    ) -> JsonObject:
        request = self._request("GET", url, api_key, self._timeout(timeout_s), params=params)
        with map_transport_errors():
            response = await send_upstream(self.http, request)
        return self._checked_json(response.status_code, response.content, response.headers)

    def _checked_json(
        self, status: int, content: bytes, headers: Mapping[str, str], sent: bytes = b""
    ) -> JsonObject:
        data = parse_object(content)
        if status >= 400:
            raise self._failure(status, self._error_of(status, data, content), headers, sent)
        if data is None:
            raise UpstreamFailure(Outcome.UPSTREAM_ERROR, f"HTTP {status} with a non-JSON body")
        self.raise_if_wrapped(data, headers, sent)
        return data

    def raise_if_wrapped(
        self, data: JsonObject, headers: Mapping[str, str], sent: bytes = b""
    ) -> None:
        """Raise the classified failure when a body or stream event is a wrapped error. A
        stream's events come without `sent` (its body is not kept for the stream's life): a
        refusal that quotes the request comes before the stream, as the response's status."""
        wrapped = self._wrapped_error(data)
        if wrapped is not None:
            raise self._failure(wrapped[0], wrapped[1], headers, sent)

    def raise_if_failed_event(self, event: JsonObject, headers: Mapping[str, str]) -> None:
        """`raise_if_wrapped` for a stream's event (chat or media): an error there is one inside
        an answer the upstream had begun, scoped by what it says (`in_answer`: a server error
        that is not an overload is that one answer's)."""
        wrapped = self._wrapped_error(event)
        if wrapped is not None:
            failure = self._failure(wrapped[0], wrapped[1], headers)
            self._in_answer(failure)
            raise failure

    def _in_answer(self, failure: UpstreamFailure) -> None:
        """Scope `failure`, an error inside an answer the upstream had begun (`in_answer`); an
        adapter whose own error codes say whose failure it is keeps their word."""
        in_answer(failure)

    def _open_stream(
        self, url: str, body: Mapping[str, Any], api_key: str, timeout_s: float
    ) -> UpstreamStream:
        """`async with adapter._open_stream(...) as response:` POSTs `body` and gives the
        streaming response once its status is known to be a success; the response is closed on
        leaving, whatever happened. `body` is encoded here: callers drop their own reference to
        it before entering (a stream's frames live as long as the stream)."""
        # Read timeouts are the StreamGuard's job (first chunk, stall); the transport only
        # bounds connecting and writing.
        timeout = {"connect": self.config.timeouts.connect_s, "read": None}
        timeout |= {"write": timeout_s, "pool": timeout_s}
        return UpstreamStream(self, self._request("POST", url, api_key, timeout, body=body))

    def _open_content_stream(
        self, url: str, content: bytes, content_type: str, api_key: str, timeout_s: float
    ) -> UpstreamStream:
        """`_open_stream` for a body that is not (only) JSON (`_post_content`'s): a form with
        files, or JSON whose answer is audio bytes or events."""
        headers = _BASE_HEADERS | self._headers(api_key)
        headers |= {"accept": "*/*", "content-type": content_type}
        timeout = {"connect": self.config.timeouts.connect_s, "read": None}
        timeout |= {"write": timeout_s, "pool": timeout_s}
        request = httpx.Request(
            "POST", _parsed(url), content=content, headers=headers, extensions=_extensions(timeout)
        )
        return UpstreamStream(self, request)

    async def _mapped_chunks(
        self, response: httpx.Response, feed: Callable[[JsonObject], list[JsonObject]]
    ) -> AsyncIterator[chat_pb2.ChatCompletionChunk]:
        """A native stream as protobuf chunks: each event is checked for a wrapped error, then
        mapped by `feed` into OpenAI chunk objects, which the codec parses. An event that maps
        to none (Anthropic's `ping` while Claude thinks with its thinking omitted, or runs a
        server tool) is the upstream's sign of life: UPSTREAM_ALIVE."""
        async for _, event in json_events(response, alive=True):
            if event is KEEPALIVE:
                yield UPSTREAM_ALIVE
                continue
            self.raise_if_failed_event(event, response.headers)
            try:
                chunks = [chunk_from_openai(c) for c in feed(event)]
            except MAPPING_ERRORS as exc:
                raise malformed("stream event", exc) from exc
            if not chunks:
                yield UPSTREAM_ALIVE
            for chunk in chunks:
                yield chunk


def malformed(what: str, exc: Exception) -> UpstreamFailure:
    """A body we cannot map is the upstream's failure, not the caller's."""
    return UpstreamFailure(Outcome.UPSTREAM_ERROR, f"malformed {what}: {exc}")


class UpstreamStream:
    """One streaming upstream call, as an async context manager (`HttpAdapter._open_stream`).

    It lets go of the request once it is sent. A stream stays open for as long as the model
    writes, and what it holds is held that long: the request holds its encoded body, i.e. the
    whole prompt again (measured with 32 KiB prompts: ~4 copies of the prompt per open stream in
    the router before, 2 after — the gRPC request and grpc's received bytes of it). Hence a class
    rather than `@asynccontextmanager`, whose context manager keeps its arguments to the end.
    """

    __slots__ = ("_adapter", "_request", "_response")

    def __init__(self, adapter: HttpAdapter, request: httpx.Request) -> None:
        self._adapter = adapter
        self._request: httpx.Request | None = request
        self._response: httpx.Response | None = None

    async def open(self) -> httpx.Response:
        """Send the request; the response, which the caller closes (`__aexit__` does)."""
        request, self._request = self._request, None
        if request is None:
            raise RuntimeError("an upstream stream is opened once")
        adapter = self._adapter
        with map_transport_errors():
            response = await send_upstream(adapter.http, request, stream=True)
        if response.status_code >= 400:
            with map_transport_errors(started=True):
                content = await read_error_body(response)  # closes it
            error = adapter._error_of(response.status_code, parse_object(content), content)
            raise adapter._failure(response.status_code, error, response.headers, request.content)
        del request
        self._response = response
        return response

    __aenter__ = open

    async def __aexit__(self, *exc_info: object) -> None:
        response, self._response = self._response, None
        if response is not None:
            await response.aclose()
