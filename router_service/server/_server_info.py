"""AdminService.GetServerInfo: which replica answered, and what it runs.

What an operator asks first when replicas disagree ("is this one on the new config? did its
reload take? is it cut off from Redis? when does its certificate run out?") answered by the
replica itself, where the admin page and tools can read it without a Prometheus at hand.
"""

from __future__ import annotations

import os
import socket
from collections.abc import Callable
from dataclasses import dataclass
from importlib import metadata

from clients.switchboard.v1 import admin_service_pb2 as pb
from router_service.runtime import Runtime


def _version() -> str:
    try:
        return metadata.version("switchboard")
    except metadata.PackageNotFoundError:  # run from a source tree that was never installed
        return "unknown"


def replica_name() -> str:
    """This process among the replicas, "hostname:pid" (GetServerInfoResponse.replica)."""
    return f"{socket.gethostname()}:{os.getpid()}"


@dataclass
class ServingRecord:
    """What outlives a reload's runtime: kept by the server, written by start and reloads."""

    address: str = ""
    started_unix: float = 0.0
    config_digest: str = ""
    config_loaded_unix: float = 0.0
    reload_error: str = ""
    # When the certificate on the port expires (the port's TLS files, read again as they
    # rotate); None without TLS.
    certificate_expiry: Callable[[], float | None] = lambda: None

    def started(self, address: str, now: float) -> None:
        self.address, self.started_unix = address, now
        self.config_loaded_unix = self.config_loaded_unix or now

    def loaded(self, digest: str | None, now: float) -> None:
        """A config file came into force (at start, or by a reload that took)."""
        self.config_digest = (digest or "")[:12]
        self.config_loaded_unix = now
        self.reload_error = ""

    def reload_failed(self, reason: str) -> None:
        self.reload_error = reason


def server_info(record: ServingRecord, runtime: Runtime) -> pb.GetServerInfoResponse:
    config = runtime.config
    return pb.GetServerInfoResponse(
        version=_version(),
        replica=replica_name(),
        address=record.address,
        started_unix=record.started_unix,
        config_digest=record.config_digest,
        config_loaded_unix=record.config_loaded_unix,
        reload_error=record.reload_error,
        state_backend=config.state.backend,
        state_degraded=bool(runtime.store.outage_counts().get("degraded")),
        certificate_expires_unix=record.certificate_expiry() or 0.0,
        auth_open=config.auth.open,
    )
