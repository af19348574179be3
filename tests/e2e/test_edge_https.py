"""HTTPS on the edge's port (`edge.tls`, `http_edge/_https.py`): the openai SDK over TLS, mutual
TLS, and certificates rotated under a running edge."""

from __future__ import annotations

import logging
import ssl
from pathlib import Path
from typing import Any

import httpx
import openai
import pytest

from router_service.fake_upstream import FakeUpstream
from router_service.telemetry.testing import TelemetryCapture
from tests.conftest import StartRouter, base_config
from tests.pki import CA, Issued, expires, expiry_gauges, swap_in

MESSAGES: list[Any] = [{"role": "user", "content": "over https"}]


def _trusting(ca: CA, client: Issued | None = None) -> ssl.SSLContext:
    context = ssl.create_default_context(cafile=str(ca.issued.cert))
    if client is not None:
        context.load_cert_chain(str(client.cert), str(client.key))
    return context


@pytest.fixture
def live(tmp_path: Path, pki: dict[str, Any]) -> dict[str, Path]:
    """The edge's certificate files, first copies of the test CA's server pair."""
    files = {"cert": tmp_path / "edge-https.pem", "key": tmp_path / "edge-https.key"}
    swap_in(pki["server"].cert, files["cert"])
    swap_in(pki["server"].key, files["key"])
    return files


async def _answers(base_url: str, verify: ssl.SSLContext) -> bool:
    """One request on a new connection: False when the handshake fails."""
    async with httpx.AsyncClient(base_url=base_url, verify=verify, timeout=10) as http:
        try:
            answer = await http.post(
                "/v1/chat/completions", json={"model": "chain", "messages": MESSAGES}
            )
        except httpx.ConnectError as exc:
            if "CERTIFICATE_VERIFY_FAILED" not in str(exc) and "certificate" not in str(exc):
                raise
            return False
    assert answer.status_code == 200, answer.text
    return True


async def test_the_openai_sdk_over_https(
    fake: FakeUpstream,
    start_router: StartRouter,
    start_edge: Any,
    pki: dict[str, Any],
    live: dict[str, Path],
) -> None:
    router = await start_router(base_config(fake.base_url))
    edge = await start_edge(
        router, tls={"cert_file": str(live["cert"]), "key_file": str(live["key"])}
    )
    assert edge.base_url.startswith("https://")
    verified = openai.DefaultAsyncHttpxClient(verify=_trusting(pki["ca"]))
    async with openai.AsyncOpenAI(
        base_url=f"{edge.base_url}/v1", api_key="sk-any", http_client=verified
    ) as client:
        reply = await client.chat.completions.create(model="chain", messages=MESSAGES)
        assert reply.choices[0].message.content == "Echo: over https"
        stream = await client.chat.completions.create(model="chain", messages=MESSAGES, stream=True)
        text = "".join([c.choices[0].delta.content or "" async for c in stream if c.choices])
        assert text == "Echo: over https"
    # Plain HTTP on the HTTPS port gets no answer; a client of another CA no handshake.
    async with httpx.AsyncClient(timeout=5) as http:
        with pytest.raises(httpx.HTTPError):
            await http.get(f"http://127.0.0.1:{edge.port}/readyz")
    rogue = CA(live["cert"].parent, "rogue-ca")
    assert not await _answers(edge.base_url, _trusting(rogue))


async def test_mutual_tls_on_the_edge(
    fake: FakeUpstream,
    start_router: StartRouter,
    start_edge: Any,
    pki: dict[str, Any],
    live: dict[str, Path],
) -> None:
    router = await start_router(base_config(fake.base_url))
    tls = {
        "cert_file": str(live["cert"]),
        "key_file": str(live["key"]),
        "client_ca_file": str(pki["ca"].issued.cert),
        "require_client_cert": True,
    }
    edge = await start_edge(router, tls=tls)
    assert await _answers(edge.base_url, _trusting(pki["ca"], pki["client"]))
    for client in (None, pki["rogue"]):  # no certificate, or one from another CA
        async with httpx.AsyncClient(verify=_trusting(pki["ca"], client), timeout=5) as http:
            with pytest.raises(httpx.HTTPError):
                answer = await http.get(f"{edge.base_url}/readyz")
                answer.raise_for_status()


async def test_a_rotated_certificate_is_served_from_the_next_connection(
    fake: FakeUpstream,
    start_router: StartRouter,
    start_edge: Any,
    pki: dict[str, Any],
    live: dict[str, Path],
    tmp_path: Path,
    caplog: pytest.LogCaptureFixture,
) -> None:
    router = await start_router(base_config(fake.base_url))
    old, new = pki["ca"], CA(tmp_path, "next-ca")
    renewed = new.issue("edge-next", server=True, days=90)
    with TelemetryCapture() as capture:
        edge = await start_edge(
            router, tls={"cert_file": str(live["cert"]), "key_file": str(live["key"])}
        )
        assert expiry_gauges(capture) == {"server": expires(pki["server"])}
        async with httpx.AsyncClient(base_url=edge.base_url, verify=_trusting(old)) as kept:
            assert (await kept.get("/readyz")).status_code == 200  # a connection before

            caplog.set_level(logging.WARNING, logger="switchboard.edge")
            swap_in(renewed.cert, live["cert"])  # the new certificate beside the old key: refused
            for _ in range(2):
                assert await _answers(edge.base_url, _trusting(old))
            warned = [r for r in caplog.records if "not taken" in r.getMessage()]
            assert len(warned) == 1

            swap_in(renewed.key, live["key"])  # the writer is done
            assert await _answers(edge.base_url, _trusting(new))
            assert not await _answers(edge.base_url, _trusting(old))
            assert (await kept.get("/readyz")).status_code == 200  # and it carries on
        assert expiry_gauges(capture) == {"server": expires(renewed)}
