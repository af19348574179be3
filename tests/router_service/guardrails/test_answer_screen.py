"""Answer-side screening without a server: a unary answer's choices, and a streamed text whose
finds arrive split across every possible chunk boundary (one character a chunk, two pieces cut
at every position), for each built-in detector, redact and block, several choices at once."""

from __future__ import annotations

import random
from collections import Counter
from collections.abc import Iterable, Iterator
from typing import Any

import orjson
import pytest

from clients.switchboard.v1 import chat_pb2
from router_service.config import GuardrailConfig
from router_service.guardrails import (
    HOLD_BACK_CHARS,
    RELEASE_STEP_CHARS,
    AnswerGuard,
    Match,
    Rule,
    TextScreen,
)

pytestmark = pytest.mark.timeout(60)

EMAIL = "jane.doe@example.com"
CARD = "4111 1111 1111 1111"
AWS_KEY = "AKIAIOSFODNN7EXAMPLE"
PEM = "-----BEGIN PRIVATE KEY-----\n" + "MIIEvQIBADANBgkqhkiG9w0BAQEFAASC\n" * 12
PEM += "-----END PRIVATE KEY-----"
PROSE = "The quick brown fox jumps over the lazy dog, then rests a while. "


def _rule(name: str, action: str, *detectors: str, patterns: Iterable[str] = ()) -> Rule:
    config = {"name": name, "detect": list(detectors), "patterns": list(patterns)}
    return Rule(GuardrailConfig.model_validate({**config, "action": action}))


PII = _rule("pii", "redact", "email", "credit_card", "phone", "private_key")
SECRETS = _rule("secrets", "block", "api_key")
CODENAME = _rule("codename", "block", patterns=[r"(?i)\bproject\s+falcon\b"])


def _stream(pieces: Iterable[str], *rules: Rule) -> tuple[list[str], TextScreen]:
    """Each piece fed in turn, the last one final; what each feed released."""
    pieces = list(pieces)
    screen = TextScreen(rules or (PII,), {})
    out = [screen.feed(piece, final=i == len(pieces) - 1) for i, piece in enumerate(pieces)]
    return out, screen


def _chars(text: str) -> list[str]:
    return [*text, ""]  # then the finish chunk


@pytest.mark.parametrize(
    ("secret", "detector"),
    [(EMAIL, "email"), (CARD, "credit_card"), ("+44 20 7946 0958", "phone"), (PEM, "private_key")],
)
def test_a_find_fed_one_character_a_chunk_is_redacted_whole(secret: str, detector: str) -> None:
    text = PROSE * 3 + f"write to {secret}, thanks. " + PROSE * 3
    out, _ = _stream(_chars(text))
    assert "".join(out) == text.replace(secret, f"[REDACTED:{detector}]")


@pytest.mark.parametrize("secret", [EMAIL, CARD])
def test_a_find_cut_in_two_at_every_position_is_redacted(secret: str) -> None:
    text = f"mail {secret} now"
    expected = text.replace(
        secret, "[REDACTED:email]" if "@" in secret else "[REDACTED:credit_card]"
    )
    for cut in range(len(text) + 1):
        out, _ = _stream([text[:cut], text[cut:]])
        assert "".join(out) == expected, cut


def test_text_without_finds_comes_out_whole_in_order_and_held_back_at_most_the_window() -> None:
    text = "".join(f"{PROSE}{i} " for i in range(40))
    screen = TextScreen((PII, SECRETS), {})
    released, fed = "", 0
    for size in (1, 7, 3, 64, 2, 200, 5):
        while fed < len(text) - 300:
            piece = text[fed : fed + size]
            fed += len(piece)
            released += screen.feed(piece)
            assert text.startswith(released)  # nothing lost, nothing added, in order
            # The rest was released at once (in steps).
            assert fed - len(released) < HOLD_BACK_CHARS + RELEASE_STEP_CHARS
            break
    released += screen.feed(text[fed:], final=True)
    assert released == text


def test_a_short_answer_is_held_until_its_choice_finishes() -> None:
    screen = TextScreen((PII,), {})
    assert screen.feed("Hello ") == "" and screen.feed("there.") == ""
    assert screen.feed("", final=True) == "Hello there."


