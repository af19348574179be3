"""What grpc.aio itself costs on this machine: `python -m benchmarks.grpc_floor`.

Issue #10's gRPC and memory targets (added p50 ≤ 0.6 ms on the gRPC path; ≤ 30 KB per idle stream
through edge + router) sit close to, or below, what an empty grpc.aio service costs before any
routing happens. This measures that floor with Switchboard's own protos and nothing else:

- unary: an empty `Chat` handler, a client in another process, round trips at concurrency 1 and
  16 (p50 ms, requests/s);
- idle streams: `ChatStream` calls that received one message and stay open, RSS per stream on
  the server side and on the client side (the router holds the former, the edge the latter).

Prints the figures; no file is written. Every process it starts is stopped on exit.
"""

from __future__ import annotations

import asyncio
import subprocess
import sys
import time
from collections.abc import AsyncIterator
from pathlib import Path

import grpc
import uvloop

from clients.switchboard.v1 import router_service_pb2 as pb
from clients.switchboard.v1 import router_service_pb2_grpc as pb_grpc
from router_service.server._generic import add_service

REPO = Path(__file__).resolve().parent.parent
STREAMS = 2000


def rss_kib(pid: int | str = "self") -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    raise RuntimeError("no VmRSS")


class EmptyRouter(pb_grpc.RouterServiceServicer):
    async def Chat(self, request: pb.ChatRequest, context: object) -> pb.ChatResponse:
        return pb.ChatResponse()

    async def ChatStream(
        self, request: pb.ChatStreamRequest, context: object
    ) -> AsyncIterator[pb.ChatStreamResponse]:
        yield pb.ChatStreamResponse(heartbeat=pb.Heartbeat(idle_ms=1))
        await asyncio.Event().wait()  # held open until the client goes


async def serve() -> None:
    server = grpc.aio.server()
    # The RPCs it does not measure stay unimplemented (abstract in the stubs' types). Added as
    # the router adds its services: by the generic handler only (router_service/server/_generic.py).
    service = pb.DESCRIPTOR.services_by_name["RouterService"]
    add_service(service, EmptyRouter(), server)  # type: ignore[abstract]
    port = server.add_insecure_port("127.0.0.1:0")
    await server.start()
    print(port, flush=True)
    await server.wait_for_termination()


async def unary(stub: pb_grpc.RouterServiceStub, concurrency: int, count: int) -> str:
    latencies: list[float] = []

    async def worker(n: int) -> None:
        for _ in range(n):
            started = time.perf_counter()
            await stub.Chat(pb.ChatRequest(), timeout=10)
            latencies.append(time.perf_counter() - started)

    began = time.perf_counter()
    await asyncio.gather(*(worker(count // concurrency) for _ in range(concurrency)))
    elapsed = time.perf_counter() - began
    latencies.sort()
    p50 = latencies[len(latencies) // 2] * 1000
    return f"c={concurrency:<3} p50 {p50:.3f} ms, {len(latencies) / elapsed:,.0f} req/s"


async def streams(stub: pb_grpc.RouterServiceStub, server_pid: int) -> str:
    calls = []

    async def open_one() -> None:
        call = stub.ChatStream(pb.ChatStreamRequest())
        await call.read()
        calls.append(call)

    await asyncio.gather(*(open_one() for _ in range(50)))  # warm: channel, pools, code paths
    client0, server0 = rss_kib(), rss_kib(server_pid)
    for _ in range(STREAMS // 100):
        await asyncio.gather(*(open_one() for _ in range(100)))
    await asyncio.sleep(1)  # let the server finish accepting what the client already counts
    client = (rss_kib() - client0) / STREAMS
    server = (rss_kib(server_pid) - server0) / STREAMS
    for call in calls:
        call.cancel()
    return f"{STREAMS} idle streams: server {server:.1f} KiB each, client {client:.1f} KiB each"


async def measure(port: int, server_pid: int) -> None:
    async with grpc.aio.insecure_channel(f"127.0.0.1:{port}") as channel:
        stub = pb_grpc.RouterServiceStub(channel)
        await unary(stub, 1, 500)  # warm-up
        for concurrency in (1, 16):
            print("unary", await unary(stub, concurrency, 4000), flush=True)
        print(await streams(stub, server_pid), flush=True)


def main() -> int:
    if sys.argv[1:] == ["--serve"]:
        uvloop.run(serve())
        return 0
    server = subprocess.Popen(
        [sys.executable, "-m", "benchmarks.grpc_floor", "--serve"],
        cwd=REPO,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert server.stdout is not None
        port = int(server.stdout.readline())
        print("grpc.aio floor (empty handlers, Switchboard's messages, uvloop on both sides):")
        uvloop.run(measure(port, server.pid))
    finally:
        server.terminate()
        server.wait(10)
    return 0


if __name__ == "__main__":
    sys.exit(main())
