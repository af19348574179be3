"""A service's own code that uses `clients` is type-checked against it: the packages are marked
typed (PEP 561 `py.typed`), so mypy reads them where they are installed, outside this checkout.
Without the marker mypy skipped them (`import-untyped`): every name from them was `Any`, and a
`--strict` user had an error on each import instead. A `-bin` metadata key's value is bytes, as
the README says: the calls' `metadata` type took only text, refusing it."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]

# A user's script, as the README's examples use the clients. Each line marked `# wrong` is a
# mistake mypy must catch (so the types are read, not `Any`); nothing else may be flagged.
USER_CODE = """\
from __future__ import annotations

from collections.abc import Iterator

from clients import ObservedCall, RouterClient, RouterError, SyncRouterClient
from clients.switchboard.v1 import chat_pb2, router_service_pb2 as pb
from router_service.telemetry import client_observer


async def ask(target: str) -> str:
    params = chat_pb2.ChatParams(model="demo-chat")
    async with RouterClient(target, api_key="sk", observer=client_observer()) as router:
        response = await router.chat(pb.ChatRequest(params=params), timeout=30)
        length: int = response.completion.choices[0].message.text  # wrong
        async with router.chat_stream(pb.ChatStreamRequest(params=params)) as stream:
            async for event in stream:
                unary: pb.ChatResponse = event  # wrong
        await router.chat(pb.EmbedRequest())  # wrong
        # A `-bin` key's value is bytes (README): pairs, or a dict.
        await router.list_models(metadata=[("x-trace", "t"), ("x-span-bin", b"\x00\x01")])
        try:
            await router.list_models(timeout=None, metadata={"x-span-bin": b"\x01"})
        except RouterError as err:
            status: str = err.http_status  # wrong
            return err.reason
        return response.completion.model


class Seen:
    def __init__(self, metadata: tuple[tuple[str, str | bytes], ...]) -> None:
        self.metadata = metadata

    def attach(self, call: object) -> None: ...

    def fail(self, exc: BaseException) -> None: ...


class Recorder:  # an observer sees the `-bin` values as bytes (README)
    def start(self, method: str, metadata: tuple[tuple[str, str | bytes], ...]) -> ObservedCall:
        for key, value in metadata:
            text: str = value  # wrong
        return Seen(metadata)


class TextOnly:  # one that takes only text would be handed bytes
    def start(self, method: str, metadata: tuple[tuple[str, str], ...]) -> Seen:
        return Seen(metadata)


async def observed(target: str) -> None:
    async with RouterClient(target, observer=Recorder()) as router:
        await router.list_models(metadata={"x-span-bin": b"\x03"})
    RouterClient(target, observer=TextOnly())  # wrong


def speak(target: str, requests: Iterator[pb.RealtimeRequest]) -> list[str]:
    with SyncRouterClient(target) as router:
        with router.chat_stream(pb.ChatStreamRequest()) as stream:
            kinds = [str(event.WhichOneof("event")) for event in stream]
        router.list_models(metadata=(("x-span-bin", b"\x02"),))
        for message in router.realtime(requests, timeout=60):
            chunk: pb.ChatStreamResponse = message  # wrong
        router.close(grace=1)  # wrong
        return kinds
"""


@pytest.mark.timeout(300)
def test_mypy_checks_a_users_code_against_the_installed_clients(tmp_path: Path) -> None:
    user = tmp_path / "service.py"
    user.write_text(USER_CODE)
    config = tmp_path / "mypy.ini"  # the user's own settings, not this checkout's
    config.write_text("[mypy]\nstrict = True\n")
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "mypy",
            "--config-file",
            str(config),
            "--cache-dir",
            str(tmp_path / "cache"),
            "--no-error-summary",
            str(user),
        ],
        cwd=tmp_path,  # outside the checkout: the packages are found where Python finds them
        env={**os.environ, "PYTHONPATH": str(ROOT)},
        capture_output=True,
        text=True,
        timeout=300,
    )
    errors = [line for line in done.stdout.splitlines() if ": error:" in line]
    flagged = sorted(int(line.split(":")[1]) for line in errors)
    wrong = [n for n, line in enumerate(USER_CODE.splitlines(), 1) if line.endswith("# wrong")]
    assert flagged == wrong, done.stdout
