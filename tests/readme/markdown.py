"""The README's parts a test can check: fenced code blocks by language, and the code spans of
its prose (`like this`), each with the line it starts on (for the failure message)."""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import cache
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
README = ROOT / "README.md"

# An opening fence (indented inside a list item too) and its language; the block ends at a
# closing fence with the same indentation.
_FENCE = re.compile(r"^(?P<indent> *)```(?P<lang>[\w-]*)\s*$")
_SPAN = re.compile(r"`([^`]+)`")


@dataclass(frozen=True)
class Snippet:
    text: str
    line: int  # 1-based: the opening fence's line for a block, the span's start for a span

    @property
    def where(self) -> str:
        return f"README.md:{self.line}"


@dataclass(frozen=True)
class Block(Snippet):
    lang: str


@cache
def _parse() -> tuple[tuple[Block, ...], str]:
    """The fenced blocks, and the README with each block's lines blanked (its prose, with the
    line numbers kept)."""
    lines = README.read_text(encoding="utf-8").split("\n")
    blocks: list[Block] = []
    prose = list(lines)
    i = 0
    while i < len(lines):
        opening = _FENCE.match(lines[i])
        if opening is None:
            i += 1
            continue
        indent, end = opening["indent"], i + 1
        while end < len(lines) and lines[end] != f"{indent}```":
            end += 1
        body = [line.removeprefix(indent) for line in lines[i + 1 : end]]
        blocks.append(Block("\n".join(body) + "\n", i + 1, opening["lang"]))
        prose[i : end + 1] = [""] * (end + 1 - i)
        i = end + 1
    return tuple(blocks), "\n".join(prose)


def blocks(lang: str) -> list[Block]:
    return [block for block in _parse()[0] if block.lang == lang]


def all_blocks() -> tuple[Block, ...]:
    return _parse()[0]


def prose() -> str:
    """The README outside its fenced blocks (their lines blank: line numbers are kept)."""
    return _parse()[1]


def spans() -> list[Snippet]:
    """The prose's code spans, whitespace runs (a span wrapped over two lines) made one space."""
    text = prose()
    return [Snippet(" ".join(m[1].split()), line_of(text, m.start())) for m in _SPAN.finditer(text)]


def line_of(text: str, offset: int) -> int:
    return text.count("\n", 0, offset) + 1
