"""The configuration schema: one YAML file, validated by these models (DESIGN.md §7). The
section models live beside this module by theme; this one assembles the whole file."""

from __future__ import annotations

from pydantic import Field, field_validator, model_validator

from router_service._listening import port_clash
from router_service.config._auth import AuthConfig, ClientKey, ClientKeyConfig, ClientScope
from router_service.config._base import Location, Misplaced, Strategy, _Strict
from router_service.config._batches import BatchesConfig, FilesConfig
from router_service.config._guardrails import GuardrailAction, GuardrailConfig, GuardrailSide
from router_service.config._key_health import CooldownsConfig, KeyHealthConfig
from router_service.config._prices import PriceConfig
from router_service.config._providers import HttpConfig, KeyConfig, ProviderConfig, TimeoutsConfig
from router_service.config._routing import (
    RESPONSES_API_KINDS,
    CacheConfig,
    ConversationsConfig,
    DeploymentRef,
    ModelGroupConfig,
    PoolConfig,
    ResponsesConfig,
    RoutingConfig,
    SessionsConfig,
    StreamsConfig,
)
from router_service.config._serving import (
    EdgeConfig,
    RouterTLSConfig,
    ServerConfig,
    ServerTLSConfig,
    StateConfig,
    TelemetryConfig,
)

# Room in a gRPC message for what an upload carries besides its bytes (its form fields as JSON).
_UPLOAD_FRAMING = 1024 * 1024

__all__ = [
    "AuthConfig",
    "BatchesConfig",
    "CacheConfig",
    "ClientKey",
    "ClientKeyConfig",
    "ClientScope",
    "ConversationsConfig",
    "CooldownsConfig",
    "DeploymentRef",
    "EdgeConfig",
    "FilesConfig",
    "GuardrailAction",
    "GuardrailConfig",
    "GuardrailSide",
    "HttpConfig",
    "KeyConfig",
    "KeyHealthConfig",
    "ModelGroupConfig",
    "PoolConfig",
    "PriceConfig",
    "ProviderConfig",
    "ResponsesConfig",
    "RouterTLSConfig",
    "RoutingConfig",
    "ServerConfig",
    "ServerTLSConfig",
    "SessionsConfig",
    "StateConfig",
    "Strategy",
    "StreamsConfig",
    "SwitchboardConfig",
    "TelemetryConfig",
    "TimeoutsConfig",
]


# A deployment's own settings: one object however many groups name it, so one value each.
_ONE_PER_DEPLOYMENT = ("api", "base_model", "reasoning", "realtime", "context_window")


