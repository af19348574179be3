"""The built-in detectors' CPU per MiB of text, in process: `python -m benchmarks.guardrail_cpu`.

Scans each text with one rule holding every built-in detector (`Rule.replacements`, what a
request's screen runs on the router's event loop) and prints seconds per MiB, best of
`--rounds`: ordinary prose beside adversarial digit groups (`4 4 4 …`, `44 44 …`, `4-4-4…`),
long plain digit runs, a mix, PEM keys and prose quoting their armor lines; streamed, a key and a
BEGIN line before 60,000 dashes (or `x-x-…`), keys of 65K to 585K characters (past the 65,536
a stream holds), a 256K one with a prose line after every eighth body line; a key whose body
is short lines (`A1`, a model may be prompted for one) of `--kib`, unary and streamed in 4 KiB
chunks, in µs per KiB. A digit-heavy text
should cost within ~2x prose. No servers.

The key of short lines (1 MiB; 2 shared cores, best of 2): before a plain body was jumped in
one pass (`_long_finds._PLAIN`), `key_end` and a stream's `_open_block` matched the key again
every 20,000 pieces and a stream scanned what it held at each step though a key held it all:
unary ~430 µs/KiB (0.42 s/MiB), streamed ~1,640 µs/KiB (1.6 s/MiB; a reviewer's busier host:
1.6 and 6 s/MiB). After: unary ~41 µs/KiB, streamed ~265 µs/KiB (10x, 6x), the key still
redacted whole; the streamed keys of 65K-585K above went from 15/64/140 ms to 9/29/61 ms.
(Before guard6, ~200 and ~290 µs/KiB, but the body past 20,000 characters leaked.)
"""

from __future__ import annotations

import argparse
import time
from collections import Counter
from collections.abc import Callable

from router_service.config import GuardrailConfig
from router_service.guardrails import DETECTORS, Rule, TextScreen

_PROSE = (
    "The quick brown fox jumps over the lazy dog, then rests a while by the river. "
    "Invoice 2024-118 was paid on 12 March; call the desk if anything looks off. "
)
_MIXED = (
    "Card 4111 1111 1111 1111 exp 05 27, order 88213 44 17 2 x 3, call +44 20 7946 0958, "
    "IBAN DE89 3704 0044 0532 0130 00, mail jane.doe@example.com, ref 1234-5678-9012. "
)

# A key with headers among prose, and prose quoting a BEGIN line far before an END line.
_PEM = (
    "-----BEGIN RSA PRIVATE KEY-----\nProc-Type: 4,ENCRYPTED\nDEK-Info: AES-128-CBC,0A1B\n\n"
    + "MIIEvQIBADANBgkqhkiG9w0BAQEFAASCBKcwggSjAgEAAoIBAQC7VJTUt9Us8cKB\n" * 25
    + "-----END RSA PRIVATE KEY-----\n"
)
_QUOTED = (
    "It starts with -----BEGIN PRIVATE KEY-----. " + _PROSE * 20 + "-----END PRIVATE KEY-----. "
)

