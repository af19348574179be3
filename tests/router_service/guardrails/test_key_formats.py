"""Private key formats beside PEM's `-----BEGIN … PRIVATE KEY-----`: an armored PGP private key
block (`-----BEGIN PGP PRIVATE KEY BLOCK-----`, its `Version:`/`Comment:` headers, a blank line,
base64, a `=XXXX` checksum line), a PuTTY key file (`PuTTY-User-Key-File-2:`/`-3:` through its
`Private-MAC:` line), OpenSSH's and PKCS#8's encrypted form. Each is redacted whole, however it is
framed, a stream cut anywhere as the unary answer; a PGP public key block is left as it is."""

from __future__ import annotations

import json
from collections import Counter
from typing import Any

import pytest

from router_service.config import GuardrailConfig
from router_service.fake_upstream import FakeUpstream, Scenario
from router_service.guardrails import Rule, TextScreen
from tests.conftest import StartRouter
from tests.router_service.auth.helpers import bearer, chat, chat_stream, client, guarded_config

pytestmark = pytest.mark.timeout(120)

PROSE = "The quick brown fox jumps over the lazy dog, then rests a while. "
PII = Rule(
    GuardrailConfig.model_validate(
        {"name": "pii", "detect": ["email", "credit_card", "phone", "private_key"]}
        | {"action": "redact"}
    )
)
_RAW = "".join(
    chr(65 + (i * 5) % 26) + chr(97 + (i * 3) % 26) + str(i % 10) + "/+"[i % 2] for i in range(300)
)
LINES = [_RAW[i : i + 64] for i in range(0, len(_RAW), 64)]
BODY = "\n".join(LINES) + "\n"


def pgp(kind: str = "PRIVATE", headers: str = "Version: GnuPG v2\nComment: my laptop key\n") -> str:
    return (
        f"-----BEGIN PGP {kind} KEY BLOCK-----\n{headers}\n{BODY}=Xq3v\n"
        f"-----END PGP {kind} KEY BLOCK-----"
    )


def ssh2(kind: str = "ENCRYPTED PRIVATE") -> str:
    """ssh.com's key file (RFC 4716's armor): `Subject:`/`Comment:` headers, a quoted value, one
    continued onto the next line by a backslash."""
    return (
        f"---- BEGIN SSH2 {kind} KEY ----\nSubject: alice\n"
        'Comment: "2048-bit rsa, alice@example, Mon Jan 01 2024 \\\nfrom the build box"\n'
        f"{BODY}---- END SSH2 {kind} KEY ----"
    )


def putty(version: int = 2) -> str:
    derivation = (
        "Key-Derivation: Argon2id\nArgon2-Memory: 8192\nArgon2-Passes: 13\n"
        "Argon2-Parallelism: 1\nArgon2-Salt: 0a1b2c3d4e5f60718293a4b5c6d7e8f9\n"
        if version == 3
        else ""
    )
    encryption = "aes256-cbc" if version == 3 else "none"
    return (
        f"PuTTY-User-Key-File-{version}: ssh-rsa\nEncryption: {encryption}\n"
        f"Comment: rsa-key-20240101 of my build box\n{derivation}"
        f"Public-Lines: 2\n{LINES[0]}\n{LINES[1]}\nPrivate-Lines: 3\n"
        f"{LINES[2]}\n{LINES[3]}\n{LINES[4][:40]}\n"
        "Private-MAC: 8f14e45fceea167a5a36dedd4bea2543ab01cd23ef45ab67cd89ef0123456789"
    )


