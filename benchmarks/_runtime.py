"""The Python that Switchboard runs from in the bench: a virtualenv with its runtime dependencies
only (`[project.dependencies]` of the measured tree's pyproject.toml), as `pip install` gives
users (`benchmarks/.runtime-venv`; the source itself still comes from the tree, on PYTHONPATH).

Not the development virtualenv: what else is installed changes what Switchboard's own imports
load. There, schemathesis (a test tool) brings rich and pygments, and with them and click
importable `import httpx` also loads httpx's command-line client: 84 modules, ~3.5 MiB of the
router's idle RSS that no installation of Switchboard has. Made once per set of dependencies
(a stamp holds their digest); when it cannot be made the run says so and uses this Python.
Made from `_venv.base_python()` (`BENCH_PYTHON`), like the peer's.
"""

from __future__ import annotations

import functools
import hashlib
import shutil
import sys
import tomllib
from pathlib import Path

from benchmarks import _venv


def dependencies(src: Path) -> list[str]:
    project = tomllib.loads((src / "pyproject.toml").read_text())["project"]
    return sorted(project["dependencies"])


@functools.cache
def runtime_python(src: Path, venv: Path | None = None) -> str:
    """The runtime virtualenv's python for the tree `src` (made or refreshed first); `venv`
    defaults to `benchmarks/.runtime-venv` (suffixed for another interpreter)."""
    venv = venv or _venv.venv_dir("runtime-venv")
    try:
        wanted = dependencies(src)
    except (OSError, KeyError, tomllib.TOMLDecodeError) as exc:
        print(f"bench: no dependencies read from {src}/pyproject.toml ({exc})", flush=True)
        return sys.executable
    digest = hashlib.sha256("\n".join(wanted).encode()).hexdigest()[:16]
    stamp = venv / f".installed-{digest}"
    python = venv / "bin" / "python"
    if stamp.exists() and python.exists():
        return str(python)
    log = venv.parent / "results" / "tmp" / "runtime-install.log"
    print(f"bench: installing Switchboard's runtime dependencies into {venv} (log: {log})")
    # Made anew: a package the tree no longer depends on must not stay behind (uvicorn's
    # `standard` extras left watchfiles, which uvicorn imports when it finds it).
    shutil.rmtree(venv, ignore_errors=True)
    try:
        _venv.create(venv)
        requirements = venv / "requirements.txt"
        requirements.write_text("\n".join(wanted) + "\n")
        _venv.pip(venv, "install", "--quiet", "-r", str(requirements), log=log)
    except _venv.VenvFailed as exc:
        if _venv.another_python() is not None:
            # Falling back would measure Switchboard on another interpreter than the peer and
            # than the report names: an explicit BENCH_PYTHON fails the run instead.
            raise SystemExit(f"bench: {exc} (BENCH_PYTHON={_venv.base_python()})") from exc
        print(f"bench: {exc}; Switchboard runs from {sys.executable} instead", flush=True)
        return sys.executable
    stamp.touch()
    return str(python)
