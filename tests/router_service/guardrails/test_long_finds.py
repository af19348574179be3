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
from router_service.guardrails._long_finds import GAP_HOLD_CHARS
from tests.conftest import StartRouter
from tests.router_service.auth.helpers import bearer, chat, chat_stream, client, guarded_config
from tests.router_service.guardrails.test_answer_screen import _counting

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
    # Pasted where its line breaks became spaces, its short last line without padding.
    "-----BEGIN PRIVATE KEY----- "
    + (_BODY.strip() * 2 + " ") * 6
    + "AbCd -----END PRIVATE KEY-----",
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


@pytest.mark.parametrize("pem", PEMS, ids=["encrypted", "spaced", "long-label"])
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
    # it arrives, then redacted as the whole text is (its base64 body only: not the word of
    # prose on the line after it).
    text = f"{PROSE}it begins -----BEGIN PRIVATE KEY-----\n{_BODY * 5}and then {after}"
    unary = PII.redact(text, Counter())
    assert unary is not None and "begins [REDACTED:private_key]\nand then " in unary
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


# An answer explaining PEM files: its BEGIN and END lines quoted far apart, prose between them.
EXPLAINED = (
    f"A key file starts with -----BEGIN PRIVATE KEY----- on a line of its own. {PROSE * 40}"
    "Its last line is -----END PRIVATE KEY-----, and nothing follows it. "
)


def _released_as_fed(text: str, step: int = 4) -> list[tuple[int, int]]:
    """(characters fed, characters released) after each piece of `step` characters."""
    screen, fed, out = TextScreen((PII,), {}), 0, 0
    points = []
    for at in range(0, len(text), step):
        out += len(screen.feed(text[at : at + step]))
        fed = min(len(text), at + step)
        points.append((fed, out))
    return points


def test_prose_between_a_begin_mention_and_a_far_end_line_is_no_key() -> None:
    unary = PII.redact(EXPLAINED, Counter())
    assert unary == EXPLAINED.replace("-----BEGIN PRIVATE KEY-----", "[REDACTED:private_key]")
    _cut_anywhere_as_unary(EXPLAINED, unary)
    # Nor does a stream hold it: what is out trails what came by the window at most (the
    # marker is shorter than the BEGIN line it replaces).
    for fed, out in _released_as_fed(EXPLAINED):
        assert out >= fed - 160 - 5, fed


def test_a_key_s_body_interrupted_by_prose_is_redacted_through_its_end_line() -> None:
    # (Before, to where the prose began: the END line showed, and any key line after the prose.)
    rest = "(the rest: see the vault) -----END PRIVATE KEY-----"
    pem = f"-----BEGIN PRIVATE KEY-----\n{_BODY * 3}{rest}"
    text = f"{PROSE}here:\n{pem}\n{PROSE * 3}"
    unary = PII.redact(text, Counter())
    assert unary == text.replace(pem, "[REDACTED:private_key]")
    _cut_anywhere_as_unary(text, unary)


@pytest.mark.parametrize("after", ["\n" + PROSE * 12, "\nThat is all, thanks! " + "Bye now. " * 60])
def test_what_follows_a_long_key_is_released_once_its_block_ends(after: str) -> None:
    # A key of ~3 KiB: held from its BEGIN line; once its END line (or, cut short, prose that
    # no body holds) came, the text is released as a stream's is, not half the key later. (Cut
    # short: once GAP_HOLD_CHARS passed with no body run after the prose, `_past_prose`.)
    for end in ("-----END PRIVATE KEY-----", ""):
        text = f"{PROSE}-----BEGIN PRIVATE KEY-----\n{_BODY * 100}{end}{after}"
        closed = text.index(after) + (40 if end else GAP_HOLD_CHARS)
        assert _stream([*text, ""]) == PII.redact(text, Counter())
        for fed, out in _released_as_fed(text):
            if fed >= closed + 160 + 32:
                assert out >= fed - closed - 160 - 32 - 32, (end, fed, out)


