"""Two files of one name, or of none (OpenAI's `filename` is optional), in one conversation:
Bedrock's Converse refuses the whole request ("Messages can't contain duplicate document
names"), and a conversation carries every earlier turn's files, so re-attaching a file, or
attaching a second unnamed one, was the caller's 400 on every turn after."""

from __future__ import annotations

from typing import cast

import openai
import pytest
from openai.types.chat import ChatCompletionContentPartParam, ChatCompletionMessageParam

from router_service.fake_upstream import FakeUpstream
from tests.conformance.helpers import PDF_B64
from tests.conformance.profiles import PROFILES, Profile
from tests.conformance.test_edge_sdk import sdk  # noqa: F401


@pytest.fixture(params=[p for p in PROFILES if "file" in p.takes], ids=str)
def profile(request: pytest.FixtureRequest) -> Profile:
    """The formats that take files (what one that takes none answers: test_edge_sdk.py)."""
    taking: Profile = request.param
    return taking


def _pdf(filename: str | None) -> ChatCompletionContentPartParam:
    file = {"file_data": f"data:application/pdf;base64,{PDF_B64}"}
    if filename is not None:
        file["filename"] = filename
    return cast(ChatCompletionContentPartParam, {"type": "file", "file": file})


@pytest.mark.parametrize("stream", [False, True], ids=["unary", "stream"])
async def test_files_of_one_name_or_of_none_are_answered(
    sdk: openai.AsyncOpenAI,  # noqa: F811
    fake: FakeUpstream,
    profile: Profile,
    stream: bool,
) -> None:
    """Two unnamed PDFs, the same file attached again in a later turn (a conversation carries
    every earlier turn), and two names Bedrock's rules make one (`a.b.pdf`, `a-b.pdf`)."""
    first: list[ChatCompletionContentPartParam] = [
        {"type": "text", "text": "compare"},
        _pdf(None),
        _pdf(None),
        _pdf("report.pdf"),
        _pdf("a.b.pdf"),
    ]
    again: list[ChatCompletionContentPartParam] = [
        {"type": "text", "text": "and these"},
        _pdf("report.pdf"),
        _pdf("a-b.pdf"),
        _pdf(None),
    ]
    messages: list[ChatCompletionMessageParam] = [
        {"role": "user", "content": first},
        {"role": "assistant", "content": "They match."},
        {"role": "user", "content": again},
    ]
    if stream:
        chunks = await sdk.chat.completions.create(model="solo", messages=messages, stream=True)
        text = "".join([c.choices[0].delta.content or "" async for c in chunks if c.choices])
    else:
        answer = await sdk.chat.completions.create(model="solo", messages=messages)
        text = answer.choices[0].message.content or ""

    assert text == "Echo: and these"
    record = fake.state.last(model="m-up")
    assert record is not None and record.status == 200
    assert profile.read(record.body).documents == [("application/pdf", PDF_B64)] * 7
    if str(profile) == "bedrock":  # the first keeps its name, the earlier turns' stay as sent
        names = [
            block["document"]["name"]
            for message in record.body["messages"]
            for block in message["content"]
            if "document" in block
        ]
        assert names == [
            "document", "document (2)", "report", "a-b", "report (2)", "a-b (2)", "document (3)"
        ]  # fmt: skip
