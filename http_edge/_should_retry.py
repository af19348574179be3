"""`x-should-retry`: whether an SDK's retry of an error answer can help.

The openai and anthropic SDKs retry a 408, 409, 429 or 5xx twice by default, after the wait a
`Retry-After` names (openai's up to two minutes, anthropic's however long) or their own backoff
(half a second, doubled each time); `x-should-retry: true` or `false` overrides that rule (their
`_should_retry`). Where the edge knows better, it says so:

- `false` where a retry cannot help: a 504 (the edge's request timeout spent: the router ran
  the fallback chain for as long as it was allowed; a retry runs it as long again); a 503 the
  router answered after its candidates (it ran every one, and its gRPC retry pushback says "do
  not retry"); a 429 whose wait is past a minute (a caller would sit in the SDK for it, or be
  retried too soon) or that waiting does not cure (a token or conversation budget spent, a
  client's issued keys at their maximum, a request larger than each key's whole tpm budget);
  the router's own 409 (a stored response id taken: ALREADY_EXISTS); a 501 (a method this
  router does not serve).
- `true` where it helps: a 429 with a wait of a minute or less (the SDK waits exactly that),
  the router not reachable (gRPC's own UNAVAILABLE: "try again shortly"; but not for a call
  sent on an open connection that then dropped, `ErrorDetails.maybe_run`: the router may have
  run it, and only reads are safe to run twice), a replica that
  began to stop refusing to start a background response or a batch (another one starts it),
  the shared state store unreachable (a blip or a failover that the SDK's backoff outlasts;
  the router ran no upstream for it; but not a client key the store may have issued,
  `client_key_unconfirmed`: a retry issues another), an upstream's 409 (ABORTED: a conflict on
  the upstream's side, such as OpenAI's lock timeouts, for which the openai SDK retries a 409 of
  its own accord, `_base_client.py` "Retry on lock timeouts").
- Nothing otherwise: the SDK's own rule.

Whatever the error, `false` where the work may be done already (`MaybeDoneError`): once the model
has answered (`AnsweredError`: the answer could not be added to its conversation; a retry runs,
and bills, the model again, and in a store outage finds the conversation NOT_FOUND, a replica
reading its local state then), and when the store stopped answering while a conversation's
items were appended (a write that timed out may have landed: a retry would add them twice).
"""

from __future__ import annotations

import grpc

from clients import ErrorDetails, RouterError, http_status_for

__all__ = ["AnsweredError", "MaybeDoneError", "should_retry"]

# The longest `Retry-After` worth waiting for within one SDK call.
_LONGEST_WAIT_S = 60.0
# 429s that waiting a minute does not cure.
_NOT_SOON = frozenset({"QUOTA_EXHAUSTED", "CONVERSATION_QUOTA_EXCEEDED", "CLIENT_KEY_LIMIT"})
# A 429 no wait cures, when none is named: a request larger than each key's whole
# tokens-per-minute budget (router_service/server/_errors.py `OVER_TPM_BUDGET`).
_NEVER_FITS = frozenset({"request_too_large_for_tpm"})
# The router's own 503s that a retry soon may cure: another replica answers
# (ReplicaStoppingError), the shared store is back (StoreUnavailableError).
_SOON = frozenset({"REPLICA_STOPPING", "STATE_UNAVAILABLE"})
# A store failure after which the work may be done (auth/_issued_errors.py: a key issued, its
# secret lost): a retry does it again.
_MAYBE_DONE = frozenset({"client_key_unconfirmed"})


class MaybeDoneError(RouterError):
    """A router error after which the work may be done: never worth an SDK's retry."""


class AnsweredError(MaybeDoneError):
    """A router error met after the model answered the request."""


def should_retry(details: ErrorDetails, *, maybe_done: bool = False) -> str | None:
    """The `x-should-retry` value for a router error's answer; None: the SDK's own rule."""
    if maybe_done or details.maybe_run:
        return "false"
    status = http_status_for(details)
    if details.code is grpc.StatusCode.ABORTED:  # an upstream's 409
        return "true"
    if status == 504 or status in (409, 501):
        return "false"
    if details.code is grpc.StatusCode.UNAVAILABLE:
        soon = details.bare or (details.reason in _SOON and details.openai_code not in _MAYBE_DONE)
        return "true" if soon else "false"  # the router's own: pushback -1
    if status != 429 or details.bare:
        return None
    if details.reason in _NOT_SOON:
        return "false"
    wait = details.retry_after_s
    if wait is None:
        return "false" if details.openai_code in _NEVER_FITS else None
    return "true" if wait <= _LONGEST_WAIT_S else "false"
