"""What a stream does when its upstream fails: a timer that fired (whose fault it was), and a
failure after the commit (recorded, reacted to, told to the caller as an error event). Shared by
chat streams (`_executor`) and media streams (`_media_streams`)."""

from __future__ import annotations

from clients.switchboard.v1 import router_service_pb2, routing_pb2
from router_service.engine._attempts import AttemptRunner
from router_service.engine._model import Deployment, RequestContext
from router_service.errors import DeadlineExceededError, UpstreamFailure
from router_service.keys import KeyLease
from router_service.outcomes import Outcome, reaction_for

__all__ = ["StreamFailures", "stream_error", "timed_out"]


class StreamFailures:
    """What a stream does when it fails after its commit, shared by chat and media streams."""

    _runner: AttemptRunner

    async def _failed_midstream(
        self,
        ctx: RequestContext,
        deployment: Deployment,
        lease: KeyLease,
        failure: UpstreamFailure,
        started: float,
    ) -> router_service_pb2.StreamError:
        """Record and react to `failure` (the key, the deployment's statistics); the error
        event that ends the caller's stream."""
        failure.scrub(deployment.secrets)
        ctx.record(
            deployment,
            lease.key.fingerprint,
            failure.outcome,
            started,
            upstream_status=failure.upstream_status,
            detail=failure.message[:200],
        )
        await self._runner.react(ctx, deployment, lease, failure, started=True)
        if reaction_for(failure.outcome).counts_against_deployment:
            await self._runner.stats.record(deployment.name, False)
        return stream_error(failure, deployment)


def timed_out(ctx: RequestContext, detail: str) -> UpstreamFailure | DeadlineExceededError:
    """A timer fired: the upstream's fault if the deployment's own limit ran out, nobody's when it
    was the caller's deadline that capped the wait (then no key, deployment or session pays)."""
    remaining = ctx.remaining()
    if remaining is not None and remaining <= _DEADLINE_SLACK_S:
        return DeadlineExceededError("The request's deadline passed before the upstream answered.")
    return UpstreamFailure(Outcome.FIRST_CHUNK_TIMEOUT, detail)


# A timer that fires this close to the caller's deadline was set by that deadline.
_DEADLINE_SLACK_S = 0.005

_ERROR_TYPES = {
    Outcome.STALLED: "stream_timeout",
    Outcome.TRUNCATED: "stream_truncated",
}


def stream_error(
    failure: UpstreamFailure, deployment: Deployment
) -> router_service_pb2.StreamError:
    return router_service_pb2.StreamError(
        message=failure.message,
        type=_ERROR_TYPES.get(failure.outcome, "upstream_error"),
        code=failure.outcome.name.lower(),
        outcome=routing_pb2.Outcome.ValueType(failure.outcome.value),
        upstream_status=failure.upstream_status,
        provider=deployment.provider,
    )
