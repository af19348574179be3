"""Guardrails as an OpenAI SDK user sees them through the edge: a blocked call is a 400
`content_policy_violation` (unary and stream, no upstream call), a redacted one carries
`x-switchboard-guardrails` and reaches the upstream redacted, for chat completions, legacy
completions, the Responses API and embeddings."""

from __future__ import annotations

from typing import Any

import openai
import orjson
import pytest

from router_service.fake_upstream import FakeUpstream
from tests.e2e.conftest import Guarded

pytestmark = pytest.mark.timeout(60)

AWS_KEY = "AKIAIOSFODNN7EXAMPLE"
GUARDRAILS = [
    {"name": "no-credentials", "detect": ["api_key", "private_key"], "action": "block"},
    {"name": "pii", "detect": ["email", "credit_card", "phone"], "action": "redact"},
]


@pytest.fixture
async def sdk(guarded_sdk: Guarded) -> openai.AsyncOpenAI:
    _, sdk = await guarded_sdk(GUARDRAILS)
    return sdk


def _user(text: str) -> Any:
    return [{"role": "user", "content": text}]


def _upstream_text(fake: FakeUpstream) -> str:
    [call] = fake.state.calls()
    return str(call.body["messages"][-1]["content"])


def _blocked(caught: pytest.ExceptionInfo[openai.BadRequestError]) -> dict[str, Any]:
    assert caught.value.status_code == 400
    body = caught.value.body
    assert isinstance(body, dict)
    assert body["type"] == "invalid_request_error"
    assert body["code"] == "content_policy_violation"
    assert "'no-credentials'" in body["message"] and "api_key" in body["message"]
    assert AWS_KEY not in str(body) and AWS_KEY not in caught.value.response.text
    return body


async def test_a_blocked_chat_is_a_400_and_no_upstream_call(
    sdk: openai.AsyncOpenAI, fake: FakeUpstream
) -> None:
    with pytest.raises(openai.BadRequestError) as caught:
        await sdk.chat.completions.create(model="chain", messages=_user(f"key {AWS_KEY}"))
    assert _blocked(caught)["param"] == "messages[0].content"
    with pytest.raises(openai.BadRequestError) as streamed:
        stream = await sdk.chat.completions.create(
            model="chain", messages=_user(f"key {AWS_KEY}"), stream=True
        )
        async for _ in stream:
            pytest.fail("a blocked stream sends no chunk")
    _blocked(streamed)
    assert fake.state.calls() == []


async def test_a_bearer_token_in_capitals_is_blocked(
    sdk: openai.AsyncOpenAI, fake: FakeUpstream
) -> None:
    # HTTP's auth scheme is case-insensitive: a header pasted as a log shouts it.
    token = "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxIn0.sig"
    for said in [f"AUTHORIZATION: BEARER {token}", f"authorization: bearer {token}"]:
        with pytest.raises(openai.BadRequestError) as caught:
            await sdk.chat.completions.create(model="chain", messages=_user(said))
        _blocked(caught)
        assert token not in caught.value.response.text
    assert fake.state.calls() == []


async def test_a_redacted_chat_says_so_and_the_upstream_never_sees_the_text(
    sdk: openai.AsyncOpenAI, fake: FakeUpstream
) -> None:
    raw = await sdk.chat.completions.with_raw_response.create(
        model="chain", messages=_user("I am jane@example.com")
    )
    assert raw.headers["x-switchboard-guardrails"] == "pii"
    assert _upstream_text(fake) == "I am [REDACTED:email]"
    fake.state.reset()
    async with sdk.chat.completions.with_streaming_response.create(
        model="chain", messages=_user("call +14155552671"), stream=True
    ) as streamed:
        assert streamed.headers["x-switchboard-guardrails"] == "pii"
        async for _ in streamed.iter_lines():
            pass
    assert _upstream_text(fake) == "call [REDACTED:phone]"


async def test_a_card_pasted_with_its_expiry_or_code_is_redacted(
    sdk: openai.AsyncOpenAI, fake: FakeUpstream
) -> None:
    # Digits after the card's own (its expiry, its code) make a longer run failing Luhn: the
    # card within it is still one (its grouped digits up to where the card ends).
    for pasted, rest in [
        ("4111 1111 1111 1111 123", " 123"),
        ("4111-1111-1111-1111 12/26", " 12/26"),
        ("4111111111111111 09 27 321", " 09 27 321"),
        # Its month in one digit, as an expiry is often written (`5/26`).
        ("4111 1111 1111 1111 5/26", " 5/26"),
        ("5500-0000-0000-0004 9 27", " 9 27"),
    ]:
        fake.state.reset()
        await sdk.chat.completions.create(model="chain", messages=_user(f"pay with {pasted}"))
        assert _upstream_text(fake) == f"pay with [REDACTED:credit_card]{rest}"


