"""The soak's conversations (OpenAI's Conversations API, through the edge): one action is a
conversation's life, in the calls an app makes.

Create it with an item, answer a Responses request in it (`conversation`: unary, streamed to the
end, or left after the first event, `cut`), add items, list them, and delete it half the time (the
other half expire by `conversations.ttl_s`). The outcome is the first step that did not answer
200 (`respond-429`, `create-503` ...) or `ok`; a failed answer does not stop the rest (an app
lists and deletes anyway), a conversation that could not be made does.
"""

from __future__ import annotations

import json
import random
from typing import Any

import aiohttp

__all__ = ["converse"]

_TIMEOUT = aiohttp.ClientTimeout(total=30)
_rng = random.Random(7)  # whether to delete: not the mix's draw, so its sequence stays as it was


def _message(role: str, text: str) -> dict[str, Any]:
    return {"type": "message", "role": role, "content": text}


async def converse(
    session: Any, base: str, headers: dict[str, str], body: dict[str, Any], *, cut: bool
) -> str:
    """One conversation's life; `body`: the Responses request to answer in it (its model,
    input and `stream`)."""
    from benchmarks._soak_load import read_sse  # here: that module imports this one

    made = {"items": [_message("user", "soak: remember this")], "metadata": {"soak": "1"}}
    status, created = await _call(session, "POST", f"{base}/v1/conversations", headers, made)
    if status != 200:
        return f"create-{status}"
    path = f"{base}/v1/conversations/{created['id']}"
    outcomes = []
    request = {**body, "conversation": created["id"]}
    data = json.dumps(request).encode()
    post = session.post(f"{base}/v1/responses", data=data, headers=headers, timeout=_TIMEOUT)
    async with post as response:
        if response.status != 200 or not request.get("stream"):
            await response.read()
            outcomes.append(("respond", str(response.status)))
        else:
            outcomes.append(("respond", await read_sse(response, cut=cut, responses=True)))
    added = {"items": [_message("user", "soak: and this"), _message("assistant", "noted")]}
    outcomes.append(
        ("add", str((await _call(session, "POST", f"{path}/items", headers, added))[0]))
    )
    listed = await _call(session, "GET", f"{path}/items?limit=5&order=desc", headers)
    outcomes.append(("list", str(listed[0])))
    if _rng.random() < 0.5:
        outcomes.append(("delete", str((await _call(session, "DELETE", path, headers))[0])))
    return next((f"{step}-{o}" for step, o in outcomes if o not in ("200", "cut")), "ok")


async def _call(
    session: Any, method: str, url: str, headers: dict[str, str], body: Any = None
) -> tuple[int, Any]:
    data = None if body is None else json.dumps(body).encode()
    call = session.request(method, url, data=data, headers=headers, timeout=_TIMEOUT)
    async with call as response:
        text = await response.read()
        return response.status, json.loads(text) if response.status == 200 else None
