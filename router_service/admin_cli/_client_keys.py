"""`switchboard admin client-keys issue|list|revoke`: client keys issued at run time
(AdminService.IssueClientKey, ListClientKeys, RevokeClientKey). `issue` prints the new key on
stdout, once: the router keeps only its hash."""

from __future__ import annotations

import argparse
from collections.abc import Sequence

from clients import SyncRouterClient
from clients.switchboard.v1 import admin_service_pb2 as pb
from router_service.admin_cli._format import ago, table, until

__all__ = ["client_key_table", "client_keys"]

_HEADERS = ("ID", "CLIENT", "LABEL", "FINGERPRINT", "CREATED", "EXPIRES")


def client_keys(
    client: SyncRouterClient, args: argparse.Namespace, now: float
) -> tuple[pb.IssueClientKeyResponse | pb.ListClientKeysResponse | pb.RevokeClientKeyResponse, str]:
    """The answer of the action asked for, and its text."""
    if args.client_keys_action == "issue":
        issued = client.issue_client_key(args.client, args.label or "", args.ttl)
        text = (
            f"{issued.key}\n\n"
            "The key above is shown this once: the router keeps only its hash.\n\n"
            + client_key_table([issued.info], now)
        )
        return issued, text
    if args.client_keys_action == "revoke":
        revoked = client.revoke_client_key(args.id)
        text = f"{revoked.key.id} ({revoked.key.fingerprint}) of {revoked.key.client} revoked"
        return revoked, text + " (on every replica sharing this state store)"
    listed = client.list_client_keys(args.client or "")
    return listed, client_key_table(listed.keys, now) or "no issued client keys"


def client_key_table(keys: Sequence[pb.ClientKey], now: float) -> str:
    rows = [
        (
            key.id,
            key.client + (" (orphaned: not configured)" if key.orphaned else ""),
            key.label or "-",
            key.fingerprint,
            ago(key.created_unix, now) if key.created_unix else "-",
            until(key.expires_unix, now, none="never"),
        )
        for key in keys
    ]
    return table(rows, _HEADERS)
