"""Upstreams that refuse `stream_options`, learned: an OpenAI-format server older than it (vLLM
before 0.5, some proxies and gateways) answers the `{"include_usage": true}` the router adds to
every stream with a 400 naming it. The stream is then asked again without it, and the
deployment is not asked for it again: its streams are accounted as `stream_usage: false` ones.

Kept in memory, per adapter (a provider, until a config reload builds it again): what a
replica forgets costs one refused request per deployment when it starts, and keeping it here
adds nothing to a stream's path (a set lookup) where the state store would add a round trip."""

from __future__ import annotations

import logging

from router_service.errors import UpstreamFailure

__all__ = ["StreamOptionsRefusals", "refuses_stream_options"]

log = logging.getLogger("switchboard.router")

# A refusal of a field comes as a 400 (OpenAI, vLLM, LiteLLM) or a 422 (FastAPI's validation).
_REFUSAL_STATUSES = frozenset({400, 422})
_NAMES = ("stream_options", "include_usage")


def refuses_stream_options(failure: UpstreamFailure) -> bool:
    """Whether `failure` is an upstream's refusal of the `stream_options` it was sent: a 400
    (or 422) whose error names it, in its message or its `param`."""
    if failure.upstream_status not in _REFUSAL_STATUSES:
        return False
    error = failure.upstream_error or {}
    said = f"{error.get('message', '')} {error.get('param', '')} {failure.message}".lower()
    return any(name in said for name in _NAMES)


class StreamOptionsRefusals:
    """The upstream models of one provider that refused `stream_options`."""

    __slots__ = ("_models", "_provider")

    def __init__(self, provider: str) -> None:
        self._provider = provider
        self._models: set[str] = set()

    def __contains__(self, upstream_model: str) -> bool:
        return upstream_model in self._models

    def learn(self, upstream_model: str, status: int) -> None:
        """Remember that `upstream_model` refuses `stream_options`: said once, by deployment."""
        if upstream_model in self._models:
            return
        self._models.add(upstream_model)
        log.warning(
            "deployment %s/%s refuses stream_options (HTTP %d): its streams are no longer "
            "asked for their usage and count the router's estimate (stream_usage: false on "
            "provider %s skips the refused first call)",
            self._provider,
            upstream_model,
            status,  # not the upstream's message: not yet scrubbed of keys
            self._provider,
        )
