"""The router's gRPC surface."""

from router_service.server._reload import file_digest, reload_from, reloading, serving_file
from router_service.server._server import RouterServer, server_options

__all__ = [
    "RouterServer",
    "file_digest",
    "reload_from",
    "reloading",
    "server_options",
    "serving_file",
]
