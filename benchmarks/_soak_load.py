"""The soak's mixed load, one process per transport: `python -m benchmarks._soak_load '<spec>'`.

A closed loop (`_load.closed_loop`) of `concurrency` workers for `duration_s`, each request drawn
at random: what it does (a unary or streamed chat read to the end, a stream the client leaves
after its first event, a request whose deadline expires while the upstream is slow, an
embedding; over HTTP also Responses API calls, stateless (`store: false`): unary, streamed to
the end, or left after the first event, and conversations (`_soak_conversations.py`); the
response cache's hits, replayed streams, bypasses and coalesced misses; over gRPC now and then
AdminService.PurgeCache and ListClients with `admin_key`), which client key sends it
(`clients`, by weight: some have an rpm limit the load exceeds, one a money budget it spends),
and which conversation it belongs to (a new prompt, a recurring or a fresh `x-session-id` /
`session_id`, a recurring or a fresh `user`). Every answer is an outcome (`stream:200`,
`cut:cut`, `deadline:DEADLINE_EXCEEDED`, `chat:429` ...), counted; only what the mix cannot
explain (a refused connection, a broken protocol) is an error. Prints one JSON
line: the loop's results plus `outcomes`.

Spec: `transport` (`http`: aiohttp to the edge at `url`; `grpc`: the generated stubs to the
router at `target`), `clients` ([{key, weight}]), `concurrency`, `duration_s`, `seed`, and
optionally `actions` (some of ACTIONS' names: only those are sent) and `admin_key` (without it
no admin call is sent).
"""

from __future__ import annotations

import asyncio
import collections
import json
import os
import random
import sys
import time
import uuid
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from benchmarks._load import Sample, closed_loop, now
from benchmarks._soak_conversations import converse

CHAT_MODEL = "soak-mixed"  # fault deployments and healthy ones (benchmarks/soak.py)
SLOW_MODEL = "soak-slow"  # slow first byte, paced chunks: deadlines expire on it (cached)
EMBED_MODEL = "soak-embed"  # cached
CACHED_MODEL = "soak-cached"  # healthy deployments and a truncating one, cached
# What a request does, by weight.
ACTIONS: dict[str, float] = {
    "chat": 22,
    "stream": 22,
    "cut": 14,
    "deadline": 14,
    "embed": 14,
    "deadline-unary": 6,
    "responses": 8,
    "responses-stream": 8,
    "responses-cut": 4,
    # The response cache: a few prompts asked again and again (hits, streamed ones replayed),
    # a fresh answer asked for (`bypass`), and a prompt that changes every second on the slow
    # model, so that identical misses meet in a flight (`coalesce`), some of whose callers
    # leave before the answer (`coalesce-cut`: a leader or a follower that leaves).
    "cached": 8,
    "cached-stream": 6,
    "cached-cut": 2,
    "cached-bypass": 3,
    "coalesce": 6,
    "coalesce-cut": 4,
    # Conversations (`_soak_conversations.py`): made, answered in, added to, listed, deleted.
    "conversation": 3,
    "conversation-stream": 2,
    "conversation-cut": 2,
    # AdminService, with the admin key: now and then.
    "purge": 0.2,
    "clients": 0.3,
}
# The Responses and Conversations APIs are the edge's (in gRPC: the router's own calls, which
# the edge makes); the admin calls go to the router's AdminService.
HTTP_ONLY = frozenset(
    {"responses", "responses-stream", "responses-cut"}
    | {"conversation", "conversation-stream", "conversation-cut"}
)
GRPC_ONLY = frozenset({"purge", "clients"})
_STREAMED = frozenset(
    {"stream", "cut", "deadline", "responses-stream", "responses-cut"}
    | {"cached-stream", "cached-cut", "conversation-stream", "conversation-cut"}
)
_CACHED_PROMPTS = 20  # the prompts `cached*` ask again
_EMBED_INPUTS = 50  # the inputs embeddings repeat (a caller's own prompt is new each time)
# Which conversation it belongs to, by weight.
IDENTITIES = {
    "prompt": 30,
    "pool-session": 20,
    "fresh-session": 15,
    "pool-user": 15,
    "fresh-user": 20,
}
_POOL = 300  # recurring sessions and users


