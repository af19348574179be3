"""Certificates rotated under a running router and edge (`router_service/server/_tls.py`,
`http_edge/_tls.py`), with a CA made for the test and real secure channels."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import grpc
import httpx
import pytest

from clients.switchboard.v1 import (
    admin_service_pb2,
    admin_service_pb2_grpc,
    router_service_pb2_grpc,
)
from router_service.fake_upstream import FakeUpstream
from router_service.telemetry.testing import TelemetryCapture
from tests.conftest import StartRouter, base_config
from tests.helpers import eventually
from tests.pki import CA, expires, expiry_gauges, swap_in, trusting
from tests.router_service.auth.helpers import chat


async def _answers(address: str, credentials: grpc.ChannelCredentials) -> bool:
    """One call on a new connection (its own subchannel: a new handshake every time)."""
    options = [("grpc.use_local_subchannel_pool", 1)]
    async with grpc.aio.secure_channel(address, credentials, options=options) as channel:
        try:
            await router_service_pb2_grpc.RouterServiceStub(channel).Chat(chat(), timeout=5)
        except grpc.aio.AioRpcError as exc:  # the handshake failed: only UNAVAILABLE says so
            return _refused(exc)
    return True


async def _certificate_expiry(address: str, credentials: grpc.ChannelCredentials) -> float:
    """What AdminService.GetServerInfo says of the certificate, asked on a new connection."""
    options = [("grpc.use_local_subchannel_pool", 1)]
    async with grpc.aio.secure_channel(address, credentials, options=options) as channel:
        stub = admin_service_pb2_grpc.AdminServiceStub(channel)
        info = await stub.GetServerInfo(admin_service_pb2.GetServerInfoRequest(), timeout=5)
    expiry: float = info.certificate_expires_unix
    return expiry


def _refused(exc: grpc.aio.AioRpcError) -> bool:
    if exc.code() is not grpc.StatusCode.UNAVAILABLE:
        raise exc
    return False


@pytest.fixture
def live(tmp_path: Path, pki: dict[str, Any]) -> dict[str, Path]:
    """The files the router is configured with, first copies of the test CA's."""
    directory = tmp_path / "live"
    directory.mkdir()
    files = {name: directory / name for name in ("router.pem", "router.key", "clients.pem")}
    swap_in(pki["server"].cert, files["router.pem"])
    swap_in(pki["server"].key, files["router.key"])
    swap_in(pki["ca"].issued.cert, files["clients.pem"])
    return files


async def _mutual_tls_router(
    fake: FakeUpstream, start_router: StartRouter, live: dict[str, Path]
) -> Any:
    """A router on mutual TLS over the `live` files."""
    tls = {
        "cert_file": str(live["router.pem"]),
        "key_file": str(live["router.key"]),
        "client_ca_file": str(live["clients.pem"]),
        "require_client_cert": True,
    }
    return await start_router(base_config(fake.base_url, server={"port": 0, "tls": tls}))


async def test_rotated_certificates_serve_from_the_next_connection(
    fake: FakeUpstream,
    start_router: StartRouter,
    pki: dict[str, Any],
    live: dict[str, Path],
    tmp_path: Path,
    caplog: pytest.LogCaptureFixture,
) -> None:
    router = await _mutual_tls_router(fake, start_router, live)
    address = router.server.address
    old, new = pki["ca"], CA(tmp_path, "next-ca")
    new_client = new.issue("next-edge", server=False)
    opened = grpc.aio.secure_channel(
        address, trusting(old, pki["client"]), options=[("grpc.use_local_subchannel_pool", 1)]
    )
    try:
        stub = router_service_pb2_grpc.RouterServiceStub(opened)
        await stub.Chat(chat(), timeout=5)
        assert await _answers(address, trusting(old, pki["client"]))
        assert not await _answers(address, trusting(new, new_client))

        next_server = new.issue("next-router", server=True)
        with caplog.at_level(logging.INFO, logger="switchboard.router"):
            swap_in(next_server.key, live["router.key"])
            swap_in(next_server.cert, live["router.pem"])
            swap_in(new.issued.cert, live["clients.pem"])
            assert await _answers(address, trusting(new, new_client))
            assert not await _answers(address, trusting(old, pki["client"]))
            # Verified against the new CA: a client of the old one is refused by the router too.
            assert not await _answers(address, trusting(new, pki["client"]))
        reloads = [r for r in caplog.records if "certificate reloaded" in r.getMessage()]
        assert len(reloads) == 1
        # A connection that shook hands before the rotation carries on.
        answer = await stub.Chat(chat(text="still here"), timeout=5)
        assert answer.completion.choices[0].message.text == "Echo: still here"
    finally:
        await opened.close()


