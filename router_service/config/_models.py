"""The configuration schema: one YAML file, validated by these models (DESIGN.md §7). The
section models live beside this module by theme; this one assembles the whole file."""

from __future__ import annotations

from pydantic import Field, field_validator, model_validator

from router_service.config._auth import AuthConfig, ClientKeyConfig, ClientScope
from router_service.config._base import Strategy, _Strict
from router_service.config._providers import (
    CooldownsConfig,
    HttpConfig,
    KeyConfig,
    KeyHealthConfig,
    ProviderConfig,
    TimeoutsConfig,
)
from router_service.config._routing import (
    DeploymentRef,
    ModelGroupConfig,
    PoolConfig,
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

__all__ = [
    "AuthConfig",
    "ClientKeyConfig",
    "ClientScope",
    "CooldownsConfig",
    "DeploymentRef",
    "EdgeConfig",
    "HttpConfig",
    "KeyConfig",
    "KeyHealthConfig",
    "ModelGroupConfig",
    "PoolConfig",
    "ProviderConfig",
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
    cooldowns: CooldownsConfig = Field(default_factory=CooldownsConfig)
    key_health: KeyHealthConfig = Field(default_factory=KeyHealthConfig)
    http: HttpConfig = Field(default_factory=HttpConfig)
    state: StateConfig = Field(default_factory=StateConfig)
    telemetry: TelemetryConfig = Field(default_factory=TelemetryConfig)
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
        for group_name, group in self.models.items():
            if group_name in self.providers or (
                "/" in group_name and _is_deployment(self, group_name)
            ):
                raise ValueError(f"model group {group_name!r} shadows a deployment name")
            for i, dep in enumerate(group.deployments):
                if dep.provider not in self.providers:
                    raise ValueError(
                        f"models.{group_name}.deployments[{i}]: unknown provider {dep.provider!r}"
                    )
        for pool_name, pool in self.pools.items():
            if pool_name in self.models:
                raise ValueError(f"pool {pool_name!r} has the name of a model group")
            for group_name in pool.groups:
                if group_name not in self.models:
                    raise ValueError(f"pools.{pool_name}: unknown model group {group_name!r}")
        if self.server.max_message_bytes < self.edge.max_body_bytes:
            raise ValueError(
                f"server.max_message_bytes ({self.server.max_message_bytes}) is below "
                f"edge.max_body_bytes ({self.edge.max_body_bytes}): the router would refuse "
                "requests the edge accepts"
            )
        return self


def _is_deployment(config: SwitchboardConfig, name: str) -> bool:
    provider, _, _model = name.partition("/")
    return provider in config.providers
