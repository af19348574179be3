"""`--scenarios` of `switchboard fake-upstream` and `switchboard dev`: a file that is missing or
does not read is one line naming it and exit status 2, before anything listens. It was a
traceback (exit status 1) for `fake-upstream`, and for `dev` a missing file was no faults at
all, without a word: a demo of failovers that never fail over."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from tests.conftest import base_config
from tests.helpers import free_port
from tests.router_service.server.processes import STARTUP_S

pytestmark = pytest.mark.timeout(60)

BAD = {
    "missing": (None, "No such file or directory"),
    "unknown field": ("- {key: sk-x, scenario: {bogus: 1}}\n", "unknown Scenario field(s)"),
    "not YAML": ("- {key: [\n", "invalid YAML"),
    "not a list": ("key: sk-x\n", "expected a list"),
}


def _run(*argv: str) -> subprocess.CompletedProcess[str]:
    try:
        return subprocess.run(
            [sys.executable, "-m", "router_service", *argv],
            capture_output=True,
            text=True,
            timeout=STARTUP_S,
        )
    except subprocess.TimeoutExpired as exc:  # killed by run()
        pytest.fail(f"it started without its scenarios: {exc.stderr!r}")


# Each way a file fails to read is load_scenarios' (one for both commands): `fake-upstream` runs
# them all; `dev` one that reads as YAML (the latest failure, after its metrics port was known).
@pytest.mark.parametrize(
    ("command", "case"), [*(("fake-upstream", case) for case in BAD), ("dev", "unknown field")]
)
def test_scenarios_that_do_not_read_are_one_line_and_exit_status_2(
    command: str, case: str, tmp_path: Path
) -> None:
    text, why = BAD[case]
    scenarios = tmp_path / "scenarios.yaml"
    if text is not None:
        scenarios.write_text(text)
    argv = [command, "--scenarios", str(scenarios)]
    if command == "fake-upstream":
        argv += ["--port", str(free_port())]
    else:
        config = tmp_path / "dev.yaml"
        # As the demo's (examples/dev.yaml): a metrics port, which was opened (and announced)
        # before the scenarios were read.
        sections = {"server": {"port": 0}, "telemetry": {"prometheus_port": free_port()}}
        config.write_text(yaml.safe_dump(base_config("http://127.0.0.1:9/v1", **sections)))
        config.chmod(0o600)
        argv += ["-c", str(config), "--fake-port", str(free_port())]
    done = _run(*argv)
    assert done.returncode == 2, done.stderr
    assert "Traceback" not in done.stderr
    assert f"{scenarios}: " in done.stderr and why in done.stderr, done.stderr
    assert done.stderr.count(str(scenarios)) == 1, done.stderr  # named once, not `f: f: …`
    assert "listening" not in done.stderr and "metrics on http" not in done.stderr
