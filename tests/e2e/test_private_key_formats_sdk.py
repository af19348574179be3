"""Private keys in an answer as an OpenAI SDK user sees them through the edge: a PGP private key
block pasted in any framing (quoted, commented, numbered, in string literals; cut short too), an
ssh.com SSH2 key and a PuTTY key file (pasted with spaces for its line breaks too) are redacted
whole, `x-switchboard-guardrails` naming the rule, unary and streamed alike; a PEM
block with a line of prose inside its body too; a PGP public key block comes through untouched."""

from __future__ import annotations

from collections import Counter
from typing import Any

import openai
import pytest

from router_service.fake_upstream import FakeUpstream, Scenario
from tests.conftest import RouterHandle
from tests.e2e.conftest import Guarded
from tests.router_service.guardrails.test_key_formats import (
    LINES,
    PII,
    cut_short,
    framed,
    pgp,
    putty,
    ssh2,
)

pytestmark = pytest.mark.timeout(60)

RULE = {"name": "answer-keys", "detect": ["private_key"], "action": "redact"}
PROSE = "and then the answer goes on for a while, as answers do. "
KEYS = {
    **{
        layout: framed(pgp(), layout)
        for layout in ("quoted", "commented", "numbered", "string_literals")
    },
    "pgp": pgp(),
    "putty": putty(2),
    "putty_spaces": framed(putty(3), "spaces"),
    "ssh2": ssh2(),
    "ssh2_numbered": framed(ssh2("PRIVATE"), "numbered"),
    "pgp_quoted_cut_short": cut_short(framed(pgp(), "quoted")),
    "pgp_u0009_json": "\\n".join("\\u0009" + line for line in pgp().split("\n")),
    # Prose inside a PEM body (unary showed the key lines after it: `test_key_prose`).
    "pem_prose_inside": "\n".join(
        [
            "-----BEGIN PRIVATE KEY-----",
            *LINES[:3],
            "see the vault for the rest of it.",
            *LINES[3:],
            "-----END PRIVATE KEY-----",
        ]
    ),
    "pem_prose_inside_quoted": framed(
        "\n".join(["-----BEGIN PRIVATE KEY-----", *LINES[:3], "Thanks, bye", *LINES[3:]]),
        "quoted",
    ),
}


@pytest.fixture
async def sdk(guarded_sdk: Guarded) -> openai.AsyncOpenAI:
    stack: tuple[RouterHandle, openai.AsyncOpenAI] = await guarded_sdk(
        [RULE | {"apply_to": ["response"]}]
    )
    return stack[1]


def _user(text: str) -> Any:
    return [{"role": "user", "content": text}]


@pytest.mark.parametrize("key", KEYS.values(), ids=KEYS)
async def test_a_private_key_in_an_answer_is_redacted_unary_and_streamed(
    sdk: openai.AsyncOpenAI, fake: FakeUpstream, key: str
) -> None:
    text = f"{PROSE}here:\n{key}\n{PROSE * 3}"
    expected = PII.redact(text, Counter())
    assert expected is not None and all(line[:16] not in expected for line in LINES)
    fake.state.set_scenario(Scenario(content=text))
    raw = await sdk.chat.completions.with_raw_response.create(model="chain", messages=_user("hi"))
    assert raw.headers["x-switchboard-guardrails"] == "answer-keys"
    assert raw.parse().choices[0].message.content == expected
    stream = await sdk.chat.completions.create(model="chain", messages=_user("hi"), stream=True)
    pieces = [c.choices[0].delta.content or "" async for c in stream if c.choices]
    assert len(pieces) > 10  # (streamed a word a chunk: the key came cut in many pieces)
    assert "".join(pieces) == expected


async def test_a_pgp_public_key_in_an_answer_comes_through(
    sdk: openai.AsyncOpenAI, fake: FakeUpstream
) -> None:
    text = f"{PROSE}mine:\n{pgp('PUBLIC')}\n{PROSE * 3}"
    fake.state.set_scenario(Scenario(content=text))
    raw = await sdk.chat.completions.with_raw_response.create(model="chain", messages=_user("hi"))
    assert "x-switchboard-guardrails" not in raw.headers
    assert raw.parse().choices[0].message.content == text
    stream = await sdk.chat.completions.create(model="chain", messages=_user("hi"), stream=True)
    assert "".join([c.choices[0].delta.content or "" async for c in stream if c.choices]) == text
