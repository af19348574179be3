"""Compressed request bodies (`Content-Encoding: gzip` or `deflate`), as clients that compress
their long conversations send them (api.anthropic.com and OpenAI's backend take them): read as
the JSON they hold, within the body limit counted on what they decompress to."""

from __future__ import annotations

import gzip
import zlib
from collections.abc import Callable
from typing import Any

import httpx
import orjson
import pytest

from router_service.fake_upstream import FakeUpstream
from tests.conftest import RouterHandle
from tests.e2e.stream_harness import StartEdge

CHAT: dict[str, Any] = {"model": "chain", "messages": [{"role": "user", "content": "packed"}]}


@pytest.fixture
async def http(router: RouterHandle, start_edge: StartEdge) -> Any:
    edge = await start_edge(router, max_body_bytes=4096)
    async with httpx.AsyncClient(base_url=edge.base_url, timeout=10) as client:
        yield client


def post(http: httpx.AsyncClient, path: str, body: bytes, encoding: str) -> Any:
    headers = {"content-type": "application/json", "content-encoding": encoding}
    return http.post(path, content=body, headers=headers)


PACKERS: list[tuple[str, Callable[[bytes], bytes]]] = [
    ("gzip", gzip.compress),
    ("deflate", zlib.compress),
]


@pytest.mark.parametrize(("encoding", "pack"), PACKERS)
async def test_a_compressed_body_is_read_as_the_json_it_holds(
    http: httpx.AsyncClient, fake: FakeUpstream, encoding: str, pack: Any
) -> None:
    answer = await post(http, "/v1/chat/completions", pack(orjson.dumps(CHAT)), encoding)
    assert answer.status_code == 200, answer.text
    assert answer.json()["choices"][0]["message"]["content"] == "Echo: packed"
    record = fake.state.last(path="/chat/completions")
    assert record is not None and record.body["messages"] == CHAT["messages"]


async def test_the_limit_holds_for_what_a_body_decompresses_to(
    http: httpx.AsyncClient, fake: FakeUpstream
) -> None:
    """A few hundred bytes of gzip that would be megabytes of JSON: 413, never inflated whole."""
    padded = {**CHAT, "messages": [{"role": "user", "content": "x" * 3_000_000}]}
    bomb = gzip.compress(orjson.dumps(padded))
    assert len(bomb) < 4096
    answer = await post(http, "/v1/chat/completions", bomb, "gzip")
    assert answer.status_code == 413
    assert answer.json()["error"]["code"] == "request_too_large"
    assert fake.state.last(path="/chat/completions") is None


async def test_an_encoding_not_taken_or_a_broken_body_is_said_so(http: httpx.AsyncClient) -> None:
    unknown = await post(http, "/v1/chat/completions", orjson.dumps(CHAT), "br")
    assert unknown.status_code == 415
    assert unknown.json()["error"]["code"] == "unsupported_content_encoding"
    assert "br" in unknown.json()["error"]["message"]
    broken = await post(http, "/v1/chat/completions", gzip.compress(b"{}")[:-6], "gzip")
    assert broken.status_code == 400
    assert broken.json()["error"]["code"] == "invalid_body"
    # Anthropic's callers read their own error shape, as for any refusal.
    claude = await post(http, "/v1/messages", orjson.dumps(CHAT), "br")
    assert claude.status_code == 415
    assert claude.json()["type"] == "error"


async def test_every_member_of_a_gzip_body_is_read(
    http: httpx.AsyncClient, fake: FakeUpstream
) -> None:
    """A gzip body may be several members one after another (RFC 1952; what a client that
    compresses as it writes sends): the JSON they hold together, none of it dropped."""
    text = orjson.dumps(CHAT)
    members = gzip.compress(text[:20]) + gzip.compress(text[20:])
    answer = await post(http, "/v1/chat/completions", members, "gzip")
    assert answer.status_code == 200, answer.text
    record = fake.state.last(path="/chat/completions")
    assert record is not None and record.body["messages"] == CHAT["messages"]
    # What follows the stream and is none is a broken body, not ignored.
    trailed = await post(http, "/v1/chat/completions", gzip.compress(text) + b"junk", "gzip")
    assert trailed.status_code == 400
    assert trailed.json()["error"]["code"] == "invalid_body"


def raw_deflate(data: bytes) -> bytes:
    packer = zlib.compressobj(wbits=-zlib.MAX_WBITS)
    return packer.compress(data) + packer.flush()


async def test_a_deflate_body_without_zlibs_header_is_read_too(
    http: httpx.AsyncClient, fake: FakeUpstream
) -> None:
    """`deflate` as .NET's `DeflateStream` and Node's `deflateRaw` write it: the bare stream
    (RFC 1951) without zlib's wrapper, which many clients send for HTTP's `deflate`."""
    answer = await post(http, "/v1/chat/completions", raw_deflate(orjson.dumps(CHAT)), "deflate")
    assert answer.status_code == 200, answer.text
    record = fake.state.last(path="/chat/completions")
    assert record is not None and record.body["messages"] == CHAT["messages"]
    cut = await post(http, "/v1/chat/completions", raw_deflate(orjson.dumps(CHAT))[:-3], "deflate")
    assert cut.status_code == 400
    assert cut.json()["error"]["code"] == "invalid_body"


async def test_a_list_of_encodings_is_undone_last_first(
    http: httpx.AsyncClient, fake: FakeUpstream
) -> None:
    """`Content-Encoding` is a list, in the order the codings were applied (RFC 9110 8.4);
    `identity` in it changes nothing, and case does not matter."""
    body = orjson.dumps(CHAT)
    for encoding, packed in [
        ("gzip, identity", gzip.compress(body)),
        ("Identity,GZIP", gzip.compress(body)),
        ("deflate, gzip", gzip.compress(zlib.compress(body))),
    ]:
        answer = await post(http, "/v1/chat/completions", packed, encoding)
        assert answer.status_code == 200, (encoding, answer.text)
    record = fake.state.last(path="/chat/completions")
    assert record is not None and record.body["messages"] == CHAT["messages"]
    mixed = await post(http, "/v1/chat/completions", gzip.compress(body), "gzip, br")
    assert mixed.status_code == 415
    assert "br" in mixed.json()["error"]["message"]
