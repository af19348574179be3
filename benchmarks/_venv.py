"""Virtualenvs the harness makes for the systems it measures: LiteLLM's (`_peer.py`) and
Switchboard's runtime (`_runtime.py`). Each is made once and reused; pip's output goes to a log."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path


class VenvFailed(Exception):
    """The virtualenv could not be made or filled; the message names the log."""


def create(venv: Path) -> Path:
    """`venv` (made unless its python is there already); returns its python."""
    python = venv / "bin" / "python"
    if not python.exists():
        try:
            subprocess.run(
                [getattr(sys, "_base_executable", sys.executable), "-m", "venv", str(venv)],
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
