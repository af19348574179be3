"""The Python load generator, run as its own process: `python -m benchmarks._load '<spec JSON>'`.

Closed loop: `concurrency` workers each send one request after another. After `warmup_s` a
measurement window of `duration_s` opens; it is stretched (up to a hard limit) until at least
`min_done` requests finished in it, so a slow system at high concurrency still yields numbers. Or
a fixed `count` of requests with no window. Prints one JSON line with the results.

Kinds: `http` (aiohttp; JSON or SSE), `grpc` (raw generated stubs; Chat or ChatStream), and
`hold` (open `concurrency` streams, report, keep them idle until stdin closes).

Per request: latency (send to last byte), time to first `data:` line (or first chunk message),
chunks (`data:` events other than `[DONE]`, or chunk messages).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import math
import os
import sys
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

now = time.perf_counter


@dataclass(slots=True)
class Sample:
    end: float
    latency: float
    ttft: float | None
    chunks: int
    tag: int = 0  # which of the spec's `bodies` the request sent


class RequestFailed(Exception):
    pass


class SseCount:
    """The `data:` events of a stream read in pieces that may end anywhere, even inside an
    event's `data:`: each counted once. Keeps the stream's last bytes, to tell whether it ended
    with `[DONE]`, and whether an `"error"` went by (found across a cut too)."""

    __slots__ = ("_carry", "_end", "error_seen", "events")

    def __init__(self) -> None:
        self.events = 0
        self.error_seen = False
        self._carry = b""  # 4 bytes: a `data:` cut by the read is found whole with the next one
        self._end = b""

    def feed(self, buf: bytes) -> int:
        """Count the events that `buf` completes; returns how many."""
        joined = self._carry + buf
        found = joined.count(b"data:")
        self.events += found
        self._carry = joined[-4:]  # shorter than `data:`: never one already counted
        if b'"error"' in self._end + buf:
            self.error_seen = True
        self._end = (self._end + buf)[-16:]
        return found

    def done(self) -> bool:
        return self._end.endswith(b"[DONE]\n\n")


def percentiles(values: list[float]) -> dict[str, float] | None:
    if not values:
        return None
    ordered = sorted(values)

    def rank(p: float) -> float:
        return ordered[min(len(ordered) - 1, max(0, math.ceil(p / 100 * len(ordered)) - 1))]

    return {
        "p50": rank(50) * 1000,
        "p90": rank(90) * 1000,
        "p99": rank(99) * 1000,
        "mean": sum(ordered) / len(ordered) * 1000,
        "max": ordered[-1] * 1000,
    }


# ---- one request of each kind ---------------------------------------------------------------


def _http_one(spec: dict[str, Any], session: Any) -> Callable[[], Awaitable[Sample]]:
    url = spec["url"]
    headers = {"content-type": "application/json", **spec.get("headers", {})}
    # `bodies`: several request bodies sent in turn, request by request (results per body)
    raw_bodies = spec.get("bodies") or [spec["body"]]
    bodies = [json.dumps(b).encode() for b in raw_bodies]
    stream = bool(raw_bodies[0].get("stream"))
    # `unique`: every request opens a new conversation (its own derived session), so routing
    # memory of earlier requests (sticky deployments, thread protection) does not apply to it.
    unique = f"{os.getpid()}-{time.time_ns()}" if spec.get("unique") else None
    turn = [0]

    async def one() -> Sample:
        tag = turn[0] % len(bodies)
        turn[0] += 1
        data = bodies[tag]
        if unique is not None:
            body = dict(raw_bodies[tag])
            body["messages"] = [{"role": "user", "content": f"conversation {unique}-{turn[0]}"}]
            data = json.dumps(body).encode()
        start = now()
        async with session.post(url, data=data, headers=headers) as response:
            if response.status != 200:
                text = (await response.read())[:200]
                raise RequestFailed(f"HTTP {response.status}: {text!r}")
            if not stream:
                await response.read()
                end = now()
                return Sample(end, end - start, None, 0, tag)
            first: float | None = None
            count = SseCount()
            async for buf in response.content.iter_any():
                if count.feed(buf) and first is None:
                    first = now()
                if count.error_seen:
                    raise RequestFailed(f"error event: {buf[:200]!r}")
            end = now()
            if not count.done():
                raise RequestFailed("stream ended without [DONE]")
            ttft = None if first is None else first - start
            return Sample(end, end - start, ttft, count.events - 1)  # [DONE] is no chunk

    return one


def _grpc_one(spec: dict[str, Any], stub: Any) -> Callable[[], Awaitable[Sample]]:
    from clients import chat_params_from_openai
    from clients.switchboard.v1 import router_service_pb2 as pb

    params, stream = chat_params_from_openai(dict(spec["body"]))
    metadata = tuple(spec.get("headers", {}).items())
    unary = pb.ChatRequest(params=params)
    # As a throughput-minded gRPC caller would: chunks ready together arrive in one message.
    streaming = pb.ChatStreamRequest(params=params)
    if "batch_chunks" in pb.ChatStreamRequest.DESCRIPTOR.fields_by_name:  # older trees lack it
        streaming.batch_chunks = True

    async def one() -> Sample:
        start = now()
        if not stream:
            await stub.Chat(unary, metadata=metadata, timeout=60)
            end = now()
            return Sample(end, end - start, None, 0)
        first: float | None = None
        chunks = 0
        summary = False
        async for message in stub.ChatStream(streaming, metadata=metadata, timeout=120):
            kind = message.WhichOneof("event")
            if kind in ("chunk", "chunks"):
                chunks += 1 if kind == "chunk" else len(message.chunks.chunks)
                if first is None:
                    first = now()
            elif kind == "error":
                raise RequestFailed(f"stream error: {message.error.message}")
            elif kind == "summary":
                summary = True
        end = now()
        if not summary:
            raise RequestFailed("stream ended without its summary")
        return Sample(end, end - start, None if first is None else first - start, chunks)

    return one


# ---- the closed loop --------------------------------------------------------------------------


@dataclass(slots=True)
class _Tally:
    """What the workers of one closed loop share: the samples that ended in the measurement
    window, the counts, and the first few errors."""

    window_start: float
    count: int | None  # a fixed number of requests to send, or None: a timed window
    samples: list[Sample] = field(default_factory=list)
    completed_total: int = 0
    in_window: int = 0
    errors: int = 0
    error_samples: list[str] = field(default_factory=list)
    stopping: bool = False

    def count_reached(self) -> bool:
        return self.count is not None and self.completed_total + self.errors >= self.count


async def _worker(one: Callable[[], Awaitable[Sample]], tally: _Tally) -> None:
    """One request after another until the loop stops or the fixed count is reached."""
    while not tally.stopping:
        try:
            sample = await one()
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            tally.errors += 1
            if len(tally.error_samples) < 5:
                tally.error_samples.append(f"{type(exc).__name__}: {exc}"[:300])
            await asyncio.sleep(0.01)  # no hot loop against a failing system
            if tally.count_reached():
                return
            continue
        tally.completed_total += 1
        if sample.end >= tally.window_start:
            tally.in_window += 1
            tally.samples.append(sample)
        if tally.count_reached():
            return


async def closed_loop(one: Callable[[], Awaitable[Sample]], spec: dict[str, Any]) -> dict[str, Any]:
    concurrency = int(spec["concurrency"])
    count = spec.get("count")
    warmup = float(spec.get("warmup_s", 0.0))
    duration = float(spec.get("duration_s", 0.0))
    min_done = int(spec.get("min_done", min(concurrency, 20)))
    t0 = now()
    window_start = t0 + warmup
    stop_at = window_start + duration
    hard_stop = window_start + max(3 * duration, duration + float(spec.get("late_s", 10)))
    tally = _Tally(window_start, count)
    tasks = [asyncio.ensure_future(_worker(one, tally)) for _ in range(concurrency)]
    try:
        while True:
            await asyncio.sleep(0.02)
            t = now()
            if count is not None:
                if all(task.done() for task in tasks) or t >= t0 + float(spec.get("max_s", 300)):
                    break
            elif t >= stop_at and (tally.in_window >= min_done or t >= hard_stop):
                break
    finally:
        window_end = now()
        tally.stopping = True
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
    return _results(tally, window_end - window_start, len(spec.get("bodies") or []))


def _results(tally: _Tally, window: float, bodies: int) -> dict[str, Any]:
    """The loop's JSON line: counts, rates over the window, percentiles (also per body sent)."""
    samples = tally.samples
    ttfts = [s.ttft for s in samples if s.ttft is not None]
    chunks = sum(s.chunks for s in samples)
    return {
        "completed": len(samples),
        "completed_total": tally.completed_total,
        "errors": tally.errors,
        "error_samples": tally.error_samples,
        "window_s": window,
        "rps": len(samples) / window if window > 0 else 0.0,
        "latency_ms": percentiles([s.latency for s in samples]),
        "ttft_ms": percentiles(ttfts),
        "chunks": chunks,
        "chunks_per_s": chunks / window if window > 0 else 0.0,
        "latency_ms_by_body": [
            percentiles([s.latency for s in samples if s.tag == tag]) for tag in range(bodies)
        ],
    }


