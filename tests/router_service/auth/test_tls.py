"""TLS and mutual TLS on the router's port, with a CA made for the test and real secure channels;
and the edge reaching such a router with its own client certificate. Rotation under a running
router and edge: tests/router_service/server/test_tls_rotation.py."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import grpc
import httpx
import pytest

from clients.switchboard.v1 import router_service_pb2_grpc
from router_service.config import SwitchboardConfig
from router_service.errors import ConfigError
from router_service.fake_upstream import FakeUpstream
from router_service.runtime import Runtime
from router_service.server import RouterServer
from tests.conftest import StartRouter, base_config
from tests.pki import Issued, trusting
from tests.router_service.auth.helpers import chat


def _credentials(pki: dict[str, Any], client: Issued | None) -> grpc.ChannelCredentials:
    return trusting(pki["ca"], client)


async def test_mutual_tls(
    fake: FakeUpstream, start_router: StartRouter, pki: dict[str, Any]
) -> None:
    tls = {
        "cert_file": str(pki["server"].cert),
        "key_file": str(pki["server"].key),
        "client_ca_file": str(pki["ca"].issued.cert),
        "require_client_cert": True,
    }
    router = await start_router(base_config(fake.base_url, server={"port": 0, "tls": tls}))
    address = router.server.address

    async with grpc.aio.secure_channel(address, _credentials(pki, pki["client"])) as channel:
        stub = router_service_pb2_grpc.RouterServiceStub(channel)
        answer = await stub.Chat(chat(), timeout=10)
        assert answer.completion.choices[0].message.text == "Echo: hello"

    for client in (None, pki["rogue"]):  # no certificate, or one from another CA
        async with grpc.aio.secure_channel(address, _credentials(pki, client)) as channel:
            stub = router_service_pb2_grpc.RouterServiceStub(channel)
            with pytest.raises(grpc.aio.AioRpcError) as caught:
                await stub.Chat(chat(), timeout=5)
            assert caught.value.code() is grpc.StatusCode.UNAVAILABLE

    # Plaintext does not reach a TLS port either.
    with pytest.raises(grpc.aio.AioRpcError):
        await router.stub.Chat(chat(), timeout=5)
    assert fake.state.calls() and len(fake.state.calls()) == 1


async def test_the_edge_reaches_a_router_over_mtls(
    fake: FakeUpstream, start_router: StartRouter, start_edge: Any, pki: dict[str, Any]
) -> None:
    tls = {
        "cert_file": str(pki["server"].cert),
        "key_file": str(pki["server"].key),
        "client_ca_file": str(pki["ca"].issued.cert),
        "require_client_cert": True,
    }
    router = await start_router(base_config(fake.base_url, server={"port": 0, "tls": tls}))
    router_tls = {
        "ca_file": str(pki["ca"].issued.cert),
        "cert_file": str(pki["client"].cert),
        "key_file": str(pki["client"].key),
    }
    edge = await start_edge(router, router_tls=router_tls)
    body = {"model": "chain", "messages": [{"role": "user", "content": "over tls"}]}
    async with httpx.AsyncClient(base_url=edge.base_url, timeout=10) as http:
        assert (await http.get("/readyz")).json()["status"] == "ready"
        answer = await http.post("/v1/chat/completions", json=body)
    assert answer.status_code == 200
    assert answer.json()["choices"][0]["message"]["content"] == "Echo: over tls"


async def test_unreadable_certificate_is_a_config_error(fake: FakeUpstream, tmp_path: Path) -> None:
    tls = {"cert_file": str(tmp_path / "missing.pem"), "key_file": str(tmp_path / "missing.key")}
    config = base_config(fake.base_url, server={"port": 0, "tls": tls})
    server = RouterServer(await Runtime.create(SwitchboardConfig.model_validate(config)))
    try:
        with pytest.raises(ConfigError, match=r"server\.tls\.key_file: cannot read"):
            await server.start()
    finally:
        await server.shutdown(grace=0)


async def test_a_key_that_is_not_the_certificates_is_a_config_error(
    fake: FakeUpstream, pki: dict[str, Any], tmp_path: Path
) -> None:
    other = pki["ca"].issue("other", server=True)
    tls = {"cert_file": str(pki["server"].cert), "key_file": str(other.key)}
    config = base_config(fake.base_url, server={"port": 0, "tls": tls})
    server = RouterServer(await Runtime.create(SwitchboardConfig.model_validate(config)))
    try:
        with pytest.raises(ConfigError, match="not a certificate and its key"):
            await server.start()
    finally:
        await server.shutdown(grace=0)
