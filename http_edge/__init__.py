"""Switchboard's HTTP edge: the OpenAI HTTP API (JSON and SSE) in front of the gRPC router.

The edge translates and forwards; routing, retries, keys and authentication live in the router.

    app = create_app(EdgeSettings(router_target="127.0.0.1:50051"))
    await serve(EdgeSettings(), host="0.0.0.0", port=8080)
"""

from ._app import create_app, serve
from ._settings import EdgeSettings

__all__ = ["EdgeSettings", "create_app", "serve"]
