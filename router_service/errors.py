"""The router's one error tree. Each class carries its gRPC and HTTP status, so the server maps a
domain error to the wire without a second table (google-api-core's habit).

    SwitchboardError
    ├── ConfigError               bad configuration (refuses to start)
    ├── ListenError               a port it must listen on is taken (refuses to start)
    ├── InvalidRequestError       the caller's request is malformed       INVALID_ARGUMENT / 400
    │   └── GuardrailBlockedError a guardrail refuses the request's text  INVALID_ARGUMENT / 400
    ├── ModelNotFoundError        no such deployment, group or pool       NOT_FOUND / 404
    ├── KeyNotFoundError          no such provider or key (AdminService)  NOT_FOUND / 404
    ├── ClientKeyNotFoundError    no such client, or issued client key    NOT_FOUND / 404
    ├── ClientKeyLimitError       a client has its issued keys' maximum   RESOURCE_EXHAUSTED / 429
    ├── RealtimeCallNotFoundError no such WebRTC call for this client     NOT_FOUND / 404
    ├── ResponseNotFoundError     no such stored response for this client NOT_FOUND / 404
    ├── ResponseExistsError       that stored response id is taken        ALREADY_EXISTS / 409
    ├── ResponseNotCancellableError  finished, or not a background one    FAILED_PRECONDITION / 400
    ├── ConversationNotFoundError no such conversation for this client    NOT_FOUND / 404
    ├── ConversationItemNotFoundError  no such item in it                 NOT_FOUND / 404
    ├── ConversationTooLargeError a change past a conversation's bounds   FAILED_PRECONDITION / 400
    ├── AuthenticationError       missing or unknown client key           UNAUTHENTICATED / 401
    ├── PermissionDeniedError     client key may not use this             PERMISSION_DENIED / 403
    ├── keys.ModelDeniedError     no upstream key may use the model       PERMISSION_DENIED / 403
    ├── ClientRateLimitedError    client key over its own rpm/tpm/streams RESOURCE_EXHAUSTED / 429
    │   ├── BudgetExhaustedError  client key's token budget used up       RESOURCE_EXHAUSTED / 429
    │   ├── ConversationQuotaError  client's conversation bytes used up   RESOURCE_EXHAUSTED / 429
    │   └── BackgroundLimitError  client's background responses all run   RESOURCE_EXHAUSTED / 429
    ├── NoCapacityError           every key busy or limited               RESOURCE_EXHAUSTED / 429
    │   └── NoUsableKeyError      every key disabled (credentials, quota) UNAVAILABLE / 503
    ├── DeadlineExceededError     the caller's deadline passed            DEADLINE_EXCEEDED / 504
    ├── StoreUnavailableError     the shared state store is unreachable   UNAVAILABLE / 503
    ├── ReplicaStoppingError      this replica stops: no new long jobs    UNAVAILABLE / 503
    ├── UpstreamFailure           one attempt failed; carries its Outcome (status by outcome)
    └── AllCandidatesFailedError  every candidate failed; wraps the last UpstreamFailure

Foreign errors (httpx, grpc) are translated at exactly one boundary each: providers/_http.py for
upstream I/O and server/_errors.py for the gRPC wire.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Iterable
from typing import TYPE_CHECKING, Any, ClassVar

import grpc

from router_service._masking import bounded, masking, scrubbed
from router_service.outcomes import Outcome, Scope

if TYPE_CHECKING:  # auth imports this module; the type is only named here
    from router_service.auth._limits import RateStatus


class SwitchboardError(Exception):
    """Root of every error the router raises on purpose."""

    grpc_code: ClassVar[grpc.StatusCode] = grpc.StatusCode.INTERNAL
    http_status: ClassVar[int] = 500
    reason: ClassVar[str] = "INTERNAL"
    openai_type: ClassVar[str] = "server_error"

    def __init__(self, message: str, *, param: str | None = None, code: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.param = param
        self.code = code


class ConfigError(SwitchboardError):
    reason = "CONFIG"


class ListenError(SwitchboardError):
    """A process cannot listen where it was told to (the port is taken, or the address is not
    this host's): `switchboard` says so in one line and exits 2, as for a bad config."""

    reason = "LISTEN"


class InvalidRequestError(SwitchboardError):
    grpc_code, http_status, reason = grpc.StatusCode.INVALID_ARGUMENT, 400, "INVALID_ARGUMENT"
    openai_type = "invalid_request_error"


class GuardrailBlockedError(InvalidRequestError):
    """A `guardrails:` rule with `action: block` found something in the request's text, or in a
    whole answer with no finish_reason to say "withheld" (`answer`: a transcript; nothing of it
    was sent). The input is what must change (INVALID_ARGUMENT, not FAILED_PRECONDITION: no
    change of the router's state lets the same request, or audio, through). The message names
    the rule, the detector and the field, never the text; `param` the request's field."""

    reason = "GUARDRAIL_BLOCKED"

    def __init__(self, rule: str, detector: str, *, param: str, answer: bool = False) -> None:
        what = "answer was withheld" if answer else "request was blocked"
        super().__init__(
            f"The {what} by the guardrail '{rule}' (detector: {detector}) in `{param}`.",
            param=None if answer else param,
            code="content_policy_violation",
        )
        self.guardrail = rule
        self.detector = detector


class ModelNotFoundError(SwitchboardError):
    grpc_code, http_status, reason = grpc.StatusCode.NOT_FOUND, 404, "MODEL_NOT_FOUND"
    openai_type = "invalid_request_error"

    def __init__(self, model: str | None) -> None:  # None: not repeated (KeyNotFoundError's why)
        named = "That model" if model is None else f"The model `{model}`"
        super().__init__(
            f"{named} does not exist or you do not have access to it.",
            param="model",
            code="model_not_found",
        )


class KeyNotFoundError(SwitchboardError):
    """An operator named a provider or key fingerprint the router does not have. The message
    never repeats what was asked for: a raw key pasted in place of a fingerprint would come back
    in the error (and its logs)."""

    grpc_code, http_status, reason = grpc.StatusCode.NOT_FOUND, 404, "KEY_NOT_FOUND"
    openai_type = "invalid_request_error"

    def __init__(self, provider: str | None) -> None:
        """`provider`: the one searched, "" when every one was (none named), None when the one
        named is unknown."""
        where = f"provider `{provider}`" if provider else "any provider"
        message = f"No key with that fingerprint in {where}."
        if provider is None:
            message = "No provider of that name."
        param = "provider" if provider is None else "fingerprint"
        super().__init__(message, param=param, code="key_not_found")


class ClientKeyNotFoundError(SwitchboardError):
    """AdminService named a client or issued key id the router does not have (or revoked)."""

    grpc_code, http_status, reason = grpc.StatusCode.NOT_FOUND, 404, "CLIENT_KEY_NOT_FOUND"
    openai_type = "invalid_request_error"


class ClientKeyLimitError(SwitchboardError):
    """IssueClientKey for a client with `auth.max_issued_keys` live issued keys: revoke one."""

    grpc_code, http_status, reason = grpc.StatusCode.RESOURCE_EXHAUSTED, 429, "CLIENT_KEY_LIMIT"
    openai_type = "invalid_request_error"


class RealtimeCallNotFoundError(SwitchboardError):
    """A WebRTC Realtime call this router did not make, another client's, or one older than
    `streams.realtime_call_ttl_s`: one error for all three."""

    grpc_code, http_status, reason = grpc.StatusCode.NOT_FOUND, 404, "REALTIME_CALL_NOT_FOUND"
    openai_type = "invalid_request_error"

    def __init__(self) -> None:
        super().__init__("No such call.", param="call_id", code="call_not_found")


class ResponseNotFoundError(SwitchboardError):
    """A stored response that is unknown, expired or another client's: one error for all three,
    so that an id says nothing about a response the caller may not read."""

    grpc_code, http_status, reason = grpc.StatusCode.NOT_FOUND, 404, "RESPONSE_NOT_FOUND"
    openai_type = "invalid_request_error"

    def __init__(self, response_id: str, *, param: str) -> None:
        super().__init__(
            f"Response with id '{response_id}' not found.", param=param, code="response_not_found"
        )


class ResponseExistsError(SwitchboardError):
    """A StoreResponse naming an id its client has stored already (and that has not expired
    nor been deleted): stored responses are written once, so that a caller knowing an id cannot
    replace the response, nor the conversation that continuing it loads. Only the client's own
    ids are looked at (another client's same id is another response): it says nothing about
    another client's."""

    grpc_code, http_status, reason = grpc.StatusCode.ALREADY_EXISTS, 409, "RESPONSE_EXISTS"
    openai_type = "invalid_request_error"

    def __init__(self, response_id: str, *, param: str) -> None:
        super().__init__(
            f"A response with id '{response_id}' is already stored: a stored response cannot be "
            "replaced (delete it first, or store under a new id).",
            param=param,
            code="response_already_exists",
        )


class ResponseNotCancellableError(SwitchboardError):
    """A cancel of a finished response, or of one not run in the background."""

    grpc_code = grpc.StatusCode.FAILED_PRECONDITION
    http_status = 400
    reason = "RESPONSE_NOT_CANCELLABLE"
    openai_type = "invalid_request_error"


class ConversationNotFoundError(SwitchboardError):
    """A conversation that is unknown, expired, deleted or another client's: one error for all,
    as for stored responses (an id says nothing about a conversation the caller may not read)."""

    grpc_code, http_status, reason = grpc.StatusCode.NOT_FOUND, 404, "CONVERSATION_NOT_FOUND"
    openai_type = "invalid_request_error"

    def __init__(self, conversation_id: str, *, param: str) -> None:
        super().__init__(
            f"Conversation with id '{conversation_id}' not found.",
            param=param,
            code="conversation_not_found",
        )


class ConversationItemNotFoundError(SwitchboardError):
    """An item id the (found) conversation does not hold, or no longer: deleted."""

    grpc_code, http_status, reason = grpc.StatusCode.NOT_FOUND, 404, "CONVERSATION_ITEM_NOT_FOUND"
    openai_type = "invalid_request_error"

    def __init__(self, item_id: str, *, param: str) -> None:
        super().__init__(f"Item with id '{item_id}' not found.", param=param, code="item_not_found")


class ConversationTooLargeError(SwitchboardError):
    """A change that would take a conversation past `conversations.max_bytes` or `max_items`:
    refused whole (the conversation stays as it was). Waiting does not help, so it is no 429:
    start a new conversation."""

    grpc_code = grpc.StatusCode.FAILED_PRECONDITION
    http_status = 400
    reason = "CONVERSATION_TOO_LARGE"
    openai_type = "invalid_request_error"


class AuthenticationError(SwitchboardError):
    grpc_code, http_status, reason = grpc.StatusCode.UNAUTHENTICATED, 401, "UNAUTHENTICATED"
    openai_type = "authentication_error"


class PermissionDeniedError(SwitchboardError):
    grpc_code, http_status, reason = grpc.StatusCode.PERMISSION_DENIED, 403, "PERMISSION_DENIED"
    openai_type = "permission_error"


class ClientRateLimitedError(SwitchboardError):
    """A caller is over one of its own limits (`auth.clients[].rpm` / `tpm` /
    `max_concurrent_streams`); the upstream keys were never asked."""

    grpc_code, http_status, reason = grpc.StatusCode.RESOURCE_EXHAUSTED, 429, "RATE_LIMITED"
    openai_type = "rate_limit_error"

    def __init__(
        self, message: str, *, retry_after_s: float, rate_limit: RateStatus | None = None
    ) -> None:
        super().__init__(message, code="rate_limit_exceeded")
        self.retry_after_s = retry_after_s
        # Where the caller stands against its rpm and tpm (a refusal by them; None otherwise).
        self.rate_limit = rate_limit


class BudgetExhaustedError(ClientRateLimitedError):
    """A caller used up its token budget for the day or month (`auth.clients[].tokens_per_day`
    / `tokens_per_month`): OpenAI's own word for it is `insufficient_quota` (a 429 that waiting a
    minute does not cure: RetryInfo says when the period ends)."""

    reason = Outcome.QUOTA_EXHAUSTED.name
    openai_type = "insufficient_quota"

    def __init__(self, message: str, *, retry_after_s: float) -> None:
        super().__init__(message, retry_after_s=retry_after_s)
        self.code = "insufficient_quota"


class ConversationQuotaError(ClientRateLimitedError):
    """A client wrote its `conversations.client_bytes` this period: its conversations cannot
    grow (nor new ones start) until the period ends, which RetryInfo says (as for a budget)."""

    reason = "CONVERSATION_QUOTA_EXCEEDED"
    openai_type = "insufficient_quota"

    def __init__(self, message: str, *, retry_after_s: float) -> None:
        super().__init__(message, retry_after_s=retry_after_s)
        self.code = "conversation_quota_exceeded"


class BackgroundLimitError(ClientRateLimitedError):
    """A client's `max_background_per_client` places taken: running, or owed to the waiters."""

    reason = "BACKGROUND_LIMIT"


class DeadlineExceededError(SwitchboardError):
    """The caller's own deadline ran out while an upstream was working: nobody's fault upstream,
    so no key, deployment or session is penalised for it."""

    grpc_code, http_status, reason = grpc.StatusCode.DEADLINE_EXCEEDED, 504, "DEADLINE_EXCEEDED"
    openai_type = "timeout"


class StoreUnavailableError(SwitchboardError):
    """A shared store cannot be reached (or answered with an error). The store's foreign errors
    (redis) become this at one boundary; `ResilientStateStore` answers from local state instead,
    so callers of a configured store see it only for what local state cannot do (appending to,
    or deleting, a document the shared store holds: a conversation), as UNAVAILABLE / 503.

    `undo`: set when the store cannot tell whether the write took effect (the connection was
    lost before its reply): what takes it back, for when the store answers again (a lease that
    Redis granted but the replica never heard of would otherwise hold its key until its TTL).
    `refused`: set when the store answered with an error (a wrong type, out of memory, a script
    error): the call's answer, not an outage; its kind ("WRONGTYPE"), never the store's words."""

    grpc_code, http_status, reason = grpc.StatusCode.UNAVAILABLE, 503, "STATE_UNAVAILABLE"

    def __init__(
        self,
        message: str,
        *,
        undo: Callable[[], Awaitable[object]] | None = None,
        refused: str | None = None,
        code: str | None = None,
    ) -> None:
        super().__init__(message, code=code)
        self.undo = undo
        self.refused = refused


class ReplicaStoppingError(SwitchboardError):
    """This replica began to stop (a rolling deploy): it starts no more background responses
    or batches. Another replica takes the same request at once: worth a retry (the edge says
    `x-should-retry: true`)."""

    grpc_code, http_status, reason = grpc.StatusCode.UNAVAILABLE, 503, "REPLICA_STOPPING"


class NoCapacityError(SwitchboardError):
    """Every usable key of every candidate is at its limit or cooling down."""

    grpc_code = grpc.StatusCode.RESOURCE_EXHAUSTED
    http_status = 429
    reason = Outcome.NO_CAPACITY.name
    openai_type = "rate_limit_error"

    def __init__(self, message: str, *, retry_after_s: float | None = None) -> None:
        super().__init__(message, code="no_capacity")
        self.retry_after_s = retry_after_s


class NoUsableKeyError(NoCapacityError):
    """Every key of every candidate is disabled (invalid credentials, exhausted quota): the
    service's trouble, not the caller's pace. A 429 with a day's Retry-After told the caller to
    slow down; this is a 503, retried as any outage, without a wait that only a probe ends."""

    grpc_code = grpc.StatusCode.UNAVAILABLE
    http_status = 503
    openai_type = "server_error"


class UpstreamFailure(SwitchboardError):
    """One upstream attempt ended in a failure Outcome. The executor reacts to it; when it is the
    caller's fault (BAD_REQUEST & co.) it reaches the caller with the upstream's own error."""

    def __init__(
        self,
        outcome: Outcome,
        detail: str,
        *,
        upstream_status: int = 0,
        retry_after_s: float | None = None,
        scope: Scope | None = None,
        upstream_error: dict[str, Any] | None = None,
    ) -> None:
        super().__init__(detail)
        self.outcome = outcome
        self.upstream_status = upstream_status
        self.retry_after_s = retry_after_s
        self.scope = scope if scope is not None else outcome.default_scope
        self.upstream_error = upstream_error

    def scrub(self, secrets: Iterable[str]) -> None:
        """Remove keys from what the upstream said: some providers echo the key they got, and
        an error may name others of the account (all the provider's keys are given). A key the
        upstream masked itself goes too (OpenAI's 401: "sk-proj-****…wxyz"), what the log masks
        (another provider's key, a gateway's token, a `?key=` URL); texts `_masking.bounded`."""
        clean = bounded(masking(secrets, logged=True))
        self.message = clean(self.message)
        if self.upstream_error is not None:
            self.upstream_error = scrubbed(self.upstream_error, clean)
        self.args = (self.message,)


class AllCandidatesFailedError(SwitchboardError):
    """No candidate produced an answer. The wire status follows the last failure's Outcome."""

    def __init__(self, last: UpstreamFailure, provider: str, held_back_s: float | None = None):
        super().__init__(f"All upstream attempts failed; last: {last.outcome.name}: {last.message}")
        self.last, self.provider = last, provider
        self.held_back_s = held_back_s  # a deployment held back (cooling) serves again in this
