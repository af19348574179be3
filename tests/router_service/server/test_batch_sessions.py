"""A batch's lines name their sessions as the calls they stand for: an embeddings line's `user`
is the session a chat of that `user` is (`sessions.named_session_id`)."""

from __future__ import annotations

from typing import Any

import orjson

from clients.switchboard.v1 import batches_pb2 as bpb
from router_service.fake_upstream import FakeUpstream
from tests.conftest import RouterHandle, StartRouter
from tests.e2e.test_batches_sdk import jsonl
from tests.router_service.server.test_routing import ask, holding_alpha, one_place_at_alpha


async def test_an_embeddings_line_of_a_chatting_user_is_that_users_session(
    fake: FakeUpstream, start_router: StartRouter
) -> None:
    router = await start_router(one_place_at_alpha(fake.base_url))
    chat = ask(model="alpha-only")
    chat.params.user = "alice"
    stream, _ = await holding_alpha(router, fake, chat)  # alice's conversation: alpha's place

    body = {"model": "embedder", "input": "hello", "user": "alice"}
    await one_line_answered(router, stream, "/v1/embeddings", body)


async def test_a_chat_line_whose_user_a_rule_redacts_is_that_users_session(
    fake: FakeUpstream, start_router: StartRouter
) -> None:
    """A rule rewrites the line's `user` (an e-mail): the line's conversation is still the one
    that `user` as sent names (`sessions.pin_session`), as a Chat call's is, not one
    every user it redacts alike shares."""
    config = one_place_at_alpha(fake.base_url)
    config["models"]["alpha-c"] = {"deployments": [{"provider": "alpha", "model": "model-c"}]}
    config["guardrails"] = [{"name": "pii", "detect": ["email"], "action": "redact"}]
    router = await start_router(config)
    chat = ask(model="alpha-only")
    chat.params.user = "jane@example.com"
    stream, _ = await holding_alpha(router, fake, chat)  # jane's conversation: alpha's place

    messages = [{"role": "user", "content": "hello"}]
    body = {"model": "alpha-c", "messages": messages, "user": "jane@example.com"}
    await one_line_answered(router, stream, "/v1/chat/completions", body)
    assert fake.state.calls()[-1].body["user"] == "[REDACTED:email]"  # redacted all the same


async def one_line_answered(
    router: RouterHandle, stream: Any, endpoint: str, body: dict[str, Any]
) -> None:
    """A batch of one line of `body` to `endpoint`, run while `stream` holds alpha's place
    (cancelled once the batch settled): its line answered, else its error raised."""
    line = {"custom_id": "line", "method": "POST", "url": endpoint, "body": body}
    upload = bpb.UploadFileRequest(filename="in.jsonl", purpose="batch", content=jsonl(line))
    kept = await router.stub.UploadFile(upload)
    create = bpb.CreateBatchRequest(
        input_file_id=kept.file.id, endpoint=endpoint, completion_window="24h"
    )
    batch = await router.stub.CreateBatch(create)
    assert await router.server.batch_jobs.settle(10) == 0
    stream.cancel()
    done = await router.stub.GetBatch(bpb.GetBatchRequest(id=batch.batch.id))
    if done.batch.error_file_id:
        errors = bpb.GetFileContentRequest(id=done.batch.error_file_id)
        content = (await router.stub.GetFileContent(errors)).content
        raise AssertionError(orjson.loads(content.splitlines()[0])["response"])
    assert done.batch.request_counts.completed == 1
