"""Packages whose names are imported on first use (clients/_lazy.py) still tell a type checker
exactly which names they have: a misspelt or removed name is mypy's error, as it was when the
packages imported their names eagerly, not a silent `Any` that fails at its first call."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]

LAZY_PACKAGES = (
    "clients",
    "clients.codec",
    "clients.codec.anthropic",
    "clients.codec.gemini",
    "clients.codec.ollama",
    "router_service.config",
    "router_service.guardrails",
    "router_service.server",
    "router_service.telemetry",
)


# mypy from a cold cache: over a minute on a loaded machine. The checkout's own cache (`make
# lint`'s, which runs before the tests in `make test`) makes it ~0.4 s of CPU, not ~5: mypy checks
# each cached module's source hash and options, so the probe is still read against this checkout.
@pytest.mark.timeout(300)
def test_mypy_refuses_names_the_lazy_packages_do_not_have(tmp_path: Path) -> None:
    probe = tmp_path / "probe.py"
    lines = [f"from {package} import not_a_name_{i}" for i, package in enumerate(LAZY_PACKAGES)]
    # Attribute reads as well as imports (the edge reads `gemini.METHODS` off the package).
    lines += ["from clients.codec import gemini", "gemini.not_a_method_table"]
    # A name each package does have passes: the probe is read against this checkout.
    lines += ["from clients.codec.gemini import METHODS", "from clients import RouterClient"]
    probe.write_text("\n".join(lines) + "\n")
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "mypy",
            "--config-file",
            str(ROOT / "pyproject.toml"),
            "--no-error-summary",
            str(probe),
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
    )
    complaints = [line for line in done.stdout.splitlines() if ": error:" in line]
    flagged = sorted(int(line.split(":")[1]) for line in complaints)
    assert flagged == [*range(1, len(LAZY_PACKAGES) + 1), len(LAZY_PACKAGES) + 2], done.stdout
