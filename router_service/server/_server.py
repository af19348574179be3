"""The router's grpc.aio server: RouterService, AdminService, health, reflection; graceful stop."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from types import TracebackType
from typing import TYPE_CHECKING

import grpc
from grpc_health.v1 import health, health_pb2

from clients import LARGEST_ANSWER_BYTES, MAX_METADATA_BYTES
from clients.switchboard.v1 import admin_service_pb2, router_service_pb2
from router_service._listening import grpc_host
from router_service.cancellation import uncut
from router_service.config import ServerConfig, SwitchboardConfig
from router_service.errors import (
    ConfigError,
    ListenError,
    ReplicaStoppingError,
    StoreUnavailableError,
)
from router_service.runtime import Runtime
from router_service.server._admin_servicer import AdminServicer
from router_service.server._generic import add_service
from router_service.server._health import WatchedHealth
from router_service.server._in_process import InProcessHandlers
from router_service.server._interceptors import auth_interceptor
from router_service.server._long_jobs import LongJobs
from router_service.server._reflection import enable_reflection
from router_service.server._reload import (
    carried_over,
    in_force,
    marks_shared,
    restart_only,
    slots_carried,
)
from router_service.server._router_servicer import RouterServicer
from router_service.server._server_info import ServingRecord
from router_service.server._throttles import Throttles
from router_service.server._tls import CertificateFiles
from router_service.server._written import WrittenStreams
from router_service.telemetry import redact_secrets_of, redact_while_alive, server_interceptors

if TYPE_CHECKING:
    from router_service.server._background import BackgroundJobs
    from router_service.server._batches import BatchJobs
    from router_service.server._call_watch import CallWatches

log = logging.getLogger("switchboard.router")

_ROUTER_SERVICE = router_service_pb2.DESCRIPTOR.services_by_name["RouterService"]
_ADMIN_SERVICE = admin_service_pb2.DESCRIPTOR.services_by_name["AdminService"]
_HEALTH_SERVICE = health_pb2.DESCRIPTOR.services_by_name["Health"]
_SERVICE_NAMES = (_ROUTER_SERVICE.full_name, _ADMIN_SERVICE.full_name)


# The shortest interval between a client's pings the router is built for; clients ping less often.
MIN_PING_INTERVAL_MS = 10_000
# How long a stop waits for cancelled calls to finish their cleanup before closing the store.
_SETTLE_S = 5.0


def server_options(max_message_bytes: int) -> list[tuple[str, int]]:
    """Keepalive agreed with clients.RouterClient (pings every 20 s even when idle), so that long
    idle streams are neither killed by `too_many_pings` nor by intermediaries.

    The server accepts a client's pings down to one per 10 s, with calls or without (core's
    GRPC_ARG_HTTP2_MIN_RECV_PING_INTERVAL_WITHOUT_DATA_MS, spelled
    `grpc.http2.min_ping_interval_without_data_ms`; an unknown key would leave core's 5-minute
    default in force), and never answers faster pings with GOAWAY (`max_ping_strikes` 0), so a
    caller in another language with a shorter keepalive is not cut off mid-stream either."""
    return [
        # Requests are held to the configured limit; answers (an embedding batch) are not.
        ("grpc.max_send_message_length", max(max_message_bytes, LARGEST_ANSWER_BYTES)),
        ("grpc.max_receive_message_length", max_message_bytes),
        ("grpc.keepalive_time_ms", 30_000),
        ("grpc.keepalive_timeout_ms", 10_000),
        ("grpc.keepalive_permit_without_calls", 1),
        ("grpc.http2.min_ping_interval_without_data_ms", MIN_PING_INTERVAL_MS),
        ("grpc.http2.max_ping_strikes", 0),
        ("grpc.so_reuseport", 0),
        # A call's metadata: every call under 16 KiB is taken, none over it (grpc's own soft
        # limit refused calls past 8 KiB at random): clients.MAX_METADATA_BYTES.
        ("grpc.max_metadata_size", MAX_METADATA_BYTES),
        ("grpc.absolute_max_metadata_size", MAX_METADATA_BYTES),
    ]


class RouterServer:
    """Owns a grpc.aio server around one Runtime. `start()`, then `wait()` or `shutdown()`;
    `async with` does both. Shutdown is idempotent: health goes NOT_SERVING first, so balancers
    drain us, then in-flight calls get `grace` seconds."""

    def __init__(self, runtime: Runtime, *, host: str | None = None, port: int | None = None):
        self.runtime = runtime
        # Its config's secrets masked in the log and in spans' statuses from now on, however
        # the process set its telemetry up (a reload's new ones: `_reload.py`), and while the
        # runtime lives (a reload replaced it: the calls still on it end as they began).
        redact_secrets_of(runtime.config)
        redact_while_alive(runtime)
        cfg = runtime.config.server
        self._address = f"{grpc_host(host or cfg.host)}:{cfg.port if port is None else port}"
        # Every RouterService / AdminService call is authenticated and admitted here first.
        self._auth = auth_interceptor(runtime)
        # Tracing outermost (when on): a refused call is traced too. Outside it, streamed
        # handlers write their messages, every generator closed in the call's task (`_written`).
        interceptors = [WrittenStreams(), *server_interceptors(), self._auth]
        self._server = grpc.aio.server(
            interceptors=interceptors, options=server_options(cfg.max_message_bytes)
        )
        # The same handlers behind the same interceptors, for callers in this process
        # (`clients.LocalChannel`: `switchboard serve`); each service below is added to both.
        self.in_process = InProcessHandlers(self._server, interceptors, cfg.max_message_bytes)
        self._health = WatchedHealth()
        # Background responses, batches, realtime sessions: owned by the process, stopped with
        # it (after their grace); each kind built by its first use.
        self._long_jobs = LongJobs()
        self._router = RouterServicer(runtime, self._long_jobs)
        # Facts of this process that outlive a reload's runtime (AdminService.GetServerInfo).
        self.record = ServingRecord()
        self._admin = AdminServicer(runtime, self.record, self._long_jobs)
        # Generic handlers only: a registered method costs every call a share (_generic.py).
        add_service(_ROUTER_SERVICE, self._router, self.in_process)
        add_service(_ADMIN_SERVICE, self._admin, self.in_process)
        add_service(_HEALTH_SERVICE, self._health, self.in_process)
        enable_reflection((*_SERVICE_NAMES, health.SERVICE_NAME), self.in_process)
        self.port = 0
        self._stopped = False
        self._reloading = asyncio.Lock()
        self._handing_over: asyncio.Task[None] | None = None  # a reload's (`_hand_over`)

    async def start(self) -> int:
        """Listen and serve. An address it cannot bind is a `ListenError`, TLS files that do
        not load a `ConfigError`; either way the runtime is closed: there is nothing to stop."""
        try:
            self.port = self._bind()
        except (ListenError, ConfigError):
            self._stopped = True
            await self.runtime.aclose()
            raise
        # grpc's health servicer says SERVING overall from its start: a probe (Kubernetes',
        # client-side health checking) would send calls before the router can take them.
        for name in ("", *_SERVICE_NAMES):
            await self._health.set(name, health_pb2.HealthCheckResponse.NOT_SERVING)
        await self._server.start()
        self.in_process.start()
        try:
            self.record.started(self.address, self.runtime.clock.now())
            # The issued client keys, before it reports SERVING (its follower reads on from here).
            with contextlib.suppress(StoreUnavailableError):
                await self.runtime.issued_keys.refresh()
            self.runtime.start_background()
            # Batches run their lines on the runtime serving (a reload's); those whose replica
            # stopped are taken over now and every few seconds (shared store).
            self._long_jobs.serve_batches(lambda: self.runtime)
        except BaseException:  # failed or cancelled (SIGTERM) listening: not left NOT_SERVING
            self._stopped = True
            await asyncio.gather(self._server.stop(0), self.in_process.stop(0))
            await self._long_jobs.shutdown(0)
            await self.runtime.aclose()
            raise
        for name in ("", *_SERVICE_NAMES):
            await self._health.set(name, health_pb2.HealthCheckResponse.SERVING)
        tls = " (TLS)" if self.runtime.config.server.tls else ""
        log.info("router listening on %s%s", self.address, tls)
        self._auth.warn_if_open()
        return self.port

    def _bind(self) -> int:
        tls = self.runtime.config.server.tls
        try:
            if tls is None:
                port: int = self._server.add_insecure_port(self._address)
            else:
                # Rewritten certificate files are served from the next connection on (`_tls.py`).
                certificates = CertificateFiles(tls)
                self.record.certificate_expiry = certificates.expires_at
                port = self._server.add_secure_port(self._address, certificates.credentials())
        except RuntimeError as exc:  # grpc's "Failed to bind to address"; older ones return 0
            port = 0
            cause: BaseException | None = exc
        else:
            cause = None
        if port == 0:
            raise ListenError(
                f"the router cannot listen on {self._address}: the port is taken or the address "
                "is not this host's (server.host, server.port, --host, --port)"
            ) from cause
        return port

    @property
    def jobs(self) -> BackgroundJobs:
        """The background responses this process runs."""
        return self._long_jobs.background

    @property
    def batch_jobs(self) -> BatchJobs:
        """The batches this process runs."""
        return self._long_jobs.batches

    @property
    def health_watchers(self) -> int:
        """Clients watching this router's health now (client-side health checking)."""
        return self._health.watchers

    @property
    def call_watches(self) -> CallWatches:
        """The sidebands this router keeps on the WebRTC calls it made."""
        return self._long_jobs.call_watches

    @property
    def throttles(self) -> Throttles:
        """What this router counts of guessed keys, by caller address."""
        return self._auth.throttles

    @property
    def address(self) -> str:
        return f"{self._address.rsplit(':', 1)[0]}:{self.port}"

    async def reload(self, config: SwitchboardConfig) -> list[str]:
        """Serve `config` from now on, without a restart: new calls see its providers, keys,
        models, callers and limits; calls under way end on the runtime they began on. Returns
        the changed settings only a restart applies (`_reload.restart_only`): they keep their
        old values until then. A router stopping is a `ReplicaStoppingError`."""
        async with self._reloading:
            if self._stopped:
                raise ReplicaStoppingError("the router is stopping: nothing to reload")
            old = self.runtime
            pending = restart_only(old.config, config)
            new = old.successor(in_force(old.config, config))
            redact_while_alive(new)
            # Shielded: a reload cancelled here (the router stopping) still serves `new` and
            # stops the old prober and gauges (the store and client are new's now); the stop
            # waits for it before it closes the runtime (`_handed_over`).
            self._handing_over = asyncio.ensure_future(self._hand_over(new, old, config))
            await asyncio.shield(self._handing_over)
            return pending

    async def _hand_over(self, new: Runtime, old: Runtime, config: SwitchboardConfig) -> None:
        await carried_over(new, old)  # renamed providers' store state: before it serves
        self._router.runtime = self._admin.runtime = self.runtime = new
        self._auth.use(
            new.gate,
            stream_ttl_s=config.server.lease_ttl_s,
            auth=new.config.auth,
        )
        self._auth.warn_if_open()  # a reload that opens the door says so as loudly as a start
        new.start_background()
        self._long_jobs.reconfigured(new)
        await marks_shared(new)
        await slots_carried(new, old)
        await old.aclose()

    async def wait(self) -> None:
        """Until the server has stopped. Cancelling this wait leaves the server as it is: grpc's
        own wait, cancelled, would cancel the future its graceful stop waits on, and the drain
        of open calls would end before it began."""
        await asyncio.shield(self._server.wait_for_termination())

    async def shutdown(self, grace: float | None = None) -> None:
        """Health NOT_SERVING; after `server.drain_delay_s` (`_drain`) no new calls; then the
        open ones get `grace` seconds (`server.shutdown_grace_s` unless given) before they are
        cancelled."""
        if self._stopped:
            return
        self._stopped = True
        server = self.runtime.config.server
        if grace is None:
            grace = server.shutdown_grace_s
        await self._health.enter_graceful_shutdown()
        try:
            try:
                # Realtime sessions last up to an hour: told now (close 1012), their callers
                # reconnect to another replica at once rather than being cut after the grace.
                await asyncio.gather(self._drain(server, grace), self._long_jobs.end_sessions())
                log.info(
                    "router stopping: no new calls; open calls have up to %gs to finish", grace
                )
                # Background responses and batches get the same grace as open calls, then are
                # written failed (their replica stopped; a batch on a shared store is handed
                # over to another replica instead), while the store is still open.
                await asyncio.gather(
                    self._server.stop(grace),
                    self.in_process.stop(grace),
                    self._long_jobs.shutdown(grace),
                )
            except asyncio.CancelledError:
                # Asked again while draining (a second SIGTERM or Ctrl-C): stop waiting.
                log.warning("router stopping now: open calls cancelled")
                self._health.end_watches()
                await uncut(asyncio.gather(self._server.stop(0), self.in_process.stop(0)))
                raise
        finally:
            # Seen through a further stop signal (Ctrl-C pressed on: nothing is left to cut):
            # cut, the calls it cancelled would keep their leases until their TTL.
            await uncut(self._close())

    async def _close(self) -> None:
        """The stop's end: the jobs ended, the calls' cleanup waited for, the runtime closed."""
        await self._long_jobs.shutdown(0)
        # Calls the stop cancelled still give their leases back: the store stays open for them
        # (server/_running.py).
        left = await self._auth.calls.settle(_SETTLE_S)
        if left:
            log.warning("router stopping: %d call(s) still cleaning up after %gs", left, _SETTLE_S)
        await self._handed_over()
        await self.runtime.aclose()
        log.info("router stopped")  # a stop cut short (a second SIGTERM) too

    async def _handed_over(self) -> None:
        """Until a reload's hand-over under way (its reload cancelled by this stop) is done: it
        serves its runtime only once a renamed provider's state is carried, and that runtime,
        owner of the store and HTTP client by then, is the one to close."""
        handing_over = self._handing_over
        if handing_over is None or handing_over.done():
            return
        log.info("router stopping: the config reload under way hands over first")
        with contextlib.suppress(Exception):  # its reload said so, or its cancel left it unsaid
            await asyncio.shield(handing_over)

    async def _drain(self, server: ServerConfig, grace: float) -> None:
        """Give the callers `server.drain_delay_s` to take this router out of their picks (calls
        already on their way are still served: a stop would cancel them, unretried); then end
        the health watches, which the graceful stop would wait for. The default delay is for
        clients that watch our health, and waited only while one does (a quick stop otherwise);
        a delay set in the config is waited always: balancers that poll health (Envoy, a
        Kubernetes readiness probe) watch nothing and need their interval to see NOT_SERVING.
        None without grace (`serve`'s second SIGTERM): the calls it took would be cut at once."""
        delay_s, watchers = server.drain_delay_s, self._health.watchers
        wanted = watchers or "drain_delay_s" in server.model_fields_set
        if delay_s > 0 and grace > 0 and wanted:
            log.info(
                "router stopping: NOT_SERVING (%d watching client(s)); new calls for %gs more",
                watchers,
                delay_s,
            )
            await self.runtime.clock.sleep(delay_s)
        self._health.end_watches()

    async def __aenter__(self) -> RouterServer:
        await self.start()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.shutdown()