KEYS = {
    "pgp": pgp(),
    "pgp_no_headers": pgp(headers=""),
    # A comment naming where the key lives (a Windows path), a comment longer than a line.
    "pgp_path_comment": pgp(headers="Comment: C:\\Users\\alice\\keys for the office\n"),
    "pgp_long_comment": pgp(
        headers=f"Comment: {'the key of the build box, rotated yearly. ' * 5}\n"
    ),
    "ssh2_encrypted": ssh2(),
    "ssh2": ssh2("PRIVATE"),
    "putty_2": putty(2),
    "putty_3": putty(3),
    "openssh": f"-----BEGIN OPENSSH PRIVATE KEY-----\n{BODY}-----END OPENSSH PRIVATE KEY-----",
    "pkcs8_encrypted": (
        f"-----BEGIN ENCRYPTED PRIVATE KEY-----\n{BODY}-----END ENCRYPTED PRIVATE KEY-----"
    ),
}


def _stream(pieces: list[str]) -> str:
    screen = TextScreen((PII,), {})
    return "".join(screen.feed(p, final=i == len(pieces) - 1) for i, p in enumerate(pieces))


def _cut_anywhere_as_unary(text: str, unary: str) -> None:
    for cut in range(len(text) + 1):
        assert _stream([text[:cut], text[cut:]]) == unary, cut
    assert _stream([*text, ""]) == unary
    assert _stream([text[i : i + 20] for i in range(0, len(text), 20)] + [""]) == unary


@pytest.mark.parametrize("key", KEYS.values(), ids=KEYS)
def test_a_private_key_of_each_format_is_redacted_whole_streamed_as_unary(key: str) -> None:
    text = f"{PROSE}here:\n{key}\n{PROSE * 2}"
    unary = PII.redact(text, Counter())
    assert unary == f"{PROSE}here:\n[REDACTED:private_key]\n{PROSE * 2}"
    _cut_anywhere_as_unary(text, unary)


def framed(key: str, layout: str) -> str:
    """`key` as a user pastes it: each line quoted, commented, listed, numbered, in a string
    literal, with trailing spaces, HTML's line breaks between."""
    lines = key.split("\n")
    if layout == "quoted":
        return "\n".join("> " + line for line in lines)
    if layout == "commented":
        return "\n".join("# " + line for line in lines)
    if layout == "numbered":
        return "\n".join(f"{n}: {line}" for n, line in enumerate(lines, 1))
    if layout == "trailing_spaces":  # (copied from a terminal or an editor)
        return "\n".join(line + "  " for line in lines)
    if layout == "listed":
        return "\n".join("- " + line for line in lines)
    if layout == "spaces":  # (pasted where line breaks became spaces)
        return " ".join(lines)
    if layout == "html_breaks":
        return "<br>".join(lines)
    if layout == "escaped_string_literals":  # (quotes and backslashes escaped, as code has them)
        return "\n".join(f'"{line}\\n"' for line in json.dumps(key)[1:-1].split("\\n"))
    assert layout == "string_literals"
    return '"' + '\\n"\n"'.join(lines) + '"'


FRAMED = [
    *((pgp(), layout) for layout in ("quoted", "commented", "numbered", "string_literals")),
    *((pgp(), layout) for layout in ("trailing_spaces", "html_breaks")),
    *(
        (putty(3), layout)
        for layout in (
            *("quoted", "commented", "numbered", "string_literals"),
            *("listed", "trailing_spaces", "html_breaks"),
        )
    ),
    *((putty(version), "spaces") for version in (2, 3)),
    *((ssh2(), layout) for layout in ("quoted", "numbered", "spaces", "escaped_string_literals")),
]


@pytest.mark.parametrize(
    ("key", "layout"), FRAMED, ids=[f"{k[:3]}-{layout}" for k, layout in FRAMED]
)
def test_a_private_key_framed_as_pasted_is_redacted_streamed_as_unary(
    key: str, layout: str
) -> None:
    key = framed(key, layout)
    text = f"{PROSE}here:\n{key}\n{PROSE * 2}"
    unary = PII.redact(text, Counter())
    assert unary is not None
    # Nothing of the key's body nor its checksum line is left.
    assert all(line not in unary for line in LINES) and "Xq3v" not in unary, unary
    assert unary.startswith(f"{PROSE}here:\n") and unary.endswith(f"\n{PROSE * 2}")
    assert unary.count("[REDACTED:private_key]") == 1
    _cut_anywhere_as_unary(text, unary)


