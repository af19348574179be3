"""The built-in detectors: what each finds, the near misses it must leave alone, and that a
hostile text cannot make a scan backtrack without bound."""

from __future__ import annotations

import importlib
import json
from collections import Counter
from typing import Any

import pytest

from router_service import guardrails
from router_service.config import GuardrailConfig
from router_service.guardrails import (
    DETECTORS,
    DetectorName,
    Rule,
    _detectors,
    json_item_texts,
    luhn_valid,
)
from router_service.guardrails._detectors import as_read

pytestmark = pytest.mark.timeout(60)

_PARSER: Any = importlib.import_module("re._parser")


def _rule(*detectors: str, patterns: tuple[str, ...] = ()) -> Rule:
    config = GuardrailConfig.model_validate(
        {"name": "r", "detect": list(detectors), "patterns": list(patterns), "action": "redact"}
    )
    return Rule(config)


def _redacted(detector: str, text: str) -> str | None:
    return _rule(detector).redact(text, Counter())


FOUND = {
    "api_key": [
        "sk-proj-abc123DEF456ghi789JKL012mno",
        "sk-ant-api03-AbCdEf0123456789_xyzXYZ-abcdef",
        "sk-0123456789abcdefghijABCDEFGHIJ",
        "AKIAIOSFODNN7EXAMPLE",
        "ASIAY34FZKBOKMUTVV7A",
        "AIzaSyD-1234567890abcdefghijklmnopqrstu",
        "ghp_0123456789abcdefghijklmnopqrstuvwxyz",
        "github_pat_11ABCDEFG0123456789_abcdefghijklmnop",
        "xoxb-123456789012-1234567890123-AbCdEfGhIjKlMnOp",
        "Bearer eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxIn0.sig",
    ],
    "private_key": [
        "-----BEGIN PRIVATE KEY-----\nMIIEvQIBADANBgkqhkiG9w0BAQEFAASC\n-----END PRIVATE KEY-----",
        "-----BEGIN RSA PRIVATE KEY-----\nProc-Type: 4,ENCRYPTED\nMIIE\n"
        "-----END RSA PRIVATE KEY-----",
    ],
    "email": ["jane.doe@example.com", "a+tag@mail.example.co.uk", "x_y%z@sub-1.example.io"],
    "credit_card": [
        "4111111111111111",
        "4111 1111 1111 1111",
        "5500-0000-0000-0004",
        "378282246310005",  # Amex, 15 digits
        "6011000990139424",
    ],
    "phone": [
        "+14155552671",
        "+44 20 7946 0958",
        "+49 (30) 1234-5678",
        "(415) 555-2671",
        "415-555-2671",
    ],
}

MISSED = {
    "api_key": [
        "sk-learn is a library",
        "sk-this-is-not-a-key-at-all-really",  # long, but no digit: prose
        "sk-12345",  # too short
        "AKIA1234",  # too short
        "the bearer of bad news",
        "Bearer token",
        "ghp_short1",
        "task-0123456789abcdefghij0123",  # `sk-` inside a word
    ],
    "private_key": [
        "-----BEGIN PUBLIC KEY-----\nMIIBIjANBgkqhkiG9w0BAQEFAAOCAQ8A\n-----END PUBLIC KEY-----",
        "-----BEGIN CERTIFICATE-----\nMIIC\n-----END CERTIFICATE-----",
        "a PRIVATE KEY is secret",
    ],
    "email": ["user@localhost", "@handle", "x@y.z", "mail me at example dot com", "a@b"],
    "credit_card": [
        "4111111111111112",  # 16 digits failing Luhn
        "4111 1111 1111 1112",
        "1234567812345678",  # no issuer digit 2-6
        "0000000000000000",
        "411111111111",  # 12 digits
        "41111111111111111111",  # 20 digits
    ],
    "phone": ["12345678901", "version 1.2.3", "2024-01-15", "+1", "call 5551234", "+12 34"],
}


@pytest.mark.parametrize(("detector", "text"), [(d, t) for d, ts in FOUND.items() for t in ts])
def test_each_detector_finds_what_it_names(detector: str, text: str) -> None:
    redacted = _redacted(detector, f"before {text} after")
    assert redacted == f"before [REDACTED:{detector}] after"


@pytest.mark.parametrize(("detector", "text"), [(d, t) for d, ts in MISSED.items() for t in ts])
def test_near_misses_are_left_alone(detector: str, text: str) -> None:
    assert _redacted(detector, f"before {text} after") is None


