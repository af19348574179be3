"""The shared base of every config model."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict

Strategy = Literal["ordered", "weighted", "thompson", "latency"]


class _Strict(BaseModel):
    # A typo in a config key is an error, not a silently ignored setting.
    model_config = ConfigDict(extra="forbid", frozen=True)
