"""Model groups, pools, sessions, strategies and streams."""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from router_service.config._base import Strategy, _Strict
from router_service.config._prices import PriceConfig

# The provider kinds whose API has OpenAI's Responses API (`POST /responses`): a deployment of
# another kind cannot be `api: responses`.
RESPONSES_API_KINDS = frozenset({"openai", "azure"})
UpstreamApi = Literal["chat", "responses"]


class DeploymentRef(_Strict):
    """A deployment: one provider's upstream model."""

    provider: str
    model: str = Field(description="The model id the upstream knows.")
    base_model: str | None = Field(
        default=None,
        min_length=1,
        description="The model the upstream serves under this name (an Azure deployment, a "
        "vLLM served name, an alias), for what Switchboard infers from a name: reasoning "
        "support, the efforts a model takes, the Responses API alone, Gemini's budgets, "
        "Claude's thinking and output limit; unset: `model`.",
    )
    weight: float = Field(default=1.0, gt=0, description="Share under the `weighted` strategy.")
    context_window: int | None = Field(
        default=None,
        ge=1,
        description="Tokens the model accepts; a context-length failure moves to a larger one.",
    )
    price: PriceConfig | None = Field(
        default=None,
        description="What it charges; unset: the provider's `price`, else its calls have no cost.",
    )
    realtime: bool = Field(
        default=False,
        description="The model speaks OpenAI's Realtime API (a WebSocket at `/realtime`; kinds "
        "openai and azure): only such deployments serve `/v1/realtime` sessions.",
    )
    reasoning: bool | None = Field(
        default=None,
        description="The model takes a reasoning knob; unset: as its name tells (gpt-4o*, "
        "gpt-4.1*, gpt-4-*, gpt-3.5*, chatgpt-4o*, gpt-5-chat* at OpenAI-format kinds and "
        "Cohere models other than command-a-reasoning* take none); false: a caller's "
        "`reasoning_effort`, `thinking` and `output_config.effort` are not sent to it; true: "
        "they are.",
    )
    api: UpstreamApi | None = Field(
        default=None,
        description="Which upstream API the deployment is called with: `chat` "
        "(`/chat/completions`) or `responses` (`/responses`, kinds openai and azure); unset: "
        "`responses` for the models OpenAI serves only there (gpt-5-pro, o1-pro, o3-pro, "
        "o3-deep-research, o4-mini-deep-research, the codex models, computer-use-preview) at "
        "kinds openai and azure, else `chat`.",
    )

    @property
    def name(self) -> str:
        return f"{self.provider}/{self.model}"


class ModelGroupConfig(_Strict):
    """A public model name and the deployments that serve it."""

    strategy: Strategy = Field(
        default="ordered",
        description="ordered: in the order listed; weighted: random by weight; thompson: "
        "recency-weighted Beta sampling of success; latency: fastest by EWMA, power of two "
        "choices.",
    )
    deployments: list[DeploymentRef] = Field(min_length=1)
    embeddings: bool = Field(
        default=False,
        description="The group serves embeddings (its deployments are embedding models): "
        "ListModels says so, and Ollama's `/api/show` answers its capabilities as "
        '`["embedding"]` (clients that read capabilities tell embedding models by it).',
    )


class PoolConfig(_Strict):
    """A tier of model groups (e.g. fast, balanced, smart), addressable as a model name."""

    groups: list[str] = Field(min_length=1, description="Member model groups.")
    strategy: Strategy = Field(default="thompson", description="Ordering over all members.")


class SessionsConfig(_Strict):
    """Conversations: sticky routing and thread protection."""

    sticky_ttl_s: float = Field(
        default=3600.0, gt=0, description="How long a session keeps the deployment that served it."
    )
    thread_cooldown_s: float = Field(
        default=600.0, gt=0, description="How long a session avoids what failed it."
    )
    active_ttl_s: float = Field(
        default=900.0, gt=0, description="Backstop expiry of a request's active mark."
    )


