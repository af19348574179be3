"""AdminService's read-only methods (GetServerInfo, ListClients, GetRoutingStats) and
RouterService's ListModels behind the servicer's error boundary, as its other methods are: a
store that fails under them ends the call with its typed status (StoreUnavailableError:
UNAVAILABLE, STATE_UNAVAILABLE), an unexpected error with INTERNAL and nothing of its words
(they may hold a store URL's password)."""

from __future__ import annotations

import io
import logging
from collections.abc import Awaitable, Callable, Sequence
from typing import Any

import grpc
import pytest

from clients import details_from_rpc_error
from clients.switchboard.v1 import admin_service_pb2 as admin_pb
from clients.switchboard.v1 import router_service_pb2 as router_pb
from router_service.clock import ManualClock
from router_service.errors import StoreUnavailableError
from router_service.fake_upstream import FakeUpstream
from router_service.state import MemoryStateStore
from router_service.telemetry import JsonFormatter, Redactor
from tests.conftest import RouterHandle, StartRouter, base_config

pytestmark = pytest.mark.timeout(60)

SECRET = "redis://:hunter2-admin-errors@10.0.0.9:6379"
PROXY_PW = "pr0xy-Pass"


class FailingReads(MemoryStateStore):
    """A memory store whose reads the admin methods make raise `failure` once it is set."""

    failure: Exception | None = None

    def _fail(self) -> None:
        if self.failure is not None:
            raise self.failure

    def outage_counts(self) -> dict[str, int]:
        self._fail()
        return super().outage_counts()

    async def read_buckets(self, names: Sequence[str]) -> list[dict[int, dict[str, float]]]:
        self._fail()
        return await super().read_buckets(names)

    async def deadlines(self, names: Sequence[str]) -> list[float]:
        self._fail()
        return await super().deadlines(names)


Ask = Callable[[RouterHandle], Awaitable[Any]]
ASKS: dict[str, Ask] = {
    "GetServerInfo": lambda r: r.admin.GetServerInfo(admin_pb.GetServerInfoRequest(), timeout=10),
    "ListClients": lambda r: r.admin.ListClients(admin_pb.ListClientsRequest(), timeout=10),
    "GetRoutingStats": lambda r: r.admin.GetRoutingStats(
        admin_pb.GetRoutingStatsRequest(), timeout=10
    ),
}
FAILURES: dict[str, tuple[Callable[[], Exception], grpc.StatusCode, str]] = {
    "store-unavailable": (
        lambda: StoreUnavailableError("The state store cannot be reached."),
        grpc.StatusCode.UNAVAILABLE,
        "STATE_UNAVAILABLE",
    ),
    "unexpected": (lambda: RuntimeError(SECRET), grpc.StatusCode.INTERNAL, "INTERNAL"),
}


@pytest.mark.parametrize("failure", FAILURES)
@pytest.mark.parametrize("method", ASKS)
async def test_a_failing_read_ends_the_call_with_its_typed_status(
    fake: FakeUpstream, start_router: StartRouter, method: str, failure: str
) -> None:
    store = FailingReads(ManualClock())
    router = await start_router(base_config(fake.base_url), store=store)
    assert await ASKS[method](router)  # answers while the store does
    make, code, reason = FAILURES[failure]
    store.failure = make()

    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await ASKS[method](router)

    assert caught.value.code() is code
    assert details_from_rpc_error(caught.value).reason == reason
    assert "hunter2" not in str(caught.value.details())
    store.failure = None
    assert await ASKS[method](router)  # and answers again once it does


async def test_an_unexpected_error_in_list_models_is_internal_and_says_nothing_of_it(
    fake: FakeUpstream, start_router: StartRouter, monkeypatch: pytest.MonkeyPatch
) -> None:
    """ListModels ran outside the boundary: grpc's own UNKNOWN, `Unexpected <class
    'RuntimeError'>: ` and the error's words (a store URL's password) to the caller."""
    from router_service.server import _router_servicer

    router = await start_router(base_config(fake.base_url))

    async def ask() -> router_pb.ListModelsResponse:
        answer: router_pb.ListModelsResponse = await router.stub.ListModels(
            router_pb.ListModelsRequest(), timeout=10
        )
        return answer

    assert (await ask()).models

    def failing() -> None:
        raise RuntimeError(SECRET)

    monkeypatch.setattr(_router_servicer, "current_caller", failing)
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await ask()

    assert caught.value.code() is grpc.StatusCode.INTERNAL
    assert details_from_rpc_error(caught.value).reason == "INTERNAL"
    assert "hunter2" not in str(caught.value.details())


@pytest.mark.parametrize("method", ["GetServerInfo", "ListClients"])
async def test_the_log_line_of_an_unexpected_error_never_holds_a_urls_password(
    fake: FakeUpstream, start_router: StartRouter, method: str
) -> None:
    """`log.exception` writes the error's words and its traceback: a store URL's password the
    redactor was not told of (a URL another than the configured one: a replica's, a proxy's)
    went to the log as written; the log's formatter masks any URL's password."""
    store = FailingReads(ManualClock())
    router = await start_router(base_config(fake.base_url), store=store)
    written = io.StringIO()
    handler = logging.StreamHandler(written)
    handler.setFormatter(JsonFormatter(Redactor()))  # as configure_telemetry installs it
    logging.getLogger().addHandler(handler)
    store.failure = RuntimeError(f"Error connecting to {SECRET} (proxy socks5://ops:{PROXY_PW}@gw)")
    try:
        with pytest.raises(grpc.aio.AioRpcError):
            await ASKS[method](router)
    finally:
        logging.getLogger().removeHandler(handler)

    assert "internal error in a RouterService handler" in written.getvalue()
    assert "redis://:[redacted]@10.0.0.9:6379" in written.getvalue()  # where, not the password
    assert "hunter2" not in written.getvalue() and PROXY_PW not in written.getvalue()
