"""A caller in another language: a Node client (tests/polyglot/node/client.mjs, @grpc/grpc-js and
@grpc/proto-loader) loads protos/switchboard/v1/ as they are and calls a real router on loopback
over a real channel: Chat, ChatStream, the errors with their google.rpc details, reflection and
the health check, as the README's "From another language" shows.

The npm packages (package.json, pinned by package-lock.json) are installed once into
`.tools/polyglot-node/` (git-ignored, like buf). Without node/npm, or when the install fails (no
registry), the test skips, except under CI=true where that fails."""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest

from clients.switchboard.v1 import router_service_pb2 as pb
from router_service.fake_upstream import FakeUpstream
from tests.conftest import RouterHandle, StartRouter
from tests.router_service.auth.helpers import bearer, client, guarded_config

ROOT = Path(__file__).resolve().parents[2]
SOURCE = Path(__file__).resolve().parent / "node"
INSTALL = ROOT / ".tools" / "polyglot-node"
MANIFESTS = ("package.json", "package-lock.json")
KEY = "sk-node-caller-0123456789"
LIMITED_KEY = "sk-node-limited-0123456789"


def _unavailable(reason: str) -> None:
    if os.environ.get("CI") == "true":
        pytest.fail(f"{reason} (CI runs the Node client test)")
    pytest.skip(reason)


def _installed() -> bool:
    """The cache holds exactly the packages the manifests pin: they are copied in only after a
    successful install, so a failed or interrupted one is retried next time."""
    return (INSTALL / "node_modules").is_dir() and all(
        (INSTALL / name).is_file() and (INSTALL / name).read_bytes() == (SOURCE / name).read_bytes()
        for name in MANIFESTS
    )


def _install(npm: str) -> None:
    scratch = INSTALL.with_name(INSTALL.name + ".partial")
    shutil.rmtree(scratch, ignore_errors=True)
    scratch.mkdir(parents=True)
    try:
        for name in MANIFESTS:
            shutil.copyfile(SOURCE / name, scratch / name)
        # One retry, not npm's default of minutes of them: without a registry the test says so.
        npm_ci = [npm, "ci", "--ignore-scripts", "--no-audit", "--no-fund", "--prefer-offline"]
        npm_ci += ["--fetch-retries=1", "--prefix", str(scratch)]
        try:
            done = subprocess.run(npm_ci, capture_output=True, text=True, timeout=240)
        except subprocess.TimeoutExpired:
            _unavailable("npm ci of tests/polyglot/node timed out (no npm registry?)")
        if done.returncode != 0:
            _unavailable(f"npm ci of tests/polyglot/node failed: {done.stderr.strip()[-800:]}")
        shutil.rmtree(INSTALL, ignore_errors=True)
        scratch.rename(INSTALL)
    finally:
        shutil.rmtree(scratch, ignore_errors=True)


@pytest.fixture(scope="module")
def node_client() -> list[str]:
    """The command that runs client.mjs beside its installed node_modules (Node resolves an ES
    module's imports from the script's own folder, so the script is copied in each run)."""
    node, npm = shutil.which("node"), shutil.which("npm")
    if node is None or npm is None:
        _unavailable("node and npm are not installed (apt-get install -y nodejs npm)")
    assert node is not None and npm is not None
    if not _installed():
        _install(npm)
    shutil.copyfile(SOURCE / "client.mjs", INSTALL / "client.mjs")
    return [node, str(INSTALL / "client.mjs")]


async def run_node(command: list[str], args: dict[str, Any]) -> dict[str, Any]:
    process = await asyncio.create_subprocess_exec(
        *command,
        json.dumps(args),
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    try:
        out, err = await asyncio.wait_for(process.communicate(), timeout=30)
    finally:
        if process.returncode is None:
            process.kill()
            await process.wait()
    assert process.returncode == 0, err.decode(errors="replace")[-3000:]
    result: dict[str, Any] = json.loads(out)
    return result


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
    assert violation["field"] == "messages[0].role"
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
