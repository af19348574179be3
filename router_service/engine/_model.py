"""The engine's nouns: deployments, attempts, the per-request context."""

from __future__ import annotations

import math
from collections.abc import Callable
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from clients.switchboard.v1 import chat_pb2, embeddings_pb2, routing_pb2
from router_service.clock import Clock
from router_service.config import PriceConfig, TimeoutsConfig
from router_service.config._routing import UpstreamApi
from router_service.engine._custom_tools import inexpressible_tool
from router_service.engine._tool_fees import Billed, fees, paid_containers
from router_service.errors import UpstreamFailure
from router_service.keys import KeyPool
from router_service.outcomes import Outcome
from router_service.providers import ChatCall, ProviderAdapter
from router_service.providers._base import HOSTED_FAMILY
from router_service.providers._responses_map import cannot_express as responses_cannot_express
from router_service.sessions import ThreadProtection

if TYPE_CHECKING:
    from router_service.engine._stream_holds import SlotOwner
    from router_service.engine._truncation import Shortening
    from router_service.guardrails import AnswerGuard

_PROTECTION = {level.value: level for level in ThreadProtection}
# The routing families of OpenAI's hosted tools and of their items handed back, which the
# Responses API carries (_server_tools.py); an OpenAI-compatible server may run some of the tools.
HOSTED, HOSTED_ITEM = HOSTED_FAMILY, "openai_hosted_item"
_HOSTED = frozenset({HOSTED, HOSTED_ITEM})
# A timer of ours that fires this close to the caller's deadline was the
# deadline's (`RequestContext.deadline_passed`).
DEADLINE_SLACK_S = 0.005
# A cancellation this close to the deadline was the caller's deadline's, whose call gRPC cancels
# at its own (`RequestContext.cancelled_at_deadline`), which may pass before ours by the way
# its request took here (the network; a busy router's lag before it read the request, from
# which ours counts) and gRPC's rounding up of the timeout it sends (`grpc_timeout_rounding`).
CANCEL_TRANSIT_S = 0.05


def grpc_timeout_rounding(timeout_s: float) -> float:
    """The most gRPC rounds up a timeout it sends (`grpc-timeout`, to three significant digits:
    1 ms below 1 s, 10 ms below 10 s, 100 ms below 100 s, 1 s below 1000 s: 1.01 s for
    1.001 s, 600 s for 599.9 s), given one read a little under it (the call's time remaining as
    its handler starts: 10% of margin for that lag, at the steps)."""
    unit = 0.001
    while unit * 1000 <= timeout_s * 1.1:
        unit *= 10
    return unit


# An unattended call's wait, what it holds given back meanwhile (`RequestContext.set_aside`).
SetAside = Callable[[], AbstractAsyncContextManager[None]]


@dataclass(slots=True)
class Plan:
    """The Planner's answer, kept on the request for traces and admin output."""

    candidates: list[Deployment]
    excluded: dict[str, str] = field(default_factory=dict)  # deployment -> why
    held_back: list[Deployment] = field(default_factory=list)  # the excluded deployments
    # Excluded deployment -> unix time it is usable again (every rule on it over).
    usable_at: dict[str, float] = field(default_factory=dict)
    scores: dict[str, float] = field(default_factory=dict)
    strategy: str = "ordered"
    pool: str | None = None
    sticky_hit: bool = False
    forced: bool = False  # every candidate was cooling: the soonest is tried anyway
    # Excluded deployment -> unix time its global cooldown ends (those cooling for everyone).
    cooling_until: dict[str, float] = field(default_factory=dict)

    def why(self, name: str, now: float) -> str:
        """Why an excluded deployment is: the plan's reason, and for one excluded by the
        session's rules that cools for everyone too, that, until when (`cooldown` says so
        itself: its end is the refusal's retry hint). Whole seconds rounded up, as `Retry-After`
        says them: never a second before the hint."""
        reason = self.excluded.get(name, "cooldown")
        until = self.cooling_until.get(name)
        if until is None or reason == "cooldown":
            return reason
        return f"{reason}; cooling for another {math.ceil(max(0.0, until - now))} s"

    @property
    def sticky(self) -> str | None:
        """The deployment the session stuck to when planned (then the first candidate)."""
        return self.candidates[0].name if self.sticky_hit else None


