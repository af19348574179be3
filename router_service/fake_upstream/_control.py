"""HTTP control plane (/_fake/...) so other processes (CLI demo, benchmarks) can drive faults."""

from __future__ import annotations

from typing import Any

import orjson
from aiohttp import web

from ._runtime import runtime_of
from ._scenario import WILDCARD


def _json(payload: Any, status: int = 200) -> web.Response:
    return web.Response(status=status, body=orjson.dumps(payload), content_type="application/json")


def _rules_payload(request: web.Request) -> dict[str, Any]:
    return {"rules": [rule.to_dict() for rule in runtime_of(request).state.scenarios.rules()]}


async def put_scenarios(request: web.Request) -> web.Response:
    """Body: one rule `{key?, model?, scenario}` or a list. Invalid input changes nothing."""
    try:
        data = orjson.loads(await request.read())
    except orjson.JSONDecodeError as exc:
        return _json({"error": f"invalid JSON: {exc}"}, status=400)
    rules = data if isinstance(data, list) else [data]
    try:
        runtime_of(request).state.load_rules(rules)
    except (TypeError, ValueError) as exc:
        return _json({"error": str(exc)}, status=400)
    return _json(_rules_payload(request))


async def get_scenarios(request: web.Request) -> web.Response:
    return _json(_rules_payload(request))


async def delete_scenarios(request: web.Request) -> web.Response:
    """Without query parameters clear all rules; with ?key=&model=&text= remove just that rule."""
    state = runtime_of(request).state
    named = {field: request.query.get(field, WILDCARD) for field in ("key", "model", "text")}
    if any(field in request.query for field in named):
        state.remove_scenario(**named)
    else:
        state.clear_scenarios()
    return _json(_rules_payload(request))


async def get_counters(request: web.Request) -> web.Response:
    return _json(runtime_of(request).state.counters())


async def post_reset(request: web.Request) -> web.Response:
    runtime_of(request).state.reset()
    return _json({"ok": True})


async def post_hold(request: web.Request) -> web.Response:
    """Calls from now on wait before answering until `POST /_fake/release`."""
    runtime_of(request).state.hold()
    return _json({"ok": True})


async def post_release(request: web.Request) -> web.Response:
    state = runtime_of(request).state
    held = state.held
    state.release()
    return _json({"released": held})


def add_routes(app: web.Application) -> None:
    app.router.add_put("/_fake/scenarios", put_scenarios)
    app.router.add_get("/_fake/scenarios", get_scenarios)
    app.router.add_delete("/_fake/scenarios", delete_scenarios)
    app.router.add_get("/_fake/counters", get_counters)
    app.router.add_post("/_fake/reset", post_reset)
    app.router.add_post("/_fake/hold", post_hold)
    app.router.add_post("/_fake/release", post_release)
