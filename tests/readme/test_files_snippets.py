"""The README's blocks of its "Files and batches" section run against a live demo stack (as
every block does: test_snippets.py lists them all), with the answers they claim."""

from __future__ import annotations

from tests.http_edge.live_stack import LiveStack
from tests.readme.test_snippets import run_block, stack

__all__ = ["stack"]  # the fixture, used here


def test_batches_block(stack: LiveStack) -> None:
    printed = run_block("batches.create(", stack).splitlines()
    assert printed == ["completed", *(f"q{n} Echo: Say {n}." for n in range(3))]


def test_uploads_block(stack: LiveStack) -> None:
    status, file_id = run_block("uploads.parts.create(", stack).split()
    assert status == "completed" and file_id.startswith("file-")
