"""A background response deleted while its job writes its answer stays deleted: the job's last
write must not bring it back (the delete came after the job's end mark `done`)."""

from __future__ import annotations

import asyncio

import grpc
import pytest

from clients.switchboard.v1 import router_service_pb2 as pb
from router_service.fake_upstream import FakeUpstream
from tests.conftest import StartRouter
from tests.router_service.auth.helpers import bearer
from tests.router_service.responses.test_background_rpcs import A, start, start_request


async def test_a_response_deleted_while_its_answer_is_written_stays_deleted(
    fake: FakeUpstream, start_router: StartRouter, monkeypatch: pytest.MonkeyPatch
) -> None:
    router = await start(fake, start_router)
    runtime = router.runtime
    records, responses = runtime.background, runtime.responses
    writing, release, gone = asyncio.Event(), asyncio.Event(), asyncio.Event()
    write, delete = records.write, responses.delete

    async def held_write(client: str, document: pb.StoredResponse) -> bool:
        if document.background_status == "completed":  # after its end mark `done`
            writing.set()
            await release.wait()
        return await write(client, document)

    async def noted_delete(client: str, response_id: str) -> None:
        await delete(client, response_id)
        gone.set()

    monkeypatch.setattr(records, "write", held_write)
    monkeypatch.setattr(responses, "delete", noted_delete)
    await router.stub.StartBackgroundResponse(start_request("resp_d1"), metadata=bearer(A))
    await writing.wait()
    deleting = asyncio.ensure_future(
        router.stub.DeleteResponse(pb.DeleteResponseRequest(id="resp_d1"), metadata=bearer(A))
    )
    await gone.wait()
    release.set()
    assert (await deleting).deleted
    assert await router.server.jobs.settle(5) == 0
    load = pb.LoadResponsesRequest(ids=["resp_d1"])
    with pytest.raises(grpc.aio.AioRpcError) as failed:
        await router.stub.LoadResponses(load, metadata=bearer(A))
    assert failed.value.code() == grpc.StatusCode.NOT_FOUND
