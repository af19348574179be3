"""The router's gRPC surface."""

from typing import TYPE_CHECKING

from clients._lazy import lazy_names

if TYPE_CHECKING:  # for the type checker: at run time each name is imported on first use
    from router_service.server._file_digest import file_digest, serving_file
    from router_service.server._reload import reload_from, reloading
    from router_service.server._server import RouterServer, server_options

# Each name's module, imported when the name is first read (clients/_lazy.py): `switchboard
# router` takes its file's digest, then checks its ports, before it loads the server (~0.3 s
# of CPU a start refused there no longer spends).
_WHERE = {
    "RouterServer": "_server",
    "file_digest": "_file_digest",
    "reload_from": "_reload",
    "reloading": "_reload",
    "server_options": "_server",
    "serving_file": "_file_digest",
}
# Hidden from type checkers: a module `__getattr__` makes every name it lacks `Any` to them.
if not TYPE_CHECKING:
    __getattr__, __dir__ = lazy_names(__name__, _WHERE)

__all__ = [
    "RouterServer",
    "file_digest",
    "reload_from",
    "reloading",
    "server_options",
    "serving_file",
]
