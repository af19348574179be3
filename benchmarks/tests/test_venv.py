"""Which interpreter the systems' virtualenvs are made from (`benchmarks/_venv.py`)."""

from __future__ import annotations

import os
import platform
from pathlib import Path

import pytest

from benchmarks import _venv
from benchmarks._runtime import runtime_python

pytestmark = pytest.mark.timeout(60)


def test_the_harness_interpreter_by_default(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("BENCH_PYTHON", raising=False)
    assert _venv.base_python() == _venv._HARNESS_BASE
    assert _venv.venv_dir("runtime-venv") == _venv.BENCHMARKS / ".runtime-venv"
    assert _venv.describe_python() == f"{platform.python_version()} {_venv._HARNESS_BASE}"


def test_another_interpreter_gets_virtualenvs_of_its_own(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    # The harness "runs" from elsewhere; BENCH_PYTHON names the real interpreter.
    real = os.path.realpath(_venv._HARNESS_BASE)
    monkeypatch.setattr(_venv, "_HARNESS_BASE", str(tmp_path / "elsewhere" / "python3"))
    monkeypatch.setenv("BENCH_PYTHON", real)
    runtime, peer = _venv.venv_dir("runtime-venv"), _venv.venv_dir("peer-venv")
    assert runtime.parent == peer.parent == _venv.BENCHMARKS
    assert runtime.name.startswith(".runtime-venv-") and peer.name.startswith(".peer-venv-")
    assert runtime.name[len(".runtime-venv-") :] == peer.name[len(".peer-venv-") :]
    assert _venv.describe_python() == f"{platform.python_version()} {real}"
    # Where the venv points is the question here: pip is not needed (test_runtime.py's venv has it).
    python = _venv.create(tmp_path / "venv", with_pip=False)
    assert python.exists()
    config = (tmp_path / "venv" / "pyvenv.cfg").read_text()
    assert f"home = {os.path.dirname(real)}" in config


def test_an_interpreter_that_does_not_run_is_reported_not_raised(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    missing = str(tmp_path / "no-such-python")
    monkeypatch.setenv("BENCH_PYTHON", missing)
    assert _venv.describe_python() == f"? {missing}"
    with pytest.raises(_venv.VenvFailed):
        _venv.create(tmp_path / "venv")


def test_an_explicit_interpreter_fails_the_run_rather_than_falling_back(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    # Without BENCH_PYTHON a failed install falls back to the harness's Python (test_runtime);
    # with it, Switchboard would run on another interpreter than the peer and the report name.
    missing = str(tmp_path / "no-such-python")
    monkeypatch.setenv("BENCH_PYTHON", missing)
    src = tmp_path / "src"
    src.mkdir()
    (src / "pyproject.toml").write_text('[project]\nname = "x"\ndependencies = []\n')
    runtime_python.cache_clear()
    try:
        with pytest.raises(SystemExit, match="BENCH_PYTHON"):
            runtime_python(src, tmp_path / "venv")
    finally:
        runtime_python.cache_clear()
