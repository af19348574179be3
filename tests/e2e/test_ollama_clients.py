"""What real Ollama clients send, against the edge's Ollama API: every option Ollama documents
(and those its clients still send: LangChain's `tfs_z`, `mirostat`), and the fields Open WebUI
passes on. Ollama ignores the fields and options it does not know (Go's JSON binding; an
unknown option is logged and dropped), and these clients rely on it: so does the edge."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest

from router_service.fake_upstream import FakeUpstream
from tests.conftest import StartRouter, base_config
from tests.e2e.stream_harness import StartEdge

HI = [{"role": "user", "content": "hi"}]
# Every option of Ollama's API docs (`options` of /api/generate) and of its Modelfile
# parameters, with the value types Ollama takes.
EVERY_OPTION: dict[str, Any] = {
    "num_keep": 5,
    "seed": 42,
    "num_predict": 100,
    "top_k": 20,
    "top_p": 0.9,
    "min_p": 0.0,
    "typical_p": 0.7,
    "repeat_last_n": 33,
    "temperature": 0.8,
    "repeat_penalty": 1.2,
    "presence_penalty": 1.5,
    "frequency_penalty": 1.0,
    "penalize_newline": True,
    "stop": ["\n", "user:"],
    "numa": False,
    "num_ctx": 1024,
    "num_batch": 2,
    "num_gpu": 1,
    "main_gpu": 0,
    "use_mmap": True,
    "num_thread": 8,
    "tfs_z": 1.0,
    "mirostat": 0,
    "mirostat_eta": 0.1,
    "mirostat_tau": 5.0,
    "num_gqa": 1,
    "low_vram": False,
    "f16_kv": True,
    "vocab_only": False,
    "use_mlock": False,
    "logits_all": False,
    "embedding_only": False,
    "rope_frequency_base": 10000.0,
    "rope_frequency_scale": 1.0,
}


@pytest.fixture
async def edge_url(fake: FakeUpstream, start_router: StartRouter, start_edge: StartEdge) -> str:
    router = await start_router(base_config(fake.base_url))
    return (await start_edge(router)).base_url


@pytest.fixture
async def http(edge_url: str) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(base_url=edge_url, timeout=10) as client:
        yield client


def sent(fake: FakeUpstream) -> dict[str, Any]:
    request = fake.state.last()
    assert request is not None
    return dict(request.body)


async def test_every_documented_option_is_taken(
    http: httpx.AsyncClient, fake: FakeUpstream
) -> None:
    body = {"model": "chain", "messages": HI, "stream": False, "options": EVERY_OPTION}
    answered = await http.post("/api/chat", json=body)
    assert answered.status_code == 200, answered.text
    assert answered.json()["message"]["content"] == "Echo: hi"
    upstream = sent(fake)
    assert (upstream["seed"], upstream["max_tokens"], upstream["top_k"]) == (42, 100, 20)
    assert upstream["stop"] == ["\n", "user:"]
    assert not {"num_ctx", "min_p", "tfs_z", "num_keep", "mirostat"} & set(upstream)


async def test_open_webui_bodies_with_fields_ollama_ignores(
    http: httpx.AsyncClient, fake: FakeUpstream
) -> None:
    """Open WebUI passes its form's extra fields on (`metadata`…), a custom option a user
    typed in its advanced parameters, and OpenAI's `name` on a message."""
    body = {
        "model": "chain",
        "messages": [{"role": "user", "content": "hi", "name": "ann"}],
        "stream": False,
        "options": {"temperature": 0.3, "my_custom_option": 1},
        "metadata": {"chat_id": "c1"},
        "keep_alive": "5m",
    }
    answered = await http.post("/api/chat", json=body)
    assert answered.status_code == 200, answered.text
    assert sent(fake)["temperature"] == 0.3
    assert "metadata" not in sent(fake) and "my_custom_option" not in sent(fake)
    generate = {"model": "chain", "prompt": "hi", "stream": False, "metadata": {}, "n": 2}
    answered = await http.post("/api/generate", json=generate)
    assert answered.status_code == 200, answered.text
    embed = {"model": "embedder", "input": ["a"], "metadata": {}}
    assert (await http.post("/api/embed", json=embed)).status_code == 200
