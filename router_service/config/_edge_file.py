"""The edge's part of the shared config file: its own section models only.

The edge reads `edge:` and `telemetry:` of the file the router reads whole; it does not import
the router's section models (providers, routing, auth, guardrails…): ~1 MiB of an idle edge's
resident memory (benchmarks/README.md, "Where idle RSS goes", 2026-12-05).
"""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field, model_validator

from router_service.config._base import Misplaced
from router_service.config._serving import EdgeConfig, TelemetryConfig

__all__ = ["SECTIONS", "EdgeFileConfig"]

# The sections of the file, as `SwitchboardConfig` has them (a test keeps the two the same).
SECTIONS = frozenset(
    (
        "providers",
        "models",
        "pools",
        "sessions",
        "routing",
        "server",
        "edge",
        "streams",
        "responses",
        "conversations",
        "files",
        "batches",
        "cache",
        "cooldowns",
        "key_health",
        "http",
        "state",
        "telemetry",
        "guardrails",
        "auth",
    )
)


class EdgeFileConfig(BaseModel):
    """What the edge reads of the shared file: `edge:` and `telemetry:`. The other sections are
    the router's (the router and `check-config` validate them): the edge only checks that they
    are sections it knows, and their `${VAR}`s need not be set in its environment."""

    model_config = ConfigDict(extra="ignore", frozen=True)

    edge: EdgeConfig = Field(default_factory=EdgeConfig)
    telemetry: TelemetryConfig = Field(default_factory=TelemetryConfig)

    @model_validator(mode="before")
    @classmethod
    def _known_sections(cls, data: object) -> object:
        if isinstance(data, dict):
            unknown = [name for name in data if name not in SECTIONS]
            if unknown:
                raise Misplaced([((name,), "not a section of the config") for name in unknown])
        return data
