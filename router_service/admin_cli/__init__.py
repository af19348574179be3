"""`switchboard admin`: the AdminService from a shell (info, keys, stats, clients, purge-cache).

Its own package, loaded only when it runs: a router or edge process never imports it (only
`add_admin`'s argparse definitions load for `switchboard -h`). `main` is what
`switchboard admin …` runs; the modules behind it: `_args` (the command line), `_connect` (the
router's address, TLS and the admin key, as the edge reads them), `_commands` (one function per
subcommand), `_render` and `_format` (text for a terminal), `_run` (errors and exit statuses).
"""

from __future__ import annotations

import os
import sys
import time
from collections.abc import Callable, Sequence

from router_service.admin_cli._args import add_admin

__all__ = ["add_admin", "main"]


def main(argv: Sequence[str], *, now: Callable[[], float] = time.time) -> int:
    """Run `switchboard admin ARGV`; its exit status (0 done, 1 router unreachable or another
    failure, 2 usage, 3 key refused, 4 not found). `now`: what deadlines are shown against."""
    if "grpc" not in sys.modules:  # read as gRPC loads; an operator's own setting wins
        # Failures are this command's one line on stderr: not also gRPC's log of them (a TLS
        # handshake that failed is an INFO line of its own).
        os.environ.setdefault("GRPC_VERBOSITY", "ERROR")
    from router_service.admin_cli._run import run

    return run(argv, now=now)