@dataclass(frozen=True, slots=True, eq=False)
class Deployment:
    """Provider + upstream model: the unit that is routed to, cooled down and measured."""

    name: str
    provider: str
    upstream_model: str
    adapter: ProviderAdapter
    pool: KeyPool
    weight: float = 1.0
    context_window: int | None = None
    price: PriceConfig | None = None  # None: its calls have no cost
    realtime: bool = False  # serves Realtime API sessions (`realtime: true`)
    reasoning: bool = True  # takes the reasoning knob (configured, or by its model's name)
    base_model: str = ""  # what the upstream serves as `upstream_model`; "": that name itself
    api: UpstreamApi = "chat"  # the upstream API it is called with (configured, or by name)
    # Itself called on the Responses API, for a request with OpenAI's hosted tools or items: a
    # chat deployment at OpenAI itself whose `api` is unset (_server_tools.fitted); else None.
    hosted_twin: Deployment | None = None
    twin: bool = False  # it is such a twin (of the chat deployment of the same name)

    @property
    def stop_cap(self) -> int | None:
        """The most stop sequences a call may send; the router enforces those past it. The
        Responses API takes none."""
        return 0 if self.api == "responses" else self.adapter.stop_cap

    def chat_call(
        self, api_key: str, params: chat_pb2.ChatParams, timeout_s: float, ctx: RequestContext
    ) -> ChatCall:
        """One attempt's call of this deployment (its upstream model, on its API), with the body
        `ctx` holds for these `params` (`RequestContext.take_body`)."""
        body = ctx.take_body(params)
        return ChatCall(
            self.upstream_model,
            api_key,
            params,
            timeout_s,
            self.api,
            self.base_model,
            body,
            truncation=ctx.truncates,
        )

    @property
    def server_tools(self) -> frozenset[str]:
        """The Anthropic server tools its upstream runs; on the Responses API none of them, but
        OpenAI's hosted tools (their family: engine/_server_tools.py)."""
        return _HOSTED if self.api == "responses" else self.adapter.server_tools

    def cannot_express(self, params: chat_pb2.ChatParams) -> UpstreamFailure | None:
        """Why this deployment's upstream API cannot carry `params` (the adapter's
        `cannot_express`, or the Responses API's), as the failure its call would raise."""
        if self.api == "responses":
            return responses_cannot_express(params)
        if params.tools:  # a request without tools asks nothing of the adapter's types
            types = self.adapter.tool_types
            failure = (
                None if types is None else inexpressible_tool(params, self.adapter.kind, types)
            )
            if failure is not None:
                return failure
        return self.adapter.cannot_express(params)

    @property
    def takes_custom_tools(self) -> bool:
        """Whether its upstream API takes custom tools (else the router emulates them)."""
        return self.api == "responses" or self.adapter.takes_custom_tools

    @property
    def takes_legacy_functions(self) -> bool:
        """Whether its upstream API takes OpenAI's legacy `functions` / `function_call` (else
        the router sends them as tools: _legacy_functions.py): an OpenAI-format chat API, whose
        body is OpenAI's as sent (`tool_types` None)."""
        return self.api != "responses" and self.adapter.tool_types is None

    @property
    def timeouts(self) -> TimeoutsConfig:
        return self.adapter.config.timeouts

    @property
    def protection(self) -> ThreadProtection:
        # A dict lookup, not ThreadProtection(value): Enum.__new__ showed up in hot-path profiles.
        return _PROTECTION[self.adapter.config.thread_protection]

    @property
    def session_limit(self) -> int | None:
        """Concurrent sessions the provider serves: bounded only under provider-ban."""
        if self.protection is ThreadProtection.PROVIDER_BAN:
            return self.adapter.config.max_sessions
        return None

    @property
    def secrets(self) -> list[str]:
        """What an upstream's error must be scrubbed of before anyone sees it: the provider's
        keys (an error may name others of the account than the one used) and credential
        headers."""
        return self.adapter.config.secrets()

    @property
    def health_name(self) -> str:
        """What its transient cooldown and routing statistics are kept under: its name; a
        twin's, its name and API (`openai/gpt-5#responses`), as one API's server errors or
        outage say nothing of the other's. Rate limits are its key × model's, shared by both
        (OpenAI's are per model across its APIs)."""
        return f"{self.name}#{self.api}" if self.twin else self.name

    @property
    def cooldown_name(self) -> str:
        return f"dcool:{self.health_name}"


