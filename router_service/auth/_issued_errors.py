"""The errors of issuing client keys (`_issued.py`): what a caller is told when an issue is
refused, or when the store could not say whether it was done. Keys by id, never their text."""

from __future__ import annotations

from router_service.errors import ClientKeyLimitError, ClientKeyNotFoundError, StoreUnavailableError

__all__ = ["at_bound", "no_such_key", "over_share", "unconfirmed"]


def no_such_key(_shown: str = "") -> ClientKeyNotFoundError:
    """An issued key id the router does not have (or no longer live); the id is not repeated
    (`_shown`: what `looked_up_id` would repeat of it)."""
    return ClientKeyNotFoundError("No issued client key with that id.", param="id")


def unconfirmed(key_id: str, client: str, label: str, ephemeral: bool) -> StoreUnavailableError:
    """An issue the store failed to confirm: the key may exist, its secret lost; said how to
    find it (its id, chosen before the write, and its label) and end it."""
    what = "ephemeral client secret" if ephemeral else "client key"
    return StoreUnavailableError(
        f"The state store failed while {what} {key_id} of client '{client}' (label {label!r}) "
        "was being issued: it may have been issued, and its secret is not returned. List the "
        f"client's keys (AdminService.ListClientKeys, client '{client}') once the store "
        f"answers, and revoke {key_id} if it is there"
        + (" (or let it expire)." if ephemeral else "."),
        code="client_key_unconfirmed",
    )


def at_bound(client: str, bound: int, ephemeral: bool) -> ClientKeyLimitError:
    if ephemeral:
        return ClientKeyLimitError(
            f"Client '{client}' has {bound} live ephemeral client secrets "
            "(auth.max_ephemeral_keys): wait for one to expire.",
            code="client_key_limit",
        )
    return ClientKeyLimitError(
        f"Client '{client}' has {bound} issued keys (auth.max_issued_keys): revoke one first.",
        code="client_key_limit",
    )


def over_share(client: str, share: int) -> ClientKeyLimitError:
    return ClientKeyLimitError(
        f"Client '{client}' has live ephemeral client secrets whose session configs take its "
        f"whole share of the issued keys' log ({share // 1024} KiB, a quarter of what "
        "ephemeral secrets may take): wait for one to expire, or ask with a smaller session "
        "config.",
        code="client_key_limit",
    )
