"""The log line of a deployment's global cooldown: once when it begins, not at every failure
that extends it."""

from __future__ import annotations

import logging

from router_service.engine._model import Deployment
from router_service.errors import UpstreamFailure

log = logging.getLogger("switchboard.engine")


class CooldownLog:
    def __init__(self) -> None:
        # Until when this process last saw each deployment cooled (bounded by the deployments).
        self._cooled_until: dict[str, float] = {}

    def cooled(
        self, deployment: Deployment, failure: UpstreamFailure, now: float, until: float
    ) -> None:
        """`deployment` cools from `now` until `until` for `failure`: said if it did not."""
        if self._cooled_until.get(deployment.health_name, 0.0) <= now:
            status = f", HTTP {failure.upstream_status}" if failure.upstream_status else ""
            log.info(
                "deployment %s cooled down for %.0fs (%s%s)",
                deployment.health_name,
                until - now,
                failure.outcome.name,
                status,
            )
        self._cooled_until[deployment.health_name] = until
