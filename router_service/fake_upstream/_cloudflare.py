"""Cloudflare Workers AI routes: the OpenAI-compatible endpoints under an account,
`/client/v4/accounts/{account_id}/ai/v1/chat/completions` and `/embeddings`
(https://developers.cloudflare.com/workers-ai/configuration/open-ai-compatibility/), and the
model search `/client/v4/accounts/{account_id}/ai/models/search`.

Answers are OpenAI's (the OpenAI fake's producers serve them); failures, in whole bodies and in
stream chunks, are Cloudflare's `{result, success: false, errors, messages}` envelope.
"""

from __future__ import annotations

from aiohttp import web

from . import _openai
from ._dialects import CLOUDFLARE
from ._faults import Call, send_answer

_ACCOUNT = "/client/v4/accounts/{account_id}/ai"


async def chat_completions(request: web.Request) -> web.StreamResponse:
    return await _openai.handle(request, _openai._chat, dialect=CLOUDFLARE)


async def embeddings(request: web.Request) -> web.StreamResponse:
    return await _openai.handle(request, _openai._embeddings, dialect=CLOUDFLARE)


async def _models(call: Call) -> web.StreamResponse:
    return await send_answer(call, CLOUDFLARE.model_list(call.state.models))


async def models_search(request: web.Request) -> web.StreamResponse:
    return await _openai.handle(request, _models, dialect=CLOUDFLARE)


def add_routes(app: web.Application) -> None:
    app.router.add_post(f"{_ACCOUNT}/v1/chat/completions", chat_completions)
    app.router.add_post(f"{_ACCOUNT}/v1/embeddings", embeddings)
    app.router.add_get(f"{_ACCOUNT}/models/search", models_search)