# ---- idle streams -----------------------------------------------------------------------------


async def hold_streams(spec: dict[str, Any], session: Any) -> dict[str, Any]:
    """Open `concurrency` streams, print when they are all open, hold until stdin closes."""
    n = int(spec["concurrency"])
    url = spec["url"]
    headers = {"content-type": "application/json", **spec.get("headers", {})}
    body = json.dumps(spec["body"]).encode()
    opened = asyncio.Semaphore(int(spec.get("open_concurrency", 100)))
    state = {"open": 0, "failed": 0}
    errors: list[str] = []
    all_open = asyncio.Event()

    async def one() -> None:
        try:
            async with opened:
                response = await session.post(url, data=body, headers=headers)
                try:
                    if response.status != 200:
                        raise RequestFailed(f"HTTP {response.status}")
                    while b"data:" not in (line := await response.content.readline()):
                        if not line:  # the body ended before its first event
                            raise RequestFailed("stream ended before its first event")
                except BaseException:
                    response.release()  # a refused or broken stream gives its connection back
                    raise
            state["open"] += 1
        except Exception as exc:
            state["failed"] += 1
            if len(errors) < 5:
                errors.append(f"{type(exc).__name__}: {exc}"[:300])
            return
        finally:
            if state["open"] + state["failed"] >= n:
                all_open.set()
        async with response:
            while await response.content.readany():
                pass

    started = now()
    tasks = [asyncio.ensure_future(one()) for _ in range(n)]
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(all_open.wait(), float(spec.get("open_timeout_s", 120)))
    report = {**state, "open_s": now() - started, "error_samples": errors}
    print(json.dumps(report), flush=True)
    loop = asyncio.get_running_loop()
    with contextlib.suppress(TimeoutError):  # the orchestrator closes stdin when it has measured
        await asyncio.wait_for(
            loop.run_in_executor(None, sys.stdin.read), spec.get("max_hold_s", 120)
        )
    for task in tasks:
        task.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)
    return report