class RoutingConfig(_Strict):
    """Routing statistics and strategy tuning."""

    thompson_window_s: float = Field(
        default=7 * 86400.0, gt=0, description="Results older than this no longer count."
    )
    thompson_floor: float = Field(
        default=0.1, gt=0, description="Floor of the Beta parameters, so they stay positive."
    )
    bucket_s: float = Field(
        default=600.0,
        ge=1,
        description="Statistics bucket width (a bucket is named by its start second: at least 1).",
    )
    latency_alpha: float = Field(
        default=0.3, gt=0, le=1, description="EWMA weight of the newest latency sample."
    )
    stats_flush_s: float = Field(
        default=1.0,
        ge=0,
        description="Results are added up in the process and written to the state store "
        "together once the oldest unwritten one is this old (with the next result, or by a timer "
        "when none follows), before "
        "the replica reads statistics, and at shutdown: one write per deployment instead of one "
        "per request. 0: write every result at once.",
    )
    max_cooldown_wait_s: float = Field(
        default=30.0,
        ge=0,
        description="When every deployment of a model is cooling, the longest a call waits "
        "for the soonest cooldown to end (one with no deadline, or a deadline longer than the "
        "cooldown); past it the call is refused at once with 429 `no_capacity` and a "
        "`Retry-After` saying when that cooldown ends. 0: never wait.",
    )

    def statistics(self) -> RoutingConfig:
        """The settings routing statistics are kept by (a reload changing only the others
        carries them over)."""
        return self.model_copy(update={"max_cooldown_wait_s": 0.0})


class StreamsConfig(_Strict):
    heartbeat_s: float = Field(
        default=15.0, gt=0, description="Heartbeat on an idle stream after this long."
    )
    realtime_ping_s: float = Field(
        default=30.0,
        gt=0,
        description="The router pings a realtime session's upstream WebSocket after this long "
        "without a message from it; no answer within half of it (a dead or half-open "
        "connection) ends the session as an upstream error (close code 1011); a caller that "
        "read nothing meanwhile (the router stopped reading the upstream for it) ends it as "
        "its own (code events_not_read, close code 1008).",
    )
    realtime_call_ttl_s: float = Field(
        default=3600.0,
        gt=0,
        description="How long the router remembers which deployment and key made a WebRTC "
        "Realtime call (`POST /v1/realtime/calls`), so that any replica can hang it up: "
        "OpenAI's sessions last at most 60 minutes.",
    )


class ResponsesConfig(_Strict):
    """Stored Responses API responses (`previous_response_id`, `item_reference`): kept in the
    state store (`state:`), each for the client that stored it only."""

    store: bool = Field(
        default=True,
        description="Keep responses whose request says `store` (OpenAI's default); false: none "
        "is kept, and a request that continues one is refused.",
    )
    store_ttl_s: float = Field(
        default=3600.0, gt=0, description="How long a stored response can be continued."
    )
    max_stored_bytes: int = Field(
        default=1024 * 1024,
        ge=1,
        description="A response whose conversation is larger than this is not kept (its "
        "Response says `store: false`).",
    )
    client_stored_bytes: int = Field(
        default=64 * 1024 * 1024,
        ge=1,
        description="What one client may store per period of `store_ttl_s` (each response's "
        "bytes and 512 for its entry), so what it holds at once stays under twice this; past "
        "it a response is not kept (`store: false`) until the next period.",
    )
    max_background_per_client: int = Field(
        default=16,
        ge=1,
        description="Background responses (`background: true`) one client may have running at "
        "once, across every replica; past it a new one is refused (429).",
    )
    background_timeout_s: float = Field(
        default=3600.0,
        gt=0,
        description="The longest a background response runs: past it, it is `failed` with an "
        "error saying so (its upstream call is cancelled).",
    )
    background_heartbeat_s: float = Field(
        default=30.0,
        # The running replica beats at most once a second (it reads its jobs' cancel marks
        # then): a third of less than 3 s would let live responses read `failed` between beats.
        ge=3.0,
        description="The replica running a background response renews its heartbeat every "
        "third of this (at least 3 s); one whose heartbeat is this old reads as `failed` (its "
        "replica stopped without finishing it: a crash).",
    )
    max_stream_events: int = Field(
        default=20_000,
        ge=16,
        description="Events kept per streamed background response (`background` with `stream`), "
        "for resuming it (`starting_after`); past it the rest is not kept and a resume that "
        "needs it is refused (400 `stream_not_kept`). The response itself runs on.",
    )
    max_stream_bytes: int = Field(
        default=8 * 1024 * 1024,
        ge=4096,
        description="Bytes of events kept per streamed background response (as "
        "`max_stream_events`).",
    )