async def test_a_half_written_rotation_keeps_the_served_certificate(
    fake: FakeUpstream,
    start_router: StartRouter,
    pki: dict[str, Any],
    live: dict[str, Path],
    tmp_path: Path,
    caplog: pytest.LogCaptureFixture,
) -> None:
    tls = {"cert_file": str(live["router.pem"]), "key_file": str(live["router.key"])}
    router = await start_router(base_config(fake.base_url, server={"port": 0, "tls": tls}))
    address = router.server.address
    old, new = pki["ca"], CA(tmp_path, "next-ca")
    next_server = new.issue("next-router", server=True)

    with caplog.at_level(logging.WARNING, logger="switchboard.router"):
        swap_in(next_server.cert, live["router.pem"])  # the new certificate beside the old key
        for _ in range(2):
            assert await _answers(address, trusting(old))
            assert not await _answers(address, trusting(new))
        warned = [r.getMessage() for r in caplog.records if "not taken" in r.getMessage()]
        assert len(warned) == 1, warned  # once for these files, not once per connection
        assert "not a certificate and its key" in warned[0]
        assert "PRIVATE KEY" not in caplog.text

        live["router.key"].unlink()  # the writer's next step starts by removing the old key
        assert await _answers(address, trusting(old))
        assert await _answers(address, trusting(old))
        missing = [r for r in caplog.records if "cannot read" in r.getMessage()]
        assert len(missing) == 1  # a missing file is warned about once too, not per connection

    swap_in(next_server.key, live["router.key"])  # the writer is done
    assert await _answers(address, trusting(new))
    assert not await _answers(address, trusting(old))


async def test_the_edge_moves_to_its_rotated_client_certificate(
    fake: FakeUpstream,
    start_router: StartRouter,
    start_edge: Any,
    pki: dict[str, Any],
    live: dict[str, Path],
    tmp_path: Path,
    caplog: pytest.LogCaptureFixture,
) -> None:
    router = await _mutual_tls_router(fake, start_router, live)
    edge_cert, edge_key = tmp_path / "edge-live.pem", tmp_path / "edge-live.key"
    swap_in(pki["client"].cert, edge_cert)
    swap_in(pki["client"].key, edge_key)
    router_tls = {
        "ca_file": str(pki["ca"].issued.cert),
        "cert_file": str(edge_cert),
        "key_file": str(edge_key),
        "reload_poll_s": 0.05,
    }
    edge = await start_edge(router, router_tls=router_tls)
    caplog.set_level(logging.INFO, logger="switchboard.audit")
    caplog.set_level(logging.INFO, logger="switchboard.edge")
    body = {"model": "chain", "messages": [{"role": "user", "content": "rotating"}]}

    async with httpx.AsyncClient(base_url=edge.base_url, timeout=10) as http:

        async def peer_of_a_call() -> str:
            """The edge's address as the router saw it: a new port is a new connection."""
            answer = await http.post("/v1/chat/completions", json=body)
            assert answer.status_code == 200, answer.text
            audited = [r for r in caplog.records if r.name == "switchboard.audit"]
            return str(audited[-1].__dict__["peer"])

        first = await peer_of_a_call()
        assert await peer_of_a_call() == first  # one connection, kept

        # The router now admits only the new CA's client certificates (on new connections), and
        # the edge's files are rewritten with one: key first, so the edge may see a mismatch.
        new = CA(tmp_path, "next-ca")
        renewed = new.issue("edge-renewed", server=False)
        swap_in(new.issued.cert, live["clients.pem"])
        swap_in(renewed.key, edge_key)
        swap_in(renewed.cert, edge_cert)

        async def on_a_new_connection() -> bool:
            return await peer_of_a_call() != first  # every call answered, before and after

        await eventually(on_a_new_connection, within=10, what="a call on the edge's new channel")
    assert any("router TLS files reloaded" in r.getMessage() for r in caplog.records)


async def test_certificate_expiry_is_a_gauge_that_follows_rotations(
    fake: FakeUpstream,
    start_router: StartRouter,
    start_edge: Any,
    pki: dict[str, Any],
    live: dict[str, Path],
    tmp_path: Path,
) -> None:
    edge_cert, edge_key = tmp_path / "edge-live.pem", tmp_path / "edge-live.key"
    swap_in(pki["client"].cert, edge_cert)
    swap_in(pki["client"].key, edge_key)
    with TelemetryCapture() as capture:
        router = await _mutual_tls_router(fake, start_router, live)
        router_tls = {
            "ca_file": str(pki["ca"].issued.cert),
            "cert_file": str(edge_cert),
            "key_file": str(edge_key),
            "reload_poll_s": 0.05,
        }
        await start_edge(router, router_tls=router_tls)
        assert expiry_gauges(capture) == {
            "server": expires(pki["server"]),
            "client": expires(pki["client"]),
        }
        address = router.server.address
        assert await _certificate_expiry(address, trusting(pki["ca"], pki["client"])) == expires(
            pki["server"]
        )

        server = pki["ca"].issue("router-90d", server=True, days=90)
        client = pki["ca"].issue("edge-90d", server=False, days=90)
        for issued, cert, key in (
            (server, live["router.pem"], live["router.key"]),
            (client, edge_cert, edge_key),
        ):
            swap_in(issued.key, key)
            swap_in(issued.cert, cert)
        assert await _answers(router.server.address, trusting(pki["ca"], client))

        async def both_moved() -> bool:
            return expiry_gauges(capture) == {"server": expires(server), "client": expires(client)}

        await eventually(both_moved, within=10, what="both expiry gauges at the new certificates")
        # The admin view follows the rotation too (the same files, read before a handshake).
        assert await _certificate_expiry(address, trusting(pki["ca"], client)) == expires(server)
