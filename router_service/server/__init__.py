"""The router's gRPC surface."""

from router_service.server._reload import reload_from, reloading, serving_file
from router_service.server._server import RouterServer, server_options

__all__ = ["RouterServer", "reload_from", "reloading", "server_options", "serving_file"]
