"""`models_page`: Gemini's pages cut from the router's model list, their tokens across a list
that changed between pages, and the most a page holds."""

from __future__ import annotations

import pytest

from clients.codec.gemini import models_page
from clients.errors import InvalidRequestError
from clients.switchboard.v1.router_service_pb2 import ModelInfo


def models(*ids: str) -> list[ModelInfo]:
    return [ModelInfo(id=model_id) for model_id in ids]


def names(page: dict[str, object]) -> list[str]:
    listed = page["models"]
    assert isinstance(listed, list)
    return [model["name"].removeprefix("models/") for model in listed]


def test_a_page_goes_on_after_the_last_model_of_the_page_before() -> None:
    first = models_page(models("a", "b", "c", "d", "e"), "2", None)
    assert names(first) == ["a", "b"]
    token = first["nextPageToken"]
    assert isinstance(token, str) and "b" not in token  # opaque
    assert names(models_page(models("a", "b", "c", "d", "e"), "2", token)) == ["c", "d"]
    # A model added before the page's start moves it: the page still starts after `b`.
    assert names(models_page(models("z", "a", "b", "c", "d", "e"), "2", token)) == ["c", "d"]
    # `b` gone: the page starts at the model that followed it, which no page listed yet.
    assert names(models_page(models("a", "c", "d", "e"), "2", token)) == ["c", "d"]
    assert names(models_page(models("x", "y", "a", "c", "d"), "2", token)) == ["c", "d"]
    # Both gone: where the page before ended.
    assert names(models_page(models("a", "d", "e", "f"), "2", token)) == ["e", "f"]
    last = models_page(models("a", "b", "c"), "2", token)
    assert names(last) == ["c"] and "nextPageToken" not in last


def test_a_page_holds_at_most_a_thousand() -> None:
    many = models(*(f"m{n}" for n in range(1200)))
    assert len(names(models_page(many, "5000", None))) == 1000
    assert len(names(models_page(many, None, None))) == 50
    page = models_page(many, "1000", None)
    assert names(models_page(many, "1000", str(page["nextPageToken"])))[0] == "m1000"


@pytest.mark.parametrize("token", ["%%%", "bnVsbA", "eyJvZmZzZXQiOiAzfQ"])  # null; no model
def test_a_token_this_list_did_not_give_is_refused(token: str) -> None:
    with pytest.raises(InvalidRequestError) as refused:
        models_page(models("a", "b"), None, token)
    assert refused.value.param == "pageToken"
