"""The processes: router server, shared state, edge, telemetry."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import AfterValidator, Field, SecretStr, field_validator, model_validator

from clients import READY_WAIT_S, checked_target
from router_service.config._base import FilePath, HeaderSecret, Misplaced, _Strict
from router_service.config._throttle import AdminThrottleConfig

# Past a minute a "wait for the router" is an outage held open, not a restart ridden out (and
# the caller's own deadline, `request_timeout_s`, still ends it sooner).
_MAX_READY_WAIT_S = 60.0
# grpc's own bound on a message (its channel arguments are C ints).
_GRPC_MAX_BYTES = 2**31 - 1
# The largest body or upload the edge takes: its router client's message limit is that plus
# 1 MiB of framing (`http_edge._app._message_limit`), within grpc's bound.
_EDGE_MAX_BODY_BYTES = _GRPC_MAX_BYTES - 1024 * 1024


def _said(host: str) -> str:
    # grpc, uvicorn and the metrics listener all take "" for every interface (the router's
    # `*`, IPv4 and IPv6): an empty `${VAR:-}` would open the port to the network unasked.
    if not host.strip():
        raise ValueError(
            "is empty (is its environment variable empty?): write 0.0.0.0 (or ::) to listen on "
            "every interface, 127.0.0.1 for this host only"
        )
    return host


ListenHost = Annotated[str, AfterValidator(_said)]
"""Where a process listens: an address or host name, never empty."""


class ServerTLSConfig(_Strict):
    """TLS on a port Switchboard serves (the router's gRPC, the edge's HTTPS); with
    `require_client_cert`, mutual TLS."""

    cert_file: FilePath = Field(description="PEM certificate chain served.")
    key_file: FilePath = Field(description="PEM private key of that certificate.")
    client_ca_file: FilePath | None = Field(
        default=None, description="PEM CA bundle that client certificates must chain to."
    )
    require_client_cert: bool = Field(
        default=False, description="Refuse connections without a valid client certificate."
    )

    @model_validator(mode="after")
    def _ca_for_clients(self) -> ServerTLSConfig:
        if self.require_client_cert and not self.client_ca_file:
            raise Misplaced([(("client_ca_file",), "require_client_cert needs client_ca_file")])
        return self


class RouterTLSConfig(_Strict):
    """How the edge reaches a router that serves TLS."""

    ca_file: FilePath | None = Field(
        default=None, description="PEM CA bundle to verify the router; unset: system roots."
    )
    cert_file: FilePath | None = Field(default=None, description="Client certificate (mTLS).")
    key_file: FilePath | None = Field(default=None, description="Client private key (mTLS).")
    reload_poll_s: float | None = Field(
        default=60.0,
        gt=0,
        description="How often the edge reads the files again for a rotated certificate or CA "
        "bundle (new calls use them; calls under way finish as they began); null: never.",
    )

    @model_validator(mode="after")
    def _pair(self) -> RouterTLSConfig:
        if (self.cert_file is None) != (self.key_file is None):
            missing = "key_file" if self.key_file is None else "cert_file"
            raise Misplaced([((missing,), "cert_file and key_file go together")])
        return self


class ServerConfig(_Strict):
    host: ListenHost = "127.0.0.1"
    port: int = Field(default=50051, ge=0, le=65535)
    max_message_bytes: int = Field(
        default=16 * 1024 * 1024,
        ge=1024,
        le=_GRPC_MAX_BYTES,
        description="Largest gRPC message either way; at least the edge's max_body_bytes, "
        "at most 2147483647 (grpc's own bound).",
    )
    max_tokens_ceiling: int = Field(
        default=128_000,
        ge=1,
        description="Largest `max_tokens` / `max_completion_tokens` a caller may ask for.",
    )
    max_n: int = Field(
        default=8,
        ge=1,
        le=128,
        description="Largest `n` (choices per call) a caller may ask for: each choice is "
        "generated and paid for upstream; OpenAI's own bound is 128.",
    )
    max_rerank_documents: int = Field(
        default=1000,
        ge=1,
        description="Most `documents` one rerank call may send (Cohere's own bound is 1,000): "
        "each is scored upstream, and counted and screened here.",
    )
    drain_delay_s: float = Field(
        default=0.25,
        ge=0,
        description="On a stop, how long the router still takes new calls after going "
        "NOT_SERVING, so that clients watching its health (RouterClient, the edge) move to "
        "other replicas first. Left at its default it is skipped when none watches; set, it is "
        "always waited (balancers that poll health rather than watch it).",
    )
    tls: ServerTLSConfig | None = Field(default=None, description="Unset: plaintext gRPC.")
    lease_ttl_s: float = Field(
        default=900.0, gt=0, description="Backstop expiry of a key lease in shared state."
    )
    route_lease_ttl_s: float = Field(
        default=300.0,
        gt=0,
        description="How long a PickRoute lease lives unreported before it counts as unknown; "
        "at most `lease_ttl_s` and `sessions.active_ttl_s` (left unset: their shorter, if "
        "below 300).",
    )
    reload_poll_s: float | None = Field(
        default=None,
        gt=0,
        description="Also reload the config when the file's content changes, checked this often "
        "(a Kubernetes ConfigMap changes without a signal). Unset: on SIGHUP only.",
    )
    shutdown_grace_s: float = Field(
        default=30.0,
        ge=0,
        description="On SIGTERM or Ctrl-C: how long open calls (streams too) may run on after the "
        "router stops taking new ones; then they are cancelled. As the edge's.",
    )


class StateConfig(_Strict):
    """Where shared state lives (DESIGN.md §5): in this process, or on one Redis that every
    replica of the router shares."""

    backend: Literal["memory", "redis"] = Field(
        default="memory",
        description="memory: one process. redis: replicas agree on keys, cooldowns, sessions.",
    )
    url: SecretStr | None = Field(
        default=None,
        description="redis (required): redis://[user:password@]host:port/db, rediss:// for TLS, "
        "or unix:///path. Use ${REDIS_URL} to keep a password out of the file.",
    )
    prefix: str = Field(
        default="switchboard",
        min_length=1,
        description="Namespace of every Redis key: replicas that share state share the prefix.",
    )
    pool_size: int = Field(
        default=2,
        ge=1,
        description="Redis connections per replica. Each carries any number of requests at once "
        "(commands are pipelined), so a few are plenty.",
    )
    socket_timeout_s: float = Field(
        default=0.5,
        gt=0,
        description="Longest wait for one Redis reply before this replica falls back to local "
        "state; also the longest wait for a free pooled connection.",
    )
    connect_timeout_s: float = Field(default=0.5, gt=0, description="Redis TCP connect timeout.")
    retry_interval_s: float = Field(
        default=1.0,
        gt=0,
        description="While Redis is unreachable, how often a replica tries it again.",
    )
    read_cache: bool = Field(
        default=True,
        description="Keep cooldowns, session rules and sticky choices read from Redis in memory "
        "until Redis reports a change (CLIENT TRACKING; Redis 6 or later): one round trip less "
        "per request. A server or proxy that refuses tracking is read as if this were false.",
    )

    memory_document_bytes: int = Field(
        default=64 * 1024 * 1024,
        ge=0,
        description="Bytes of stored Responses API responses kept in memory (the memory backend; "
        "with redis, what a replica keeps while Redis is unreachable); when full, the oldest "
        "of the client holding the most go first.",
    )

    @model_validator(mode="after")
    def _redis_needs_url(self) -> StateConfig:
        if self.backend == "redis":
            if self.url is None:
                raise Misplaced([(("url",), "state.backend redis needs state.url")])
            if not self.url.get_secret_value().startswith(("redis://", "rediss://", "unix://")):
                message = "state.url must start with redis://, rediss:// or unix://"
                raise Misplaced([(("url",), message)])
            # Imported here: the URLs are the Redis client's to read, and only a router on
            # Redis validates one (checked now, not by a traceback at the router's start).
            from router_service.state._resp_wire import url_problem

            problem = url_problem(self.url.get_secret_value())
            if problem is not None:
                raise Misplaced([(("url",), problem)])
        return self


class EdgeConfig(_Strict):
    """The HTTP edge: where it listens and how it reaches the router. The edge holds no routing,
    key or retry configuration (`http_edge.EdgeSettings` is this model)."""

    host: ListenHost = "127.0.0.1"
    port: int = Field(default=8080, ge=0, le=65535)
    router_target: str | list[str] = Field(
        default="127.0.0.1:50051",
        description="gRPC target of the router (`host:port`), or several targets of its replicas "
        "(client-side round robin).",
    )
    max_body_bytes: int = Field(
        default=4 * 1024 * 1024,
        gt=0,
        le=_EDGE_MAX_BODY_BYTES,
        description="Largest request body; larger gets HTTP 413.",
    )
    max_upload_bytes: int | None = Field(
        default=None,
        gt=0,
        le=_EDGE_MAX_BODY_BYTES,
        description="Largest multipart upload (POST /v1/audio/transcriptions, /translations, "
        "/v1/images/edits, /variations: all its files and form fields together); larger gets "
        "HTTP 413. Unset: max_body_bytes. OpenAI takes 25 MB: to "
        "match it, set this and server.max_message_bytes (at least this plus 1 MiB) together.",
    )

    @property
    def upload_limit(self) -> int:
        """The largest upload the edge takes (`max_upload_bytes`, else `max_body_bytes`)."""
        return self.max_upload_bytes or self.max_body_bytes

    request_timeout_s: float = Field(
        default=600.0,
        gt=0,
        description="Deadline of one request (a whole stream included), passed to the router.",
    )
    header_timeout_s: float = Field(
        default=10.0,
        gt=0,
        description="Longest a client may take to send a request's headers, counted from the "
        "connection's opening (after the TLS handshake) or the end of its previous response; "
        "then the connection is closed. A TLS handshake gets as long (else asyncio's 60 s).",
    )
    body_timeout_s: float = Field(
        default=30.0,
        gt=0,
        description="Longest a request's whole body may take to arrive once its headers have; "
        "then HTTP 408 and the connection is closed. Raise it for large bodies over slow links.",
    )
    max_connections: int | None = Field(
        default=None,
        gt=0,
        description="Most client connections served at once (idle keep-alive ones count); a "
        "request on one more gets HTTP 503. Unset: no limit but the process's open files.",
    )
    max_head_bytes: int = Field(
        default=64 * 1024,
        ge=1024,
        description="Largest request head (request line and headers); larger gets HTTP 431 "
        "and a close, as soon as it passes the limit.",
    )
    max_pipelined: int = Field(
        default=16,
        ge=1,
        description="Most requests a connection reads ahead of the one being answered "
        "(HTTP/1.1 pipelining); past them the edge reads no further, answers them and closes.",
    )
    router_ready_wait_s: float = Field(
        default=READY_WAIT_S,
        ge=0,
        le=_MAX_READY_WAIT_S,
        allow_inf_nan=False,
        description="Longest a call that may not be sent twice (a chat, an upload…) waits for a "
        "router connection when none is up (a lone router restarting), then 503 with "
        "`x-should-retry: true`; 0: no wait. The edge's `RouterClient(ready_wait_s=)`.",
    )
    cors_origins: list[str] = Field(
        default_factory=list,
        description="Origins allowed by CORS; empty disables CORS. `*` disables credentials.",
    )
    admin_token: HeaderSecret | None = Field(
        default=None, description="Bearer token for the edge's /admin pages and endpoints."
    )
    admin_throttle: AdminThrottleConfig = Field(
        default_factory=AdminThrottleConfig,
        description="Wrong or missing admin tokens on /admin and its endpoints: throttled per "
        "client address and overall (429 with Retry-After).",
    )
    admin_router_key: HeaderSecret | None = Field(
        default=None,
        description="Client key (scope `admin`) the edge presents to the router's AdminService "
        "for /admin; unset: the caller's own `authorization` is forwarded.",
    )
    tls: ServerTLSConfig | None = Field(
        default=None,
        description="Serve HTTPS (with require_client_cert, mutual TLS); unset: plain HTTP. "
        "Rewritten files are served from the next connection on.",
    )
    router_tls: RouterTLSConfig | None = Field(
        default=None, description="Reach the router over TLS (set when `server.tls` is)."
    )

    @field_validator("router_target")
    @classmethod
    def _targets(cls, value: str | list[str]) -> str | list[str]:
        if not value:
            raise ValueError("a router target is required (host:port)")
        for target in [value] if isinstance(value, str) else value:
            checked_target(target)
        return value

    @field_validator("cors_origins")
    @classmethod
    def _origins(cls, value: list[str]) -> list[str]:
        for origin in value:
            scheme, sep, rest = origin.partition("://")
            exact = sep and scheme in ("http", "https") and rest and "/" not in rest
            if origin != "*" and not exact:
                raise ValueError(
                    f"CORS origin {origin!r} must be `*` or scheme://host[:port], without a path"
                )
        return value


class TelemetryConfig(_Strict):
    """Logs and Prometheus endpoints. Traces and OTLP export follow the standard `OTEL_*`
    environment variables (see `router_service.telemetry.setup`)."""

    log_format: Literal["json", "text"] = Field(
        default="json", description="JSON lines with trace ids, or human-readable text."
    )
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = "INFO"
    prometheus_host: ListenHost = Field(
        default="127.0.0.1", description="Where the router's Prometheus listener binds."
    )
    prometheus_port: int | None = Field(
        default=None,
        ge=0,
        le=65535,
        description="The router's Prometheus scrape port; unset or 0: no listener (the edge "
        "serves `GET /metrics` on its own port).",
    )
    state_interval_s: float = Field(
        default=10.0, gt=0, description="How often key, cooldown and ban gauges are refreshed."
    )
    upstream_http_spans: bool = Field(
        default=False,
        description="The router: each upstream HTTP request a CLIENT span of its own, under its "
        "attempt's span. Off: the attempt's span is the span of the HTTP call it makes and "
        "carries its attributes (one span fewer a request); only other requests (token "
        "exchanges, a call refused before the attempt asked again) have spans of their own.",
    )
