"""What the async and the sync client share: channel configuration, lifetime, the error boundary."""

from __future__ import annotations

import asyncio
import dataclasses
import enum
import json
import threading
from abc import ABC, abstractmethod
from collections.abc import Callable, Sequence
from types import TracebackType
from typing import Any

import grpc

from clients._arguments import check_arguments, check_timeout
from clients._limits import LARGEST_ANSWER_BYTES, MAX_METADATA_BYTES, READY_WAIT_S
from clients._metadata import Metadata, call_metadata
from clients._targets import RouterTarget
from clients.errors import ErrorDetails, RouterError, details_from_rpc_error

DEFAULT_MAX_MESSAGE_BYTES = 16 * 1024 * 1024
METADATA_OPTIONS: tuple[tuple[str, int], ...] = (
    ("grpc.max_metadata_size", MAX_METADATA_BYTES),
    ("grpc.absolute_max_metadata_size", MAX_METADATA_BYTES),
)
# Pings keep idle connections through NATs and load balancers alive and find dead routers fast.
# The router's server permits them: grpc.http2.min_ping_interval_without_data_ms = 10000 (half
# this keepalive time) and keepalive_permit_without_calls = 1; otherwise it would answer GOAWAY
# "too_many_pings" (tests/e2e/test_keepalive.py holds the two sides together).
_KEEPALIVE_OPTIONS: tuple[tuple[str, Any], ...] = (
    ("grpc.keepalive_time_ms", 20_000),
    ("grpc.keepalive_timeout_ms", 10_000),
    ("grpc.keepalive_permit_without_calls", 1),
    ("grpc.http2.max_pings_without_data", 0),
)

# Reads a second run cannot change: only they are retried by the service config below.
# Everything else (Chat, ChatStream, Embed, creates, uploads, deletes, cancels, PickRoute's
# lease) may have reached the router when its connection dropped (UNAVAILABLE "Socket closed"
# after the router took the call, before it answered): a retry would run, and bill, it twice.
# Those keep only grpc's transparent retries, which resend a call that surely never reached the
# router's handler (never written on the wire, or refused by the router's transport: a GOAWAY's
# or REFUSED_STREAM's stream), so a router that stops gracefully loses none of them.
IDEMPOTENT_METHODS: dict[str, tuple[str, ...]] = {
    "switchboard.v1.RouterService": (
        "ListModels",
        "LoadResponses",
        "LoadConversation",
        "ListFiles",
        "GetFile",
        "GetFileContent",
        "GetBatch",
        "ListBatches",
        "ResumeResponse",
    ),
    "switchboard.v1.AdminService": (
        "ListKeys",
        "GetRoutingStats",
        "GetServerInfo",
        "ListClients",
        "ListJobs",
        "ListClientKeys",
    ),
}
# A read no router took (the router restarting, a replica gone before it answered: UNAVAILABLE
# from the transport) is tried again for a few seconds, so a restart is a pause rather than an
# error. An UNAVAILABLE the router answers itself (no upstream could serve) says not to
# (`grpc-retry-pushback-ms: -1`, errors.to_grpc_status). Health and reflection are left out (a
# health check must see a router down as down). Backoff is random up to 0.5 s, 1 s, 2 s, 2 s
# between the five attempts: a router back within ~3 s is met on average.
RETRY_POLICY = {
    "maxAttempts": 5,
    "initialBackoff": "0.5s",
    "maxBackoff": "2s",
    "backoffMultiplier": 2,
    "retryableStatusCodes": ["UNAVAILABLE"],
}
MAX_RECONNECT_BACKOFF_MS = 2_000  # between tries of a router that is down (grpc's own: 2 min)
# Client-side health checking: each connection watches the router's `grpc.health.v1` status, so
# a router that is stopping (NOT_SERVING first, `server.drain_delay_s` before it takes no new
# calls) gets no new calls from this channel while the other replicas take them. Without it, a
# call sent in the instant the router stopped taking calls came back CANCELLED, which nothing
# may retry (measured: most of 16 callers looping on one stopping router met one).
_SERVICE_CONFIG = json.dumps(
    {
        "healthCheckConfig": {"serviceName": ""},
        "methodConfig": [
            {
                "name": [
                    {"service": service, "method": method}
                    for service, methods in IDEMPOTENT_METHODS.items()
                    for method in methods
                ],
                "retryPolicy": RETRY_POLICY,
            }
        ],
    }
)


class UseClientDefault:
    """The type of :data:`USE_CLIENT_DEFAULT`: "no value given", as opposed to ``None``.

    ``timeout=None`` means "no deadline"; leaving ``timeout`` out means "the client's
    ``default_timeout``" (httpx's ``USE_CLIENT_DEFAULT``).
    """

    def __repr__(self) -> str:
        return "USE_CLIENT_DEFAULT"