@pytest.mark.parametrize(("detector", "text"), [(d, t) for d, ts in FOUND.items() for t in ts])
@pytest.mark.parametrize("before", ["\n", "\r\n", "\t", '"', "caf\u00e9 ", "C:\\"])
def test_a_find_after_a_json_escape_is_found_whole_and_the_json_stays_valid(
    detector: str, text: str, before: str
) -> None:
    # Tool call arguments are JSON: a find on a line of its own follows the escape `\n`.
    arguments = json.dumps({"body": f"Regards,{before}{text}\nBye"})
    redacted = _redacted(detector, arguments)
    assert redacted is not None
    assert json.loads(redacted) == {"body": f"Regards,{before}[REDACTED:{detector}]\nBye"}


def test_an_escape_is_read_as_what_it_stands_for_at_the_same_offsets() -> None:
    assert as_read("plain text") == "plain text"
    assert as_read(r"a\\nb\n\"c\u00e9\/\x") == 'a\\\\nb\n\n""c' + "\0" * 6 + r"//\x"
    # A text holding the mark of escaped backslashes (U+FFFF) is read the same, one by one.
    escapes = r"a\\nb\\\n\"c\u00e9\/\x\\"
    assert as_read("\uffff" + escapes) == "\uffff" + as_read(escapes)
    assert as_read(escapes) == 'a\\\\nb\\\\\n\n""c' + "\0" * 6 + r"//\x\\"
    # An escaped backslash before a letter is no escape of that letter: not a line break.
    assert _redacted("api_key", json.dumps("C:\\nsk-proj-abc123DEF456ghi789JKL012")) is None


def test_a_private_key_cut_short_is_redacted_to_the_end_of_its_body() -> None:
    text = "my key:\n-----BEGIN OPENSSH PRIVATE KEY-----\nb3BlbnNzaC1rZXktdjEAAAAA\nAAAA"
    assert _redacted("private_key", text) == "my key:\n[REDACTED:private_key]"


def test_a_private_key_cut_short_and_pasted_with_spaces_is_redacted_whole() -> None:
    # Pasted into a chat box or a form that turned its line breaks into spaces.
    body = " ".join(
        (
            "MIIEvQIBADANBgkqhkiG9w0BAQEFAASCBKcwggSjAgEAAoIBAQC7VJTUt9Us8cKB",
            "wYb3dC0PZEn2hSnTNl8bAC8cSGcbUtPAYS48Xus4KCbh9RjHr3q/Eu6tqnP5kRLm",
            "QjfLpZq1kU+x9mVa",
            "6v0Tvd==",
        )
    )
    text = f"key: -----BEGIN RSA PRIVATE KEY----- {body} thanks, and the rest is prose"
    assert _redacted("private_key", text) == (
        "key: [REDACTED:private_key] thanks, and the rest is prose"
    )


def test_a_mention_of_the_begin_line_takes_no_prose_after_it() -> None:
    # An answer explaining PEM files: only the armor line goes, not the rest of the answer.
    text = "A key file starts with -----BEGIN PRIVATE KEY----- and then, line by line, base64."
    assert _redacted("private_key", text) == (
        "A key file starts with [REDACTED:private_key] and then, line by line, base64."
    )
    # A key cut short inside JSON (tool-call arguments): its escaped line breaks are its body.
    escaped = '{"pem": "-----BEGIN PRIVATE KEY-----\\nMIIEvQIBADAN\\nBgkqhkiG9w==", "n": 1}'
    assert _redacted("private_key", escaped) == '{"pem": "[REDACTED:private_key]", "n": 1}'


def test_luhn() -> None:
    assert luhn_valid("79927398713")
    assert not luhn_valid("79927398710")
    # Each length, odd and even (which digits are doubled), and each digit doubled past 9.
    for number in ["0", "18", "59", "6011000990139424", "378282246310005", "6011000000000000001"]:
        assert luhn_valid(number)
        for wrong in "0123456789":
            if wrong != number[-1]:
                assert not luhn_valid(number[:-1] + wrong)


def test_a_failed_card_does_not_hide_what_another_detector_finds_there() -> None:
    rule = _rule("credit_card", "phone")
    counts: Counter[str] = Counter()
    assert not luhn_valid("41555526711234")
    assert rule.redact("call 415-555-2671-1234 now", counts) == "call [REDACTED:phone]-1234 now"
    assert counts == {"phone": 1}


