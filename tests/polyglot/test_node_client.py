"""A caller in another language: a Node client (tests/polyglot/node/client.mjs, @grpc/grpc-js and
@grpc/proto-loader) loads protos/switchboard/v1/ as they are and calls a real router on loopback
over a real channel: Chat, ChatStream, the errors with their google.rpc details, reflection and
the health check, as the README's "From another language" shows.

The npm packages (package.json, pinned by package-lock.json) are installed once into
`.tools/polyglot-node/` (tests/polyglot/node_harness.py): without node/npm or a registry the test
skips, except under CI=true where that fails."""

from __future__ import annotations

from pathlib import Path

import pytest

from clients.switchboard.v1 import router_service_pb2 as pb
from router_service.fake_upstream import FakeUpstream
from tests.conftest import RouterHandle, StartRouter
from tests.polyglot.node_harness import ROOT, node_command, run_node
from tests.router_service.auth.helpers import bearer, client, guarded_config

SOURCE = Path(__file__).resolve().parent / "node"
KEY = "sk-node-caller-0123456789"
LIMITED_KEY = "sk-node-limited-0123456789"


@pytest.fixture(scope="module")
def node_client() -> list[str]:
    return node_command(SOURCE, "client.mjs", "polyglot-node")


@pytest.fixture
async def guarded(fake: FakeUpstream, start_router: StartRouter) -> RouterHandle:
    return await start_router(
        guarded_config(fake.base_url, client("node", KEY), client("limited", LIMITED_KEY, rpm=1))
    )


@pytest.mark.timeout(300)  # the first run installs the npm packages
async def test_a_node_client_calls_the_router_with_the_protos(
    node_client: list[str], guarded: RouterHandle
) -> None:
    args = {"target": guarded.server.address, "protos": str(ROOT / "protos"), "model": "chain"}
    seen = await run_node(node_client, {**args, "key": KEY, "limited_key": LIMITED_KEY})

    assert seen["chat"] == {
        "text": "Echo: hello from node",
        "finish_reason": "FINISH_REASON_STOP",
        "deployment": "alpha/model-a",
        "attempts": ["OUTCOME_OK"],
    }
    kinds = seen["stream"]
    assert kinds[0] == "route" and kinds[-1] == "summary", kinds
    assert len(kinds) > 2 and set(kinds[1:-1]) == {"chunk"}, kinds

    errors = seen["errors"]
    assert errors["unauthenticated"]["code"] == "UNAUTHENTICATED"
    assert errors["unauthenticated"]["details"]["ErrorInfo"] == {
        "reason": "UNAUTHENTICATED",
        "domain": "switchboard",
        "metadata": {"openai_type": "authentication_error", "openai_code": "missing_api_key"},
    }
    not_found = errors["not_found"]
    assert not_found["code"] == "NOT_FOUND"
    assert not_found["details"]["ErrorInfo"]["reason"] == "MODEL_NOT_FOUND"
    assert not_found["details"]["ErrorInfo"]["metadata"]["openai_param"] == "model"
    role_unset = errors["role_unset"]
    assert role_unset["code"] == "INVALID_ARGUMENT"
    assert role_unset["details"]["ErrorInfo"]["metadata"]["openai_param"] == "messages[0].role"
    [violation] = role_unset["details"]["BadRequest"]["field_violations"]
    assert violation["field"] == "params.messages[0].role"  # a path in the ChatRequest sent
    tool_choice = errors["tool_choice_unset"]
    assert tool_choice["code"] == "INVALID_ARGUMENT"
    assert tool_choice["details"]["ErrorInfo"]["metadata"]["openai_param"] == "tool_choice"
    limited = errors["rate_limited"]
    assert limited["code"] == "RESOURCE_EXHAUSTED"
    assert limited["details"]["ErrorInfo"]["reason"] == "RATE_LIMITED"
    assert 0 < limited["details"]["RetryInfo"]["retry_delay"]["seconds"] <= 120

    listed = await guarded.stub.ListModels(pb.ListModelsRequest(), metadata=bearer(KEY))
    assert seen["reflection"]["models"] == [
        {"id": m.id, "kind": pb.ModelKind.Name(m.kind)} for m in listed.models
    ]
    services = set(seen["reflection"]["services"])
    assert services >= {
        "switchboard.v1.RouterService",
        "switchboard.v1.AdminService",
        "grpc.health.v1.Health",
        "grpc.reflection.v1.ServerReflection",  # the version @grpc/reflection's proto speaks
        "grpc.reflection.v1alpha.ServerReflection",
    }
    described = seen["reflection"]["described"]
    assert set(described) == services
    assert described["switchboard.v1.RouterService"] == "switchboard/v1/router_service.proto"
    assert all(name.endswith(".proto") for name in described.values()), described
    assert seen["health"] == {"server": "SERVING", "router": "SERVING"}
