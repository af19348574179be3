"""Which Switchboard source tree the systems under test run from, and its label in the report.

Default: the work tree (`HEAD`, `+dirty` when router/edge/clients have uncommitted changes).
`--snapshot REV`: `git archive REV` unpacked under the run's tmp directory (read-only for the repo),
so a run measures one commit even while others edit the work tree. `--switchboard-src DIR`: any
tree. The fake upstream is the harness's own tool and always runs from the work tree.
"""

from __future__ import annotations

import argparse
import io
import subprocess
import tarfile
from pathlib import Path

from benchmarks._systems import REPO


def add_arguments(parser: argparse.ArgumentParser) -> None:
    group = parser.add_mutually_exclusive_group()
    group.add_argument("--snapshot", metavar="REV", help="measure commit REV (git archive)")
    group.add_argument("--switchboard-src", type=Path, help="measure the Switchboard tree in DIR")


def _git(*args: str) -> str:
    done = subprocess.run(["git", *args], capture_output=True, text=True, cwd=REPO, check=True)
    return done.stdout.strip()


def resolve(args: argparse.Namespace, tmp: Path) -> tuple[Path, str]:
    """(source directory, label) for the systems under test."""
    if args.snapshot:
        commit = _git("rev-parse", "--short", f"{args.snapshot}^{{commit}}")
        archive = subprocess.run(
            ["git", "archive", "--format=tar", commit],
            capture_output=True,
            cwd=REPO,
            check=True,
        ).stdout
        dest = tmp / f"src-{commit}"
        with tarfile.open(fileobj=io.BytesIO(archive)) as tar:
            tar.extractall(dest, filter="data")
        return dest, commit
    if args.switchboard_src:
        src = args.switchboard_src.resolve()
        return src, f"tree {src}"
    dirty = _git("status", "--porcelain", "--", "router_service", "http_edge", "clients")
    return REPO, _git("rev-parse", "--short", "HEAD") + ("+dirty" if dirty else "")
