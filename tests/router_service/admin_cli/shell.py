"""`switchboard admin` run as an operator would, against a real router on a loopback port: its
`main` in a worker thread (the router serves on the test's event loop meanwhile), its stdout,
stderr and exit status captured, and every run checked never to show a key."""

from __future__ import annotations

import asyncio
import contextlib
import io
import re
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from router_service.admin_cli import main
from router_service.clock import ManualClock
from router_service.fake_upstream import FakeUpstream
from tests.conftest import RouterHandle, StartRouter, base_config
from tests.router_service.auth.helpers import client, guarded_config
from tests.router_service.server.client_figures import NOON

OPS = "sk-ops-admin-cli-0123"
ALICE = "sk-alice-admin-cli-0123"
# Every secret the routers here know: none may ever appear in what the command prints.
SECRETS = (OPS, ALICE, "sk-alpha-1", "sk-alpha-2", "sk-beta-1")


@dataclass(frozen=True)
class Ran:
    code: int
    out: str
    err: str

    def lines(self) -> list[list[str]]:
        """stdout's table lines as cells (columns are two spaces or more apart)."""
        return [re.split(r"\s{2,}", line) for line in self.out.splitlines() if line.strip()]

    def rows(self, first: str) -> list[list[str]]:
        """The lines whose first cell is `first`."""
        return [cells for cells in self.lines() if cells[0] == first]

    def row(self, first: str) -> list[str]:
        """The one line whose first cell is `first`."""
        (found,) = self.rows(first)
        return found


async def run_admin(argv: list[str], now: Callable[[], float]) -> Ran:
    def run() -> Ran:
        out, err = io.StringIO(), io.StringIO()
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            code = main(argv, now=now)
        return Ran(code, out.getvalue(), err.getvalue())

    ran = await asyncio.to_thread(run)
    for secret in SECRETS:
        assert secret not in ran.out + ran.err, "a key was printed"
    assert "Traceback" not in ran.err
    return ran


class Shell:
    """`switchboard admin --router <the router> --key-file <OPS's key> ARGS`, shown against the
    router's ManualClock."""

    def __init__(self, router: RouterHandle, clock: ManualClock, key_file: Path) -> None:
        self.router = router
        self.clock = clock
        self.key_file = key_file
        self.asked = 0  # questions asked so far (tests that need each call to reach upstream)

    async def __call__(self, *args: str, key: list[str] | None = None) -> Ran:
        """`key`: the key options instead of `--key-file <OPS's>` ([] for none)."""
        given = ["--key-file", str(self.key_file)] if key is None else key
        return await run_admin(
            ["--router", self.router.server.address, *given, *args], self.clock.now
        )


def key_file(directory: Path, key: str = OPS) -> Path:
    path = directory / "admin.key"
    path.write_text(key + "\n")
    path.chmod(0o600)
    return path


def ops_config(fake: FakeUpstream, **sections: Any) -> dict[str, Any]:
    """base_config's providers and groups; `ops` may administer, `alice` chats under limits
    and a daily token budget; the response cache on."""
    return guarded_config(
        fake.base_url,
        client("ops", OPS, scopes=["admin"]),
        client(
            "alice", ALICE, models=["chain"], scopes=["chat"], rpm=10, tpm=5000, tokens_per_day=1000
        ),
        cache={"enabled": True},
        **sections,
    )


async def ops_shell(
    fake: FakeUpstream, start_router: StartRouter, directory: Path, **sections: Any
) -> Shell:
    clock = ManualClock(NOON)
    router = await start_router(ops_config(fake, **sections), clock=clock)
    return Shell(router, clock, key_file(directory))


__all__ = ["ALICE", "OPS", "Ran", "Shell", "base_config", "key_file", "ops_shell", "run_admin"]
