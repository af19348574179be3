"""AdminService.IssueClientKey, ListClientKeys, RevokeClientKey: client keys issued at run time
(`auth/_issued.py`), and each client's keys as ListClients shows them. Keys by fingerprint only;
the clear text of an issued key leaves in IssueClientKey's answer and nowhere else (not in a
log, an audit line, an error)."""

from __future__ import annotations

import dataclasses
import math

import grpc

from clients.switchboard.v1 import admin_service_pb2 as pb
from router_service._masking import secret_shaped, shown_label
from router_service.auth import IssuedKey
from router_service.config import ClientKeyConfig
from router_service.errors import (
    ClientKeyNotFoundError,
    InvalidRequestError,
    StoreUnavailableError,
)
from router_service.runtime import Runtime
from router_service.server._answer_audit import audited_change
from router_service.telemetry import config_secrets

__all__ = [
    "audited_key_change",
    "client_keys",
    "issue_client_key",
    "list_client_keys",
    "revoke_client_key",
]

_SERVICE = "/switchboard.v1.AdminService/"
_MAX_LABEL = 200
# The longest an issued key may live: a century (a key meant to outlive that is one never to
# expire: ttl_s unset). Past it, an expiry is no date anyone means (1e300 s: no calendar's).
_MAX_TTL_S = 100 * 365 * 86400.0


async def issue_client_key(
    runtime: Runtime, request: pb.IssueClientKeyRequest, call: grpc.aio.ServicerContext
) -> pb.IssueClientKeyResponse:
    configured = {client.name for client in runtime.config.auth.clients}
    if request.client not in configured:
        raise _no_such_client()
    if len(request.label) > _MAX_LABEL:
        raise InvalidRequestError(f"label: at most {_MAX_LABEL} characters.", param="label")
    # Shown by lists, the admin page, audit lines: never echoed; a configured secret whatever
    # its shape (a provider's key no pattern knows), as SetKeyEnabled's reason is masked, and
    # a client's key configured by its hash alone (`AuthConfig.key_digests`).
    if secret_shaped(
        request.label, config_secrets(runtime.config), runtime.config.auth.key_digests
    ):
        raise InvalidRequestError(
            "label: it looks like a key, a token or a password; say who holds the key instead.",
            param="label",
        )
    ttl_s = request.ttl_s if request.HasField("ttl_s") else None
    if ttl_s is not None and not (math.isfinite(ttl_s) and 0 < ttl_s <= _MAX_TTL_S):
        raise InvalidRequestError(
            f"ttl_s must be a positive number of seconds, at most {_MAX_TTL_S:.0f} (100 years);"
            " unset: until revoked.",
            param="ttl_s",
        )
    secret, issued = await runtime.issued_keys.issue(request.client, request.label, ttl_s)
    audited_key_change(call, _SERVICE + "IssueClientKey", issued, "issued")
    return pb.IssueClientKeyResponse(key=secret, info=_info(issued, configured, _shown(runtime)))


async def list_client_keys(
    runtime: Runtime, request: pb.ListClientKeysRequest
) -> pb.ListClientKeysResponse:
    """The live issued keys; a client's own after a fresh read of the store (an operator's
    question is worth a round trip: it never waits for the follower)."""
    keys = runtime.issued_keys
    await _read_log(runtime)
    configured = {client.name for client in runtime.config.auth.clients}
    listed = keys.listed(request.client)
    # A name neither configured nor holding keys (an orphaned client's are listed) is a typo,
    # said so as IssueClientKey says it: not an empty list, read as a client that has none.
    if request.client and not listed and request.client not in configured:
        raise _no_such_client()
    shown = _shown(runtime)
    return pb.ListClientKeysResponse(keys=[_info(key, configured, shown) for key in listed])


def _no_such_client() -> ClientKeyNotFoundError:
    return ClientKeyNotFoundError(
        "No client of that name in auth.clients.", param="client", code="client_not_found"
    )


async def revoke_client_key(
    runtime: Runtime, request: pb.RevokeClientKeyRequest, call: grpc.aio.ServicerContext
) -> pb.RevokeClientKeyResponse:
    keys = runtime.issued_keys
    keys.looked_up(request.id)
    await _read_log(runtime)  # the secrets the key asked for, as the store has them: ended too
    ended = keys.asked_by(request.id)
    revoked = await keys.revoke(request.id)
    shown = _shown(runtime)
    # Its label as every list shows it (one written before IssueClientKey refused it).
    audited = dataclasses.replace(revoked, label=shown_label(revoked.label, *shown))
    audited_key_change(call, _SERVICE + "RevokeClientKey", audited, "revoked")
    for secret in ended:
        done = f"revoked (with key {revoked.id}, which asked for it)"
        audited_key_change(call, _SERVICE + "RevokeClientKey", secret, done)
    configured = {client.name for client in runtime.config.auth.clients}
    return pb.RevokeClientKeyResponse(key=_info(revoked, configured, shown))


async def _read_log(runtime: Runtime) -> None:
    """The issued keys' log read as the shared store has it now (asked even in the retry
    interval after a failure, as an issue's read back is); UNAVAILABLE when the read did not
    reach it: a replica answering from its local state does not know which keys are live, and
    its list (empty) or its NOT_FOUND (a key another replica issued) would be taken as true."""
    store = runtime.store
    store.retry_shared()
    await runtime.issued_keys.refresh()
    if store.outage_counts().get("degraded"):
        raise StoreUnavailableError(
            "The state store cannot be reached from this replica: which client keys are live "
            "is not known here. Try again once it answers.",
            code="client_keys_unread",
        )


def client_keys(runtime: Runtime, client: ClientKeyConfig) -> list[pb.ClientKey]:
    """A configured client's keys for ListClients: the configured ones (by fingerprint), then
    the live issued ones this replica knows."""
    configured = [
        pb.ClientKey(
            client=client.name,
            fingerprint=key.fingerprint,
            expires_unix=key.expires_unix or 0.0,
        )
        for key in client.keys
    ]
    shown = _shown(runtime)
    listed = runtime.issued_keys.listed(client.name)
    issued = [_info(key, {client.name}, shown) for key in listed]
    return configured + issued


def _shown(runtime: Runtime) -> tuple[list[str], frozenset[str]]:
    """What a label shown is masked of: the config's secrets, its client keys' hashes."""
    return config_secrets(runtime.config), runtime.config.auth.key_digests


def _info(
    key: IssuedKey, configured: set[str], shown: tuple[list[str], frozenset[str]]
) -> pb.ClientKey:
    """`shown`: the config's secrets (`config_secrets`) and client keys' hashes: a label written
    before IssueClientKey refused one holding them (the log's reader masks the secret-shaped
    ones only) is masked here."""
    return pb.ClientKey(
        id=key.id,
        client=key.client,
        label=shown_label(key.label, *shown),
        fingerprint=key.fingerprint,
        created_unix=key.created_unix,
        expires_unix=key.expires_unix or 0.0,
        orphaned=key.client not in configured,
    )


def audited_key_change(
    call: grpc.aio.ServicerContext, method: str, key: IssuedKey, done: str, *, event: str = "admin"
) -> None:
    """The audit trail of a key issued or revoked (whatever `auth.audit` says): who (and the
    call's request id), which key (id, fingerprint; an ephemeral client secret named so), for
    whom."""
    what = "ephemeral client secret" if key.realtime is not None else "key"
    reason = f"{done} {what} {key.id} of client {key.client!r}"
    fingerprint, label = key.fingerprint, key.label or None
    audited_change(call, method, reason, event=event, key_fingerprint=fingerprint, key_label=label)