async def test_numbers_whose_first_digits_pass_luhn_are_no_card(
    sdk: openai.AsyncOpenAI, fake: FakeUpstream
) -> None:
    # Within a longer run, a card is one written as cards are (one run, groups of four) and
    # followed by what follows one (its expiry's month, its code): not an IBAN's first groups,
    # nor the first numbers of a list (a prefix of each passes Luhn).
    for said in ["IBAN DE62 7847 0930 1372 8733 83", "scores 39 56 34 67 39 71 44 2 54 75 41 3"]:
        fake.state.reset()
        await sdk.chat.completions.create(model="chain", messages=_user(said))
        assert _upstream_text(fake) == said


async def test_a_phone_number_followed_by_other_numbers_is_redacted(
    sdk: openai.AsyncOpenAI, fake: FakeUpstream
) -> None:
    # The separators and digits after a number (a sentence's end, a dash, more digits) make a
    # longer run that is no phone: the number within it still is one.
    for said, rest in [
        ("+1 415 555 0100. 2 rings, then hang up", ". 2 rings, then hang up"),
        ("+44 20 7946 0958 - 24/7", " - 24/7"),
        ("+44 20 7946 0958 12345", " 12345"),
    ]:
        fake.state.reset()
        await sdk.chat.completions.create(model="chain", messages=_user(f"call {said}"))
        assert _upstream_text(fake) == f"call [REDACTED:phone]{rest}"


async def test_a_phone_written_with_parentheses_is_redacted(
    sdk: openai.AsyncOpenAI, fake: FakeUpstream
) -> None:
    # A country code in parentheses (its `)` closes what opened before the `+`), a `(` left
    # open inside the number: each is the number's own; a note opened after it is not.
    for said, redacted in [
        ("(+44) 20 7946 0958 (24 h)", "([REDACTED:phone] (24 h)"),
        ("+1 (415 555 0100 today", "[REDACTED:phone] today"),
    ]:
        fake.state.reset()
        await sdk.chat.completions.create(model="chain", messages=_user(f"call {said}"))
        assert _upstream_text(fake) == f"call {redacted}"


async def test_an_email_whose_name_is_not_ascii_is_redacted_whole(
    sdk: openai.AsyncOpenAI, fake: FakeUpstream
) -> None:
    # Not the ASCII letters after the last accent alone: the name before them is the person's.
    for address in ["josé.garcía@example.es", "müller@example.de", "анна@example.com"]:
        fake.state.reset()
        await sdk.chat.completions.create(model="chain", messages=_user(f"write to {address}"))
        assert _upstream_text(fake) == "write to [REDACTED:email]"


async def test_an_email_after_chinese_japanese_or_thai_text_is_redacted_alone(
    sdk: openai.AsyncOpenAI, fake: FakeUpstream
) -> None:
    # Scripts written without spaces run straight into an address: the words before it are no
    # name of it (kept), and a long sentence before it does not hide it.
    sentence = (
        "您好，感谢您联系我们的客户服务中心，关于您提到的订单问题，我们已经转交给相关部门处理，"
        "如需进一步帮助，请随时发送邮件至"
    )
    for before in [sentence, "メールアドレス：", "โปรดติดต่อเราที่อีเมล"]:
        fake.state.reset()
        await sdk.chat.completions.create(
            model="chain", messages=_user(f"{before}support@example.com")
        )
        assert _upstream_text(fake) == f"{before}[REDACTED:email]"


async def test_a_find_on_a_line_of_its_own_in_tool_call_arguments_is_caught(
    sdk: openai.AsyncOpenAI, fake: FakeUpstream
) -> None:
    # Arguments are JSON: a line break in a string is the escape `\n`, whose `n` must not hide
    # the key after it (as a letter before it would), nor an email's redaction eat into it.
    def turn(arguments: dict[str, str]) -> Any:
        function = {"name": "send", "arguments": orjson.dumps(arguments).decode()}
        call = {"id": "c1", "type": "function", "function": function}
        return [
            {"role": "user", "content": "send it"},
            {"role": "assistant", "content": None, "tool_calls": [call]},
            {"role": "tool", "tool_call_id": "c1", "content": "sent"},
        ]

    key = "sk-proj-" + "a1B2c3D4e5" * 4
    with pytest.raises(openai.BadRequestError) as caught:
        await sdk.chat.completions.create(model="chain", messages=turn({"body": f"Key:\n{key}"}))
    assert caught.value.body["param"] == "messages[1].tool_calls[0].function.arguments"  # type: ignore[index]
    await sdk.chat.completions.create(
        model="chain", messages=turn({"body": "Hi,\nbob@example.com"})
    )
    [call] = fake.state.calls()
    sent = call.body["messages"][1]["tool_calls"][0]["function"]["arguments"]
    assert orjson.loads(sent) == {"body": "Hi,\n[REDACTED:email]"}


