"""The README's code runs: every ```python block against a live demo stack (`switchboard dev`'s
config, examples/dev.yaml, on the fake upstream with examples/fake-scenarios.yaml), with only the
demo's addresses replaced by the stack's ports; its `python -c` one-liners; its curl example and
the banner `make run` prints, with the answers they claim."""

from __future__ import annotations

import ast
import asyncio
import contextlib
import inspect
import io
import json
import os
import re
import shlex
import socket
from collections.abc import Iterator

import httpx
import pytest

from clients import CHARS_PER_TOKEN
from router_service._serving import print_banner as _print_banner
from router_service.auth import hash_key
from router_service.clock import ManualClock
from router_service.config import (
    ClientKeyConfig,
    DeploymentRef,
    ModelGroupConfig,
    SwitchboardConfig,
    load_config,
)
from router_service.fake_upstream import FakeUpstream
from router_service.fake_upstream._scenario import load_rules_file
from tests.http_edge.live_stack import LiveStack
from tests.readme.markdown import ROOT, Block, blocks

EDGE, ROUTER = "http://127.0.0.1:8080", "127.0.0.1:50051"  # the demo's, as the README shows them
ROUTE_KEY = "sk-service-with-route-scope"  # the decision API block's key
ADMIN_KEY = "sk-admin"  # the server info block's
LIMITED_KEY = "sk-chat-app"  # the rate limit headers block's: a client with rpm and tpm
WEB_KEY = "sk-web-backend"  # the ephemeral client secrets block's
DECIDED = "alpha/large-fake"  # what `chat-large` routes to here: no other block uses it


def demo_config(fake: FakeUpstream) -> SwitchboardConfig:
    """`switchboard dev`'s config and fault rules, and what the decision API block names: a
    `chat-large` group and a caller whose key has the `route` scope only."""
    fake.state.load_rules(load_rules_file(ROOT / "examples/fake-scenarios.yaml"))
    config = load_config(ROOT / "examples/dev.yaml", env={"FAKE_UPSTREAM_URL": fake.base_url})
    provider, model = DECIDED.split("/")
    large = ModelGroupConfig(deployments=[DeploymentRef(provider=provider, model=model)])
    service = ClientKeyConfig.model_validate(
        {"name": "service", "key_sha256": hash_key(ROUTE_KEY), "scopes": ["route"]}
    )
    admin = ClientKeyConfig.model_validate(
        {"name": "admin", "key_sha256": hash_key(ADMIN_KEY), "scopes": ["admin"]}
    )
    limited = ClientKeyConfig.model_validate(
        {"name": "chat-app", "key_sha256": hash_key(LIMITED_KEY), "rpm": 600, "tpm": 200_000}
    )
    web = ClientKeyConfig.model_validate({"name": "web-backend", "key_sha256": hash_key(WEB_KEY)})
    return config.model_copy(
        update={
            "models": {**config.models, "chat-large": large},
            "auth": config.auth.model_copy(update={"clients": [service, admin, limited, web]}),
        }
    )


@pytest.fixture(scope="module")
def stack() -> Iterator[LiveStack]:
    with LiveStack(demo_config).running() as live:
        yield live


def run_python(source: str, name: str) -> str:
    """Run `source` as a script (top-level `await` allowed: it then runs in `asyncio.run`) in
    this thread, outside any event loop; what it printed."""
    code = compile(source, name, "exec", flags=ast.PyCF_ALLOW_TOP_LEVEL_AWAIT)
    printed = io.StringIO()
    with contextlib.redirect_stdout(printed):
        # eval, not exec: a source with top-level `await` compiles to a coroutine to run.
        result = eval(code, {"__name__": "__main__"})
        if inspect.iscoroutine(result):
            asyncio.run(result)
    return printed.getvalue()


def python_block(marker: str) -> Block:
    (block,) = [b for b in blocks("python") if marker in b.text]
    return block


INCLUDE_BLOCK = 'include=["message.output_text.logprobs"]'