@pytest.mark.parametrize("key", [pgp(), putty(2), ssh2()], ids=["pgp", "putty", "ssh2"])
def test_a_key_in_json_escaped_text_is_redacted_streamed_as_unary(key: str) -> None:
    # As JSON writes it (ssh2's `Comment:` value, continued after a backslash: `\\\n` as sent).
    text = '{"note": "' + PROSE + '", "key": ' + json.dumps(key) + ', "x": 1}'
    unary = PII.redact(text, Counter())
    assert unary == '{"note": "' + PROSE + '", "key": "[REDACTED:private_key]", "x": 1}'
    _cut_anywhere_as_unary(text, unary)


@pytest.mark.parametrize(
    "indent",
    ["\\t", "\\t\\t", "\\r\\n\\t", "\\u0009", "\\t\\u0009"],
    ids=["tab", "tabs", "crlf_tab", "u0009", "tab_u0009"],
)
def test_a_pgp_key_indented_in_json_escaped_text_is_redacted_streamed_as_unary(
    indent: str,
) -> None:
    # Each armor line indented by an escaped tab (a key in a pretty-printed JSON string): the
    # `Comment:` header's words, read after its escape's letter as sent, are still no prose.
    key = indent + ("\\n" + indent).join(pgp().split("\n"))
    text = '{"note": "' + PROSE + '", "key": "' + key + '", "x": 1}'
    unary = PII.redact(text, Counter())
    redacted = indent + "[REDACTED:private_key]"
    assert unary == '{"note": "' + PROSE + '", "key": "' + redacted + '", "x": 1}'
    _cut_anywhere_as_unary(text, unary)


@pytest.mark.parametrize("indent", ["\\t", "\\u0009"], ids=["tab", "u0009"])
def test_an_ssh2_key_indented_in_json_escaped_text_is_redacted_streamed_as_unary(
    indent: str,
) -> None:
    # Its `Comment:` continued after a backslash (`\\\n` as JSON writes it), then an indented
    # line of words: a stream reads the text as sent first, where that line is no prose either.
    key = indent + ("\\n" + indent).join(json.dumps(ssh2())[1:-1].split("\\n"))
    text = '{"note": "' + PROSE + '", "key": "' + key + '", "x": 1}'
    unary = PII.redact(text, Counter())
    redacted = indent + "[REDACTED:private_key]"
    assert unary == '{"note": "' + PROSE + '", "key": "' + redacted + '", "x": 1}'
    _cut_anywhere_as_unary(text, unary)


@pytest.mark.parametrize(
    "text",
    [
        f"{PROSE}mine:\n{pgp('PUBLIC')}\n{PROSE}",
        f"{PROSE}mine:\n{ssh2('PUBLIC')}\n{PROSE}",
        f"{PROSE}A PGP file starts with -----BEGIN PGP PUBLIC KEY BLOCK----- and {PROSE}",
        f"{PROSE}PuTTY keys are PuTTY-User-Key-File-2 files; convert them with puttygen. {PROSE}",
    ],
    ids=["pgp_public_key", "ssh2_public_key", "pgp_public_mention", "putty_mention"],
)
def test_public_keys_and_mentions_are_left_as_they_are(text: str) -> None:
    assert PII.redact(text, Counter()) is None
    _cut_anywhere_as_unary(text, text)


def test_a_pgp_begin_mention_takes_no_prose_after_it() -> None:
    text = f"It starts with -----BEGIN PGP PRIVATE KEY BLOCK----- on its own line. {PROSE * 4}"
    unary = PII.redact(text, Counter())
    assert unary == text.replace("-----BEGIN PGP PRIVATE KEY BLOCK-----", "[REDACTED:private_key]")
    _cut_anywhere_as_unary(text, unary)