@dataclass(frozen=True, slots=True)
class Request:
    action: str
    key: str
    body: dict[str, Any]
    session: str  # x-session-id / RoutingOptions.session_id, or ""
    timeout_s: float
    bypass: bool = False  # x-switchboard-cache: bypass / RoutingOptions.cache BYPASS


class Mix:
    """Draws requests and counts their outcomes."""

    def __init__(self, spec: dict[str, Any]) -> None:
        self.rng = random.Random(spec.get("seed"))
        self.keys = [c["key"] for c in spec["clients"]]
        self.key_weights = [float(c["weight"]) for c in spec["clients"]]
        self.admin_key: str = spec.get("admin_key", "")
        self.outcomes: collections.Counter[str] = collections.Counter()
        # `actions`: a subset of ACTIONS to send (to tell which kind of request grows what)
        self.actions = actions_for(spec["transport"], spec.get("actions") or ())
        if not self.admin_key:
            self.actions = {k: w for k, w in self.actions.items() if k not in GRPC_ONLY}
        if not self.actions:
            raise ValueError(f"no action of {spec.get('actions')} goes over {spec['transport']}")
        self._tag = f"{os.getpid()}-{spec.get('seed', 0)}"
        self._sent = 0

    def _pick(self, weights: Mapping[str, float]) -> str:
        return self.rng.choices(list(weights), list(weights.values()))[0]

    def next(self) -> Request:
        self._sent += 1
        action = self._pick(self.actions)
        if action in GRPC_ONLY:
            return Request(
                action, self.admin_key, {"model": self.rng.choice(["", CACHED_MODEL])}, "", 10.0
            )
        identity = self._pick(IDENTITIES)
        key = self.rng.choices(self.keys, self.key_weights)[0]
        session = ""
        if identity == "pool-session":
            session = f"soak-session-{self.rng.randrange(_POOL)}"
        elif identity == "fresh-session":
            session = uuid.uuid4().hex
        body = self._body(action, identity)
        if identity == "pool-user":
            body["user"] = f"soak-user-{self.rng.randrange(_POOL)}"
        elif identity == "fresh-user":
            body["user"] = f"soak-user-{uuid.uuid4().hex}"
        # A unary deadline expires before the slow upstream's first byte, a streamed one in
        # the middle of its chunks; everything else has time to fail over.
        timeout = {"deadline": 0.8, "deadline-unary": 0.25, "coalesce-cut": 0.25}.get(action, 30.0)
        return Request(action, key, body, session, timeout, bypass=action == "cached-bypass")

    def _body(self, action: str, identity: str) -> dict[str, Any]:
        """The request's body; a caller's own prompt is new each time (`identity` "prompt"),
        but for the cache's actions, which ask the same prompts again."""
        prompt = f"soak {self._tag}-{self._sent}" if identity == "prompt" else "soak"
        if action == "embed":
            repeated = f"soak embed {self.rng.randrange(_EMBED_INPUTS)}"
            return {"model": EMBED_MODEL, "input": [prompt if identity == "prompt" else repeated]}
        if action in HTTP_ONLY:
            body = {"model": CHAT_MODEL, "input": prompt, "max_output_tokens": 16, "store": False}
            body["stream"] = action in _STREAMED
            return body
        model = CHAT_MODEL
        if action.startswith(("deadline", "coalesce")):
            model = SLOW_MODEL
        if action.startswith("cached"):
            model, prompt = CACHED_MODEL, f"soak cached {self.rng.randrange(_CACHED_PROMPTS)}"
        elif action.startswith("coalesce"):
            prompt = f"soak coalesce {int(time.time())}"  # the same for 1 s, in both loads
        body = {"model": model, "messages": [{"role": "user", "content": prompt}]}
        body["max_tokens"] = 16
        body["stream"] = action in _STREAMED
        return body


