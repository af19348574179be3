"""How a stream ends: a timer that fired (whose fault it was), a failure after the commit
(recorded, reacted to, told to the caller as an error event), or its summary. Shared by chat
streams (`_executor`) and media streams (`_media_streams`)."""

from __future__ import annotations

from clients.switchboard.v1 import chat_pb2, router_service_pb2, routing_pb2
from router_service.clock import Clock
from router_service.engine._attempts import AttemptRunner
from router_service.engine._model import Deployment, RequestContext
from router_service.errors import DeadlineExceededError, UpstreamFailure
from router_service.keys import KeyLease
from router_service.outcomes import Outcome

__all__ = ["StreamEnds", "stream_error", "timed_out"]


class StreamEnds:
    """How a stream ends after its commit, shared by chat and media streams."""

    _runner: AttemptRunner
    _clock: Clock

    async def _summary(
        self,
        ctx: RequestContext,
        deployment: Deployment,
        lease: KeyLease,
        usage: chat_pb2.Usage | None,
        started: float,
        first_at: float,
        began: float,
    ) -> router_service_pb2.StreamSummary | None:
        """The summary of a stream whose relay ended (the success recorded, its tokens settled);
        None when the relay ended it with an error event (and recorded the failure). `started`:
        when the request's attempts began (its time to first token counts from there: the caller
        waited); `began`: when the attempt that answered did (the deployment's latency counts
        from there: the candidates that failed before it are not its own)."""
        if ctx.attempts and ctx.attempts[-1].outcome != Outcome.OK.value:
            return None
        elapsed = self._clock.monotonic() - began
        await self._runner.stats.record(deployment.health_name, True, elapsed)
        summary = router_service_pb2.StreamSummary(
            route=ctx.route(deployment, usage), time_to_first_token_ms=(first_at - started) * 1000.0
        )
        if ctx.answers is not None:  # what acted on the answer (reported by the relay)
            summary.route.guardrails.extend(ctx.answers.report())
        if usage is not None:
            summary.usage.CopyFrom(usage)
            await lease.settle_tokens(usage.total_tokens)
        return summary

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
        stats = self._runner.stats
        await stats.record_failure(deployment.health_name, failure.outcome, failure.scope)
        return stream_error(failure, deployment)


def timed_out(ctx: RequestContext, detail: str) -> UpstreamFailure | DeadlineExceededError:
    """A timer fired: the upstream's fault if the deployment's own limit ran out, nobody's when it
    was the caller's deadline that capped the wait (then no key, deployment or session pays)."""
    if ctx.deadline_passed():
        return DeadlineExceededError("The request's deadline passed before the upstream answered.")
    return UpstreamFailure(Outcome.FIRST_CHUNK_TIMEOUT, detail)


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
