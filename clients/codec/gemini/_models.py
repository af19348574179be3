"""The router's model list as Gemini's ListModelsResponse, a page at a time.

Followed: https://ai.google.dev/api/models#method:-models.list: `pageSize` (default 50, at most
1000: more is read as 1000), `pageToken` (the `nextPageToken` of the page before), and the
answer's `models` and `nextPageToken` (absent on the last page). The router's list is not paged:
each page is cut from the whole list. The token is opaque to the caller; it names the last
model of the page before (and where it stood) and the model that followed it, so a page goes
on after that model when the list changed in between (a reload): no model is listed twice, and
one added before it is not listed; with that model removed, the page starts at the one that
followed it (with both removed, at the same position).
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import orjson

from clients.codec.gemini._embed import model_to_gemini
from clients.errors import InvalidRequestError
from clients.switchboard.v1.router_service_pb2 import ModelInfo

__all__ = ["PageAsk", "models_page", "page_ask"]

JsonObject = dict[str, Any]

DEFAULT_PAGE_SIZE, MAX_PAGE_SIZE = 50, 1000  # Gemini's


@dataclass(frozen=True, slots=True)
class PageAsk:
    """What a models.list call asks, read before the list is: how many models a page, and
    where the page before ended (its token's `offset`, last model and the model after it;
    none for the first)."""

    size: int
    offset: int = 0
    after: str = ""
    following: str = ""

    def page(self, models: Sequence[ModelInfo]) -> JsonObject:
        """The page of `models` asked for."""
        start = _start(models, self) if self.after else 0
        end = start + self.size
        page = models[start:end]
        listed: JsonObject = {"models": [model_to_gemini(model) for model in page]}
        if end < len(models):
            listed["nextPageToken"] = _token(end, page[-1].id, models[end].id)
        return listed


def page_ask(page_size: str | None, page_token: str | None) -> PageAsk:
    """`pageSize` and `pageToken` (query parameters, as given) read; InvalidRequestError naming
    the one that is wrong."""
    size = _page_size(page_size)
    if not page_token:
        return PageAsk(size)
    return _read_token(size, page_token)


def models_page(
    models: Sequence[ModelInfo], page_size: str | None, page_token: str | None
) -> JsonObject:
    """The page of `models` that `pageSize` and `pageToken` (query parameters, as given) ask
    for; InvalidRequestError naming the parameter that is wrong."""
    return page_ask(page_size, page_token).page(models)


def _page_size(value: str | None) -> int:
    """`pageSize`: absent or 0 is the default, more than the most is the most."""
    if value is None or value == "":
        return DEFAULT_PAGE_SIZE
    try:
        size = int(value)
    except ValueError:
        size = -1
    if size < 0:
        message = f"pageSize: {value!r} is not a page size (a whole number, 0 to {MAX_PAGE_SIZE})"
        raise InvalidRequestError(message, "pageSize")
    return min(size, MAX_PAGE_SIZE) or DEFAULT_PAGE_SIZE


def _token(offset: int, last: str, following: str) -> str:
    raw = orjson.dumps({"offset": offset, "after": last, "next": following})
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def _read_token(size: int, token: str) -> PageAsk:
    """The page after the one `token` ended; InvalidRequestError for a token the edge did not
    give."""
    try:
        raw = base64.urlsafe_b64decode(token + "=" * (-len(token) % 4))
        read = orjson.loads(raw)
    except (binascii.Error, ValueError):
        read = None
    offset = read.get("offset") if isinstance(read, dict) else None
    last = read.get("after") if isinstance(read, dict) else None
    last = last if isinstance(last, str) else None
    if not isinstance(offset, int) or isinstance(offset, bool) or offset < 1 or not last:
        raise InvalidRequestError(
            "pageToken: not a page token of this list (give the nextPageToken of the page "
            "before, or none for the first page)",
            "pageToken",
        )
    following = read.get("next") if isinstance(read, dict) else None
    return PageAsk(size, offset, last, following if isinstance(following, str) else "")


def _start(models: Sequence[ModelInfo], ask: PageAsk) -> int:
    """Where the page after `ask.after` starts: after that model (where the page before ended,
    or wherever that model is now); when it is gone, at the model that followed it, else at
    `ask.offset`."""
    offset = ask.offset
    if 0 < offset <= len(models) and models[offset - 1].id == ask.after:
        return offset
    ids = [model.id for model in models]
    if ask.after in ids:
        return ids.index(ask.after) + 1
    if ask.following and ask.following in ids:
        return ids.index(ask.following)
    return min(offset, len(models))