def test_a_key_cut_short_past_20000_characters_is_redacted_whole_streamed_as_unary() -> None:
    # No END line after ~30,000 characters of base64 (a 16 KiB RSA key is ~13,000): its body
    # is redacted through its last line, not only its first 20,000 characters.
    lines = [f"{n:05d}" + _BODY[5:-1] * 2 for n in range(460)]
    text = f"{PROSE}-----BEGIN PRIVATE KEY-----\n" + "\n".join(lines) + f"\nThat is all. {PROSE}"
    unary = PII.redact(text, Counter())
    assert unary == f"{PROSE}[REDACTED:private_key]\nThat is all. {PROSE}"
    assert _stream([text[i : i + 200] for i in range(0, len(text), 200)] + [""]) == unary


async def test_a_quoted_begin_line_takes_no_prose_unary_or_streamed(
    fake: FakeUpstream, router: Any
) -> None:
    expected = EXPLAINED.replace("-----BEGIN PRIVATE KEY-----", "[REDACTED:private_key]")
    fake.state.set_scenario(Scenario(content=EXPLAINED))
    unary = await router.stub.Chat(chat(), metadata=bearer("sk-bot-key"))
    assert unary.completion.choices[0].message.text == expected
    call = router.stub.ChatStream(chat_stream(), metadata=bearer("sk-bot-key"))
    events = [event async for event in call if event.WhichOneof("event") == "chunk"]
    assert "".join(c.delta.text for event in events for c in event.chunk.choices) == expected


_RAW = "".join(
    chr(65 + (i * 7) % 26) + chr(97 + (i * 11) % 26) + str(i % 10) + "+/"[i % 2] for i in range(400)
)
_LINES = [_RAW[i : i + 64] for i in range(0, len(_RAW), 64)]
# Keys as users paste them: each form's body is key material, however it is framed.
PASTED = {
    "groups_of_four": "\n".join(" ".join(x[i : i + 4] for i in range(0, 64, 4)) for x in _LINES),
    "quoted": "\n".join("> " + x for x in _LINES) + "\n> ",
    "commented": "\n".join("# " + x for x in _LINES) + "\n# ",
    "html_breaks": "<br>".join(_LINES) + "<br>",
    "no_break_spaces": "\u00a0\n".join(_LINES) + "\u00a0\n",
    "numbered": "\n".join(f"{n}: {x}" for n, x in enumerate(_LINES)) + "\n",
    "url_safe": "\n".join(x.replace("+", "-").replace("/", "_") for x in _LINES) + "\n",
    "string_literals": '\\n"\n"'.join(_LINES) + '\\n"\n"',
}


@pytest.mark.parametrize("body", PASTED.values(), ids=PASTED)
def test_a_key_pasted_in_any_framing_is_redacted_whole_streamed_as_unary(body: str) -> None:
    pem = f"-----BEGIN PRIVATE KEY-----\n{body}-----END PRIVATE KEY-----"
    text = f"{PROSE}here:\n{pem}\n{PROSE}"
    unary = PII.redact(text, Counter())
    assert unary == text.replace(pem, "[REDACTED:private_key]")
    _cut_anywhere_as_unary(text, unary)


@pytest.mark.parametrize("run", ["-" * 30_000, "x-" * 15_000, "\n" + "x-" * 15_000])
def test_a_begin_line_before_a_long_address_run_is_screened_in_linear_work(run: str) -> None:
    """A BEGIN line right before a long run an address's name part may hold (dashes, `x-x-…`):
    the run's hold keeps the BEGIN line's find back too, and the held text is looked at again
    as it grows by half, not each chunk (100K dashes cost ~6 s of CPU, 40K of `x-x-` ~10 s)."""
    text = f"{PROSE}-----BEGIN PRIVATE KEY-----{run}"
    unary = PII.redact(text, Counter())
    assert unary is not None and unary.startswith(f"{PROSE}[REDACTED:private_key]")
    rule = _counting("private_key", "email")
    screen = TextScreen((rule,), {})
    out = [screen.feed(text[i : i + 20]) for i in range(0, len(text), 20)]
    out.append(screen.feed("", final=True))
    assert "".join(out) == unary
    assert rule.scanned < 12 * len(text)
