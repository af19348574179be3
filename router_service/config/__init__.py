"""One YAML configuration file, validated with pydantic (DESIGN.md §7)."""

from typing import TYPE_CHECKING

from clients._lazy import lazy_names

if TYPE_CHECKING:  # for the type checker: at run time each name is imported on first use
    from router_service.config._auth import AuthConfig, ClientKey, ClientKeyConfig, ClientScope
    from router_service.config._batches import BatchesConfig, FilesConfig
    from router_service.config._edge_file import EdgeFileConfig
    from router_service.config._guardrails import GuardrailAction, GuardrailConfig, GuardrailSide
    from router_service.config._key_health import CooldownsConfig, KeyHealthConfig
    from router_service.config._loader import (
        load_config,
        load_edge_config,
        parse_config,
        parse_edge_config,
    )
    from router_service.config._models import SwitchboardConfig
    from router_service.config._pem import PemFiles, PemSet, tls_problems
    from router_service.config._prices import PriceConfig
    from router_service.config._providers import (
        HttpConfig,
        KeyConfig,
        ProviderConfig,
        TimeoutsConfig,
    )
    from router_service.config._routing import (
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
    from router_service.config._throttle import AdminThrottleConfig, KeyThrottleConfig

# Each name's module, imported when the name is first read (clients/_lazy.py): the edge,
# which reads its part of the file only (`_edge_file.py`), never imports the router's
# section models.
_WHERE = {
    "AdminThrottleConfig": "_throttle",
    "AuthConfig": "_auth",
    "BatchesConfig": "_batches",
    "CacheConfig": "_routing",
    "ClientKey": "_auth",
    "ClientKeyConfig": "_auth",
    "ClientScope": "_auth",
    "ConversationsConfig": "_routing",
    "CooldownsConfig": "_key_health",
    "DeploymentRef": "_routing",
    "EdgeConfig": "_serving",
    "EdgeFileConfig": "_edge_file",
    "FilesConfig": "_batches",
    "GuardrailAction": "_guardrails",
    "GuardrailConfig": "_guardrails",
    "GuardrailSide": "_guardrails",
    "HttpConfig": "_providers",
    "KeyConfig": "_providers",
    "KeyHealthConfig": "_key_health",
    "KeyThrottleConfig": "_throttle",
    "ModelGroupConfig": "_routing",
    "PemFiles": "_pem",
    "PemSet": "_pem",
    "PoolConfig": "_routing",
    "PriceConfig": "_prices",
    "ProviderConfig": "_providers",
    "ResponsesConfig": "_routing",
    "RouterTLSConfig": "_serving",
    "RoutingConfig": "_routing",
    "ServerConfig": "_serving",
    "ServerTLSConfig": "_serving",
    "SessionsConfig": "_routing",
    "StateConfig": "_serving",
    "StreamsConfig": "_routing",
    "SwitchboardConfig": "_models",
    "TelemetryConfig": "_serving",
    "TimeoutsConfig": "_providers",
    "load_config": "_loader",
    "load_edge_config": "_loader",
    "parse_config": "_loader",
    "parse_edge_config": "_loader",
    "tls_problems": "_pem",
}
# Hidden from type checkers: a module `__getattr__` makes every name it lacks `Any` to them,
# a misspelt import no error; they read the names above instead.
if not TYPE_CHECKING:
    __getattr__, __dir__ = lazy_names(__name__, _WHERE)

__all__ = [
    "AdminThrottleConfig",
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
    "EdgeFileConfig",
    "FilesConfig",
    "GuardrailAction",
    "GuardrailConfig",
    "GuardrailSide",
    "HttpConfig",
    "KeyConfig",
    "KeyHealthConfig",
    "KeyThrottleConfig",
    "ModelGroupConfig",
    "PemFiles",
    "PemSet",
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
    "StreamsConfig",
    "SwitchboardConfig",
    "TelemetryConfig",
    "TimeoutsConfig",
    "load_config",
    "load_edge_config",
    "parse_config",
    "parse_edge_config",
    "tls_problems",
]