def actions_for(transport: str, chosen: Iterable[str] = ()) -> dict[str, float]:
    """The actions (and weights) a load sends over `transport`: `chosen` ones (empty: all) that
    go over it."""
    wanted = set(chosen) or set(ACTIONS)
    other = HTTP_ONLY if transport == "grpc" else GRPC_ONLY
    return {
        name: weight for name, weight in ACTIONS.items() if name in wanted and name not in other
    }


# ---- HTTP, through the edge --------------------------------------------------------------------


async def _http_call(session: Any, base: str, req: Request) -> str:
    import aiohttp

    headers = {"authorization": f"Bearer {req.key}", "content-type": "application/json"}
    if req.session:
        headers["x-session-id"] = req.session
    if req.bypass:
        headers["x-switchboard-cache"] = "bypass"
    if req.action.startswith("conversation"):
        return await converse(session, base, headers, req.body, cut=req.action.endswith("cut"))
    responses = req.action in HTTP_ONLY
    path = "/v1/embeddings" if req.action == "embed" else "/v1/chat/completions"
    path = "/v1/responses" if responses else path
    data = json.dumps(req.body).encode()
    timeout = aiohttp.ClientTimeout(total=req.timeout_s)
    async with session.post(base + path, data=data, headers=headers, timeout=timeout) as response:
        # What the response cache did (hit, miss, bypass), beside the outcome: the soak's
        # counts say how many answers came from it.
        cache = response.headers.get("x-switchboard-cache")
        if response.status != 200 or not req.body.get("stream"):
            await response.read()
            return _with_cache(str(response.status), cache)
        cut = req.action.endswith("cut")
        return _with_cache(await read_sse(response, cut=cut, responses=responses), cache)


def _with_cache(outcome: str, cache: str | None) -> str:
    return f"{outcome}/{cache}" if cache else outcome


# How a Responses API stream ends (by its events' names; their data all carry an `error`
# field, null but for a failure): complete, cut short (max_output_tokens), or failed.
_RESPONSES_END = (b"event: response.completed", b"event: response.incomplete")
_RESPONSES_FAILED = (b"event: response.failed", b"event: error")


async def read_sse(response: Any, *, cut: bool, responses: bool = False) -> str:
    """`cut`: leave after the first event (the connection is closed, not given back);
    otherwise read to the end: `200`, `200+error` (an error event, or `response.failed`),
    `200-unfinished` (no `[DONE]`, or for the Responses API no final event)."""
    errored = done = False
    async for line in response.content:
        if responses and line.startswith(b"event:"):
            errored = errored or line.startswith(_RESPONSES_FAILED)
            done = done or line.startswith(_RESPONSES_END + _RESPONSES_FAILED)
            continue
        if not line.startswith(b"data:"):
            continue
        if cut:
            response.close()
            return "cut"
        if not responses:
            errored = errored or b'"error"' in line
            done = done or line.strip() == b"data: [DONE]"
    return "200+error" if errored else "200" if done else "200-unfinished"


async def _run_http(spec: dict[str, Any]) -> dict[str, Any]:
    import aiohttp

    mix = Mix(spec)
    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=0)) as session:

        async def one() -> Sample:
            req = mix.next()
            start = now()
            try:
                outcome = await _http_call(session, spec["url"], req)
            except TimeoutError:
                outcome = "timeout"
            mix.outcomes[f"{req.action}:{outcome}"] += 1
            end = now()
            return Sample(end, end - start, None, 0)

        result = await closed_loop(one, _loop_spec(spec))
    return {**result, "outcomes": dict(mix.outcomes)}


# ---- gRPC, to the router ------------------------------------------------------------------------