def test_a_putty_key_cut_short_is_redacted_through_its_lines() -> None:
    cut_short = putty(2).split("\nPrivate-MAC:")[0]
    text = f"{PROSE}here:\n{cut_short}\nThat is all for now, thanks. {PROSE}"
    unary = PII.redact(text, Counter())
    assert unary == f"{PROSE}here:\n[REDACTED:private_key]\nThat is all for now, thanks. {PROSE}"
    _cut_anywhere_as_unary(text, unary)


def cut_short(key: str) -> str:
    """`key` without its last two lines (its END line, and its checksum's or last base64 line)."""
    return "\n".join(key.split("\n")[:-2])


CUT_SHORT = [
    *((pgp(), layout) for layout in ("quoted", "commented", "numbered", "string_literals")),
    (KEYS["openssh"], "quoted"),
    (ssh2(), "numbered"),
]


@pytest.mark.parametrize(
    ("key", "layout"), CUT_SHORT, ids=[f"{k[:16]}-{layout}" for k, layout in CUT_SHORT]
)
def test_a_framed_key_cut_short_is_redacted_through_its_body(key: str, layout: str) -> None:
    text = f"{PROSE}here:\n{cut_short(framed(key, layout))}\nThat is all for now, thanks. {PROSE}"
    unary = PII.redact(text, Counter())
    # Nothing of its body is left (its last line too, cut short as it is); the prose after it
    # is, its first word too (`That is`: no body's short last line, as `AAAA` would be).
    assert unary is not None and all(line[:16] not in unary for line in LINES), unary
    assert unary.startswith(f"{PROSE}here:\n") and unary.replace('key]"', "key]").endswith(
        f"[REDACTED:private_key]\nThat is all for now, thanks. {PROSE}"  # (a literal's quote)
    )
    _cut_anywhere_as_unary(text, unary)


# Over gRPC: each key, as pasted, redacted alike in a unary and a streamed answer.
ANSWERS = {
    **{f"pgp_{layout}": framed(pgp(), layout) for layout in ("quoted", "numbered")},
    "putty_3": putty(3),
    "putty_spaces": framed(putty(2), "spaces"),
    "ssh2": ssh2(),
    "ssh2_json": json.dumps(ssh2()),
    "ssh2_u0009_json": "\\u0009" + "\\n\\u0009".join(json.dumps(ssh2())[1:-1].split("\\n")),
    "pgp_quoted_cut_short": cut_short(framed(pgp(), "quoted")),
    "pgp_u0009_json": "\\n".join("\\u0009" + line for line in pgp().split("\n")),
}


@pytest.fixture
async def router(fake: FakeUpstream, start_router: StartRouter) -> Any:
    rule = {"name": "answer-keys", "detect": ["private_key"], "action": "redact"}
    config = guarded_config(
        fake.base_url, client("bot", "sk-bot-key"), guardrails=[rule | {"apply_to": ["response"]}]
    )
    return await start_router(config)


@pytest.mark.parametrize("key", ANSWERS.values(), ids=ANSWERS)
async def test_a_key_in_an_answer_is_redacted_alike_unary_and_streamed_over_grpc(
    fake: FakeUpstream, router: Any, key: str
) -> None:
    text = f"{PROSE}here:\n{key}\n{PROSE * 2}"
    fake.state.set_scenario(Scenario(content=text))
    unary = (await router.stub.Chat(chat(), metadata=bearer("sk-bot-key"))).completion
    answer = unary.choices[0].message.text
    assert answer == PII.redact(text, Counter())
    assert "[REDACTED:private_key]" in answer and all(line not in answer for line in LINES)
    call = router.stub.ChatStream(chat_stream(), metadata=bearer("sk-bot-key"))
    events = [event async for event in call if event.WhichOneof("event") == "chunk"]
    assert "".join(c.delta.text for event in events for c in event.chunk.choices) == answer
