"""With the official `openai` SDK through the edge: a background response whose conversation is
deleted while its call runs is still retrieved `completed` with its answer (paid for), its
`conversation` null: it is in no conversation, which the caller's next turn in it tells
(404 `conversation_not_found`)."""

from __future__ import annotations

from collections.abc import AsyncIterator

import openai
import pytest

from router_service.fake_upstream import FakeUpstream
from tests.conftest import RouterHandle, StartRouter, base_config
from tests.e2e.background import settled
from tests.e2e.stream_harness import StartEdge

Stack = tuple[RouterHandle, openai.AsyncOpenAI]


@pytest.fixture
async def stack(
    fake: FakeUpstream, start_router: StartRouter, start_edge: StartEdge
) -> AsyncIterator[Stack]:
    router = await start_router(base_config(fake.base_url))
    edge = await start_edge(router)
    sdk = openai.AsyncOpenAI(
        base_url=f"{edge.base_url}/v1", api_key="sk-caller", max_retries=0, timeout=10
    )
    try:
        yield router, sdk
    finally:
        fake.state.release()
        await sdk.close()


async def test_a_conversation_deleted_during_the_call_leaves_the_answer_completed(
    stack: Stack, fake: FakeUpstream
) -> None:
    router, sdk = stack
    conversation = await sdk.conversations.create(items=[{"role": "user", "content": "I am Ann."}])
    fake.state.hold()
    started = await sdk.responses.create(
        model="chain", input="Who am I?", conversation=conversation.id, background=True
    )
    assert started.conversation is not None and started.conversation.id == conversation.id
    await fake.state.wait_for(lambda: fake.state.held == 1, what="the running call")
    await sdk.conversations.delete(conversation.id)
    fake.state.release()

    final = await settled(sdk, started.id, router.server)

    assert final.status == "completed" and final.error is None
    assert final.output_text  # the answer paid for
    assert final.conversation is None  # in no conversation
    with pytest.raises(openai.NotFoundError) as gone:
        await sdk.responses.create(model="chain", input="And now?", conversation=conversation.id)
    assert gone.value.code == "conversation_not_found"
