"""The runtime virtualenv Switchboard runs from in the bench (`benchmarks/_runtime.py`)."""

from __future__ import annotations

import shutil
import sys
from pathlib import Path

import pytest

from benchmarks import _venv
from benchmarks._runtime import dependencies, runtime_python
from benchmarks._systems import REPO

# A hang guard, not a speed target: a venv made and pip run three times on a busy 2-core machine.
pytestmark = pytest.mark.timeout(180)


def test_the_runtime_gets_the_projects_dependencies_and_no_test_tools() -> None:
    wanted = dependencies(REPO)
    names = {w.split(">")[0].split("=")[0].split("[")[0].strip() for w in wanted}
    assert {"grpcio", "fastapi", "httpx", "opentelemetry-sdk"} <= names
    assert not names & {"pytest", "schemathesis", "mypy", "ruff"}


def _tree(tmp_path: Path, deps: list[str]) -> Path:
    src = tmp_path / "src"
    src.mkdir(exist_ok=True)
    listed = ", ".join(f'"{d}"' for d in deps)
    (src / "pyproject.toml").write_text(f'[project]\nname = "x"\ndependencies = [{listed}]\n')
    return src


@pytest.fixture(scope="module")
def made_venv(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A virtualenv made once by `_venv.create` (ensurepip takes seconds on a busy machine)."""
    venv = tmp_path_factory.mktemp("made") / "venv"
    _venv.create(venv)
    return venv


@pytest.fixture
def copied_venvs(made_venv: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Each venv `runtime_python` makes is a copy of `made_venv`: what is tested here is when
    it makes one (and what it removes first), not `python -m venv` again (test_venv.py)."""

    def create(venv: Path) -> Path:
        shutil.copytree(made_venv, venv, symlinks=True)
        return venv / "bin" / "python"

    monkeypatch.setattr(_venv, "create", create)


@pytest.mark.usefixtures("copied_venvs")
def test_a_venv_made_for_these_dependencies_is_reused_and_a_change_remakes_it(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # No packages: the venv is made and pip runs on an empty requirements file (no index used).
    venv = tmp_path / "venv"
    src = _tree(tmp_path, [])
    python = runtime_python(src, venv)
    assert python == str(venv / "bin" / "python")
    assert len(list(venv.glob(".installed-*"))) == 1
    assert "installing" in capsys.readouterr().out
    runtime_python.cache_clear()
    assert runtime_python(src, venv) == python
    assert "installing" not in capsys.readouterr().out  # the stamp matched
    runtime_python.cache_clear()
    # Another dependency list (pip is there already: no index used): the venv is made anew,
    # so nothing installed for the old list stays behind.
    leftover = venv / "lib" / "left-behind.py"
    leftover.write_text("")
    assert runtime_python(_tree(tmp_path, ["pip"]), venv) == python
    assert "installing" in capsys.readouterr().out
    assert not leftover.exists()
    assert len(list(venv.glob(".installed-*"))) == 1
    runtime_python.cache_clear()
    # A changed dependency list that pip cannot satisfy: said, and this Python is used instead.
    changed = _tree(tmp_path, ["no-such-package-for-switchboard-bench==0.0.1"])
    assert runtime_python(changed, venv) == sys.executable
    out = capsys.readouterr().out
    assert "failed" in out and "runs from" in out