def test_every_python_block_is_run_here() -> None:
    markers = (
        "openai.OpenAI(",
        "responses.stream(",
        "previous_response_id=",
        "responses.compact(",
        "conversations.create(",
        "background=True)",
        "starting_after=",
        INCLUDE_BLOCK,
        "batches.create(",
        "uploads.parts.create(",
        "router.chat(",
        "router.pick_route(",
        "get_server_info(",
        "list_clients(",
        "issue_client_key(",
        'completions.create(model="demo-chat", prompt',
        "images.generate(",
        "realtime.connect(",
        "realtime.client_secrets.create(",
        "realtime.calls.with_raw_response.create(",
        "langchain_openai",
        "anthropic.Anthropic(",
        "genai.Client(",
        "ollama.Client(",
        "cohere.ClientV2(",
        'reasoning_effort="medium"',
        CACHE_BLOCK,
        RATE_LIMIT_BLOCK,
    )
    assert sorted(b.line for b in blocks("python")) == sorted(python_block(m).line for m in markers)


def run_block(marker: str, stack: LiveStack) -> str:
    block = python_block(marker)
    assert EDGE in block.text or ROUTER in block.text, f"{block.where}: no demo address"
    source = block.text.replace(EDGE, stack.base_url).replace(ROUTER, stack.router_target)
    return run_python(source, block.where)


def test_openai_sdk_block(stack: LiveStack) -> None:
    printed = run_block("openai.OpenAI(", stack).splitlines()
    assert printed[0] == "Echo: hello"  # the demo's answer, after its failover
    chunks = printed[1:]
    assert all(line.startswith("ChatCompletionChunk(") for line in chunks), chunks
    assert "content='hello'" in "".join(chunks) and "usage=CompletionUsage(" in chunks[-1]


def test_responses_block(stack: LiveStack) -> None:
    printed = run_block("responses.stream(", stack).splitlines()
    assert printed == ["Echo: hello", "Echo: hello", "completed"]


def test_stored_responses_block(stack: LiveStack) -> None:
    printed = run_block("previous_response_id=", stack).splitlines()
    assert printed == ["Echo: Who am I?", "Echo: I am Ann.", "message user"]


def test_compaction_block(stack: LiveStack) -> None:
    counted, answer = run_block("responses.compact(", stack).splitlines()
    said = ("I am Ann and I like green tea.", "Noted.", "I live in Oslo.")  # the block's
    assert int(counted) == sum(len(text) for text in said) // CHARS_PER_TOKEN + 4 * len(said)
    assert answer == "Echo: Where do I live?"


def test_conversations_block(stack: LiveStack) -> None:
    printed = run_block("conversations.create(", stack).splitlines()
    assert printed == [
        "Echo: Who am I?",
        "user I am Ann.",
        "user Who am I?",
        "assistant Echo: Who am I?",
    ]


def test_background_responses_block(stack: LiveStack) -> None:
    printed = run_block("background=True)", stack).splitlines()
    assert printed == ["queued", "completed Echo: Think it over."]


def test_background_stream_block(stack: LiveStack) -> None:
    printed = run_block("starting_after=", stack).splitlines()
    assert printed[0] == "3 response.output_item.added"  # after response.in_progress (2)
    assert printed[-1] == f"{len(printed) + 2} response.completed"


def test_include_block(stack: LiveStack) -> None:
    printed = run_block(INCLUDE_BLOCK, stack).splitlines()
    assert printed == ["Echo:  -0.25 ['Echo: ', 'alt1']", "hello -0.5 ['hello', 'alt1']"]


def test_grpc_block(stack: LiveStack) -> None:
    text, *rest = run_block("router.chat(", stack).splitlines()
    assert text == "Echo: hello"
    attempts = [line for line in rest if "/" in line]
    assert attempts and re.fullmatch(r"beta/small-fast fp_[0-9a-f]{12} \d+", attempts[-1])
    events = [line for line in rest if line not in attempts and "at once" not in line]
    # The first stream's events (the second prints only its batches): route, chunks, summary.
    assert events.count("route") == 1 and events[0] == "route" and events[-1] == "summary", events


def test_decision_api_block(stack: LiveStack) -> None:
    assert run_block("router.pick_route(", stack) == ""
    assert stack.router is not None
    (stats,) = stack.run(stack.router.runtime.stats.read([DECIDED]))
    # The route it picked, reported OK with the route-scoped key: one success of that deployment.
    assert (stats.successes, stats.failures) == (1, 0)


def test_server_info_block(stack: LiveStack) -> None:
    printed = run_block("get_server_info(", stack)
    # The in-process stack's router: this process, started without a file, on memory state.
    assert printed == f"{socket.gethostname()}:{os.getpid()}  reload ok False\n"