class ConversationsConfig(_Strict):
    """Conversations (OpenAI's Conversations API, and `conversation` on a Responses request):
    kept in the state store (`state:`), each for the client that created it only."""

    ttl_s: float = Field(
        default=30 * 24 * 3600.0,
        gt=0,
        description="How long a conversation lives from its creation (OpenAI's 30 days: what "
        "apps written against OpenAI expect to find again); changes do not extend it.",
    )
    max_bytes: int = Field(
        default=4 * 1024 * 1024,
        ge=1,
        description="A conversation's largest size (its items, its metadata, and a record of "
        "each change), and never more than half of `server.max_message_bytes` (it is read back "
        "whole, and sent on with a request's own input): a change past it is refused (400 "
        "`conversation_too_large`).",
    )
    max_items: int = Field(
        default=1000,
        ge=1,
        description="The most items a conversation holds; adding past it is refused as above.",
    )
    client_bytes: int = Field(
        default=256 * 1024 * 1024,
        ge=1,
        description="What one client may write into its conversations per period of `ttl_s` "
        "(each change's bytes, 512 for a new conversation's entry), so what it holds at once "
        "stays under twice this; past it a change is refused (429 until the period ends). "
        "Deleting items is neither counted nor refused (what it records stays under half of "
        "what was added, so with deletions under three times this).",
    )


class CacheConfig(_Strict):
    """The response cache: an answer kept for `ttl_s` serves the same request again without an
    upstream call. Off by default: a cached answer to a sampled request (temperature > 0) is the
    same answer every time, which only the operator can decide is wanted."""

    enabled: bool = Field(default=False, description="Serve and keep answers.")
    ttl_s: float = Field(default=300.0, gt=0, description="How long an answer is served.")
    models: list[str] = Field(
        default_factory=list,
        description="The model names callers send (groups, pools, deployments) whose answers "
        "are cached; empty: every model.",
    )
    max_entry_bytes: int = Field(
        default=1024 * 1024,
        ge=1,
        description="An answer larger than this (serialized) is not kept.",
    )
    client_bytes: int = Field(
        default=64 * 1024 * 1024,
        ge=1,
        description="What one client's answers may take per period of `ttl_s` (each answer's "
        "bytes and 512 for its entry); past it answers are served fresh and not kept until "
        "the next period.",
    )
    coalesce: Literal["replica", "cluster"] = Field(
        default="replica",
        description="Who waits for the first of identical misses (unary chat, embeddings): "
        "`replica`, the misses on its replica; `cluster`, the misses on every replica of the "
        "state store (a lease in Redis per miss: one more round trip before the upstream "
        "call). On the memory store (one process) `cluster` is `replica`.",
    )
    flight_lease_s: float = Field(
        default=5.0,
        # Renewed every third of it: shorter, a leader would send Redis a script every few
        # milliseconds per call, and a round trip or a busy event loop would let it lapse.
        ge=1.0,
        description="With `coalesce: cluster`: a miss's lease, renewed by its leader every "
        "third of it while its call runs (up to the call's deadline), so a call slower than it "
        "still holds the others' misses on every replica to its one upstream call, and a "
        "leader whose replica died stops holding them back within it.",
    )
    flight_ttl_s: float = Field(
        default=30.0,
        gt=0,
        description="With `coalesce: cluster`: the longest a stream reading another replica's "
        "shared stream waits for its next event before it treats that replica as gone and "
        "asks upstream itself.",
    )