async def test_an_unredacted_answer_has_no_guardrails_header(
    sdk: openai.AsyncOpenAI, fake: FakeUpstream
) -> None:
    raw = await sdk.chat.completions.with_raw_response.create(model="chain", messages=_user("hi"))
    assert "x-switchboard-guardrails" not in raw.headers


async def test_legacy_completions_are_screened(sdk: openai.AsyncOpenAI, fake: FakeUpstream) -> None:
    raw = await sdk.completions.with_raw_response.create(
        model="chain", prompt="card 4111 1111 1111 1111"
    )
    assert raw.headers["x-switchboard-guardrails"] == "pii"
    assert _upstream_text(fake) == "card [REDACTED:credit_card]"
    with pytest.raises(openai.BadRequestError) as caught:
        await sdk.completions.create(model="chain", prompt=f"key {AWS_KEY}")
    # Named as the caller wrote it: this API has no `messages`.
    assert _blocked(caught)["param"] == "prompt"
    assert "`prompt`" in _blocked(caught)["message"]
    assert len(fake.state.calls()) == 1
    with pytest.raises(openai.BadRequestError) as several:
        await sdk.completions.create(model="chain", prompt=["hi", f"key {AWS_KEY}"])
    # Of several prompts, the one blocked.
    assert _blocked(several)["param"] == "prompt[1]"
    assert "`prompt[1]`" in _blocked(several)["message"]
    assert "messages" not in _blocked(several)["message"]
    with pytest.raises(openai.BadRequestError) as streamed:
        await sdk.completions.create(model="chain", prompt=f"key {AWS_KEY}", stream=True)
    assert _blocked(streamed)["param"] == "prompt"


async def test_the_responses_api_is_screened(sdk: openai.AsyncOpenAI, fake: FakeUpstream) -> None:
    raw = await sdk.responses.with_raw_response.create(
        model="chain", input="mail jane@example.com", store=False
    )
    assert raw.headers["x-switchboard-guardrails"] == "pii"
    assert _upstream_text(fake) == "mail [REDACTED:email]"
    with pytest.raises(openai.BadRequestError) as caught:
        await sdk.responses.create(model="chain", input=f"key {AWS_KEY}", store=False)
    _blocked(caught)
    assert len(fake.state.calls()) == 1


async def test_embeddings_are_screened(sdk: openai.AsyncOpenAI, fake: FakeUpstream) -> None:
    raw = await sdk.embeddings.with_raw_response.create(
        model="embedder", input=["jane@example.com", "plain"]
    )
    assert raw.headers["x-switchboard-guardrails"] == "pii"
    [call] = fake.state.calls()
    assert call.body["input"] == ["[REDACTED:email]", "plain"]
    tokens = await sdk.embeddings.with_raw_response.create(model="embedder", input=[[1, 2, 3]])
    assert "x-switchboard-guardrails" not in tokens.headers


async def test_what_a_response_stores_is_redacted(
    sdk: openai.AsyncOpenAI, fake: FakeUpstream
) -> None:
    first = await sdk.responses.create(model="chain", input="mail jane@example.com", store=True)
    items = [item async for item in sdk.responses.input_items.list(first.id)]
    stored: Any = items[0]
    assert stored.content[0].text == "mail [REDACTED:email]"
    fake.state.reset()
    await sdk.responses.create(model="chain", input="and then?", previous_response_id=first.id)
    [call] = fake.state.calls()
    sent = [str(message["content"]) for message in call.body["messages"]]
    assert sent[0] == "mail [REDACTED:email]"
    assert not any("jane@example.com" in text for text in sent)


async def test_what_a_conversation_keeps_is_redacted(sdk: openai.AsyncOpenAI) -> None:
    conversation = await sdk.conversations.create(
        items=[{"type": "message", "role": "user", "content": "I am jane@example.com"}]
    )
    await sdk.conversations.items.create(
        conversation.id,
        items=[
            {
                "type": "message",
                "role": "user",
                "content": [{"type": "input_text", "text": "card 4111 1111 1111 1111"}],
            }
        ],
    )
    kept: list[Any] = [
        item async for item in sdk.conversations.items.list(conversation.id, order="asc")
    ]
    assert [item.content[0].text for item in kept] == [
        "I am [REDACTED:email]",
        "card [REDACTED:credit_card]",
    ]


async def test_a_background_response_is_screened_when_it_starts(
    sdk: openai.AsyncOpenAI, fake: FakeUpstream
) -> None:
    with pytest.raises(openai.BadRequestError) as caught:
        await sdk.responses.create(model="chain", input=f"key {AWS_KEY}", background=True)
    _blocked(caught)
    started = await sdk.responses.create(
        model="chain", input="mail jane@example.com", background=True
    )
    items: Any = [item async for item in sdk.responses.input_items.list(started.id)]
    assert items[0].content[0].text == "mail [REDACTED:email]"
    await fake.state.wait_for_count(1)
    assert _upstream_text(fake) == "mail [REDACTED:email]"
