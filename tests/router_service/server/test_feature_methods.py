"""The methods whose feature servicer the first call builds (router_service/server/_features.py):
a feature that cannot be built is the error contract's INTERNAL, not gRPC's bare UNKNOWN."""

from __future__ import annotations

import grpc
import pytest

from clients import details_from_rpc_error
from clients.switchboard.v1 import batches_pb2 as bpb
from clients.switchboard.v1 import router_service_pb2 as pb
from router_service.server import _features
from tests.conftest import RouterHandle


async def test_a_feature_that_fails_to_load_is_an_internal_error(
    router: RouterHandle, monkeypatch: pytest.MonkeyPatch
) -> None:
    def broken(name: str) -> object:
        raise ImportError(f"cannot import {name} from /srv/router/site-packages")

    monkeypatch.setattr(_features, "import_module", broken)
    failed = []
    for call in (
        router.stub.ListFiles(bpb.ListFilesRequest(), timeout=10),
        _first(router.stub.ResumeResponse(pb.ResumeResponseRequest(), timeout=10)),
    ):
        with pytest.raises(grpc.aio.AioRpcError) as caught:
            await call
        failed.append(caught.value)
    monkeypatch.undo()
    listed = await router.stub.ListFiles(bpb.ListFilesRequest(), timeout=10)  # built now

    for error in failed:
        details = details_from_rpc_error(error)
        assert error.code() is grpc.StatusCode.INTERNAL
        assert (details.reason, details.message) == ("INTERNAL", "Internal router error.")
        assert "site-packages" not in (error.details() or "")
    assert list(listed.files) == []


async def _first(stream: grpc.aio.UnaryStreamCall) -> object:
    async for event in stream:
        return event
    return None