@dataclass(slots=True)
class RequestContext:
    """One caller request as it moves through the engine."""

    requested_model: str
    clock: Clock
    # Monotonic instant by which the caller wants an answer; None: no deadline.
    deadline: float | None = None
    # The timeout its gRPC call came with (0: none, or no call's): `cancelled_at_deadline`.
    grpc_timeout_s: float = 0.0
    # The session's key (sessions.session_key: scoped to the client, hashed); "": none.
    session_id: str = ""
    # The calling client's configured name (auth.clients[].name); "": anonymous (open mode).
    client: str = ""
    attempts: list[routing_pb2.Attempt] = field(default_factory=list)
    plan: Plan | None = None
    # Providers this request's session banned while it ran: later candidates skip them too.
    banned_providers: set[str] = field(default_factory=set)
    # The response-side guardrails that screen this call's answer; None: none apply.
    answers: AnswerGuard | None = None
    # A chat's params and the OpenAI body the servicer's check wrote of them (`validate_chat`),
    # until the first attempt takes it.
    written: tuple[chat_pb2.ChatParams, dict[str, Any]] | None = None
    # The hosted tool calls its answer made that its price charges by the call (_tool_fees).
    billed: Billed = field(default_factory=set)
    # The chat whose answer is billed: the code interpreter containers it names or hands back
    # are paid already (`paid_containers`, looked for only once a call is billed).
    chat: chat_pb2.ChatParams | None = None
    # A stream's slot of its client's `max_concurrent_streams`, renewed with the stream's key
    # lease while it runs (`HoldRenewer`); None: it holds none, or it leads a stream the
    # response cache shares (renewed while its caller reads: the attempt may outlive it).
    stream_slot: SlotOwner | None = None
    # The caller asked for `truncation: auto` (RoutingOptions.truncation); once a deployment
    # refused the input as too long, its shortening there (None: the whole input is sent).
    truncates: bool = False
    truncation: Shortening | None = None
    # The embeddings request, for its shortening (`truncation`).
    embedding: embeddings_pb2.EmbeddingParams | None = None
    # No one waits on a socket for it (a background response, a batch line): it waits out
    # every cooldown its deadline allows, past `routing.max_cooldown_wait_s`.
    unattended: bool = False
    # What such a call gives back while it waits out a cooldown, taken again after the wait
    # (a batch line's slot of `batches.concurrency`, a background response's place of
    # `responses.max_background_per_client`), then planned afresh (the wait for it may be
    # long: cooled again meanwhile, waited out again); None: it holds on to what it holds.
    set_aside: SetAside | None = None

    def sending(self, params: chat_pb2.ChatParams) -> chat_pb2.ChatParams:
        """The chat's params as this attempt sends them: shortened (`truncation`), or whole."""
        if self.truncation is None:  # the common case: this test only
            return params
        sent = self.truncation.sent
        return sent if isinstance(sent, chat_pb2.ChatParams) else params

    def embedding_sent(
        self, params: embeddings_pb2.EmbeddingParams
    ) -> embeddings_pb2.EmbeddingParams:
        """The embeddings request as this attempt sends it: shortened (`truncation`), or whole."""
        if self.truncation is None:
            return params
        sent = self.truncation.sent
        return sent if isinstance(sent, embeddings_pb2.EmbeddingParams) else params

    def take_body(self, params: chat_pb2.ChatParams) -> list[dict[str, Any]] | None:
        """The body written of `params` (for `ChatCall.prepared`), for the first attempt only
        (any later one writes its own: a use may change it), and only when that attempt sends
        these very params (not a deployment's variant of them: `_params_for`)."""
        written, self.written = self.written, None
        return [written[1]] if written is not None and written[0] is params else None

    def bills(self, deployment: Deployment) -> Billed | None:
        """Where the hosted tool calls of the answer of `deployment` are counted, when its
        price charges them (`tool_calls_usd`); None: not counted."""
        price = deployment.price
        return self.billed if price is not None and price.tool_calls_usd else None

    def remaining(self) -> float | None:
        if self.deadline is None:
            return None
        return self.deadline - self.clock.monotonic()

    def deadline_passed(self) -> bool:
        """Whether the caller's deadline has passed (to within `DEADLINE_SLACK_S`): a timer
        of ours that fired now was the deadline's."""
        remaining = self.remaining()
        return remaining is not None and remaining <= DEADLINE_SLACK_S

    def cancelled_at_deadline(self) -> bool:
        """Whether a cancellation that comes now was the caller's deadline's (gRPC cancels a
        call whose deadline passed as one whose caller left): the caller's own may pass
        before ours (`CANCEL_TRANSIT_S`, `grpc_timeout_rounding`), its call cancelled then:
        a caller's own cancel that near its deadline is read as the deadline's (at most 1.05 s
        of the edge's 600 s)."""
        remaining = self.remaining()
        if remaining is None:
            return False
        return remaining <= CANCEL_TRANSIT_S + grpc_timeout_rounding(self.grpc_timeout_s)

    def attempt_timeout(self, cap_s: float) -> float:
        remaining = self.remaining()
        return cap_s if remaining is None else max(0.001, min(cap_s, remaining))

    def record(
        self,
        deployment: Deployment,
        key_fingerprint: str,
        outcome: Outcome,
        started: float,
        *,
        upstream_status: int = 0,
        detail: str = "",
    ) -> None:
        self.attempts.append(
            routing_pb2.Attempt(
                deployment=deployment.name,
                provider=deployment.provider,
                key_fingerprint=key_fingerprint,
                outcome=routing_pb2.Outcome.ValueType(outcome.value),
                upstream_status=upstream_status,
                latency_ms=(self.clock.monotonic() - started) * 1000.0,
                detail=detail,
            )
        )

    @property
    def answer_guardrails(self) -> list[str]:
        """The names of the rules that screen this call's answer (RouteInfo.answer_guardrails)."""
        return [] if self.answers is None else [rule.name for rule in self.answers.rules]

    def route(
        self, deployment: Deployment | None, usage: chat_pb2.Usage | None = None
    ) -> routing_pb2.RouteInfo:
        """Where the request went; with the `usage` the upstream reported, what it cost at the
        price of the `deployment` that answered (`cost_usd`, unset without a price); the rules
        that screen its answer."""
        info = routing_pb2.RouteInfo(
            requested_model=self.requested_model,
            attempts=self.attempts,
            session_id=self.session_id,
            answer_guardrails=self.answer_guardrails,
        )
        if self.truncation is not None:
            info.truncated_messages = self.truncation.dropped
        if deployment is not None:
            info.deployment = deployment.name
            info.provider = deployment.provider
            info.upstream_model = deployment.upstream_model
            if deployment.price is not None and usage is not None:  # unpriced: this check only
                details = usage.prompt_tokens_details
                info.cost_usd = deployment.price.cost_usd(
                    usage.prompt_tokens,
                    usage.completion_tokens,
                    details.cached_tokens,
                    cache_write_tokens=details.cache_write_tokens,
                    cache_write_1h_tokens=details.cache_write_1h_tokens,
                )
                if self.billed:
                    paid = frozenset() if self.chat is None else paid_containers(self.chat)
                    info.cost_usd += deployment.price.tool_fees_usd(fees(self.billed, paid))
        return info
