"""Secrets taken out of what an upstream said (UpstreamFailure.scrub), and out of the labels an
operator gives issued keys (`secret_shaped`, `shown_label`)."""

from __future__ import annotations

import functools
import hashlib
import re
from collections.abc import Callable, Collection, Iterable
from typing import Any

__all__ = [
    "SCRUBBED_CHARS",
    "bounded",
    "cut_words",
    "holds_digest",
    "masking",
    "scrubbed",
    "secret_shaped",
    "shown_label",
    "without_digests",
]

_MASK = "[redacted]"
# What an upstream's error body says is scrubbed up to this many characters a text, twice that
# its texts together (`UpstreamFailure.scrub`): the upstream chose its size, the scrub runs on
# the event loop (~0.4 µs a character), and a caller is told 1 KiB of a message (clients.errors).
SCRUBBED_CHARS = 64 * 1024
_CUT = "…"
_STARRED_MASK = rf"\1{_MASK}"
# A key shown with its middle starred out: a key-like token around a run of asterisks (not the
# sentence's full stop after it). Tried at a word's start only (its leading `_.-` kept, `\1`):
# tried from each of its characters, a long word before stars cost its length squared (an
# upstream's error body is scrubbed on the event loop, and the upstream chose its size).
_MASKED_KEY = re.compile(
    r"(?<![A-Za-z0-9_.-])([_.-]*+)[A-Za-z0-9][A-Za-z0-9_.-]*+\*{3,}"
    r"(?:[A-Za-z0-9_.*-]*[A-Za-z0-9_*-])?"
)


def scrubbed(value: Any, clean: Callable[[str], str]) -> Any:
    if isinstance(value, str):
        return clean(value)
    if isinstance(value, dict):
        return {k: scrubbed(v, clean) for k, v in value.items()}
    if isinstance(value, list):
        return [scrubbed(v, clean) for v in value]
    return value


def cut_words(text: str, limit: int) -> str:
    """`text` whole up to `limit` characters, else ending before the word the limit falls in,
    with "…" (`limit` characters at most): a word may be a key, and a fragment of one no
    longer reads as the key, so goes unmasked. A key holds no space."""
    if len(text) <= limit:
        return text
    head = text[:limit]  # a space at its end ends the word before it, kept with the "…"
    end = max(head.rfind(" "), head.rfind("\n"), head.rfind("\t"), head.rfind("\r"))
    return text[: max(end, 0)] + _CUT


def bounded(clean: Callable[[str], str], limit: int = SCRUBBED_CHARS) -> Callable[[str], str]:
    """`clean` of texts cut (`cut_words`) to `limit` characters each and twice that in all,
    whatever their number: a text past that is cut to nothing but "…". A message at its
    bound leaves the short texts after it (the error's `type`, `code`) whole."""
    left = 2 * limit

    def cut(text: str) -> str:
        nonlocal left
        text = cut_words(text, max(min(left, limit), len(_CUT)))
        left -= len(text)
        return clean(text)

    return cut


def masking(secrets: Iterable[str], *, logged: bool = False) -> Callable[[str], str]:
    """A function that masks each of `secrets` in a text, and keys shown half-starred;
    `logged`: then what the process's log redactor masks too (every configured secret, a
    bearer token, a URL's `?key=` or password, a key's shape)."""
    known = sorted({s for s in secrets if s}, key=len, reverse=True)
    redact = _process_redactor() if logged else None

    def clean(text: str) -> str:
        for secret in known:
            text = text.replace(secret, _MASK)
        text = _MASKED_KEY.sub(_STARRED_MASK, text) if "***" in text else text
        return text if redact is None else redact(text)

    return clean


def secret_shaped(
    text: str, known: Iterable[str] = (), digests: Collection[str] = frozenset()
) -> bool:
    """Whether `text` holds what the log's redactor masks whatever logged it (a key's shape, a
    bearer token, an API-key header's value, a URL's password), a key shown half-starred, one
    of the `known` secrets (a config's, of whatever shape), or a key known by its hex SHA-256
    only (`digests`: `holds_digest`)."""
    return _redactor()(text) != text or masking(known)(text) != text or holds_digest(text, digests)


def shown_label(
    label: str, known: Iterable[str] = (), digests: Collection[str] = frozenset()
) -> str:
    """An issued key's label as shown (lists, the admin page, audit lines): a secret-shaped one,
    or one holding a `known` secret or a key of `digests` (pasted before IssueClientKey refused
    them), masked whole."""
    return _MASK if label and secret_shaped(label, known, digests) else label


# What may stand around a key pasted into a sentence or glued to a word (quotes, brackets,
# punctuation, `key=`, `host:`, `ci/`): a key is looked for between any two of them.
_AROUND = frozenset("\"'`()[]{}<>,.;:!?=|/\\&@#*+~^$%")


def holds_digest(text: str, digests: Collection[str]) -> bool:
    """Whether a word of `text` holds a key of which only its hex SHA-256 is held (`digests`: a
    client key configured by `key_sha256`), whatever its shape: no pattern knows it, and the
    clear text to search for is nowhere. A key holds no space; in each word every stretch that
    starts and ends at the word's ends or at what may stand around a key (`ci/KEY,backup`,
    `key=KEY`, `'KEY's`) is tried: the key's own punctuation is tried as part of it."""
    return bool(digests) and any(_digest_in(word, digests) for word in text.split())


def without_digests(text: str, digests: Collection[str]) -> str:
    """`text` with each key of `digests` it holds (found as `holds_digest` finds one) masked
    (an operator's note, stored and shown: SetKeyEnabled's reason)."""
    if not digests or not holds_digest(text, digests):
        return text
    return "".join(_masked_word(part, digests) for part in re.split(r"(\s+)", text))


def _masked_word(word: str, digests: Collection[str]) -> str:
    found = _digest_in(word, digests)
    if found is None:
        return word
    start, end = found
    return word[:start] + _MASK + _masked_word(word[end:], digests)


def _digest_in(word: str, digests: Collection[str]) -> tuple[int, int] | None:
    """Where in `word` the first stretch (`holds_digest`) of a key of `digests` is."""
    cuts = [i for i, c in enumerate(word) if c in _AROUND]
    ends = [*cuts, len(word)]
    for start in (0, *(i + 1 for i in cuts)):
        for end in ends:
            if end > start and _sha256(word[start:end]) in digests:
                return start, end
    return None


def _sha256(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


def _process_redactor() -> Callable[[str], str]:
    # Imported on first use, as `_redactor`: the one the log's lines go through.
    from router_service.telemetry._logging import REDACTOR

    return REDACTOR


@functools.cache
def _redactor() -> Callable[[str], str]:
    # Imported on first use: the log's patterns, one definition of a secret's shape.
    from router_service.telemetry._logging import Redactor

    return Redactor()