def test_list_clients_block(stack: LiveStack) -> None:
    printed = run_block("list_clients(", stack).splitlines()
    # The demo's clients (chat-app with an rpm: its minute, which the rate limit headers block
    # may have counted), then open mode's callers; the bytes the stored responses block kept
    # (as anonymous) depend on the order the tests run in.
    names = [line.split()[0] for line in printed]
    assert names == ["service", "admin", "chat-app", "web-backend", "anonymous"]
    quota = 64 * 1024 * 1024
    assert all(
        re.fullmatch(rf"\S+ - \[\] \d+/{quota} B", line)
        for line in printed
        if "chat-app" not in line
    ), printed
    assert re.fullmatch(rf"chat-app [\d.]+ \[\] \d+/{quota} B", printed[2]), printed


def test_issue_client_key_block(stack: LiveStack) -> None:
    issued, listed, revoked = run_block("issue_client_key(", stack).splitlines()
    prefix, key_id, key_fingerprint = issued.split()
    assert prefix == "sk-sb-" and re.fullmatch(r"ck_[0-9a-f]{16}", key_id)
    assert listed == f"{key_id} ci-deploy {key_fingerprint}"
    assert revoked == f"revoked {key_id}"


def test_completions_block(stack: LiveStack) -> None:
    printed = run_block('completions.create(model="demo-chat", prompt', stack).splitlines()
    assert printed == ["Echo: hello", "Echo: hello"]


def test_realtime_block(stack: LiveStack) -> None:
    printed = run_block("realtime.connect(", stack)
    assert printed == "You said: hello (13 tokens)\n"  # the fake's answer, a word a delta


def test_client_secrets_block(stack: LiveStack) -> None:
    assert run_block("realtime.client_secrets.create(", stack) == "ek_ True Be brief.\n"


def test_webrtc_calls_block(stack: LiveStack) -> None:
    assert run_block("realtime.calls.with_raw_response.create(", stack) == "201 True rtc_\n"


def test_media_block(stack: LiveStack) -> None:
    printed = run_block("images.generate(", stack).splitlines()
    assert printed == [
        "True",
        "iVBORw0K",
        "1",
        "audio/wav 21",
        "hello.wav: 21 bytes of audio/wav",
        "21",
        "transcript.text.done",
        "['image_generation.partial_image', 'image_generation.partial_image', "
        "'image_generation.completed']",
    ]


def test_rerank_blocks(stack: LiveStack) -> None:
    # The demo's fake upstream scores by the share of the query's words a document contains.
    printed = run_block("cohere.ClientV2(", stack).splitlines()
    assert printed == ["[(1, 0.833333), (0, 0.166667)]"]
    (block,) = [b for b in blocks("bash") if b.text.startswith("curl ") and RERANK in b.text]
    command, _, shown = block.text.partition("\n# ")
    answer = curl(command, stack.base_url)
    claimed = json.loads(re.sub(r"\s*\(the demo's.*\)", "", shown).replace("\n# ", " "))
    assert answer.json() == {**claimed, "id": answer.json()["id"]}


RERANK = "/v1/rerank"
CACHE_BLOCK = '"x-switchboard-cache": "bypass"'
RATE_LIMIT_BLOCK = "x-ratelimit-remaining-requests"


def test_rate_limit_headers_block(stack: LiveStack) -> None:
    requests, tokens, answer = run_block(RATE_LIMIT_BLOCK, stack).splitlines()
    # One request counted this minute (the block's own: no other uses its key), whose room frees
    # as the next minute passes; its tokens as their estimate until the usage replaces them.
    remaining, reset = requests.split()
    assert remaining == "599" and re.fullmatch(r"(1m[\d.]+s|2m0s)", reset), requests
    limit, left = tokens.split()
    assert limit == "200000" and 199_000 < int(left) < 200_000, tokens
    assert answer == "Echo: hello"


def test_cache_block(stack: LiveStack) -> None:
    miss, hit, bypass = run_block(CACHE_BLOCK, stack).splitlines()
    assert miss == "miss None"
    assert re.fullmatch(r"hit \d+", hit), hit  # with its age in whole seconds
    assert bypass == "bypass"


def test_langchain_block(stack: LiveStack) -> None:
    printed = run_block("langchain_openai", stack).splitlines()
    assert printed == ["Echo: hello", "['Echo: hello', 'Echo: hi']", "8"]


