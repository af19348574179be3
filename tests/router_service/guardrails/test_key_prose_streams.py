"""Streams of keys with prose inside their bodies, by a generator of its own (not
`test_key_prose`'s): several keys in one answer with prose between them, in markdown code
fences, CRLF line breaks, `> ` quotes, inside a JSON string (escaped line breaks). Each key ends
with its END line: the prose between an END line and the next BEGIN line is never redacted, and
a stream at any chunk size (1 to 500) redacts as the unary answer does. Streams interleaved on
one thread each redact as alone; no module keeps a streamed key's text once its stream ended."""

from __future__ import annotations

import gc
import json
import random
import sys
from collections import Counter

import pytest

from router_service.guardrails._text_screen import TextScreen
from tests.router_service.guardrails.test_long_held import RULE

pytestmark = pytest.mark.timeout(300)

_B64 = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/"
_SAYS = [
    "Please keep this safe and rotate it soon.",
    "Here is the second one you asked about.",
    "Note that the deploy script reads it from disk.",
    "I also added a comment about the vault, see below.",
    "Run /usr/local/bin/deploy2 then /opt/app/bin/start3 again.",
    "Commit 3f2a9c1e4b5d6f7a8b9c0d1e2f3a4b5c6d7e8f90 fixed it.",
]
_KINDS = ["RSA PRIVATE KEY", "PRIVATE KEY", "OPENSSH PRIVATE KEY", "EC PRIVATE KEY"]
_FRAMES = ["plain", "fence", "crlf", "json", "quote"]


def _key(rng: random.Random) -> tuple[list[str], list[str]]:
    """A key's block (its lines, prose inside its body half the time) and its base64 lines."""
    lines = ["".join(rng.choice(_B64) for _ in range(60)) + f"{n:04d}" for n in range(8)]
    body = list(lines)
    if rng.random() < 0.5:
        body.insert(rng.randint(1, 7), rng.choice(["see the vault for the rest", "elided, ok"]))
    kind = rng.choice(_KINDS)
    return [f"-----BEGIN {kind}-----", *body, f"-----END {kind}-----"], lines


def _answer(seed: int) -> tuple[str, list[str], list[str]]:
    """An answer of 1-3 keys framed alike, prose before, between and after them; its key lines
    and the sentences of prose between them."""
    rng = random.Random(seed)
    frame = _FRAMES[seed % len(_FRAMES)]
    pieces, keys, says = [rng.choice(_SAYS)], [], []
    for _ in range(rng.randint(1, 3)):
        block, lines = _key(rng)
        keys += lines
        if frame == "quote":
            block = [f"> {x}" for x in block]
        pieces.append("\n".join(["```", *block, "```"] if frame == "fence" else block))
        said = [rng.choice(_SAYS) for _ in range(rng.randint(1, 3))]
        says += said
        pieces.append(" ".join(said))
    text = "\n".join(pieces) + "\n"
    if frame == "crlf":
        text = text.replace("\n", "\r\n")
    if frame == "json":
        text = "Config:\n" + json.dumps({"key": text}) + "\nDone."
    return text, keys, says


def _streams(texts: list[str], size: int) -> list[str]:
    """Each text streamed through its own screen in `size` deltas, the streams interleaved."""
    screens = [TextScreen((RULE,), {}) for _ in texts]
    outs: list[list[str]] = [[] for _ in texts]
    for at in range(0, max(map(len, texts)), size):
        for screen, text, out in zip(screens, texts, outs, strict=True):
            if at < len(text):
                out.append(screen.feed(text[at : at + size]))
    return ["".join(out) + s.feed("", final=True) for s, out in zip(screens, outs, strict=True)]


@pytest.mark.parametrize("batch", range(4))
def test_keys_among_prose_redacted_alone_streamed_as_unary(batch: int) -> None:
    for seed in range(batch * 25, (batch + 1) * 25):
        text, keys, says = _answer(seed)
        unary = RULE.redact(text, Counter())
        assert unary is not None, seed
        assert not [x for x in keys if x[:20] in unary or x[40:] in unary], (seed, unary)
        assert unary.count("[REDACTED:private_key]") == text.count("-----BEGIN"), (seed, unary)
        assert all(said in unary for said in says), (seed, unary)
        rng = random.Random(seed)
        for size in {1, 7, 20, 128, 500, rng.randint(2, 499), rng.randint(2, 499)}:
            assert _streams([text], size) == [unary], (seed, size)


def _prose_keys(seed: int) -> str:
    """A long key with prose lines among its body lines (`walks` past prose, kept per stream)."""
    rng = random.Random(seed)
    lines = ["".join(rng.choice(_B64) for _ in range(60)) + f"{n:04d}" for n in range(120)]
    body = "\n".join(
        f"{x}\nsee the vault for the rest" if n % 3 == 1 else x for n, x in enumerate(lines)
    )
    return f"Here:\n-----BEGIN PRIVATE KEY-----\n{body}\n-----END PRIVATE KEY-----\nThat is all.\n"


def test_interleaved_streams_each_redact_as_alone() -> None:
    texts = [_prose_keys(1), _prose_keys(2), json.dumps({"key": _prose_keys(3)})]
    alone = [RULE.redact(text, Counter()) for text in texts]
    assert alone[0] == "Here:\n[REDACTED:private_key]\nThat is all.\n"
    for size in (1, 20, 333):
        assert _streams(texts, size) == alone, size


def _strings(value: object, seen: set[int], depth: int = 0) -> list[str]:
    """The strings a module's global holds (in lists, tuples, dicts, sets, a few levels deep)."""
    if isinstance(value, str):
        return [value]
    if depth > 4 or id(value) in seen or not isinstance(value, list | tuple | dict | set):
        return []
    seen.add(id(value))
    items = [*value.keys(), *value.values()] if isinstance(value, dict) else list(value)
    return [s for item in items for s in _strings(item, seen, depth + 1)]


def test_no_module_keeps_a_streamed_keys_text() -> None:
    text = _prose_keys(4)
    assert _streams([text], 20) == [RULE.redact(text, Counter())]
    gc.collect()
    line = text.splitlines()[5]
    modules = [m for name, m in sys.modules.items() if name.startswith("router_service.")]
    seen: set[int] = set()
    kept = [s for m in modules for v in vars(m).values() for s in _strings(v, seen) if line in s]
    assert kept == []
