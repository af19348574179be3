"""Reloading the router's config file without a restart: on SIGHUP, or when the file changes.

A reload reads and validates the file again; a file that does not load changes nothing (the
error is logged and the router keeps serving what it had). A file that loads becomes a new
Runtime on the same state store and HTTP client (`Runtime.successor`): new calls see its
providers, keys, models, callers, limits and guardrails; calls under way end as they began.
What the store knows (disabled keys, cooldowns, sessions, leases in flight) stays known, and
so does what this process knew of the keys the new file keeps (`keys.take_over`); a provider
renamed takes its keys' state, slots and rate windows along before the new Runtime serves
(`carried_over`). A few
settings shape the process itself and apply on the next start only; a reload that changes them
says which.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
from collections.abc import AsyncIterator, Iterable
from pathlib import Path
from typing import TYPE_CHECKING, Protocol

from router_service.config import SwitchboardConfig, load_config
from router_service.errors import ConfigError, ReplicaStoppingError, StoreUnavailableError
from router_service.keys import carry_renamed, carry_slots, fingerprint
from router_service.server._file_digest import digest_of, serving_file
from router_service.telemetry import current, redact_secrets_of

if TYPE_CHECKING:
    from router_service.runtime import Runtime
    from router_service.server._server import RouterServer

__all__ = [
    "carried_over",
    "changes",
    "in_force",
    "reload_from",
    "reloading",
    "restart_only",
    "slots_carried",
]

log = logging.getLogger("switchboard.router")

# Settings of the process rather than of routing: the listening socket and its TLS and message
# limits, the state store, the upstream HTTP client, telemetry and logging; and the edge's, read
# at its start only (an edge process's, `switchboard serve`'s in-process one: its admin token…).
_SERVER_SOCKET = ("host", "port", "tls", "max_message_bytes", "reload_poll_s")
_PROCESS_SECTIONS = ("state", "http", "telemetry", "edge")


def restart_only(old: SwitchboardConfig, new: SwitchboardConfig) -> list[str]:
    """The changed settings a reload cannot apply (they keep their old values until a restart)."""
    socket = [f"server.{name}" for name in _SERVER_SOCKET if _differs(old.server, new.server, name)]
    return socket + [name for name in _PROCESS_SECTIONS if _differs(old, new, name)]


def in_force(old: SwitchboardConfig, new: SwitchboardConfig) -> SwitchboardConfig:
    """`new` as the process runs it: with `old`'s values of the settings only a restart applies
    (what the runtime reads of them, GetServerInfo's state backend, a stopped batch handed over
    on a shared store or failed, must say what the process does, not what it will do)."""
    server = new.server.model_copy(
        update={name: getattr(old.server, name) for name in _SERVER_SOCKET}
    )
    kept = {name: getattr(old, name) for name in _PROCESS_SECTIONS}
    return new.model_copy(update={"server": server, **kept})


async def carried_over(new: Runtime, old: Runtime) -> None:
    """What the store knows of the providers the reload renamed (`keys.take_over`), carried to
    their new names before `new` serves, and their old pools handed over to the new ones then
    (`KeyPool.hand_over`): their keys' disables and cooldowns, their deployments' cooldowns
    (by upstream model and API), their slots and rate windows; what their conversations had
    there holds under the new names (`SessionState.renamed`), where `old`'s calls under way
    take their places from now on (`SessionState.succeeded`). Meanwhile `old` serves on the
    old names, so no call sees the renamed keys afresh (what calls on it write there after
    this read, until the hand-over, stays under the old names: a 429 met in that round trip).
    A store out of reach carries nothing: they start afresh."""
    renamed = []  # (old deployment, new deployment) of the renamed providers
    for name, was in new.renamed.items():
        before = [d for d in old.planner.deployments.values() if d.provider == was]
        pairs = [
            (d, n)
            for n in new.planner.deployments.values()
            if n.provider == name
            for d in before
            if (d.upstream_model, d.api) == (n.upstream_model, n.api)
        ]
        renamed += [(d.name, n.name) for d, n in pairs]
        moved = [(d.cooldown_name, n.cooldown_name) for d, n in pairs]
        try:
            await carry_renamed(new.pools[name], old.pools[was], moved)
        except StoreUnavailableError:
            log.warning("config reload: provider %s renamed %s: its keys start afresh", was, name)
        else:
            log.info("config reload: provider %s renamed %s: its keys' state kept", was, name)
    # Its conversations' bans, skips, sticky choices and places hold under the new names.
    in_use = (new.config.providers.keys(), new.planner.deployments.keys())
    new.sessions.renamed(old.sessions.live_renames().after(new.renamed, renamed, in_use=in_use))
    old.sessions.succeeded(new.sessions, {was: name for name, was in new.renamed.items()})
    for name, was in new.renamed.items():  # no suspension from here until `new` serves
        old.pools[was].hand_over(new.pools[name])


async def marks_shared(new: Runtime) -> None:
    """Once `new` serves: the conversations its `provider-ban` providers already serve, marked
    in this replica's memory while no limit counted them, moved to the shared store where their
    `max_sessions` counts them (`SessionState.share`). A store out of reach moves none: the
    limit counts them from their next call on."""
    banning = [
        name
        for name, provider in new.config.providers.items()
        if provider.thread_protection == "provider-ban"
    ]
    try:
        await new.sessions.share(banning)
    except StoreUnavailableError as exc:
        log.warning("config reload: calls under way not counted by max_sessions: %s", exc.message)


async def slots_carried(new: Runtime, old: Runtime) -> None:
    """Once `new` serves: the slots the old pools of renamed providers leased while
    `carried_over` ran, moved under the new names too (`keys.carry_slots`)."""
    for name, was in new.renamed.items():
        with contextlib.suppress(StoreUnavailableError):  # they free themselves by their TTL
            await carry_slots(new.pools[name], old.pools[was])


def _differs(old: object, new: object, name: str) -> bool:
    return bool(getattr(old, name) != getattr(new, name))


def changes(old: SwitchboardConfig, new: SwitchboardConfig) -> str:
    """What a reload changed, for the log: providers, keys (by fingerprint), models, callers,
    guardrails (by name)."""
    parts = [
        _delta("providers", old.providers, new.providers),
        _delta("keys", _fingerprints(old), _fingerprints(new)),
        _delta("models", [*old.models, *old.pools], [*new.models, *new.pools]),
        _delta("callers", _callers(old), _callers(new)),
        _delta("guardrails", [g.name for g in old.guardrails], [g.name for g in new.guardrails]),
    ]
    return ", ".join(parts)


def _fingerprints(config: SwitchboardConfig) -> list[str]:
    return [
        f"{name}:{fingerprint(key.key.get_secret_value())}"
        for name, provider in config.providers.items()
        for key in provider.keys
    ]


def _callers(config: SwitchboardConfig) -> list[str]:
    return [caller.name for caller in config.auth.clients]


def _delta(what: str, old: Iterable[str], new: Iterable[str]) -> str:
    before, after = set(old), set(new)
    return f"{what} {len(after)} (+{len(after - before)} -{len(before - after)})"


async def reload_from(server: RouterServer, path: str | Path) -> bool:
    """Reload `path` into `server`; False (and the reason logged) when the file does not load."""
    reloads = current().metrics.config_reloads
    # Before it is read (as at the start): a change written while the reload runs is not
    # reported as served.
    digest = digest_of(Path(path))
    try:
        config = load_config(path)
    except ConfigError as exc:
        log.error("config reload from %s failed, still serving the previous config:\n%s", path, exc)
        reloads.add(1, {"outcome": "failed"})
        server.record.reload_failed(str(exc))  # names file, line and setting, never a value
        return False
    old = server.runtime.config
    # A new key is masked in the log before anything can log it; a secret only a restart
    # replaces (`in_force`: the edge's admin token, the state store's password) stays masked.
    redact_secrets_of(config, in_force(old, config))
    try:
        pending = await server.reload(config)
    except ReplicaStoppingError:
        # A SIGHUP or a changed file during a stop (a rolling deploy): nothing failed.
        redact_secrets_of(server.runtime.config)  # what it serves, not the file it refused
        log.warning("config reload from %s skipped: the router is stopping", path)
        return False
    except Exception as exc:
        redact_secrets_of(server.runtime.config)  # what it serves, not the file it refused
        log.exception("config reload from %s failed, still serving the previous config", path)
        reloads.add(1, {"outcome": "failed"})
        # Its type only: an unexpected error's text may quote anything (the log has it whole).
        server.record.reload_failed(f"the new config could not be applied ({type(exc).__name__})")
        return False
    reloads.add(1, {"outcome": "ok"})
    serving_file(path, digest)
    server.record.loaded(digest, server.runtime.clock.now())
    log.info("config reloaded from %s: %s", path, changes(old, config))
    if pending:
        log.warning(
            "config reload: %s changed in %s and apply only after a restart",
            ", ".join(pending),
            path,
        )
    return True


class _Remembered(Protocol):
    asked: bool  # a SIGHUP arrived before `reloading` watched the signal (cli.EarlySighup)


@contextlib.asynccontextmanager
async def reloading(
    server: RouterServer,
    path: str | Path,
    *,
    poll_s: float | None = None,
    early: _Remembered | None = None,
    loaded: str | None = None,
) -> AsyncIterator[None]:
    """While inside, SIGHUP reloads `path` into `server`, and with `poll_s` so does a change of
    the file's content, checked that often (a Kubernetes ConfigMap changes under a running pod
    without a signal). One reload at a time; asked again during one, one more follows. A file
    that fails to load is not tried again until it changes or SIGHUP asks. A SIGHUP that `early`
    remembered from the start-up reloads at once. The signal is not watched on Windows, nor
    outside the main thread. `loaded`: the digest of the file as the router read it at its
    start (`file_digest` taken before `load_config`): a change written while it started (a
    ConfigMap updated then) is polled as one; unset, the file as it is now counts as served."""
    loop = asyncio.get_running_loop()
    wanted = asyncio.Event()
    served = loaded if loaded is not None else digest_of(Path(path))
    server.record.loaded(served, server.runtime.clock.now())
    for outcome in ("ok", "failed"):  # from 0: the first failure is an increase (telemetry/_zeros)
        current().metrics.config_reloads.add(0, {"outcome": outcome})

    async def reloads() -> None:
        while True:
            await wanted.wait()
            wanted.clear()
            await reload_from(server, path)

    tasks = [loop.create_task(reloads())]
    if poll_s is not None:
        tasks.append(loop.create_task(_watch(Path(path), poll_s, wanted, served)))
    installed = False
    with contextlib.suppress(NotImplementedError, RuntimeError, AttributeError):
        loop.add_signal_handler(signal.SIGHUP, wanted.set)
        installed = True
    if early is not None and early.asked:  # checked once the signal is watched: none is lost
        log.info("config reload: SIGHUP arrived while the router started; reloading %s", path)
        wanted.set()
    try:
        yield
    finally:
        if installed:
            # Ignored from now on rather than back to its default action, which would kill a
            # router still draining its open calls (a `systemctl reload` during a stop).
            loop.add_signal_handler(signal.SIGHUP, _too_late)
        for task in tasks:
            task.cancel()
        await asyncio.wait(tasks)


def _too_late() -> None:
    log.warning("SIGHUP ignored: the router is stopping")


async def _watch(path: Path, poll_s: float, wanted: asyncio.Event, seen: str | None) -> None:
    """Set `wanted` whenever the content of `path` differs from what it was at the last check,
    the first time from `seen` (a file being replaced, briefly missing, is skipped until it is
    back)."""
    while True:
        await asyncio.sleep(poll_s)
        now = digest_of(path)
        if now is not None and now != seen:
            seen = now
            wanted.set()
