"""An interceptor's wrappers: made once per method and handler (`WrappedHandlers`)."""

from __future__ import annotations

from typing import Any

from router_service._wrapped_handlers import WrappedHandlers


def test_a_wrapper_is_made_once_per_method_while_its_handler_stays() -> None:
    made: list[tuple[str, Any]] = []

    def wrap(method: str, handler: Any) -> Any:
        made.append((method, handler))
        return ("wrapped", method, handler)

    handlers = WrappedHandlers(wrap)
    chat, embed = object(), object()
    first = handlers.wrapped("/Chat", chat)
    assert handlers.wrapped("/Chat", chat) is first
    assert handlers.wrapped("/Embed", embed) == ("wrapped", "/Embed", embed)
    assert made == [("/Chat", chat), ("/Embed", embed)]


def test_a_new_handler_for_a_method_gets_a_new_wrapper() -> None:
    handlers = WrappedHandlers(lambda method, handler: [method, handler])
    before, after = object(), object()
    old = handlers.wrapped("/Chat", before)
    new = handlers.wrapped("/Chat", after)
    assert new == ["/Chat", after] and new is not old
    assert handlers.wrapped("/Chat", after) is new
