"""A router with long-running work open, for the ListJobs tests (gRPC, CLI, edge): client `app`
holds a Realtime session, a batch whose line the upstream holds, and a background response held
upstream; `ops` administers. Everything ends on the way out."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any

import orjson

from clients import RouterClient, RouterRealtime
from clients.switchboard.v1 import batches_pb2 as bpb
from clients.switchboard.v1 import router_service_pb2 as pb
from router_service.fake_upstream import FakeUpstream
from tests.conftest import RouterHandle
from tests.e2e.test_batches_sdk import chat_line, jsonl
from tests.router_service.auth.helpers import bearer, chat, client
from tests.router_service.server.test_realtime_rpc import ASK, realtime_config

__all__ = ["APP", "OPS", "SECRETS", "Busy", "busy", "jobs_config"]

OPS = "sk-ops-list-jobs-0123"
APP = "sk-app-list-jobs-0123"
# Every secret these routers know: none may appear in what an operator is shown.
SECRETS = (OPS, APP, "sk-alpha-1", "sk-alpha-2", "sk-beta-1", "sk-beta-2")


def jobs_config(fake: FakeUpstream) -> dict[str, Any]:
    callers = [client("ops", OPS, scopes=["admin"]), client("app", APP)]
    return realtime_config(fake, auth={"clients": callers})


@dataclass(frozen=True)
class Busy:
    batch_id: str
    response_id: str
    session: RouterRealtime


@asynccontextmanager
async def busy(router: RouterHandle, fake: FakeUpstream) -> AsyncIterator[Busy]:
    """`router` running, for `app`: a Realtime session (one event sent, two relayed back), a
    batch and a background response each waiting for the upstream's answer."""
    async with RouterClient(router.server.address) as calls:
        session = calls.realtime(timeout=30, metadata=bearer(APP))
        async with session:
            await session.send(pb.RealtimeRequest(open=pb.RealtimeOpen(model="voice")))
            await anext(session)  # the route
            await anext(session)  # session.created
            await session.send(ASK)
            await anext(session)  # conversation.item.added
            fake.state.hold()
            try:
                batch_id = await _batch(router)
                await fake.state.wait_for(lambda: fake.state.held == 1, what="the batch's line")
                response_id = await _background(router)
                await fake.state.wait_for(lambda: fake.state.held == 2, what="the response")
                yield Busy(batch_id, response_id, session)
            finally:
                fake.state.release()
                await session.send(pb.RealtimeRequest(close=pb.RealtimeClose(code=1000)))
                [_ async for _ in session]
                assert await router.server.batch_jobs.settle(10) == 0
                assert await router.server.jobs.settle(10) == 0


async def _batch(router: RouterHandle) -> str:
    content = jsonl(chat_line("one"))
    upload = bpb.UploadFileRequest(filename="in.jsonl", purpose="batch", content=content)
    kept = await router.stub.UploadFile(upload, metadata=bearer(APP))
    create = bpb.CreateBatchRequest(
        input_file_id=kept.file.id, endpoint="/v1/chat/completions", completion_window="24h"
    )
    made = await router.stub.CreateBatch(create, metadata=bearer(APP))
    return str(made.batch.id)


async def _background(router: RouterHandle) -> str:
    # As the edge makes it (`envelope`): with the model asked for.
    queued = {"id": "resp_jobs1", "object": "response", "created_at": int(time.time())}
    queued["model"] = "chain"
    start = pb.StartBackgroundResponseRequest(
        chat=chat(text="later"), response_json=orjson.dumps(queued).decode()
    )
    await router.stub.StartBackgroundResponse(start, metadata=bearer(APP))
    return "resp_jobs1"