def test_a_block_releases_nothing_of_the_find_and_nothing_after() -> None:
    text = PROSE * 4 + f"the key is {AWS_KEY} use it " + PROSE * 4
    out, screen = _stream(_chars(text), PII, SECRETS)
    released = "".join(out)
    assert screen.blocked == ("secrets", "api_key")
    assert text.startswith(released)
    assert len(released) <= text.index(AWS_KEY)  # not a character of the key
    found: dict[str, Any] = {}
    blocked = TextScreen((SECRETS,), found)
    for char in text:
        blocked.feed(char)
    assert blocked.feed("", final=True) == "" and dict(found["secrets"]) == {"api_key": 1}


def test_an_operator_pattern_split_across_chunks_blocks() -> None:
    text = "We should discuss Project   Falcon soon."
    for cut in range(len(text) + 1):
        out, screen = _stream([text[:cut], text[cut:]], CODENAME)
        assert screen.blocked == ("codename", "pattern") and "".join(out) == "", cut


def test_finds_are_counted_once_by_rule_and_detector() -> None:
    found: dict[str, Any] = {}
    screen = TextScreen((PII,), found)
    text = f"{EMAIL} and {CARD} and again {EMAIL} " + PROSE * 5
    out = [screen.feed(c) for c in text] + [screen.feed("", final=True)]
    assert "".join(out).count("[REDACTED:email]") == 2
    assert dict(found["pii"]) == {"email": 2, "credit_card": 1}


def _delta_chunk(index: int, **delta: Any) -> chat_pb2.ChatCompletionChunk:
    finish = delta.pop("finish", None)
    choice = chat_pb2.ChunkChoice(index=index, delta=chat_pb2.ChatMessage(**delta))
    if finish:
        choice.finish_reason_raw = finish
        choice.finish_reason = chat_pb2.FINISH_REASON_STOP
    return chat_pb2.ChatCompletionChunk(id="c", choices=[choice])


def _two_choices(texts: tuple[str, str]) -> list[chat_pb2.ChatCompletionChunk]:
    """Two choices' deltas interleaved, one character each per chunk, then each one's finish."""
    chunks = [_delta_chunk(0, role=chat_pb2.ROLE_ASSISTANT, text="")]
    for i in range(max(map(len, texts))):
        chunk = chat_pb2.ChatCompletionChunk(id="c")
        for index, text in enumerate(texts):
            if i < len(text):
                delta = chat_pb2.ChatMessage(text=text[i])
                chunk.choices.append(chat_pb2.ChunkChoice(index=index, delta=delta))
        chunks.append(chunk)
    chunks += [_delta_chunk(1, finish="stop"), _delta_chunk(0, finish="stop")]
    return chunks


def _relayed(chunks: list[chat_pb2.ChatCompletionChunk]) -> dict[int, tuple[str, str]]:
    texts: dict[int, str] = {}
    finishes: dict[int, str] = {}
    for chunk in chunks:
        for choice in chunk.choices:
            texts[choice.index] = texts.get(choice.index, "") + choice.delta.text
            if choice.finish_reason_raw:
                finishes[choice.index] = choice.finish_reason_raw
    return {index: (texts[index], finishes.get(index, "")) for index in texts}


def test_each_choice_of_a_stream_is_screened_on_its_own() -> None:
    guard = AnswerGuard((PII, SECRETS))
    screen = guard.stream(2)
    texts = (PROSE * 3 + f"mail {EMAIL} ok", f"card {CARD}, then " + PROSE * 2)
    out = screen.chunks(_two_choices(texts))
    assert _relayed(out) == {
        0: (texts[0].replace(EMAIL, "[REDACTED:email]"), "stop"),
        1: (texts[1].replace(CARD, "[REDACTED:credit_card]"), "stop"),
    }
    assert not screen.cut
    assert guard.report() == ("pii",)
    # Held deltas are dropped, not sent empty: fewer chunks than the upstream's.
    assert 2 < len(out) < len(_two_choices(texts))


