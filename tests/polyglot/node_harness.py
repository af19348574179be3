"""How the Node tests run. The npm packages of one (a folder with package.json and
package-lock.json) are installed once into `.tools/<name>/` (git-ignored, like buf) and reused
while the manifests are unchanged.

Without node/npm, or when the install fails (no registry), the test skips, except under CI=true
where that fails. `run_node` runs a script and reads the JSON it prints."""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parents[2]
MANIFESTS = ("package.json", "package-lock.json")


def unavailable(reason: str) -> None:
    if os.environ.get("CI") == "true":
        pytest.fail(f"{reason} (CI runs the Node tests)")
    pytest.skip(reason)


def _installed(source: Path, install: Path) -> bool:
    """The cache holds exactly the packages the manifests pin: they are copied in only after a
    successful install, so a failed or interrupted one is retried next time."""
    return (install / "node_modules").is_dir() and all(
        (install / name).is_file() and (install / name).read_bytes() == (source / name).read_bytes()
        for name in MANIFESTS
    )


def _install(npm: str, source: Path, install: Path) -> None:
    scratch = install.with_name(install.name + ".partial")
    shutil.rmtree(scratch, ignore_errors=True)
    scratch.mkdir(parents=True)
    try:
        for name in MANIFESTS:
            shutil.copyfile(source / name, scratch / name)
        # One retry, not npm's default of minutes of them: without a registry the test says so.
        npm_ci = [npm, "ci", "--ignore-scripts", "--no-audit", "--no-fund", "--prefer-offline"]
        npm_ci += ["--fetch-retries=1", "--prefix", str(scratch)]
        try:
            done = subprocess.run(npm_ci, capture_output=True, text=True, timeout=240)
        except subprocess.TimeoutExpired:
            unavailable(f"npm ci of {source.name} timed out (no npm registry?)")
        if done.returncode != 0:
            unavailable(f"npm ci of {source.name} failed: {done.stderr.strip()[-800:]}")
        shutil.rmtree(install, ignore_errors=True)
        scratch.rename(install)
    finally:
        shutil.rmtree(scratch, ignore_errors=True)


def node_command(source: Path, script: str, install_name: str) -> list[str]:
    """The command that runs `source/script` beside its installed node_modules (Node resolves an
    ES module's imports from the script's own folder, so the script is copied in each run)."""
    node, npm = shutil.which("node"), shutil.which("npm")
    if node is None or npm is None:
        unavailable("node and npm are not installed (apt-get install -y nodejs npm)")
    assert node is not None and npm is not None
    install = ROOT / ".tools" / install_name
    if not _installed(source, install):
        _install(npm, source, install)
    shutil.copyfile(source / script, install / script)
    return [node, str(install / script)]


async def run_node(
    command: list[str], args: dict[str, Any] | None = None, env: dict[str, str] | None = None
) -> dict[str, Any]:
    """Run a script (`args` as its one JSON argument, `env` added to the environment) and
    return the JSON object it printed."""
    process = await asyncio.create_subprocess_exec(
        *command,
        *([json.dumps(args)] if args is not None else []),
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
        env={**os.environ, **(env or {})},
    )
    try:
        out, err = await asyncio.wait_for(process.communicate(), timeout=30)
    finally:
        if process.returncode is None:
            process.kill()
            await process.wait()
    assert process.returncode == 0, err.decode(errors="replace")[-3000:]
    result: dict[str, Any] = json.loads(out)
    return result