async def _grpc_call(stub: Any, req: Request, admin: Any = None) -> str:
    import grpc

    from clients import chat_params_from_openai, embedding_params_from_openai
    from clients.switchboard.v1 import router_service_pb2 as pb
    from clients.switchboard.v1 import routing_pb2

    options = {"metadata": (("authorization", f"Bearer {req.key}"),), "timeout": req.timeout_s}
    routing = routing_pb2.RoutingOptions(session_id=req.session)
    if req.bypass:
        routing.cache = routing_pb2.CACHE_MODE_BYPASS
    try:
        if req.action in GRPC_ONLY:
            return await _admin_call(admin, req, options)
        if req.action == "embed":
            params = embedding_params_from_openai(req.body)
            embedded = await stub.Embed(pb.EmbedRequest(params=params, routing=routing), **options)
            return _with_cache("OK", _cache_name(embedded.route))
        chat, stream = chat_params_from_openai(req.body)
        if not stream:
            answer = await stub.Chat(pb.ChatRequest(params=chat, routing=routing), **options)
            return _with_cache("OK", _cache_name(answer.route))
        message = pb.ChatStreamRequest(params=chat, routing=routing, batch_chunks=True)
        return await _read_grpc_stream(stub.ChatStream(message, **options), req.action == "cut")
    except grpc.aio.AioRpcError as exc:
        return str(exc.code().name)


async def _admin_call(admin: Any, req: Request, options: dict[str, Any]) -> str:
    """PurgeCache (of a model, or of all: `body["model"]` "") or ListClients, as the admin."""
    from clients.switchboard.v1 import admin_service_pb2 as admin_pb

    if req.action == "purge":
        await admin.PurgeCache(admin_pb.PurgeCacheRequest(model=req.body["model"]), **options)
    else:
        await admin.ListClients(admin_pb.ListClientsRequest(), **options)
    return "OK"


async def _read_grpc_stream(call: Any, cut: bool) -> str:
    """`cut`: cancel the call after its first chunk; otherwise read to the summary."""
    errored = summary = False
    cache = None
    async for message in call:
        kind = message.WhichOneof("event")
        if kind == "route":
            cache = _cache_name(message.route)
        if cut and kind in ("chunk", "chunks"):
            call.cancel()
            return _with_cache("cut", cache)
        errored = errored or kind == "error"
        summary = summary or kind == "summary"
    return _with_cache("OK+error" if errored else "OK" if summary else "OK-unfinished", cache)


def _cache_name(route: Any) -> str | None:
    """RouteInfo.cache as the edge's header says it (hit, miss, bypass); None when unset."""
    from clients.switchboard.v1 import routing_pb2

    name = routing_pb2.CacheStatus.Name(route.cache)
    return None if route.cache == 0 else name.removeprefix("CACHE_STATUS_").lower()


async def _run_grpc(spec: dict[str, Any]) -> dict[str, Any]:
    import grpc

    from clients.switchboard.v1 import admin_service_pb2_grpc, router_service_pb2_grpc

    mix = Mix(spec)
    async with grpc.aio.insecure_channel(spec["target"]) as channel:
        await asyncio.wait_for(channel.channel_ready(), 10)
        stub = router_service_pb2_grpc.RouterServiceStub(channel)
        admin = admin_service_pb2_grpc.AdminServiceStub(channel)

        async def one() -> Sample:
            req = mix.next()
            start = now()
            outcome = await _grpc_call(stub, req, admin)
            mix.outcomes[f"{req.action}:{outcome}"] += 1
            end = now()
            return Sample(end, end - start, None, 0)

        result = await closed_loop(one, _loop_spec(spec))
    return {**result, "outcomes": dict(mix.outcomes)}


def _loop_spec(spec: dict[str, Any]) -> dict[str, Any]:
    """The whole run is the window: no warm-up, no minimum count."""
    return {**spec, "warmup_s": 0.0, "min_done": 0}


def main(argv: list[str]) -> int:
    spec = json.loads(argv[0])
    runner = _run_grpc if spec["transport"] == "grpc" else _run_http
    result = asyncio.run(runner(spec))  # grpc.aio wants the default loop; aiohttp is happy on it
    print(json.dumps(result), flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