USE_CLIENT_DEFAULT = UseClientDefault()
Timeout = float | None | UseClientDefault


def channel_options(
    max_message_bytes: int, options: Sequence[tuple[str, Any]]
) -> list[tuple[str, Any]]:
    """Our defaults (round robin, read retries, keepalive, reconnects, limits), then yours."""
    merged: dict[str, Any] = {
        "grpc.lb_policy_name": "round_robin",
        "grpc.service_config": _SERVICE_CONFIG,
        **dict(_KEEPALIVE_OPTIONS),
        **dict(METADATA_OPTIONS),
        "grpc.max_reconnect_backoff_ms": MAX_RECONNECT_BACKOFF_MS,
        "grpc.max_send_message_length": max_message_bytes,
        "grpc.max_receive_message_length": max(max_message_bytes, LARGEST_ANSWER_BYTES),
    }
    merged.update(options)
    # A metadata limit of the caller's own, soft or hard, is both (as ours): ours beside it
    # would hold a raised one to 16 KiB, or a lowered soft one refuse at random below ours.
    given = dict(options)
    soft, hard = (name for name, _ in METADATA_OPTIONS)
    for name, other in ((soft, hard), (hard, soft)):
        if name in given and other not in given:
            merged[other] = given[name]
    return list(merged.items())


# The longest deadline a call is given; a longer timeout (`math.inf`) is none. gRPC counts a
# deadline in int64 nanoseconds since the epoch, to the year 2262: one past it wrapped round
# into the past, and the call failed at once with DEADLINE_EXCEEDED. A century is "none".
_LONGEST_TIMEOUT_S = 100 * 365 * 86_400.0


def resolve_timeout(timeout: Timeout, default: float | None) -> float | None:
    """The gRPC timeout of one call: `timeout`, or the client's `default` when left out; None
    (no deadline) past `_LONGEST_TIMEOUT_S`. A call's own is checked as the default was when
    the client was made (`check_timeout`: TypeError or ValueError, before anything is sent)."""
    if isinstance(timeout, UseClientDefault):
        seconds = default
    else:
        check_timeout("timeout", timeout)
        seconds = timeout
    if seconds is None or seconds < _LONGEST_TIMEOUT_S:
        return seconds
    return None


# Also a call that was still waiting for a connection when its client closed (clients/_ready.py).
LOCALLY_CANCELLED = ErrorDetails(
    code=grpc.StatusCode.CANCELLED,
    message="The call was cancelled on this side: the client or the stream was closed.",
    reason="CANCELLED",
)


class map_rpc_errors:
    """The one boundary where gRPC errors become :class:`RouterError`.

    grpc.aio also raises ``CancelledError`` when the *call* was cancelled locally (the channel was
    closed under it) although no one cancelled the awaiting task; that is a ``CANCELLED`` router
    error too, so that task groups do not mistake it for their own cancellation. A cancellation
    of the task itself propagates untouched. A class rather than ``@contextmanager`` so that
    ``StopIteration`` passes through with no generator in between.

    ``closed``: whether the blocking client was closed, for the call its close cancelled, which
    grpc ends with its own CANCELLED ("Channel closed!"), or refuses with a ``ValueError`` when
    the close came as it began: that is ``LOCALLY_CANCELLED`` too, as in the async client.
    """

    def __init__(self, sent_once: bool = False, closed: Callable[[], bool] | None = None) -> None:
        # The call may reach a router and is not sent again (`ReadyGate.sent_once`).
        self._sent_once = sent_once
        self._closed = closed

    def __enter__(self) -> None:
        return None

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if isinstance(exc, grpc.RpcError):
            details = details_from_rpc_error(exc)
            if self._sent_once and details.bare and details.code is grpc.StatusCode.UNAVAILABLE:
                details = dataclasses.replace(details, maybe_run=True)
            elif details.bare and details.code is grpc.StatusCode.CANCELLED and self._closed:
                details = LOCALLY_CANCELLED if self._closed() else details
            raise RouterError(details) from exc
        if isinstance(exc, ValueError) and self._closed is not None and self._closed():
            # grpc's "Cannot invoke RPC on closed channel!": the close came as the call began.
            raise RouterError(LOCALLY_CANCELLED) from exc
        if isinstance(exc, asyncio.CancelledError) and not _task_cancelling():
            raise RouterError(LOCALLY_CANCELLED) from exc


def _task_cancelling() -> bool:
    task = asyncio.current_task()
    return task is None or task.cancelling() > 0


class State(enum.Enum):
    UNOPENED = 1
    OPENED = 2
    CLOSED = 3


