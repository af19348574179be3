"""The README's `python -c "…"` one-liners, run as printed."""

from __future__ import annotations

import re
import shlex

from router_service.auth import hash_key
from tests.readme.markdown import Snippet, spans
from tests.readme.test_snippets import run_python


def one_liners() -> list[Snippet]:
    """The `python -c "…"` commands of the prose."""
    return [span for span in spans() if span.text.startswith("python -c ")]


def run_one_liner(span: Snippet) -> str:
    _, _, code = shlex.split(span.text)
    return run_python(code, span.where)


def test_one_liners() -> None:
    hashing, session = one_liners()
    # The hash the README says to configure as `key_sha256` is the one the router checks.
    assert run_one_liner(hashing) == hash_key("sk-...") + "\n"
    # A session's state key: the first 32 hex digits of a SHA-256.
    assert re.fullmatch(r"[0-9a-f]{32}\n", run_one_liner(session))
