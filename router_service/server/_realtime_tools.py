"""A Realtime session's tools as its caller configured them, so that a `session.update` whose
`tool_choice` forces a call ("required", a named function) while the session has no tools is
refused as Chat refuses it (`check_forced_tool`), not sent upstream: an `error` event naming
`session.tool_choice` and the event, and the session goes on. The tools are those of the latest
update that set them (a refused update sets nothing), else the opening config's (an ephemeral
client secret's: `opening_update`). An update that names `tool_choice` or `tools` is checked:
one clearing the tools of a session that forces a call is refused too."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import orjson

from router_service._tool_choice import check_forced_tool
from router_service.errors import InvalidRequestError
from router_service.server._realtime_events import error_event

if TYPE_CHECKING:
    from collections.abc import Mapping

    import aiohttp

__all__ = ["SessionTools", "tell_caller"]


class SessionTools:
    """The session's `tools` and `tool_choice` (None: never set, the upstream's defaults)."""

    def __init__(self, opening_update: str | None) -> None:
        self._tools: Any = None
        self._tool_choice: Any = None
        if opening_update is not None:  # the router's own, checked when the secret was made
            self._remember(orjson.loads(opening_update)["session"])

    def refusal(self, event: Any) -> str | None:
        """The `error` event refusing `event` (a caller's parsed event), or None: then a
        `session.update`'s tools and choice are the session's from now on."""
        if not isinstance(event, dict) or event.get("type") != "session.update":
            return None
        session = event.get("session")
        if not isinstance(session, dict):
            return None  # the upstream says what is wrong with it
        if "tool_choice" in session or "tools" in session:
            now = {"tools": self._tools, "tool_choice": self._tool_choice}
            try:
                check_forced_tool({**now, **_tool_fields(session)}, where="session.")
            except InvalidRequestError as refused:
                given = event.get("event_id")
                event_id = given if isinstance(given, str) else None
                kind, code = refused.openai_type, refused.code
                return error_event(kind, code, refused.message, refused.param, event_id)
        self._remember(session)
        return None

    def _remember(self, session: Mapping[str, Any]) -> None:
        fields = _tool_fields(session)
        self._tools = fields.get("tools", self._tools)
        self._tool_choice = fields.get("tool_choice", self._tool_choice)


def _tool_fields(session: Mapping[str, Any]) -> dict[str, Any]:
    return {name: session[name] for name in ("tools", "tool_choice") if name in session}


def tell_caller(socket: aiohttp.ClientWebSocketResponse, event_json: str) -> None:
    """Queue `event_json` to the caller as if the upstream had sent it, after what it sent so
    far: the relay's loop reads the socket alone, so an event of the router's wakes it with no
    cost to each upstream event (a race against another queue costs ~20 µs an event). aiohttp
    wakes its own `receive` the same way (`close` feeds its closing message)."""
    import aiohttp  # loaded by the routers that serve Realtime only (engine/_realtime.py)

    socket._reader.feed_data(aiohttp.WSMessage(aiohttp.WSMsgType.TEXT, event_json, None), 0)