class BaseClient(ABC):
    """Configuration and lifetime shared by both clients; subclasses make the channel.

    ``interceptors`` wrap every call: ``grpc.aio`` client interceptors for the async client,
    ``grpc`` ones for the sync client (tracing, for one: ``router_service.telemetry``).
    ``ready_wait_s``: how long a call that may not be sent twice, made while no connection is
    up, waits for one (never past its deadline; 0: it fails at once, UNAVAILABLE).
    """

    def __init__(
        self,
        target: str | Sequence[str] | RouterTarget,
        *,
        credentials: grpc.ChannelCredentials | None = None,
        api_key: str | None = None,
        default_timeout: float | None = None,
        options: Sequence[tuple[str, Any]] = (),
        max_message_bytes: int = DEFAULT_MAX_MESSAGE_BYTES,
        interceptors: Sequence[Any] = (),
        ready_wait_s: float = READY_WAIT_S,
    ) -> None:
        check_arguments(api_key, default_timeout, max_message_bytes, ready_wait_s)
        self._ready_wait_s = ready_wait_s
        # Host names in a list: looked up at first use, and again when no router is reached.
        self._target = target if isinstance(target, RouterTarget) else RouterTarget(target)
        self._interceptors = tuple(interceptors)
        self._credentials = credentials
        self._api_key = api_key
        self._default_timeout = default_timeout
        self._options = channel_options(max_message_bytes, options)
        self._state = State.UNOPENED
        # Held while the state changes: threads sharing a blocking client open it once, and a
        # close does not meet an open half done (one channel of its own left open).
        self._opening = threading.RLock()
        self._channel: Any = None
        self._router: Any = None
        self._admin: Any = None

    @property
    def target(self) -> str:
        """The channel's gRPC target (``ipv4:a:p,b:p`` for several; as given until looked up)."""
        return self._target.shown

    @property
    def is_closed(self) -> bool:
        return self._state is State.CLOSED

    @abstractmethod
    def _make_channel(self) -> Any:
        """The grpc channel, async or sync: the one thing the two clients build differently."""

    def _open(self) -> None:
        if self._state is not State.UNOPENED:
            raise RuntimeError("Cannot open a client instance more than once.")
        # The stubs with the first client: a process that takes only this module's constants
        # (the router) never builds them; from the services' descriptors, not the generated
        # `*_pb2_grpc` modules (_stubs.py; benchmarks/README.md, "Where idle RSS goes").
        from clients._stubs import DescriptorStub
        from clients.switchboard.v1 import admin_service_pb2, router_service_pb2

        self._channel = self._make_channel()
        services = (router_service_pb2.DESCRIPTOR, admin_service_pb2.DESCRIPTOR)
        self._router = DescriptorStub(self._channel, services[0].services_by_name["RouterService"])
        self._admin = DescriptorStub(self._channel, services[1].services_by_name["AdminService"])
        self._stubs_made()
        self._state = State.OPENED  # last: another thread that sees it uses what is above

    def _stubs_made(self) -> None:  # noqa: B027 - a hook: the async client needs none
        """The new channel and its stubs are made, the client not yet OPENED (for the blocking
        client's count of the calls on each channel)."""

    def _reopen_with(self, credentials: grpc.ChannelCredentials) -> Any:
        """Use `credentials` from now on: an open client moves to a new channel. Returns the
        channel it replaced, for the subclass to retire (None when none was open). TypeError,
        before anything changes, for what is no credentials: grpc's AttributeError making the
        new channel left the client unopened, the old channel never closed."""
        if not isinstance(credentials, grpc.ChannelCredentials):
            raise TypeError(
                f"credentials must be grpc.ChannelCredentials, not {type(credentials).__name__}"
            )
        with self._opening:
            self._credentials = credentials  # an unopened client makes its channel with them
            return self._reopened()

    def _reopened(self) -> Any:
        """An open client moved to a new channel (its credentials or addresses changed): the
        channel it replaced, for the subclass to retire (None when none was open)."""
        with self._opening:
            if self._state is not State.OPENED:
                return None
            replaced = self._channel
            self._state = State.UNOPENED
            self._open()
            return replaced

    def _reached_none(self, failed: RouterError) -> bool:
        """Whether `failed` is gRPC's own UNAVAILABLE (no router answered: none reachable) on a
        client whose addresses name hosts, which are then worth looking up again."""
        details = failed.details
        return self._target.named and details.bare and details.code is grpc.StatusCode.UNAVAILABLE

    def _stub(self, service: str) -> Any:
        """The ``router`` or ``admin`` stub, opening the channel on first use (once, whichever
        of the threads sharing a blocking client calls first)."""
        if self._state is not State.OPENED:
            with self._opening:
                if self._state is State.CLOSED:
                    raise RuntimeError("Cannot send a request, as the client has been closed.")
                if self._state is State.UNOPENED:
                    self._open()
        return self._router if service == "router" else self._admin

    def _kwargs(self, timeout: Timeout, metadata: Metadata | None) -> dict[str, Any]:
        return {
            "timeout": resolve_timeout(timeout, self._default_timeout),
            "metadata": call_metadata(self._api_key, metadata),
        }