def test_anthropic_block(stack: LiveStack) -> None:
    printed = run_block("anthropic.Anthropic(", stack).splitlines()
    assert printed == ["Echo: hello", "Echo: hello", "4"]


def test_gemini_block(stack: LiveStack) -> None:
    printed = run_block("genai.Client(", stack).splitlines()
    assert printed[0].startswith("Echo: hello ") and int(printed[0].split()[-1]) > 0
    assert printed[1] == "Echo: hello" and int(printed[2]) > 0 and printed[3] == "8"
    assert "'models/demo-chat'" in printed[4] and "'models/text-embedding'" in printed[4]


def test_ollama_block(stack: LiveStack) -> None:
    printed = run_block("ollama.Client(", stack).splitlines()
    assert printed[:4] == ["Echo: hello stop True", "Echo: hello", "Echo: hello", "2"]
    assert "'demo-chat'" in printed[4] and "'text-embedding'" in printed[4]


def curl(command: str, edge: str, *, asking: str | None = None) -> httpx.Response:
    """A `curl -s[i] URL -H … -d …` command line, sent with httpx to `edge` for the demo's;
    `asking`: another question in place of the README's "hello" (another conversation)."""
    args = shlex.split(command.replace("\\\n", " "))
    assert args[0] == "curl", command
    headers: dict[str, str] = {}
    url, body, i = "", "", 1
    while i < len(args):
        arg = args[i]
        if arg in ("-H", "-d"):
            i += 1
            if arg == "-d":
                body = args[i]
            else:
                name, _, value = args[i].partition(":")
                headers[name] = value.strip()
        elif not arg.startswith("-"):
            url = arg.replace(EDGE, edge)
        i += 1
    if asking is not None:
        body = body.replace('"hello"', json.dumps(asking))
    return httpx.post(url, headers=headers, content=body, timeout=10)


def test_curl_block_shows_the_failover_then_the_cooldown_and_the_session() -> None:
    (block,) = [b for b in blocks("bash") if b.text.startswith("curl ") and RERANK not in b.text]
    command, _, shown = block.text.partition("\n# ")
    claimed = dict(line.removeprefix("# ").split(": ") for line in ("# " + shown).splitlines())
    clock = ManualClock()
    # A stack of its own: the demo's first request, before any other cooled the deployment.
    with LiveStack(demo_config, clock).running() as fresh:
        first = curl(command, fresh.base_url)
        assert {name: first.headers[name] for name in claimed} == claimed
        straight = ("beta/small-fast", "1")
        assert served(curl(command, fresh.base_url)) == straight  # the conversation sticks
        # Another conversation in those 15 s: the failing deployment is cooled for everyone.
        assert served(curl(command, fresh.base_url, asking="and now?")) == straight
        clock.advance(15.0)  # the README's 15 s (the demo's cooldowns.transient_s)
        failover = ("beta/small-fast", "2")
        assert served(curl(command, fresh.base_url, asking="hi again")) == failover
        assert served(curl(command, fresh.base_url)) == straight  # the first one still sticks


def served(answer: httpx.Response) -> tuple[str, str]:
    """Who served an answer, after how many attempts (its headers)."""
    assert answer.status_code == 200, answer.text
    return answer.headers["x-switchboard-deployment"], answer.headers["x-switchboard-attempts"]


def test_make_run_banner_works_as_printed(
    stack: LiveStack, capsys: pytest.CaptureFixture[str]
) -> None:
    host, port = stack.base_url.removeprefix("http://").split(":")
    config = load_config(ROOT / "examples/dev.yaml", env={})
    _print_banner(host, int(port), stack.router_target, config)
    banner = capsys.readouterr().out
    command = re.search(r"^  (curl .*?)\n\n", banner, re.MULTILINE | re.DOTALL)
    one_liner = re.search(r"^  (python -c .*?)\n\n", banner, re.MULTILINE | re.DOTALL)
    assert command and one_liner, banner
    answer = curl(command[1], stack.base_url)
    assert answer.json()["choices"][0]["message"]["content"] == "Echo: hello"
    _, _, code = shlex.split(one_liner[1])
    assert run_python(code, "banner") == "Echo: hello\n"


def test_reasoning_block(stack: LiveStack) -> None:
    assert run_block('reasoning_effort="medium"', stack) == "Echo: Plan the migration.\n"