def test_a_blocked_choice_ends_with_content_filter_and_the_stream_is_cut_when_all_ended() -> None:
    guard = AnswerGuard((PII, SECRETS))
    screen = guard.stream(2)
    before = PROSE * 3 + "the key: "
    texts = (f"{before}{AWS_KEY} and more " + PROSE * 3, "fine " + PROSE)
    chunks = _two_choices(texts)
    relayed = _relayed(screen.chunks(chunks[: len(chunks) - 2]))  # before either finish
    released, finish = relayed[0]
    assert finish == "content_filter"
    # What was released before the key was found: some of the text before it, never more.
    assert released and before.startswith(released) and len(released) < len(before)
    assert not screen.cut  # choice 1 still runs
    relayed = _relayed(screen.chunks(chunks[len(chunks) - 2 :]))
    assert relayed == {1: (texts[1], "stop")}  # choice 0's own finish is dropped
    assert guard.report() == ("secrets",)
    single = AnswerGuard((SECRETS,)).stream(1)
    single.chunks([_delta_chunk(0, text=f"x {AWS_KEY} " + PROSE * 3)])
    assert single.cut


def test_tool_call_arguments_and_refusals_are_screened_across_fragments() -> None:
    guard = AnswerGuard((PII,))
    screen = guard.stream(1)
    arguments = f'{{"to": "{EMAIL}", "body": "{PROSE}"}}'
    first = chat_pb2.ToolCall(index=0, id="call_1", type="function")
    first.function.name = "send"
    chunks = [_delta_chunk(0, tool_calls=[first])]
    for char in arguments:
        fragment = chat_pb2.ToolCall(index=0, function=chat_pb2.FunctionCall(arguments=char))
        chunks.append(_delta_chunk(0, tool_calls=[fragment]))
    chunks += [_delta_chunk(0, refusal=char) for char in f"I won't mail {EMAIL}."]
    chunks.append(_delta_chunk(0, finish="tool_calls"))
    out = screen.chunks(chunks)
    calls = [call for chunk in out for call in chunk.choices[0].delta.tool_calls]
    assert calls[0].id == "call_1" and calls[0].function.name == "send"
    assert "".join(c.function.arguments for c in calls) == arguments.replace(
        EMAIL, "[REDACTED:email]"
    )
    refusal = "".join(chunk.choices[0].delta.refusal for chunk in out)
    assert refusal == "I won't mail [REDACTED:email]."


def _completion(*contents: str) -> chat_pb2.ChatCompletion:
    completion = chat_pb2.ChatCompletion(id="x")
    for i, text in enumerate(contents):
        message = chat_pb2.ChatMessage(role=chat_pb2.ROLE_ASSISTANT, text=text)
        completion.choices.add(
            index=i,
            message=message,
            finish_reason=chat_pb2.FINISH_REASON_STOP,
            finish_reason_raw="stop",
            logprobs_json='{"content": []}',
            matched_stop="END",
        )
    return completion


def test_a_unary_answer_is_redacted_and_a_blocked_choice_withheld() -> None:
    audited: list[tuple[str, str]] = []
    guard = AnswerGuard((PII, SECRETS), lambda *line: audited.append(line))
    completion = _completion(f"mail {EMAIL}", f"key {AWS_KEY} from {EMAIL}", "plain")
    assert guard.completion(completion) == ("pii", "secrets")
    redacted, withheld, plain = completion.choices
    assert redacted.message.text == "mail [REDACTED:email]" and not redacted.logprobs_json
    assert withheld.message.WhichOneof("content") is None
    assert withheld.message.role == chat_pb2.ROLE_ASSISTANT
    assert withheld.finish_reason == chat_pb2.FINISH_REASON_CONTENT_FILTER
    assert withheld.finish_reason_raw == "content_filter" and not withheld.logprobs_json
    assert not withheld.HasField("matched_stop") and plain.matched_stop == "END"
    assert plain.message.text == "plain" and plain.logprobs_json
    assert audited == [
        ("answer_withheld", "guardrail:secrets:api_key"),
        ("answer_redacted", "guardrail:pii"),
    ]
    assert AWS_KEY not in str(completion) and EMAIL not in str(completion)


