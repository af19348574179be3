"""A long run of digit groups all of one size (`4 4 4 …`, `4444 4444 …`: the texts built to make
a card scan slow): which of its groups begin a candidate card that passes Luhn, decided for the
whole block at once (slices and a few C-level passes), not group by group in Python. What
`_detectors.CardScan` asks `_card` about; other blocks are read group by group."""

from __future__ import annotations

from itertools import repeat
from operator import mod, sub

__all__ = ["uniform_hits"]

# A group's first digit: 0 where it is an issuer's (2-6), else 1.
_ISSUER = bytes(0 if chr(b) in "23456" else 1 for b in range(256))


def uniform_hits(
    sizes: list[int],
    digits: str,
    sums: tuple[list[int], list[int]],
    count: int,
    pasted: frozenset[tuple[int, ...]],
) -> tuple[list[int], int, int]:
    """(hits, tail, groups): when the block's groups but its last (which the block may have cut)
    are of one size, the groups before `tail` whose candidate (`groups` groups, as many as 19
    digits hold) begins with an issuer digit and passes Luhn (the `sums` of `CardScan`), in
    order; the groups from `tail` (to `count`) are the caller's to read one by one. ([], 0, 0):
    not such a block, or one whose candidates `_PASTED` may take without Luhn (`pasted`)."""
    n = len(sizes)
    size = sizes[0]
    groups = 19 // size if size else 0
    tail = min(count, n - groups - 2)
    if tail <= 0 or sizes[:-1].count(size) != n - 1 or (size,) * groups in pasted:
        return [], 0, 0
    span = groups * size
    if not 13 <= span <= 19:
        return [], tail, groups  # (ten to twelve digits a group: no candidate is a card's size)
    end = tail * size
    parity = (span - 1) & 1  # of the first group's candidate's last digit: which sums count
    starts, stops = sums[parity][0:end:size], sums[parity][span : span + end : size]
    if size & 1:  # every other group's candidate ends on the other parity
        other = sums[1 - parity]
        starts[1::2], stops[1::2] = (
            other[size : end : 2 * size],
            other[span + size : span + end : 2 * size],
        )
    luhn = bytes(map(mod, map(sub, stops, starts), repeat(10)))  # 0: passes
    issuer = digits[0:end:size].encode().translate(_ISSUER)  # 0: an issuer's digit
    both = (int.from_bytes(luhn, "big") | int.from_bytes(issuer, "big")).to_bytes(tail, "big")
    hits: list[int] = []
    at = both.find(0)
    while at >= 0:
        hits.append(at)
        at = both.find(0, at + 1)
    return hits, tail, groups
