"""Keys as pasted in code and cut short: an SSH2 key in string literals not escaped (a list of
them, JavaScript's/Java's `"…\\n" +` concatenation), a key cut short whose body is URL-safe
base64 (`-`, `_`), and the word of prose right after a key cut short (left as it is). Each
redacted alike in a unary and a streamed answer over gRPC, and a stream cut anywhere."""

from __future__ import annotations

from collections import Counter
from typing import Any

import pytest

from router_service.fake_upstream import FakeUpstream, Scenario
from tests.conftest import StartRouter
from tests.router_service.auth.helpers import bearer, chat, chat_stream, client, guarded_config
from tests.router_service.guardrails.test_key_formats import (
    LINES,
    PII,
    PROSE,
    _cut_anywhere_as_unary,
    cut_short,
    framed,
    pgp,
    ssh2,
)

pytestmark = pytest.mark.timeout(120)


def _url_safe(text: str) -> str:
    return text.replace("+", "-").replace("/", "_")


def _literals(key: str, between: str) -> str:
    """`key`'s lines as string literals not escaped (its `\\` and quotes as they are)."""
    return '"' + between.join(key.split("\n")) + '"'


PASTES = {
    "ssh2_js_concat": _literals(ssh2(), '\\n" +\n  "'),
    "ssh2_js_concat_cut_short": _literals(cut_short(ssh2()), '\\n" +\n  "'),
    "ssh2_single_quoted_concat": _literals(ssh2(), "\\n' +\n'").replace('"', "'", 1)[:-1] + "'",
    "ssh2_list": "[\n  " + _literals(ssh2("PRIVATE"), '",\n  "') + "\n]",
    "pgp_url_safe_cut_short": _url_safe(cut_short(framed(pgp(), "quoted"))),
    "pgp_url_safe_cut_short_numbered": _url_safe(cut_short(framed(pgp(), "numbered"))),
}
KEY_TEXT = [line[:16] for line in LINES] + [_url_safe(line[:16]) for line in LINES]


@pytest.mark.parametrize("key", PASTES.values(), ids=PASTES)
def test_a_key_pasted_in_code_or_url_safe_is_redacted_whole_streamed_as_unary(key: str) -> None:
    text = f"{PROSE}here:\n{key}\nThat is all for now, thanks. {PROSE}"
    unary = PII.redact(text, Counter())
    assert unary is not None and "[REDACTED:private_key]" in unary
    assert not [line for line in KEY_TEXT if line in unary], unary
    # The prose after it is left whole, its first word too.
    assert f"\nThat is all for now, thanks. {PROSE}" in unary
    _cut_anywhere_as_unary(text, unary)


@pytest.fixture
async def router(fake: FakeUpstream, start_router: StartRouter) -> Any:
    rule = {"name": "answer-keys", "detect": ["private_key"], "action": "redact"}
    config = guarded_config(
        fake.base_url, client("bot", "sk-bot-key"), guardrails=[rule | {"apply_to": ["response"]}]
    )
    return await start_router(config)


@pytest.mark.parametrize("key", PASTES.values(), ids=PASTES)
async def test_a_key_pasted_in_code_or_url_safe_is_redacted_over_grpc(
    fake: FakeUpstream, router: Any, key: str
) -> None:
    text = f"{PROSE}here:\n{key}\nThat is all for now, thanks. {PROSE}"
    fake.state.set_scenario(Scenario(content=text))
    unary = (await router.stub.Chat(chat(), metadata=bearer("sk-bot-key"))).completion
    answer = unary.choices[0].message.text
    assert "[REDACTED:private_key]" in answer and not [x for x in KEY_TEXT if x in answer]
    assert answer.endswith(f"\nThat is all for now, thanks. {PROSE}")
    call = router.stub.ChatStream(chat_stream(), metadata=bearer("sk-bot-key"))
    events = [event async for event in call if event.WhichOneof("event") == "chunk"]
    assert "".join(c.delta.text for event in events for c in event.chunk.choices) == answer


@pytest.mark.parametrize("last", ["\nqrst\n", "\nAQAB\n", "\nYWx8 ", "\nYWx sure, "])
def test_a_key_cut_short_keeps_its_short_last_line_in_its_find(last: str) -> None:
    # A body's short last line (however word-like) is the key's; the prose after it is not.
    pem = "-----BEGIN PRIVATE KEY-----\n" + "\n".join(LINES) + last.rstrip(", ")
    text = f"{PROSE}here:\n{pem}{last[len(last.rstrip(', ')) :]}That is all. {PROSE}"
    unary = PII.redact(text, Counter())
    assert unary is not None and unary.startswith(f"{PROSE}here:\n[REDACTED:private_key]")
    assert last.strip(" ,\n")[:3] not in unary.replace("quick", ""), unary
    assert unary.endswith(f"That is all. {PROSE}")
    _cut_anywhere_as_unary(text, unary)


SAME_LINE = [
    (convert, layout)
    for convert in (str, _url_safe)
    for layout in ("quoted", "numbered", "trailing_spaces")
]


@pytest.mark.parametrize(
    ("convert", "layout"), SAME_LINE, ids=[f"{c.__name__}-{layout}" for c, layout in SAME_LINE]
)
def test_a_framed_key_cut_short_before_prose_on_its_last_line_is_redacted_whole(
    convert: Any, layout: str
) -> None:
    # Its last base64 line went out when prose followed on that line (not after a line break).
    text = f"{PROSE}here:\n{convert(cut_short(framed(pgp(), layout)))} That is all. {PROSE}"
    unary = PII.redact(text, Counter())
    assert unary is not None and not [line for line in KEY_TEXT if line in unary], unary
    assert unary.endswith(f" That is all. {PROSE}")
    _cut_anywhere_as_unary(text, unary)
