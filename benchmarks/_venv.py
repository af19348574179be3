"""Virtualenvs the harness makes for the systems it measures: LiteLLM's (`_peer.py`) and
Switchboard's runtime (`_runtime.py`). Each is made once and reused; pip's output goes to a log.

Both are made from one interpreter, so the systems compare on equal terms: the one running the
harness, or `BENCH_PYTHON` (a path). CPython builds differ a lot in speed: this machine's
`python3` (pyenv, built without profile-guided and link-time optimization, libpython shared)
runs the router ~10-20 % slower per request than Debian's `/usr/bin/python3.11` (built with
both); see README, "Which CPython". Each interpreter gets virtualenvs of its own.
"""

from __future__ import annotations

import hashlib
import os
import platform
import subprocess
import sys
from pathlib import Path

BENCHMARKS = Path(__file__).resolve().parent
_HARNESS_BASE = getattr(sys, "_base_executable", sys.executable)


def base_python() -> str:
    """The interpreter the systems' virtualenvs are made from."""
    return os.environ.get("BENCH_PYTHON") or _HARNESS_BASE


def another_python() -> str | None:
    """`BENCH_PYTHON` when it names another interpreter than the harness's, else None."""
    base = base_python()
    return None if os.path.realpath(base) == os.path.realpath(_HARNESS_BASE) else base


def venv_dir(name: str) -> Path:
    """`benchmarks/.<name>` for the harness's interpreter, `.<name>-<8 hex>` for another, so
    switching interpreters neither remakes nor mixes the other's virtualenvs."""
    other = another_python()
    if other is None:
        return BENCHMARKS / f".{name}"
    tag = hashlib.sha256(os.path.realpath(other).encode()).hexdigest()[:8]
    return BENCHMARKS / f".{name}-{tag}"


def describe_python() -> str:
    """Version and path of the systems' interpreter, for the report (`3.11.2 /usr/bin/...`)."""
    base = another_python()
    if base is None:
        return f"{platform.python_version()} {_HARNESS_BASE}"
    try:
        done = subprocess.run(
            [base, "-c", "import platform; print(platform.python_version())"],
            capture_output=True,
            text=True,
            timeout=30,
            check=True,
        )
    except (OSError, subprocess.SubprocessError):
        return f"? {base}"
    return f"{done.stdout.strip()} {base}"


class VenvFailed(Exception):
    """The virtualenv could not be made or filled; the message names the log."""


def create(venv: Path, *, with_pip: bool = True) -> Path:
    """`venv` (made unless its python is there already); returns its python. Without pip
    (`with_pip=False`: no ensurepip, seconds less) for a venv nothing is installed into."""
    python = venv / "bin" / "python"
    if not python.exists():
        try:
            subprocess.run(
                [base_python(), "-m", "venv", *([] if with_pip else ["--without-pip"]), str(venv)],
                check=True,
                timeout=300,
                capture_output=True,
            )
        except (OSError, subprocess.SubprocessError) as exc:
            raise VenvFailed(f"`python -m venv {venv}` failed: {exc}") from exc
    return python


def pip(venv: Path, *args: str, log: Path) -> None:
    cmd = [str(venv / "bin" / "python"), "-m", "pip", "--disable-pip-version-check", *args]
    log.parent.mkdir(parents=True, exist_ok=True)
    with log.open("a") as out:
        out.write(f"$ {' '.join(cmd)}\n")
        out.flush()
        try:
            done = subprocess.run(
                cmd, stdout=out, stderr=subprocess.STDOUT, timeout=1200, check=False
            )
        except (OSError, subprocess.SubprocessError) as exc:
            raise VenvFailed(f"`pip {' '.join(args[:2])}` failed: {exc}; see {log}") from exc
    if done.returncode != 0:
        raise VenvFailed(f"`pip {' '.join(args[:2])}` failed; see {log}")
