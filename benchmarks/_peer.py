"""The peer: LiteLLM proxy at a pinned version, in its own virtualenv (`benchmarks/.peer-venv`).

The package index here is a snapshot in which `litellm[proxy]` cannot resolve (it pins a certifi
newer than the snapshot has; see shared/BENCHMARK-NOTES.md). So: install the wheel with
`--no-deps`, then its `Requires-Dist` (core plus the `proxy` extra) read from the wheel's METADATA,
with certifi unpinned. pip warns about the certifi conflict; the proxy runs.
"""

from __future__ import annotations

import email.parser
import secrets
import sys
import tempfile
import zipfile
from dataclasses import dataclass
from pathlib import Path

from packaging.requirements import Requirement

from benchmarks import _venv

PEER_VERSION = "1.106.10"
_UNPINNED = {"certifi"}


class PeerUnavailable(Exception):
    """LiteLLM could not be installed or started; the run goes on without the peer."""


@dataclass(frozen=True)
class Peer:
    executable: Path  # the `litellm` console script
    version: str


def requirements_from_metadata(metadata: str, extras: tuple[str, ...] = ("proxy",)) -> list[str]:
    """`Requires-Dist` entries that apply to the core and `extras`, certifi unpinned."""
    message = email.parser.Parser().parsestr(metadata)
    wanted: list[str] = []
    for line in message.get_all("Requires-Dist") or []:
        req = Requirement(line)
        if req.marker is not None and not any(
            req.marker.evaluate({"extra": extra}) for extra in ("", *extras)
        ):
            continue
        req.marker = None
        if req.name.lower() in _UNPINNED:
            wanted.append(req.name)
        else:
            wanted.append(str(req))
    return wanted


def ensure_peer(version: str = PEER_VERSION, venv: Path | None = None) -> Peer:
    """Install LiteLLM proxy `version` into `venv` unless it is there already (default:
    `benchmarks/.peer-venv`, suffixed for another interpreter than the harness's)."""
    venv = venv or _venv.venv_dir("peer-venv")
    stamp = venv / f".installed-{version}"
    exe = venv / "bin" / "litellm"
    if stamp.exists() and exe.exists():
        return Peer(exe, version)
    log = venv.parent / "results" / "tmp" / "peer-install.log"
    log.parent.mkdir(parents=True, exist_ok=True)
    print(f"bench: installing LiteLLM proxy {version} into {venv} (log: {log})", flush=True)
    try:
        _venv.create(venv)
        _venv.pip(venv, "install", "--quiet", "--upgrade", "pip", "packaging", log=log)
        with tempfile.TemporaryDirectory() as tmp:
            _venv.pip(venv, "download", "--no-deps", "-d", tmp, f"litellm=={version}", log=log)
            wheel = next(Path(tmp).glob("litellm-*.whl"), None)
            if wheel is None:
                raise PeerUnavailable(f"no wheel of litellm {version} in the index")
            with zipfile.ZipFile(wheel) as zf:
                name = next(n for n in zf.namelist() if n.endswith(".dist-info/METADATA"))
                metadata = zf.read(name).decode()
            reqs = Path(tmp) / "requirements.txt"
            reqs.write_text("\n".join(requirements_from_metadata(metadata)) + "\n")
            _venv.pip(venv, "install", "--no-deps", str(wheel), log=log)
            _venv.pip(venv, "install", "-r", str(reqs), log=log)
    except (OSError, _venv.VenvFailed) as exc:
        raise PeerUnavailable(f"installing litellm {version} failed: {exc}") from exc
    if not exe.exists():
        raise PeerUnavailable(f"litellm {version} installed without its `litellm` script")
    stamp.touch()
    return Peer(exe, version)


def peer_config(upstream_base_url: str, model: str, upstream_model: str) -> str:
    """LiteLLM's minimal config: one model on the fake upstream, as BENCHMARK-NOTES describes."""
    return (
        "model_list:\n"
        f"  - model_name: {model}\n"
        "    litellm_params:\n"
        f"      model: openai/{upstream_model}\n"
        f"      api_base: {upstream_base_url}\n"
        "      api_key: sk-bench-upstream\n"
        "general_settings:\n"
        "  master_key: os.environ/LITELLM_MASTER_KEY\n"
    )


def master_key() -> str:
    return "sk-" + secrets.token_hex(24)


if __name__ == "__main__":  # `python -m benchmarks._peer`: install only
    try:
        print(ensure_peer())
    except PeerUnavailable as exc:
        print(f"bench: peer unavailable: {exc}", file=sys.stderr)
        raise SystemExit(1) from None
