"""The router's gRPC surface."""

from router_service.server._server import RouterServer, server_options

__all__ = ["RouterServer", "server_options"]