# ---- entry ------------------------------------------------------------------------------------


async def _main_http(spec: dict[str, Any]) -> dict[str, Any]:
    import aiohttp

    connector = aiohttp.TCPConnector(limit=0, force_close=False)
    timeout = aiohttp.ClientTimeout(total=float(spec.get("request_timeout_s", 120)))
    async with aiohttp.ClientSession(connector=connector, timeout=timeout) as session:
        if spec["kind"] == "hold":
            return await hold_streams(spec, session)
        return await closed_loop(_http_one(spec, session), spec)


async def _main_grpc(spec: dict[str, Any]) -> dict[str, Any]:
    import grpc

    from clients.switchboard.v1 import router_service_pb2_grpc

    options = [("grpc.max_receive_message_length", 64 * 1024 * 1024)]
    async with grpc.aio.insecure_channel(spec["target"], options=options) as channel:
        await asyncio.wait_for(channel.channel_ready(), 10)
        stub = router_service_pb2_grpc.RouterServiceStub(channel)
        return await closed_loop(_grpc_one(spec, stub), spec)


def main(argv: list[str]) -> int:
    spec = json.loads(argv[0])
    if spec["kind"] == "grpc":
        result = asyncio.run(_main_grpc(spec))  # grpc.aio wants the default loop
    else:
        try:
            import uvloop

            result = uvloop.run(_main_http(spec))
        except ImportError:
            result = asyncio.run(_main_http(spec))
    print(json.dumps(result), flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
