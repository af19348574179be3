"""`x-should-retry` on the edge's error answers, as the openai and anthropic SDKs read it (they
retry 408, 409, 429 and 5xx twice unless told otherwise): counted in the SDKs' attempts at the
router, which answers as the real one does for each failure (`error_details`)."""

from __future__ import annotations

import asyncio
from typing import Any

import anthropic
import grpc
import openai
import pytest
from openai.types.chat import ChatCompletionMessageParam

from clients import ErrorDetails
from http_edge._should_retry import should_retry
from router_service.errors import (
    AllCandidatesFailedError,
    BudgetExhaustedError,
    ClientKeyLimitError,
    ClientRateLimitedError,
    DeadlineExceededError,
    NoCapacityError,
    NoUsableKeyError,
    ResponseExistsError,
    StoreUnavailableError,
    UpstreamFailure,
)
from router_service.outcomes import Outcome, Scope
from router_service.server._errors import error_details
from tests.http_edge.harness import EdgeFactory, StubRouter, abort_with

pytestmark = pytest.mark.timeout(30)
HI: list[ChatCompletionMessageParam] = [{"role": "user", "content": "hi"}]


# OpenAI's lock timeout: a 409 its SDK retries of its own accord.
LOCKED = {"message": "Another request holds this resource", "type": "invalid_request_error"}


def failed(outcome: Outcome, **fields: Any) -> AllCandidatesFailedError:
    return AllCandidatesFailedError(UpstreamFailure(outcome, "it failed", **fields), "p")


# What the router says, the header, and the openai SDK's attempts (with max_retries=2).
CASES: dict[str, tuple[Exception, str | None, int]] = {
    "router's deadline": (DeadlineExceededError("late"), "false", 1),
    "every candidate failed": (failed(Outcome.UPSTREAM_ERROR, upstream_status=500), "false", 1),
    "every key disabled": (NoUsableKeyError("none usable"), "false", 1),
    "store unreachable": (StoreUnavailableError("down"), "true", 3),
    "rpm, a short wait": (ClientRateLimitedError("slow", retry_after_s=0.001), "true", 3),
    "rpm, a long wait": (ClientRateLimitedError("slow", retry_after_s=90), "false", 1),
    "keys busy, a short wait": (NoCapacityError("busy", retry_after_s=0.001), "true", 3),
    "upstream 429s": (failed(Outcome.RATE_LIMITED, retry_after_s=0.001), "true", 3),
    "token budget": (BudgetExhaustedError("spent", retry_after_s=30), "false", 1),
    "upstream quota": (failed(Outcome.QUOTA_EXHAUSTED, retry_after_s=0.001), "false", 1),
    # OpenAI's 429 for a request larger than each key's whole tpm budget: no wait makes it fit.
    "over every key's tpm": (failed(Outcome.RATE_LIMITED, scope=Scope.NONE), "false", 1),
    "issued keys at max": (ClientKeyLimitError("max"), "false", 1),
    "stored id taken": (ResponseExistsError("resp_1", param="response.id"), "false", 1),
    "upstream 409": (
        failed(Outcome.BAD_REQUEST, upstream_status=409, upstream_error=LOCKED),
        "true",
        3,
    ),
}


@pytest.mark.parametrize(("error", "header", "attempts"), CASES.values(), ids=CASES.keys())
async def test_the_openai_sdk_retries_where_it_helps_alone(
    stub: StubRouter, start_edge: EdgeFactory, error: Exception, header: str | None, attempts: int
) -> None:
    async def refuse(request: Any, context: Any) -> Any:
        await abort_with(context, error_details(error))

    stub.on_chat = refuse
    edge = await start_edge()
    async with openai.AsyncOpenAI(
        base_url=f"{edge.base_url}/v1", api_key="sk-x", max_retries=2, timeout=10
    ) as sdk:
        with pytest.raises(openai.APIStatusError) as caught:
            await sdk.chat.completions.create(model="m", messages=HI)
    assert caught.value.response.headers.get("x-should-retry") == header
    assert len(stub.calls) == attempts


async def test_the_edges_own_timeout_is_not_retried(
    stub: StubRouter, start_edge: EdgeFactory
) -> None:
    reached = asyncio.Event()  # the router's handler ran (maybe after the 504, when loaded)

    async def silent(request: Any, context: Any) -> Any:
        reached.set()
        await asyncio.Event().wait()

    stub.on_chat = silent
    edge = await start_edge(request_timeout_s=0.3)
    async with openai.AsyncOpenAI(
        base_url=f"{edge.base_url}/v1", api_key="sk-x", max_retries=2, timeout=10
    ) as sdk:
        with pytest.raises(openai.InternalServerError) as caught:
            await sdk.chat.completions.create(model="m", messages=HI)
    assert caught.value.status_code == 504
    assert caught.value.response.headers["x-should-retry"] == "false"
    await asyncio.wait_for(reached.wait(), 15)
    assert len(stub.calls) == 1


async def test_the_anthropic_sdk_does_not_wait_a_day_for_a_budget(
    stub: StubRouter, start_edge: EdgeFactory
) -> None:
    """Anthropic's SDK waits whatever `Retry-After` says: a day's budget would hold it a day."""

    async def refuse(request: Any, context: Any) -> Any:
        await abort_with(context, error_details(BudgetExhaustedError("spent", retry_after_s=86400)))

    stub.on_chat = refuse
    edge = await start_edge()
    async with anthropic.AsyncAnthropic(base_url=edge.base_url, api_key="sk-x", timeout=10) as sdk:
        with pytest.raises(anthropic.RateLimitError) as caught:
            await sdk.messages.create(model="m", max_tokens=16, messages=[HI[0]])  # type: ignore[list-item]
    assert caught.value.response.headers["x-should-retry"] == "false"
    assert len(stub.calls) == 1


def test_an_unreachable_router_is_worth_a_retry() -> None:
    gone = ErrorDetails(grpc.StatusCode.UNAVAILABLE, "connect failed", "UNAVAILABLE", bare=True)
    assert should_retry(gone) == "true"
    internal = error_details(RuntimeError("a bug"))
    assert should_retry(internal) is None  # the SDK's own rule