def test_one_rule_redacts_each_find_and_counts_it_by_detector() -> None:
    rule = _rule("email", "api_key", patterns=(r"(?i)\bproject\s+falcon\b",))
    counts: Counter[str] = Counter()
    text = "a@example.com and b@example.org use AKIAIOSFODNN7EXAMPLE for Project  Falcon"
    assert rule.redact(text, counts) == (
        "[REDACTED:email] and [REDACTED:email] use [REDACTED:api_key] for [REDACTED:pattern]"
    )
    assert counts == {"email": 2, "api_key": 1, "pattern": 1}


def _unbounded_repeats(items: Any) -> list[str]:
    found = []
    for op, arg in items:
        name = str(op)
        if name in ("MAX_REPEAT", "MIN_REPEAT", "POSSESSIVE_REPEAT"):
            if arg[1] == _PARSER.MAXREPEAT:
                found.append(name)
            found += _unbounded_repeats(arg[2])
        elif name == "SUBPATTERN":
            found += _unbounded_repeats(arg[-1])
        elif name == "BRANCH":
            for branch in arg[1]:
                found += _unbounded_repeats(branch)
        elif name in ("ASSERT", "ASSERT_NOT"):
            found += _unbounded_repeats(arg[1])
    return found


@pytest.mark.parametrize("name", sorted(DETECTORS))
def test_no_built_in_repeats_without_bound(name: DetectorName) -> None:
    """The linear-time argument (router_service/guardrails/_detectors.py): every repetition
    is bounded, so the work from one start position is bounded by a constant."""
    assert _unbounded_repeats(_PARSER.parse(DETECTORS[name].pattern)) == []


