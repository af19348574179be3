"""The instructions probe's own logic (no valgrind run here: that takes minutes)."""

from __future__ import annotations

import pytest

from benchmarks.instructions import dumped_instructions, main

DUMP = """# callgrind format
version: 1
creator: callgrind-3.19.0
pid: 8411
cmd:  python -m router_service router --config sb.yaml
part: 1

positions: line
events: Ir
summary: 218025030


totals: 218025030
"""


def test_the_count_is_read_from_a_dump() -> None:
    assert dumped_instructions(DUMP) == 218_025_030


def test_a_file_that_is_not_a_dump_is_an_error() -> None:
    with pytest.raises(ValueError, match="not a callgrind dump"):
        dumped_instructions("events: Ir\n")


def test_an_unknown_variant_is_refused(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exited:
        main(["--variants", "plain,bogus"])
    assert exited.value.code == 2
    assert "unknown variants: bogus" in capsys.readouterr().err
