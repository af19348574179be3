"""One function per `switchboard admin` subcommand: it makes its AdminService call and returns
the answer with its text for a terminal (`--json` prints the message instead)."""

from __future__ import annotations

import argparse
from collections.abc import Callable
from dataclasses import dataclass

from google.protobuf.message import Message

from clients import SyncRouterClient
from clients.switchboard.v1 import admin_service_pb2 as pb
from router_service.admin_cli._client_keys import client_keys
from router_service.admin_cli._render import client_tables, info_table, key_table, stats_tables
from router_service.admin_cli._render_jobs import jobs_tables

__all__ = ["COMMANDS", "Shown"]


@dataclass(frozen=True)
class Shown:
    """A subcommand's answer: the message (`--json`) and its text."""

    message: Message
    text: str


Command = Callable[[SyncRouterClient, argparse.Namespace, float], Shown]

# A shared write the replica could not send (Redis cut off): queued, replayed once it is back.
_QUEUED = "on this replica now; on the others once Redis is back"


def info(client: SyncRouterClient, args: argparse.Namespace, now: float) -> Shown:
    answer = client.get_server_info()
    return Shown(answer, info_table(answer, now))


def keys(client: SyncRouterClient, args: argparse.Namespace, now: float) -> Shown:
    """`keys` lists them; `keys disable|enable FINGERPRINT` switches one."""
    if args.keys_action is not None:
        return _set_enabled(client, args, now)
    answer = client.list_keys(pb.ListKeysRequest(provider=args.provider or ""))
    return Shown(answer, key_table(answer.keys, now))


def _set_enabled(client: SyncRouterClient, args: argparse.Namespace, now: float) -> Shown:
    enabled = args.keys_action == "enable"
    request = pb.SetKeyEnabledRequest(
        # No provider: the router finds the one with that fingerprint.
        provider=args.provider or "",
        fingerprint=args.fingerprint,
        enabled=enabled,
        reason=getattr(args, "reason", None) or "",
    )
    answer = client.set_key_enabled(request)
    done = "enabled" if enabled else "disabled (until enabled again)"
    if answer.queued:
        done += f"; {_QUEUED}"
    text = f"{answer.key.fingerprint} of {answer.key.provider} {done}\n\n"
    return Shown(answer, text + key_table([answer.key], now))


def stats(client: SyncRouterClient, args: argparse.Namespace, now: float) -> Shown:
    answer = client.get_routing_stats()
    return Shown(answer, stats_tables(answer, now))


def clients(client: SyncRouterClient, args: argparse.Namespace, now: float) -> Shown:
    answer = client.list_clients()
    return Shown(answer, client_tables(answer, now))


def jobs(client: SyncRouterClient, args: argparse.Namespace, now: float) -> Shown:
    answer = client.list_jobs(args.limit)
    return Shown(answer, jobs_tables(answer, now))


def cancel_batch(client: SyncRouterClient, args: argparse.Namespace, now: float) -> Shown:
    answer = client.cancel_client_batch(args.batch_id, args.reason or "")
    batch = answer.batch
    owner = answer.client or "(anonymous)"
    text = f"batch {batch.id} of client {owner}: {batch.status}"
    return Shown(answer, text)


def issued_keys(client: SyncRouterClient, args: argparse.Namespace, now: float) -> Shown:
    """`client-keys issue CLIENT | list | revoke ID`."""
    answer, text = client_keys(client, args, now)
    return Shown(answer, text)


def purge_cache(client: SyncRouterClient, args: argparse.Namespace, now: float) -> Shown:
    """`MODEL` or `--all` (the parser requires one: a bare command forgets nothing)."""
    model = "" if args.all else args.model
    answer = client.purge_cache(model)
    which = "every model's answers" if not model else f"the answers of model {model}"
    where = _QUEUED if answer.queued else "on every replica sharing this state store"
    text = f"response cache: {which} forgotten ({where})"
    return Shown(answer, text)


COMMANDS: dict[str, Command] = {
    "info": info,
    "keys": keys,
    "stats": stats,
    "clients": clients,
    "jobs": jobs,
    "cancel-batch": cancel_batch,
    "client-keys": issued_keys,
    "purge-cache": purge_cache,
}
