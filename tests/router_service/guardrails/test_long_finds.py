"""Finds that may grow past a stream's hold-back window: an email whose name part is longer than
RFC 5321's 64 characters (found whole: a padded name does not hide an address), and a private
key whose END line comes more than 128 characters after its BEGIN line though its body is no
plain base64 (an encrypted key's headers, a body pasted with spaces). A stream cut anywhere
redacts each as the unary answer does; over gRPC, a streamed answer as the unary one."""

from __future__ import annotations

from collections import Counter
from typing import Any

import pytest

from router_service.config import GuardrailConfig
from router_service.fake_upstream import FakeUpstream, Scenario
from router_service.guardrails import Rule, TextScreen
from tests.conftest import StartRouter
from tests.router_service.auth.helpers import bearer, chat, chat_stream, client, guarded_config

pytestmark = pytest.mark.timeout(60)

PROSE = "The quick brown fox jumps over the lazy dog, then rests a while. "
PII = Rule(
    GuardrailConfig.model_validate(
        {"name": "pii", "detect": ["email", "credit_card", "phone", "private_key"]}
        | {"action": "redact"}
    )
)
LONG_NAMES = ["j" * 65, "jane.doe." + "x" * 60, "y" * 200, "z" * 5000]
_BODY = "MIIEvQIBADANBgkqhkiG9w0BAQEFAASC\n"
PEMS = [
    "-----BEGIN RSA PRIVATE KEY-----\nProc-Type: 4,ENCRYPTED\nDEK-Info: AES-128-CBC,0A1B2C\n\n"
    + _BODY * 6
    + "-----END RSA PRIVATE KEY-----",
    "-----BEGIN PRIVATE KEY-----\n" + "MIIE vQIB ADAN\n" * 20 + "-----END PRIVATE KEY-----",
    "-----BEGIN PRIVATE KEY-----\n"
    + _BODY * 3
    + "(the rest: see the vault, ask Jane first) "
    + "-----END PRIVATE KEY-----",
    # The longest label the armor lines may carry (three words of 16, then PRIVATE KEY).
    "-----BEGIN ENCRYPTEDRSA2048 AAAAAAAAAAAAAAAA BBBBBBBBBBBBBBBB PRIVATE KEY-----\n"
    + "Proc-Type: 4,ENCRYPTED\n"
    + _BODY * 4
    + "-----END ENCRYPTEDRSA2048 AAAAAAAAAAAAAAAA BBBBBBBBBBBBBBBB PRIVATE KEY-----",
]
# A key in a URL's user part, then its host: the address its `@` begins (a name part of 65+
# characters, the key's) is looked back for over what was released with the key.
URL_KEY = "https://sk-proj-" + "A1b2C3d4E5" * 6 + "@git.example.com/team/repo.git"


def _stream(pieces: list[str]) -> str:
    screen = TextScreen((PII,), {})
    return "".join(screen.feed(p, final=i == len(pieces) - 1) for i, p in enumerate(pieces))


def _cut_anywhere_as_unary(text: str, unary: str) -> None:
    for cut in range(len(text) + 1):
        assert _stream([text[:cut], text[cut:]]) == unary, cut
    assert _stream([*text, ""]) == unary


@pytest.mark.parametrize("name", LONG_NAMES, ids=len)
def test_an_email_with_a_long_name_part_is_found_whole_streamed_as_unary(name: str) -> None:
    text = f"{PROSE * 2}write to {name}@example.com, or {name}@b.co. {PROSE * 2}"
    unary = PII.redact(text, Counter())
    assert unary == f"{PROSE * 2}write to [REDACTED:email], or [REDACTED:email]. {PROSE * 2}"
    if len(text) < 1000:  # (the longest: one character a chunk only)
        _cut_anywhere_as_unary(text, unary)
    assert _stream([*text, ""]) == unary


def test_a_long_name_part_s_address_after_a_find_begins_where_the_find_ended() -> None:
    # A card named first wins where both begin; the address goes on from the card's end.
    config = {"name": "pii", "detect": ["credit_card", "email"], "action": "redact"}
    cards_first = Rule(GuardrailConfig.model_validate(config))
    text = "card 4111111111111111" + "x" * 80 + "@example.com and jane@example.com"
    unary = "card [REDACTED:credit_card][REDACTED:email] and [REDACTED:email]"
    assert cards_first.redact(text, Counter()) == unary
    for cut in range(len(text) + 1):
        screen = TextScreen((cards_first,), {})
        assert screen.feed(text[:cut]) + screen.feed(text[cut:], final=True) == unary, cut


