"""The `switchboard` command line (router_service/cli.py): what its serving commands load."""

from __future__ import annotations

import subprocess
import sys

import pytest

pytestmark = pytest.mark.timeout(60)

_PROBE = """
import sys
from router_service.cli import without_httpx_cli
if sys.argv[1] == "guarded":
    without_httpx_cli()
import httpx
with httpx.Client() as client:  # httpx itself is whole
    assert client.timeout.read == 5.0
loaded = [name for name, module in sys.modules.items() if module is not None]
print(sorted(m for m in loaded if m == "click" or m.startswith("httpx._main")))
"""


def _modules_after_import_httpx(mode: str) -> str:
    done = subprocess.run(
        [sys.executable, "-c", _PROBE, mode], capture_output=True, text=True, timeout=50
    )
    assert done.returncode == 0, done.stderr
    return done.stdout.strip()


def test_a_server_process_imports_httpx_without_its_command_line_client() -> None:
    pytest.importorskip("click")  # without click, httpx never loads its CLI: nothing to keep out
    # Unguarded, `import httpx` loads click (and, here, the whole CLI): what the guard is for.
    assert "'click'" in _modules_after_import_httpx("plain")
    assert _modules_after_import_httpx("guarded") == "[]"