class _Counting(Rule):
    """A real rule that also counts the characters it was asked to scan."""

    def __init__(self, config: GuardrailConfig) -> None:
        super().__init__(config)
        self.scanned = 0

    def matches(self, text: str, start: int = 0) -> Iterator[Match]:
        self.scanned += len(text)
        return super().matches(text, start)


def _counting(*detectors: str) -> _Counting:
    config = {"name": "pii", "detect": list(detectors), "action": "redact"}
    return _Counting(GuardrailConfig.model_validate(config))


def test_a_long_find_is_held_whole_and_scanned_in_linear_work() -> None:
    """A 16 KiB private key streamed four characters a chunk: held from its BEGIN line to its
    END line and redacted whole, though it is far longer than the hold-back window; the
    rescans of the growing held text stay linear in it."""
    body = "MIIEvQIBADANBgkqhkiG9w0BAQEFAASC\n" * 500
    pem = f"-----BEGIN PRIVATE KEY-----\n{body}-----END PRIVATE KEY-----"
    text = PROSE * 3 + pem + "\n" + PROSE * 3
    rule = _counting("private_key")
    screen = TextScreen((rule,), {})
    out = [screen.feed(text[i : i + 4]) for i in range(0, len(text), 4)]
    out.append(screen.feed("", final=True))
    assert "".join(out) == text.replace(pem, "[REDACTED:private_key]")
    assert rule.scanned < 12 * len(text)


def test_a_hostile_answer_of_near_misses_is_scanned_in_linear_work() -> None:
    hostile = ("a@" * 40 + " 4 1 1 1 +1 (555 sk-" + "x" * 30 + " ") * 2000
    rule = _counting("email", "credit_card", "phone", "api_key")
    screen = TextScreen((rule,), {})
    out = [screen.feed(hostile[i : i + 3]) for i in range(0, len(hostile), 3)]
    out.append(screen.feed(EMAIL, final=True))
    assert "".join(out) == hostile + "[REDACTED:email]"
    assert rule.scanned < 12 * len(hostile)


def test_a_claude_block_boundary_releases_the_held_texts_before_it_screened() -> None:
    """A Claude server tool block (or a text block's start) passes as it comes: the reasoning
    or the text held before it are released, screened, in a chunk before it; a block rule's
    find in them withholds the choice before the block goes out."""
    screen = AnswerGuard((PII, SECRETS)).stream(1)
    thought, said = f"ask {EMAIL}", f"mail {EMAIL} first"
    call = {"anthropic_block": {"type": "server_tool_use", "id": "srvtoolu_1", "input": {}}}
    cited = {"anthropic_text_block": {"type": "text", "text": "", "citations": []}}
    chunks = [
        _extra_chunk({"reasoning_content": thought}),
        _extra_chunk(call),
        _delta_chunk(0, text=said),
        _extra_chunk(cited),
    ]
    out = [(c.choices[0].delta.text, c.choices[0].delta.extra_json) for c in screen.chunks(chunks)]
    redacted = "[REDACTED:email]"
    assert out == [
        ("", orjson.dumps({"reasoning_content": thought.replace(EMAIL, redacted)}).decode()),
        ("", chunks[1].choices[0].delta.extra_json),
        (said.replace(EMAIL, redacted), ""),
        ("", chunks[3].choices[0].delta.extra_json),
    ]
    blocked = AnswerGuard((SECRETS,)).stream(1)
    [withheld] = blocked.chunks([_delta_chunk(0, text=f"key {AWS_KEY}"), _extra_chunk(call)])
    assert withheld.choices[0].finish_reason_raw == "content_filter"
    assert not withheld.choices[0].delta.extra_json  # the block did not go out


def _extra_chunk(extra: dict[str, Any]) -> chat_pb2.ChatCompletionChunk:
    return _delta_chunk(0, extra_json=orjson.dumps(extra).decode())


