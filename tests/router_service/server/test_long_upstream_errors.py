"""What an upstream's error body says is read and scrubbed up to a bound (`SCRUBBED_CHARS`,
64 KiB): the upstream chose its size, and the scrub runs on the event loop. A text cut there,
or cut short for a failure's detail, ends before the word the bound falls in: a key the cut
went through is left out whole, never a fragment that no longer reads as the key and so is
no longer masked."""

from __future__ import annotations

from typing import Any

import grpc
import pytest

from clients import details_from_rpc_error
from clients.switchboard.v1 import chat_pb2
from clients.switchboard.v1 import router_service_pb2 as pb
from router_service._masking import SCRUBBED_CHARS
from router_service.errors import UpstreamFailure
from router_service.fake_upstream import FakeUpstream, Scenario
from router_service.outcomes import Outcome
from tests.conftest import StartRouter

pytestmark = pytest.mark.timeout(60)

# Of no key's shape: only the config's list masks it, and only whole.
KEY = "plainkey-abcdefgh-0123456789"
FRAGMENT = KEY[:5]


def _config(fake_url: str) -> dict[str, Any]:
    return {
        "providers": {"alpha": {"base_url": fake_url, "keys": [KEY]}},
        "models": {"a": {"deployments": [{"provider": "alpha", "model": "model-a"}]}},
        "server": {"port": 0},
        "auth": {"open": True},
    }


def _straddling(at: int, length: int) -> str:
    """Words of `length` characters with the key across character `at`."""
    head = "word " * ((at - 6) // 5)
    head += "x" * (at - 6 - len(head)) + " "
    text = f"{head}{KEY} "
    return text + "word " * ((length - len(text)) // 5)


def _params() -> chat_pb2.ChatParams:
    message = chat_pb2.ChatMessage(role=chat_pb2.ROLE_USER, text="hi")
    return chat_pb2.ChatParams(model="a", messages=[message])


async def _refusal(router: Any, streamed: bool) -> grpc.aio.AioRpcError:
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        if streamed:
            async for _ in router.stub.ChatStream(pb.ChatStreamRequest(params=_params())):
                pass
        else:
            await router.stub.Chat(pb.ChatRequest(params=_params()))
    return caught.value


def test_an_upstream_error_is_scrubbed_up_to_the_bound_never_into_a_key_fragment() -> None:
    # What a caller is told of it is cut to 1 KiB on the wire (clients.errors): the bound is
    # what the scrub, on the event loop, reads of a body whose size the upstream chose.
    said = _straddling(SCRUBBED_CHARS, 4 * SCRUBBED_CHARS)
    extra = [_straddling(SCRUBBED_CHARS // 2, SCRUBBED_CHARS)] * 8
    error = {"message": said, "type": "invalid_request_error", "details": extra}
    failure = UpstreamFailure(Outcome.BAD_REQUEST, "HTTP 400", upstream_error=error)

    failure.scrub([KEY])

    scrubbed = failure.upstream_error
    assert scrubbed is not None
    message = scrubbed["message"]
    assert message.startswith("word word") and message.endswith("word …")
    assert len(message) <= SCRUBBED_CHARS
    texts = [message, *scrubbed["details"]]
    assert sum(map(len, texts)) <= 2 * SCRUBBED_CHARS
    assert all(FRAGMENT not in text for text in texts)
    assert scrubbed["type"] == "invalid_request_error"  # a short text after it stays whole


@pytest.mark.parametrize("streamed", [False, True], ids=["unary", "stream"])
async def test_a_failure_s_detail_is_never_cut_into_a_key_fragment(
    fake: FakeUpstream, start_router: StartRouter, streamed: bool
) -> None:
    router = await start_router(_config(fake.base_url))
    # A failure's detail holds the message's first 200 characters: the key across the 200th.
    body = {"error": {"message": _straddling(200, 400), "type": "server_error"}}
    fake.state.set_scenario(Scenario(status=500, error_body=body))

    refusal = await _refusal(router, streamed)

    details = details_from_rpc_error(refusal)
    assert details.reason == "UPSTREAM_ERROR" and "word word" in details.message
    assert FRAGMENT not in details.message
