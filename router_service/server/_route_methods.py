"""RouterService's decision API: PickRoute hands a caller a route (a deployment and a leased key)
and ReportOutcome takes back its lease with the outcome (`engine.RouteLeases`); each decision is
counted in the request metrics once (`telemetry.record_decision`)."""

from __future__ import annotations

import asyncio

import grpc

from clients import to_grpc_status
from clients.switchboard.v1 import router_service_pb2 as pb
from router_service.auth import current_caller
from router_service.engine import RequestContext
from router_service.errors import InvalidRequestError, PermissionDeniedError
from router_service.outcomes import Outcome
from router_service.runtime import Runtime
from router_service.server._calls import deadline_context, request_context, validate_report
from router_service.server._errors import error_details
from router_service.sessions import checked_session_id
from router_service.telemetry import read_cancellation, record_decision_failed

__all__ = ["RouteMethods"]


class RouteMethods:
    """PickRoute and ReportOutcome, as `RouterServicer`'s."""

    runtime: Runtime

    async def PickRoute(
        self, request: pb.PickRouteRequest, context: grpc.aio.ServicerContext
    ) -> pb.PickRouteResponse:
        ctx: RequestContext | None = None
        try:
            caller = current_caller()
            if caller is None or caller.anonymous:
                # Open mode lets anyone chat through the router; it never hands out raw keys.
                raise PermissionDeniedError(
                    "PickRoute returns upstream keys: it needs a client key with the `route` "
                    "scope, also when the router runs with auth.open.",
                    code="missing_scope",
                )
            session = checked_session_id(request.routing.session_id)
            ctx = request_context(self.runtime.clock, request.model, session, context)
            route = await self.runtime.route_leases.pick(
                ctx,
                tokens=max(0, request.estimated_tokens),
                exclude=frozenset(request.exclude_deployments),
            )
        except BaseException as exc:  # its outcome, counted; a cancellation read as a request's
            record_decision_failed(ctx, exc)
            if isinstance(exc, Exception):
                await context.abort_with_status(to_grpc_status(error_details(exc)))
            raise
        deployment = route.deployment
        return pb.PickRouteResponse(
            lease_id=route.lease_id,
            deployment=deployment.name,
            provider=deployment.provider,
            upstream_model=deployment.upstream_model,
            provider_kind=deployment.adapter.kind,
            base_url=deployment.adapter.config.base_url,
            api_key=route.lease.key.secret,
            key_fingerprint=route.lease.key.fingerprint,
            expires_unix=route.expires_at,
            session_id=ctx.session_id,
        )

    async def ReportOutcome(
        self, request: pb.ReportOutcomeRequest, context: grpc.aio.ServicerContext
    ) -> pb.ReportOutcomeResponse:
        waits = deadline_context(self.runtime.clock, context)
        try:
            try:
                outcome = Outcome(request.outcome)
            except ValueError:
                raise InvalidRequestError(
                    "`outcome` must be a known Outcome.", param="outcome"
                ) from None
            validate_report(request)
            accepted = await self.runtime.route_leases.report(
                request.lease_id,
                outcome,
                upstream_status=request.upstream_status,
                latency_s=request.latency_ms / 1000.0 if request.latency_ms else None,
                retry_after_s=(
                    request.retry_after_s if request.HasField("retry_after_s") else None
                ),
                total_tokens=request.total_tokens if request.HasField("total_tokens") else None,
                too_large_for_tpm=request.too_large_for_tpm,
            )
        except asyncio.CancelledError:
            read_cancellation(waits)  # its SERVER span's status, as a pick's is read
            raise
        except Exception as exc:
            await context.abort_with_status(to_grpc_status(error_details(exc)))
            raise
        return pb.ReportOutcomeResponse(accepted=accepted)