def test_a_code_interpreter_s_logs_in_a_unary_answer_are_redacted() -> None:
    ran = {"type": "code_interpreter_call", "id": "ci_1", "code": "print(rows[0])",
           "outputs": [{"type": "logs", "logs": f"name,mail\nJane,{EMAIL}"}]}  # fmt: skip
    completion = _completion("Done.")
    completion.choices[0].message.extra_json = orjson.dumps({"hosted_items": [ran]}).decode()

    assert AnswerGuard((PII,), lambda *line: None).completion(completion) == ("pii",)
    said = orjson.loads(completion.choices[0].message.extra_json)["hosted_items"][0]
    assert said["outputs"][0]["logs"] == "name,mail\nJane,[REDACTED:email]"
    assert said["id"] == "ci_1" and said["outputs"][0]["type"] == "logs"


@pytest.mark.parametrize("escaped", [r"\\n", r"\\t", r"\\u00e9"])
def test_a_stream_reads_escapes_as_the_whole_text_does_where_its_kept_context_begins(
    escaped: str,
) -> None:
    # Tool call arguments are JSON: `\\n` is an escaped backslash then a letter, which hides a
    # key after it in the whole text. Fed one character a chunk, a screen keeps the released
    # text from offset 32 on as context: between the two backslashes, where reading `\n` (a
    # line break) would find a key there and redact the part of it not yet released.
    keys = _rule("keys", "redact", "api_key")
    text = "x" * 31 + escaped + "sk-proj-" + "a1B2c3D4e5" * 4 + " " + PROSE * 3
    assert keys.first(text) is None
    out, _ = _stream(_chars(text), keys)
    assert "".join(out) == text


# Runs of digit groups, short and long (a long one's cards are decided by its sums), a card
# (Luhn-valid) in each; finds follow one another in a run, so where one ends moves the next.
DIGIT_GROUPS = [
    "ids 4 4 4 4 4 4 4 4 4 4 4 4 4 4 4 4 4 4 4 4 4 4 4 4 4 4 end",
    "n " + "4 " * 40 + "4111 1111 1111 1111 " + "3 7 " * 30 + "x",
    "n " + "44 " * 30 + "5500-0000-0000-0004 " + "44-" * 30 + "4 ok",
    "n " + "4-" * 50 + "4111111111111111 5 27 " + "4444 " * 20 + "+44 20 7946 0958",
]


@pytest.mark.parametrize("text", DIGIT_GROUPS)
def test_digit_groups_streamed_cut_anywhere_are_redacted_as_unary(text: str) -> None:
    unary = PII.redact(text, Counter()) or text
    assert "[REDACTED:credit_card]" in unary
    for cut in range(len(text) + 1):
        out, _ = _stream([text[:cut], text[cut:]])
        assert "".join(out) == unary, cut
    out, _ = _stream(_chars(text))
    assert "".join(out) == unary


# Pieces of digit-heavy text (cards, 2-digit numbers, IBAN-like groups, phones, emails) joined
# by separators that continue a run of digit groups or break it.
_PIECES = (
    *(CARD, "5500-0000-0000-0004", "3782 822463 10005", "4111111111111111", "12/26", "5 27"),
    *("17", "123", "4", "44", "4444", "DE89 3704 0044 0532 0130 00", "+44 20 7946 0958"),
    *("+1 415 555 0100", "(555) 123-4567", "(+44) 20 7946 0958", "(24 h)", EMAIL, "7", "x"),
)
_JOINS = (" ", " ", "-", "", "  ", ". ", "\u00a0", "\n", "\\n")


@pytest.mark.parametrize("seed", range(4))
def test_random_digit_heavy_texts_streamed_in_pieces_are_redacted_as_unary(seed: int) -> None:
    rng = random.Random(seed)  # finds in a run follow one another: as the whole text's scan
    for _ in range(60):
        parts = [rng.choice(_PIECES) + rng.choice(_JOINS) for _ in range(rng.randint(5, 40))]
        text = "".join(parts)
        unary = PII.redact(text, Counter()) or text
        cuts = sorted(rng.sample(range(len(text) + 1), min(len(text), rng.randint(1, 40))))
        pieces = [text[a:b] for a, b in zip([0, *cuts], [*cuts, len(text)], strict=True)]
        out, _ = _stream(pieces)
        assert "".join(out) == unary, (text, cuts)
