"""A background response whose chat call is refused for the request itself once its job runs
(`refused_as_invalid`: here stops past OpenAI's cap, which every deployment passes over before a
key is leased) reached no upstream: its start's estimate goes back from the client's tpm and
budgets, and its rpm place too (a client with rpm only as well), as a foreground call's
(`give_back_if_refused`), streamed or not, on memory and on Redis. Before, each such job kept
its whole estimate charged (the job settles only an answer's usage), and a client's few bad
jobs got its next good calls 429."""

from __future__ import annotations

import orjson
import pytest

from clients.switchboard.v1 import router_service_pb2 as pb
from router_service.clock import ManualClock
from router_service.fake_upstream import FakeUpstream
from tests.conftest import StartRouter
from tests.replicas.redis_fixtures import redis_prefix, redis_url, state_section
from tests.router_service.auth.helpers import bearer, chat, client, guarded_config
from tests.router_service.auth.test_unknown_model_gives_back import LIMITS, RPM, _still_free

__all__ = ["redis_prefix", "redis_url", "state_section"]  # fixtures, for the Redis-backed cases

KEY = "sk-alice-unknown-0123"  # as `_still_free` calls with


def _inexpressible(response_id: str, *, stream: bool) -> pb.StartBackgroundResponseRequest:
    """A start whose estimate is over half the client's tpm and day, its stops past the cap."""
    request = chat(max_tokens=500)
    request.params.stop_list.values.extend(["a", "b", "c", "d", "e" * 300])
    queued = {"id": response_id, "object": "response", "created_at": 1, "output": []}
    return pb.StartBackgroundResponseRequest(
        chat=request, response_json=orjson.dumps(queued).decode(), stream=stream
    )


@pytest.mark.parametrize("limits", [LIMITS, {"rpm": RPM}], ids=["tokens", "rpm-only"])
@pytest.mark.parametrize("stream", [False, True])
async def test_a_job_refused_as_invalid_gives_its_start_back(
    fake: FakeUpstream,
    start_router: StartRouter,
    state_section: dict[str, str],
    stream: bool,
    limits: dict[str, int],
) -> None:
    config = guarded_config(fake.base_url, client("alice", KEY, **limits), state=state_section)
    router = await start_router(config, clock=ManualClock())  # one minute, one day all along
    for number in range(3):
        response_id = f"resp_x{number}"
        start = _inexpressible(response_id, stream=stream)
        await router.stub.StartBackgroundResponse(start, metadata=bearer(KEY))  # not 429
        assert await router.server.jobs.settle(5) == 0
        load = pb.LoadResponsesRequest(ids=[response_id])
        loaded = await router.stub.LoadResponses(load, metadata=bearer(KEY))
        failed = orjson.loads(loaded.responses[0].response_json)
        assert failed["status"] == "failed", failed
    assert not fake.state.calls()  # none reached an upstream
    await _still_free(router)