@pytest.mark.parametrize("pem", PEMS, ids=["encrypted", "spaced", "prose-inside", "long-label"])
def test_a_private_key_ending_past_the_window_streams_as_unary(pem: str) -> None:
    text = f"{PROSE * 2}here:\n{pem}\n{PROSE * 3}"
    unary = PII.redact(text, Counter())
    assert unary == f"{PROSE * 2}here:\n[REDACTED:private_key]\n{PROSE * 3}"
    _cut_anywhere_as_unary(text, unary)


def test_an_address_begun_where_a_find_ended_streams_as_unary() -> None:
    keys = Rule(
        GuardrailConfig.model_validate(
            {"name": "keys", "detect": ["api_key", "email"], "action": "redact"}
        )
    )
    text = f"{PROSE}clone {URL_KEY} then {PROSE * 3}"
    unary = (
        f"{PROSE}clone https://[REDACTED:api_key][REDACTED:email]/team/repo.git then {PROSE * 3}"
    )
    assert keys.redact(text, Counter()) == unary
    for cut in range(len(text) + 1):
        screen = TextScreen((keys,), {})
        assert screen.feed(text[:cut]) + screen.feed(text[cut:], final=True) == unary, cut


def test_long_finds_in_json_escaped_text_stream_as_unary() -> None:
    # A tool call's arguments: line breaks and quotes escaped (what holds a stream open is
    # looked for in the text as sent, and in the text read when the text as sent holds one).
    pem = PEMS[0].replace("\n", "\\n")
    name = "jane.doe." + "x" * 80
    text = f'{{"note": "{PROSE}", "key": "{pem}", "to": "{name}@example.com", "x": "\\"{PROSE}"}}'
    unary = PII.redact(text, Counter())
    assert unary is not None and "[REDACTED:private_key]" in unary
    assert '"to": "[REDACTED:email]"' in unary
    _cut_anywhere_as_unary(text, unary)


@pytest.mark.parametrize(
    "after",
    [PROSE * 3, "-----BEGIN CERTIFICATE-----\nMIIC\n-----END CERTIFICATE-----\n" + PROSE],
    ids=["no-end", "another-armor"],
)
def test_a_private_key_that_never_ends_streams_as_unary(after: str) -> None:
    # No END line follows (a mention of the BEGIN line, a key cut short): held until what ends
    # it arrives, then redacted as the whole text is (its base64 body only).
    text = f"{PROSE}it begins -----BEGIN PRIVATE KEY-----\n{_BODY * 5}and then {after}"
    unary = PII.redact(text, Counter())
    assert unary is not None and "begins [REDACTED:private_key] then " in unary
    _cut_anywhere_as_unary(text, unary)


@pytest.fixture
async def router(fake: FakeUpstream, start_router: StartRouter) -> Any:
    detect = ["email", "private_key", "api_key"]
    rule = {"name": "answer-pii", "detect": detect, "action": "redact"}
    config = guarded_config(
        fake.base_url, client("bot", "sk-bot-key"), guardrails=[rule | {"apply_to": ["response"]}]
    )
    return await start_router(config)


async def test_long_finds_are_redacted_alike_in_unary_and_streamed_answers(
    fake: FakeUpstream, router: Any
) -> None:
    text = f"{PROSE}mail {'y' * 200}@example.com\n{PEMS[0]}\n{PROSE * 3}"
    expected = f"{PROSE}mail [REDACTED:email]\n[REDACTED:private_key]\n{PROSE * 3}"
    fake.state.set_scenario(Scenario(content=text))
    unary = await router.stub.Chat(chat(), metadata=bearer("sk-bot-key"))
    assert unary.completion.choices[0].message.text == expected
    call = router.stub.ChatStream(chat_stream(), metadata=bearer("sk-bot-key"))
    events = [event async for event in call if event.WhichOneof("event") == "chunk"]
    assert "".join(c.delta.text for event in events for c in event.chunk.choices) == expected


async def test_an_address_begun_where_a_key_ended_is_redacted_alike_streamed(
    fake: FakeUpstream, router: Any
) -> None:
    text = f"{PROSE}clone {URL_KEY} then {PROSE * 3}"
    expected = (
        f"{PROSE}clone https://[REDACTED:api_key][REDACTED:email]/team/repo.git then {PROSE * 3}"
    )
    fake.state.set_scenario(Scenario(content=text))
    unary = await router.stub.Chat(chat(), metadata=bearer("sk-bot-key"))
    assert unary.completion.choices[0].message.text == expected
    call = router.stub.ChatStream(chat_stream(), metadata=bearer("sk-bot-key"))
    events = [event async for event in call if event.WhichOneof("event") == "chunk"]
    assert "".join(c.delta.text for event in events for c in event.chunk.choices) == expected