class SwitchboardConfig(_Strict):
    """The whole file."""

    providers: dict[str, ProviderConfig] = Field(min_length=1)
    models: dict[str, ModelGroupConfig] = Field(default_factory=dict)
    pools: dict[str, PoolConfig] = Field(default_factory=dict)
    sessions: SessionsConfig = Field(default_factory=SessionsConfig)
    routing: RoutingConfig = Field(default_factory=RoutingConfig)
    server: ServerConfig = Field(default_factory=ServerConfig)
    edge: EdgeConfig = Field(default_factory=EdgeConfig)
    streams: StreamsConfig = Field(default_factory=StreamsConfig)
    responses: ResponsesConfig = Field(default_factory=ResponsesConfig)
    conversations: ConversationsConfig = Field(default_factory=ConversationsConfig)
    files: FilesConfig = Field(default_factory=FilesConfig)
    batches: BatchesConfig = Field(default_factory=BatchesConfig)
    cache: CacheConfig = Field(default_factory=CacheConfig)
    cooldowns: CooldownsConfig = Field(default_factory=CooldownsConfig)
    key_health: KeyHealthConfig = Field(default_factory=KeyHealthConfig)
    http: HttpConfig = Field(default_factory=HttpConfig)
    state: StateConfig = Field(default_factory=StateConfig)
    telemetry: TelemetryConfig = Field(default_factory=TelemetryConfig)
    guardrails: list[GuardrailConfig] = Field(
        default_factory=list,
        description="Rules for what a request's text must not carry to a provider (README, "
        "Guardrails); checked in order.",
    )
    # Validated even when absent: a file without `auth:` must say `open: true` to run unguarded.
    auth: AuthConfig = Field(default_factory=dict, validate_default=True)

    @field_validator("providers")
    @classmethod
    def _provider_names(cls, value: dict[str, ProviderConfig]) -> dict[str, ProviderConfig]:
        for name in value:
            if not name or "/" in name:
                raise ValueError(f"provider name {name!r} must be non-empty and contain no '/'")
        return value

    @model_validator(mode="after")
    def _references(self) -> SwitchboardConfig:
        problems = [
            *self._model_problems(),
            *self._pool_problems(),
            *self._cache_problems(),
            *self._budget_problems(),
            *self._guardrail_problems(),
            *self._route_lease_problems(),
            *self._port_problems(),
        ]
        if self.server.max_message_bytes < self.edge.max_body_bytes:
            problems.append(
                (
                    ("server", "max_message_bytes"),
                    f"{self.server.max_message_bytes} is below edge.max_body_bytes "
                    f"({self.edge.max_body_bytes}): the router would refuse requests the edge "
                    "accepts",
                )
            )
        upload = self.edge.max_upload_bytes
        if upload is not None and self.server.max_message_bytes < upload + _UPLOAD_FRAMING:
            problems.append(
                (
                    ("server", "max_message_bytes"),
                    f"{self.server.max_message_bytes} is below edge.max_upload_bytes "
                    f"({self.edge.max_upload_bytes}) plus 1 MiB: the router would refuse "
                    "uploads the edge accepts",
                )
            )
        if problems:
            raise Misplaced(problems)
        return self

    def own_settings(self) -> dict[str, DeploymentRef]:
        """Each deployment (by name) with its own settings as whichever group gave them (one
        value each, checked at load): a group that leaves one unset takes another group's."""
        merged: dict[str, DeploymentRef] = {}
        for group in self.models.values():
            for dep in group.deployments:
                first = merged.setdefault(dep.name, dep)
                given = {
                    field: getattr(dep, field)
                    for field in _ONE_PER_DEPLOYMENT
                    if field in dep.model_fields_set and field not in first.model_fields_set
                }
                if given:  # model_copy marks them set: a third group's are then compared
                    merged[dep.name] = first.model_copy(update=given)
        return merged

    @property
    def route_lease_ttl_s(self) -> float:
        """How long a PickRoute lease lives unreported: `server.route_lease_ttl_s`, never longer
        than the key lease and the session mark it holds (left at its default, as short as
        they are; set longer, refused)."""
        server = self.server
        return min(server.route_lease_ttl_s, server.lease_ttl_s, self.sessions.active_ttl_s)

    def _route_lease_problems(self) -> list[tuple[Location, str]]:
        """A pick keeps its key's lease and its session's mark until it is reported, and nothing
        renews them: outliving them, it would count for nobody (the key's limits and the
        provider's session limit) while its caller still uses the key."""
        route = self.server.route_lease_ttl_s
        if "route_lease_ttl_s" not in self.server.model_fields_set:
            return []
        holds = {
            "server.lease_ttl_s": self.server.lease_ttl_s,
            "sessions.active_ttl_s": self.sessions.active_ttl_s,
        }
        return [
            (
                ("server", "route_lease_ttl_s"),
                f"{route:g} is longer than {name} ({ttl:g}): an unreported pick would outlive "
                "the key lease and session mark it holds",
            )
            for name, ttl in holds.items()
            if route > ttl
        ]

    def _port_problems(self) -> list[tuple[Location, str]]:
        """The router's two listeners (`server.port`, `telemetry.prometheus_port`: always one
        process) on one port: refused as the file loads, by key, not at its start. The edge's
        port is not compared here: a file shared by a router and an edge run apart (each in
        its own container, say) may give both one port; `serve` and `dev`, which run both in
        one process, refuse that at their start (`check_listening`)."""
        telemetry = self.telemetry
        shared = port_clash(
            [
                ("server.port", self.server.host, self.server.port),
                (
                    "telemetry.prometheus_port",
                    telemetry.prometheus_host,
                    telemetry.prometheus_port or 0,
                ),
            ]
        )
        if shared is None:
            return []
        (key, _, port), (other_key, other_host, _) = shared
        section, name = key.split(".")
        said = f"{port} is also {other_key} ({other_host}:{port}): give each its own port"
        return [((section, name), said)]

    def price_of(self, dep: DeploymentRef) -> PriceConfig | None:
        """A deployment's price: its own, else its provider's; None: its calls have no cost."""
        if dep.price is not None:
            return dep.price
        provider = self.providers.get(dep.provider)
        return None if provider is None else provider.price

    def _model_problems(self) -> list[tuple[Location, str]]:
        problems: list[tuple[Location, str]] = []
        # One deployment is one object however many groups name it: one price too.
        prices: dict[str, tuple[str, PriceConfig | None]] = {}
        # …and one of each setting of its own (what it is, not how a group routes to it).
        settings: dict[tuple[str, str], tuple[str, object]] = {}
        for group_name, group in self.models.items():
            if group_name in self.providers or (
                "/" in group_name and _is_deployment(self, group_name)
            ):
                problems.append((("models", group_name), "the group shadows a deployment name"))
            listed: dict[str, int] = {}
            for i, dep in enumerate(group.deployments):
                if (first_at := listed.setdefault(dep.name, i)) != i:
                    message = (
                        f"{dep.name} is listed twice in models.{group_name} "
                        f"(deployments[{first_at}] too): list it once"
                    )
                    problems.append((("models", group_name, "deployments", i), message))
                if dep.provider not in self.providers:
                    where = ("models", group_name, "deployments", i, "provider")
                    problems.append((where, f"unknown provider {dep.provider!r}"))
                elif dep.api == "responses" and (
                    (kind := self.providers[dep.provider].kind) not in RESPONSES_API_KINDS
                ):
                    where = ("models", group_name, "deployments", i, "api")
                    message = f"kind {kind} has no Responses API (only openai and azure have)"
                    problems.append((where, message))
                for field in _ONE_PER_DEPLOYMENT:
                    if field not in dep.model_fields_set:
                        continue  # not given here: the one given elsewhere holds (own_settings)
                    value = getattr(dep, field)
                    first_in, first = settings.setdefault((dep.name, field), (group_name, value))
                    if first != value:
                        where = ("models", group_name, "deployments", i, field)
                        message = (
                            f"{dep.name} has another {field} in models.{first_in}: give it one"
                        )
                        problems.append((where, message))
                first, price = prices.setdefault(dep.name, (group_name, self.price_of(dep)))
                if price != self.price_of(dep):
                    where = ("models", group_name, "deployments", i, "price")
                    message = f"{dep.name} has another price in models.{first}: give it one price"
                    problems.append((where, message))
        return problems

    def _pool_problems(self) -> list[tuple[Location, str]]:
        problems: list[tuple[Location, str]] = []
        for pool_name, pool in self.pools.items():
            if pool_name in self.models:
                problems.append((("pools", pool_name), "the pool has the name of a model group"))
            elif pool_name in self.providers or (
                "/" in pool_name and _is_deployment(self, pool_name)
            ):  # as a group's: a name is a group's or pool's before a deployment's
                problems.append((("pools", pool_name), "the pool shadows a deployment name"))
            for i, group_name in enumerate(pool.groups):
                if group_name not in self.models:
                    where = ("pools", pool_name, "groups", i)
                    problems.append((where, f"unknown model group {group_name!r}"))
        return problems

    def _budget_problems(self) -> list[tuple[Location, str]]:
        """A money budget where nothing has a price would never fill: a mistake, said now."""
        priced = any(p.price is not None for p in self.providers.values()) or any(
            dep.price is not None for group in self.models.values() for dep in group.deployments
        )
        if priced:
            return []
        return [
            (
                ("auth", "clients", i, field),
                "no deployment or provider has a price: it would "
                "never be spent (set models.*.deployments[].price or providers.*.price)",
            )
            for i, client in enumerate(self.auth.clients)
            for field in ("usd_per_day", "usd_per_month")
            if getattr(client, field) is not None
        ]

    def _guardrail_problems(self) -> list[tuple[Location, str]]:
        problems: list[tuple[Location, str]] = []
        clients = {client.name for client in self.auth.clients}
        names: dict[str, int] = {}
        for i, rule in enumerate(self.guardrails):
            if (first := names.setdefault(rule.name, i)) != i:
                message = f"guardrail names must be unique (guardrails[{first}] has it too)"
                problems.append((("guardrails", i, "name"), message))
            for j, client in enumerate(rule.clients or ()):
                if client not in clients:
                    where = ("guardrails", i, "clients", j)
                    problems.append((where, f"unknown client {client!r} (auth.clients[].name)"))
        return problems

    def _cache_problems(self) -> list[tuple[Location, str]]:
        return [
            (("cache", "models", i), f"unknown model {name!r}")
            for i, name in enumerate(self.cache.models)
            if name not in self.models
            and name not in self.pools
            and not ("/" in name and _is_deployment(self, name))
        ]


def _is_deployment(config: SwitchboardConfig, name: str) -> bool:
    provider, _, _model = name.partition("/")
    return provider in config.providers
