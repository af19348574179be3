"""A scenario rule's `text` picks the requests of every kind the fake serves by what they say:
a Responses request's `input` (a string, or its last user message), an embedding's or a
moderation's `input` (of a list, the last), Gemini's last user `contents`; it read only chat
`messages`, so a rule naming a text never applied to the others (`make run` scenarios)."""

from __future__ import annotations

from typing import Any

import httpx
import openai
import pytest

from router_service.fake_upstream import FakeUpstream, Scenario


async def _refused(call: Any) -> bool:
    try:
        await call
    except openai.BadRequestError:
        return True
    return False


async def test_a_rule_text_picks_responses_embeddings_and_moderations(
    fake: FakeUpstream,
) -> None:
    fake.state.set_scenario(Scenario(status=400), text="bad line")
    sdk = openai.AsyncOpenAI(base_url=fake.base_url, api_key="sk-test", max_retries=0)
    async with sdk:
        respond = sdk.responses.create
        assert await _refused(respond(model="m", input="bad line"))
        said = [{"role": "user", "content": [{"type": "input_text", "text": "bad line"}]}]
        assert await _refused(respond(model="m", input=said))  # type: ignore[arg-type]
        assert not await _refused(respond(model="m", input="fine"))
        embed = sdk.embeddings.create
        assert await _refused(embed(model="m", input="bad line"))
        assert await _refused(embed(model="m", input=["ok", "bad line"]))
        assert not await _refused(embed(model="m", input=["bad line", "ok"]))
        assert await _refused(sdk.moderations.create(model="m", input="bad line"))
    assert fake.state.count(text="bad line") == 5


@pytest.mark.parametrize(("said", "refused"), [("bad line", True), ("fine", False)])
async def test_a_rule_text_picks_a_gemini_request(
    fake: FakeUpstream, said: str, refused: bool
) -> None:
    fake.state.set_scenario(Scenario(status=400), text="bad line")
    body = {"contents": [{"role": "user", "parts": [{"text": said}]}]}
    async with httpx.AsyncClient(base_url=fake.url) as http:
        answer = await http.post(
            "/v1beta/models/gemini-x:generateContent", json=body, headers={"x-goog-api-key": "k"}
        )
    assert (answer.status_code == 400) is refused


@pytest.mark.parametrize(
    ("path", "body", "headers"),
    [
        (
            "/v2/embed",
            {"model": "embed-x", "texts": ["ok", "bad line"], "input_type": "search_document"},
            {"authorization": "Bearer k"},
        ),
        (
            "/v1beta/models/embed-x:embedContent",
            {"content": {"parts": [{"text": "bad line"}]}},
            {"x-goog-api-key": "k"},
        ),
    ],
)
async def test_a_rule_text_picks_cohere_s_and_gemini_s_embeddings(
    fake: FakeUpstream, path: str, body: dict[str, Any], headers: dict[str, str]
) -> None:
    """Their embedding's text is not an `input`: Cohere's `texts` (the last), Gemini's
    `content`, as the README's "an embedding's" says."""
    fake.state.set_scenario(Scenario(status=400), text="bad line")
    async with httpx.AsyncClient(base_url=fake.url) as http:
        assert (await http.post(path, json=body, headers=headers)).status_code == 400
        said = {"texts": ["bad line", "fine"]} if "texts" in body else {"content": "fine"}
        fine = {**body, **said}
        if "content" in said:
            fine["content"] = {"parts": [{"text": "fine"}]}
        assert (await http.post(path, json=fine, headers=headers)).status_code == 200