TEXTS: dict[str, Callable[[int], str]] = {
    "prose": lambda n: (_PROSE * (n // len(_PROSE) + 1))[:n],
    "4 4 4 …": lambda n: ("4 " * (n // 2 + 1))[:n],
    "44 44 …": lambda n: ("44 " * (n // 3 + 1))[:n],
    "4-4-4…": lambda n: ("4-" * (n // 2 + 1))[:n],
    "4444 4444 …": lambda n: ("4444 " * (n // 5 + 1))[:n],
    "+1 2 3 …": lambda n: ("+1 2 3 4 5 6 7 8 9 " * (n // 20 + 1))[:n],
    "4 4 … x 4 4 …": lambda n: (("4 " * 19 + "x ") * (n // 40 + 1))[:n],
    "digits": lambda n: ("4" * 1000 + " ") * (n // 1001 + 1),
    "mixed": lambda n: (_MIXED * (n // len(_MIXED) + 1))[:n],
    "pem keys": lambda n: ((_PROSE + _PEM) * (n // (len(_PROSE) + len(_PEM)) + 1))[:n],
    "quoted pem": lambda n: (_QUOTED * (n // len(_QUOTED) + 1))[:n],
}


def seconds_per_mib(rule: Rule, text: str, rounds: int) -> float:
    best = float("inf")
    for _ in range(rounds):
        started = time.process_time()
        rule.replacements(text, Counter())
        best = min(best, time.process_time() - started)
    return best / (len(text) / (1 << 20))


def _streamed_s(rule: Rule, text: str, delta: int = 20) -> float:
    """CPU seconds to screen `text` through a new `TextScreen` in `delta`-character deltas (the
    pieces cut before the clock starts), its final feed included."""
    pieces = [text[i : i + delta] for i in range(0, len(text), delta)]
    started = time.process_time()
    screen = TextScreen((rule,), {})
    for piece in pieces:
        screen.feed(piece)
    screen.feed("", final=True)
    return time.process_time() - started


def streamed_key_us(rule: Rule, rounds: int) -> float:
    """Microseconds to stream prose, a ~3 KB key and prose through a `TextScreen` in
    20-character deltas (what a streamed answer holding a key costs), best of `rounds`."""
    body = "MIIEvQIBADANBgkqhkiG9w0BAQEFAASCBKcwggSjAgEAAoIBAQC7VJTUt9Us8cKB\n" * 46
    text = f"{_PROSE}-----BEGIN PRIVATE KEY-----\n{body}-----END PRIVATE KEY-----\n{_PROSE * 3}"
    return min(_streamed_s(rule, text) for _ in range(rounds * 10)) * 1e6


def streamed_hostile_ms(rule: Rule, run: str) -> float:
    """Milliseconds to stream a BEGIN line then 60,000 characters of `run` (dashes, `x-x-…`: an
    address's name part may hold them, so the text is held) in 20-character deltas: linear work
    (each rescan after the held text grew by half), not a rescan per delta (~6-10 s before)."""
    text = "-----BEGIN PRIVATE KEY-----" + (run * (60_000 // len(run) + 1))[:60_000]
    return _streamed_s(rule, text) * 1e3


def streamed_long_key_ms(rule: Rule, lines: int) -> float:
    """Milliseconds to stream prose, a key of `lines` 65-character body lines and prose in
    20-character deltas: a body past 65,536 held characters is redacted as it stands and read
    on as its continuation (linear in the key, memory bounded by the hold)."""
    body = "MIIEvQIBADANBgkqhkiG9w0BAQEFAASCBKcwggSjAgEAAoIBAQC7VJTUt9Us8cKB\n" * lines
    text = f"{_PROSE}-----BEGIN PRIVATE KEY-----\n{body}-----END PRIVATE KEY-----\n{_PROSE}"
    return _streamed_s(rule, text) * 1e3


def prose_every_eighth_line_ms(rule: Rule, kib: int) -> tuple[float, float]:
    """Milliseconds to screen prose, a key of `kib` KiB whose body has a prose line after every
    eighth of its 64-character lines (each read on past, `_long_finds._past_prose`), its END
    line and prose: unary (`Rule.replacements`) and streamed in 20-character deltas."""
    lines = [f"{n:08d}IIEvQIBADANBgkqhkiG9w0BAQEFAASCBKcwggSjAgEAAoIBAQC7VJTUt9U" for n in range(8)]
    block = "\n".join(lines) + "\nsee the vault for the rest of it.\n"
    body = block * (kib * 1024 // len(block))
    text = f"{_PROSE}-----BEGIN PRIVATE KEY-----\n{body}-----END PRIVATE KEY-----\n{_PROSE}"
    started = time.process_time()
    rule.replacements(text, Counter())
    unary = time.process_time() - started
    return unary * 1e3, _streamed_s(rule, text) * 1e3


def streamed_prose_key_ms(rule: Rule, escaped: bool) -> float:
    """Milliseconds to stream a BEGIN line then 256 KiB of key lines and prose lines, one after
    the other (`escaped`: JSON's `\\n` for its line breaks), in 20-character deltas: prose inside
    a key's body holds it, looked at again as the held text grows, not at each prose line."""
    line = "MIIEvQIBADANBgkqhkiG9w0BAQEFAASCBKcwggSjAgEAAoIBAQC7VJTUt9Us8cKB\nsee the vault, ok.\n"
    text = "-----BEGIN PRIVATE KEY-----\n" + line * (256 * 1024 // len(line))
    if escaped:
        text = text.replace("\n", "\\n")
    return _streamed_s(rule, text) * 1e3


def short_lines_key_us_per_kib(rule: Rule, kib: int, rounds: int) -> tuple[float, float]:
    """Microseconds per KiB to screen a BEGIN line then a body of `A1` lines (`kib` KiB, no END
    line): unary (`Rule.replacements`) and streamed through a `TextScreen` in 4 KiB chunks
    (what an event loop spends on a model's answer holding such a key), best of `rounds`."""
    text = "-----BEGIN PRIVATE KEY-----\n" + "A1\n" * (kib * 1024 // 3)
    unary = streamed = float("inf")
    for _ in range(rounds):
        started = time.process_time()
        rule.replacements(text, Counter())
        unary = min(unary, time.process_time() - started)
        streamed = min(streamed, _streamed_s(rule, text, 4096))
    size = len(text) / 1024
    return unary * 1e6 / size, streamed * 1e6 / size


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--kib", type=int, default=1024, help="text size per input")
    parser.add_argument("--rounds", type=int, default=3, help="best of this many")
    args = parser.parse_args()
    config = {"name": "all", "detect": list(DETECTORS), "action": "redact"}
    rule = Rule(GuardrailConfig.model_validate(config))
    prose = None
    for name, make in TEXTS.items():
        cost = seconds_per_mib(rule, make(args.kib * 1024), args.rounds)
        prose = prose or cost
        print(f"{name:12} {cost:6.3f} s/MiB   {cost / prose:5.1f}x prose")
    print(f"streamed pem {streamed_key_us(rule, args.rounds):6.0f} us per 3 KB key, 20-char deltas")
    for run in ("-", "x-"):
        cost = streamed_hostile_ms(rule, run)
        print(f"streamed BEGIN + 60K {run!r:4} {cost:6.1f} ms, 20-char deltas")
    for lines in (1_000, 4_000, 9_000):
        cost = streamed_long_key_ms(rule, lines)
        print(f"streamed key of {lines * 65 // 1000:3d}K {cost:6.1f} ms, 20-char deltas")
    unary, streamed = prose_every_eighth_line_ms(rule, 256)
    row = f"streamed 256K key, prose every 8th line {streamed:6.1f} ms (unary {unary:6.1f} ms)"
    print(f"{row}, 20-char deltas")
    for escaped in (False, True):
        cost = streamed_prose_key_ms(rule, escaped)
        print(f"streamed 256K key/prose lines{' (JSON)' if escaped else ''} {cost:6.1f} ms")
    unary, streamed = short_lines_key_us_per_kib(rule, args.kib, args.rounds)
    print(f"key of A1 lines: unary {unary:6.0f} us/KiB, streamed {streamed:6.0f} us/KiB (4 KiB)")


if __name__ == "__main__":
    main()
