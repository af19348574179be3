"""A batch's lines name their sessions as the calls they stand for: an embeddings line's `user`
is the session a chat of that `user` is (`sessions.named_session_id`)."""

from __future__ import annotations

import orjson

from clients.switchboard.v1 import batches_pb2 as bpb
from clients.switchboard.v1 import router_service_pb2 as pb
from router_service.fake_upstream import FakeUpstream, Scenario
from tests.conftest import StartRouter
from tests.e2e.test_batches_sdk import jsonl
from tests.router_service.server.test_routing import ask, two_providers


async def test_an_embeddings_line_of_a_chatting_user_is_that_users_session(
    fake: FakeUpstream, start_router: StartRouter
) -> None:
    config = two_providers(fake.base_url)
    config["providers"]["alpha"]["thread_protection"] = "provider-ban"  # max_sessions: 1
    config["models"]["alpha-only"] = {"deployments": [{"provider": "alpha", "model": "model-a"}]}
    config["models"]["embedder"] = {"deployments": [{"provider": "alpha", "model": "embed-a"}]}
    router = await start_router(config)
    chat = ask(model="alpha-only")
    chat.params.user = "alice"
    fake.state.set_scenario(Scenario(held_after_chunks=2), model="model-a")
    stream = router.stub.ChatStream(pb.ChatStreamRequest(params=chat.params, routing=chat.routing))
    async for event in stream:
        if event.HasField("chunk"):
            break  # alice's conversation holds alpha's one place

    body = {"model": "embedder", "input": "hello", "user": "alice"}
    line = {"custom_id": "e", "method": "POST", "url": "/v1/embeddings", "body": body}
    upload = bpb.UploadFileRequest(filename="in.jsonl", purpose="batch", content=jsonl(line))
    kept = await router.stub.UploadFile(upload)
    create = bpb.CreateBatchRequest(
        input_file_id=kept.file.id, endpoint="/v1/embeddings", completion_window="24h"
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
