"""What a started router leaves unloaded until a call needs it, in a fresh interpreter: the
modules kept out of an idle process's memory must not slip back in through an import at
start-up (benchmarks/README.md, "Where idle RSS goes")."""

from __future__ import annotations

import os
import subprocess
import sys

# A router on an OpenAI-kind provider, started (telemetry configured, as the CLI does) and
# stopped, then the modules it loaded; argv[1:]: the modules to look for.
_STARTED_ROUTER = """
import asyncio, sys
from router_service.config import SwitchboardConfig
from router_service.runtime import Runtime
from router_service.server import RouterServer
from router_service.telemetry import configure_telemetry

async def main() -> None:
    provider = {"kind": "openai", "base_url": "http://127.0.0.1:9", "keys": ["sk-x"]}
    config = SwitchboardConfig.model_validate({
        "providers": {"p": provider},
        "models": {"m": {"deployments": [{"provider": "p", "model": "m"}]}},
        "auth": {"open": True},
        "server": {"host": "127.0.0.1", "port": 0},
    })
    configure_telemetry("switchboard-router", config)
    async with RouterServer(await Runtime.create(config)):
        pass
    print(*[name for name in sys.argv[1:] if name in sys.modules])

asyncio.run(main())
"""


def loaded_by_a_started_router(*names: str) -> list[str]:
    # Telemetry as by default: no OTEL_* variable asks for traces or OTLP metrics.
    env = {name: value for name, value in os.environ.items() if not name.startswith("OTEL_")}
    done = subprocess.run(
        [sys.executable, "-c", _STARTED_ROUTER, *names],
        capture_output=True,
        text=True,
        timeout=60,
        env=env,
    )
    assert done.returncode == 0, done.stderr
    return done.stdout.split()


def test_reflection_waits_for_its_first_call() -> None:
    # grpcio-reflection and protobuf's descriptor_pb2: ~0.8 MiB for a tool's occasional call
    # (test_reflection.py: both versions still answer).
    unwanted = ("grpc_reflection.v1alpha.reflection", "google.protobuf.descriptor_pb2")
    assert loaded_by_a_started_router(*unwanted) == []


def test_the_router_leaves_the_client_library_unloaded() -> None:
    # It takes the error contract and the codec from `clients`, never the client itself
    # (clients/_lazy.py), nor the generated stubs (its services are built from their
    # descriptors: server/_generic.py).
    unwanted: tuple[str, ...] = ("clients._client", "clients._sync_client", "clients._stream")
    unwanted += ("clients._sync_stream",)
    # Nor the clients' shared base (channels, calls, argument checks): the config's edge section
    # takes the ready wait's default from the contract's limits (clients/_limits.py).
    unwanted += ("clients._base", "clients._arguments")
    unwanted += tuple(f"clients.switchboard.v1.{s}_service_pb2_grpc" for s in ("router", "admin"))
    assert loaded_by_a_started_router(*unwanted) == []


def test_a_router_that_traces_nothing_loads_no_tracer() -> None:
    unwanted = ("opentelemetry.sdk.trace", "router_service.telemetry._lean_trace")
    assert loaded_by_a_started_router(*unwanted) == []


# A router on the fake upstream that answered a chat call and a stream through a real channel,
# then the modules it loaded (before its stop); argv[1:]: the modules to look for.
_CHATTED_ROUTER = """
import asyncio, sys
import grpc
from clients.switchboard.v1 import chat_pb2, router_service_pb2 as pb, router_service_pb2_grpc
from router_service.config import SwitchboardConfig
from router_service.fake_upstream import FakeUpstream
from router_service.runtime import Runtime
from router_service.server import RouterServer

async def main() -> None:
    async with FakeUpstream() as fake:
        provider = {"kind": "openai", "base_url": fake.base_url, "keys": ["sk-x"]}
        config = SwitchboardConfig.model_validate({
            "providers": {"p": provider},
            "models": {"m": {"deployments": [{"provider": "p", "model": "m"}]}},
            "auth": {"open": True},
            "server": {"host": "127.0.0.1", "port": 0},
        })
        async with RouterServer(await Runtime.create(config)) as router:
            async with grpc.aio.insecure_channel(router.address) as channel:
                stub = router_service_pb2_grpc.RouterServiceStub(channel)
                hello = chat_pb2.ChatMessage(role=chat_pb2.ROLE_USER, text="hi")
                params = chat_pb2.ChatParams(model="m", messages=[hello])
                answer = await stub.Chat(pb.ChatRequest(params=params))
                assert answer.completion.choices, answer
                events = [e async for e in stub.ChatStream(pb.ChatStreamRequest(params=params))]
                assert any(e.HasField("summary") for e in events), events
            print(*[name for name in sys.argv[1:] if name in sys.modules])

asyncio.run(main())
"""


def test_a_router_answering_chat_calls_leaves_the_other_apis_unloaded() -> None:
    # Responses, conversations, files and batches, Realtime: their servicers, long jobs and
    # records are built by their first call (server/_features.py, server/_long_jobs.py;
    # their own tests show each still answers).
    unwanted = (
        "router_service.responses",
        "router_service.batches",
        "router_service.server._responses_servicer",
        "router_service.server._background",
        "router_service.server._files_servicer",
        "router_service.server._batches",
        "router_service.server._realtime",
        "router_service.server._realtime_calls",
        "router_service.server._realtime_screening",
        "router_service.server._realtime_secrets",
        "router_service.server._call_watch",
        "router_service.server._list_jobs",
        # The codec's translation of those APIs: `clients.codec`'s names are imported on first
        # read (clients/_lazy.py), ~0.3 MiB of an idle router.
        "clients.codec._batches",
        "clients.codec._completions",
        "clients.codec._conversations",
        "clients.codec._responses_background",
        "clients.codec._responses_compact",
        "clients.codec._responses_stored",
        "clients.codec._responses_stream",
    )
    done = subprocess.run(
        [sys.executable, "-c", _CHATTED_ROUTER, *unwanted],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.split() == []


def test_a_router_without_guardrail_rules_leaves_the_detectors_unloaded() -> None:
    # The built-in detectors compile their regexes at import (+0.46 MiB of RSS after everything
    # else a router holds); with no `guardrails:` rule nothing screens, so neither they nor the
    # rules and the stream's text screen built on them are imported (`guardrails/__init__.py`'s
    # names as first read; test_guardrails*.py still screen with them).
    unwanted = tuple(
        f"router_service.guardrails.{name}"
        for name in ("_detectors", "_long_finds", "_putty_keys", "_card_runs", "_rules")
    )
    unwanted += ("router_service.guardrails._text_screen",)
    assert loaded_by_a_started_router(*unwanted) == []


def test_rules_that_screen_answers_load_the_text_screen_with_them() -> None:
    # The other side of the test above: where answers are screened, a stream's text screen is
    # loaded when the rules are, not by the first screened stream's first chunk.
    probe = (
        "import sys\n"
        "from router_service.config import GuardrailConfig\n"
        "from router_service.guardrails import Guardrails\n"
        "rule = {'name': 'mail', 'detect': ['email'], 'action': 'redact', 'apply_to': [SIDE]}\n"
        "Guardrails([GuardrailConfig.model_validate(rule)])\n"
        "print('router_service.guardrails._text_screen' in sys.modules)\n"
    )
    loaded = {}
    for side in ("request", "response"):
        done = subprocess.run(
            [sys.executable, "-c", probe.replace("SIDE", repr(side))],
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert done.returncode == 0, done.stderr
        loaded[side] = done.stdout.split()
    assert loaded == {"request": ["False"], "response": ["True"]}