HOSTILE = [
    "a" * (1 << 20),  # one endless run of local-part characters, never an `@`
    "a." * (1 << 19),
    "sk-" + "a" * ((1 << 20) - 3),
    "4" * (1 << 20),  # digits, never a card's length
    "4 " * (1 << 19),
    "+1" * (1 << 19),
    "-----BEGIN PRIVATE KEY-----" * ((1 << 20) // 27),
    # Armor header lines a framed block takes whole, never an END line after them.
    "-----BEGIN PGP PRIVATE KEY BLOCK-----\nComment: see the vault\n" * ((1 << 20) // 61),
    "-----BEGIN PRIVATE KEY-----\n" + "> Comment: a b c\n" * ((1 << 20) // 17),
    # PuTTY key files' first lines and header lines, never a MAC line.
    "PuTTY-User-Key-File-2: ssh-rsa\nComment: a b\nAAAA\n" * ((1 << 20) // 46),
    "PuTTY-User-Key-File-2: " + "Private-Lines: 1\n" * ((1 << 20) // 17),
    ("PuTTY-User-Key-File-2: a" + '"' * 7 + "a ") * ((1 << 20) // 34),
    ("PuTTY-User-Key-File-2: a" + "<br>" * 7 + "AAAA" + " " * 9 + "\n") * ((1 << 20) // 66),
    "-----BEGIN PGP PRIVATE KEY BLOCK-----" + "\\n\\tComment: a b c" * ((1 << 20) // 19),
    "-----BEGIN PGP PRIVATE KEY BLOCK-----\n" + ("Comment:" + "a\\" * 300 + "\n") * (1 << 11),
    "Bearer " * ((1 << 20) // 7),
    ("a@" * 40 + " ") * ((1 << 20) // 81),
]


@pytest.mark.parametrize("index", range(len(HOSTILE)))
def test_a_hostile_mebibyte_is_scanned_in_linear_work(index: int) -> None:
    """A 1 MiB text built to make a backtracking engine retry: each detector finishes it (under
    the test's timeout, a generous bound; the structural test above is the argument)."""
    rule = _rule(*DETECTORS)
    text = HOSTILE[index]
    counts: Counter[str] = Counter()
    rule.redact(text, counts)
    assert sum(counts.values()) <= len(text)  # it ran to the end and found what it found


def test_json_items_are_screened_by_their_text_keys_only() -> None:
    items = [
        '{"type": "message", "role": "user", "content": "jane@example.com",'
        ' "id": "jane@example.com"}',
        '{"type": "function_call", "arguments": "{\\"to\\": \\"bob@example.org\\"}"}',
        "[" * 5000 + "]" * 5000,  # deeper than Python's recursion limit
        "not JSON",
    ]
    paths = []
    for slot in json_item_texts(items, "items_json"):  # as the screen does: one at a time
        paths.append(slot.path)
        slot.replace(_redacted("email", slot.text) or slot.text)
    assert paths == ["items_json[0].content", "items_json[1].arguments"]
    assert json.loads(items[0]) == {
        "type": "message",
        "role": "user",
        "content": "[REDACTED:email]",
        "id": "jane@example.com",  # not a text that reaches an upstream
    }
    assert json.loads(items[1])["arguments"] == '{"to": "[REDACTED:email]"}'
    assert items[2:] == ["[" * 5000 + "]" * 5000, "not JSON"]


def test_exports() -> None:
    assert guardrails.__all__ == [
        *("DETECTORS", "HOLD_BACK_CHARS", "PATTERN_DETECTOR", "RELEASE_STEP_CHARS"),
        "SCREENED_MEDIA",
        *("AnswerAudit", "AnswerGuard"),
        *("Detector", "DetectorName", "Guardrails", "Match", "Rule", "StreamScreen"),
        *("TextScreen", "TextSlot", "TranscriptScreen", "chat_texts", "compile_rules"),
        *("embedding_texts", "event_texts"),
        *("json_item_texts", "luhn_valid", "media_texts", "message_texts"),
        *("session_texts", "stored_response_texts", "transcript_texts"),
    ]
    assert all(hasattr(guardrails, name) for name in guardrails.__all__)


@pytest.mark.parametrize("group", ["4 ", "44 ", "4-", "4444 ", "3 7 "])
def test_card_checks_grow_with_digit_runs_not_with_their_groups(
    group: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A run of digit groups (`4 4 4 …`) holds a card candidate at each group: each one's Luhn
    check, one by one, costs the router's event loop seconds per MiB. The checks made must not
    grow with the groups of a run, only with the runs (a run's last groups may hold a card)."""
    calls = 0
    real = _detectors.luhn_valid

    def counted(digits: str) -> bool:
        nonlocal calls
        calls += 1
        return real(digits)

    monkeypatch.setattr(_detectors, "luhn_valid", counted)
    rule = _rule("credit_card", "phone", "email")
    checks = []
    for groups in (500, 5000):
        calls = 0
        text = f"ids: {group * groups}end; card 4111 1111 1111 1111, {group * groups}end"
        redacted = rule.redact(text, Counter())
        assert redacted is not None and "; card [REDACTED:credit_card], " in redacted
        checks.append(calls)
    assert checks[0] == checks[1] <= 8, checks


def test_a_phone_followed_by_a_parenthesis_leaves_the_parenthesis() -> None:
    # An opening parenthesis after the number (its hours, a note) is not part of it.
    text = "Hotline +1 415 555 0100 (24 h), or +49 (30) 1234-5678 (office)."
    assert (
        _redacted("phone", text) == "Hotline [REDACTED:phone] (24 h), or [REDACTED:phone] (office)."
    )


def test_a_phone_whose_country_code_is_in_parentheses_is_found() -> None:
    # `(+44) 20 …`: the `)` after the country code closes what opened before the `+`, so the
    # number leaves no parenthesis open (found before `(24 h)` was kept out of numbers).
    text = "Call (+44) 20 7946 0958 (24 h) or (+49) 30 12345678."
    assert _redacted("phone", text) == "Call ([REDACTED:phone] (24 h) or ([REDACTED:phone]."


def test_a_phone_with_a_parenthesis_left_open_inside_it_is_found_whole() -> None:
    # No shorter number before the `(` (the note after one): the `(` is the number's own.
    text = "Call +1 (415 555 0100 or +44 (20 7946 0958 today."
    assert _redacted("phone", text) == "Call [REDACTED:phone] or [REDACTED:phone] today."


def test_a_card_followed_by_a_two_digit_number_is_found() -> None:
    # Not a month (`05`) nor a code (`123`): a count, a line's number. The card is found.
    text = "card 4111 1111 1111 1111 17 times, 5500-0000-0000-0004-99 too"
    assert _redacted("credit_card", text) == (
        "card [REDACTED:credit_card] 17 times, [REDACTED:credit_card]-99 too"
    )
    # Inside a longer run (an IBAN's groups, whose first 16 digits pass Luhn) it is no card.
    assert luhn_valid("3704004405320131")
    assert _redacted("credit_card", "IBAN DE89 3704 0044 0532 0131 57 thanks") is None
