"""Configuration of the HTTP edge: the `edge:` section of the one Switchboard config file."""

from __future__ import annotations

from router_service.config import EdgeConfig as EdgeSettings

__all__ = ["EdgeSettings"]
