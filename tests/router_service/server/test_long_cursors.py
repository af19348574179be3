"""A list's `after` cursor longer than any id the router keeps (`_ids.MAX_ID_BYTES`): each list
answers it as it answers a cursor naming nothing, and never repeats it whole. Files and batches
(the router's lists, over gRPC and through the edge): an empty page, as OpenAI's. A conversation's
items and a stored response's input items (the edge's pages): the same 400 `invalid_value` as an
unknown cursor, repeating the id's first bytes only (`shown_id`). The admin lists take no cursor.

A stored response's input items keep the ids their caller gave them, whatever their length (they
are listed, never looked up one by one): a cursor naming such an item still turns the page."""

from __future__ import annotations

import httpx
import pytest

from clients.switchboard.v1 import batches_pb2 as bp
from tests.conftest import RouterHandle
from tests.e2e.stream_harness import StartEdge
from tests.router_service.server.test_long_ids import LONG, SHOWN

AUTH = {"authorization": "Bearer sk-caller"}
MESSAGE = {"type": "message", "role": "user", "content": "hi"}


async def test_files_and_batches_answer_an_over_long_cursor_with_an_empty_page(
    router: RouterHandle,
) -> None:
    files = await router.stub.ListFiles(bp.ListFilesRequest(after=LONG))
    batches = await router.stub.ListBatches(bp.ListBatchesRequest(after=LONG))
    assert (list(files.files), files.has_more) == ([], False)
    assert (list(batches.batches), batches.has_more) == ([], False)


@pytest.mark.parametrize("after", ["unknown_1", LONG], ids=["unknown", "over-long"])
async def test_every_list_answers_an_over_long_cursor_as_an_unknown_one(
    router: RouterHandle, start_edge: StartEdge, after: str
) -> None:
    edge = await start_edge(router)
    async with httpx.AsyncClient(base_url=edge.base_url, timeout=10, headers=AUTH) as http:
        made = await http.post(
            "/v1/files", files={"file": ("a.jsonl", b"{}\n")}, data={"purpose": "batch"}
        )
        assert made.status_code == 200, made.text
        conversation = (await http.post("/v1/conversations", json={"items": [MESSAGE]})).json()
        response = (await http.post("/v1/responses", json={"model": "chain", "input": "hi"})).json()
        pages = {
            path: await http.get(path, params={"after": after})
            for path in ("/v1/files", "/v1/batches")
        }
        items = {
            "conversation": f"/v1/conversations/{conversation['id']}/items",
            "input": f"/v1/responses/{response['id']}/input_items",
        }
        refused = {
            kind: await http.get(path, params={"after": after}) for kind, path in items.items()
        }
    for page in pages.values():
        assert page.status_code == 200
        assert page.json() == {
            "object": "list",
            "data": [],
            "first_id": None,
            "last_id": None,
            "has_more": False,
        }
    shown = SHOWN if after == LONG else after
    words = {
        "conversation": "No item of this conversation",
        "input": "No input item of this response",
    }
    for kind, answer in refused.items():
        assert answer.status_code == 400
        assert answer.json()["error"] == {
            "message": f"{words[kind]} has the id '{shown}'.",
            "type": "invalid_request_error",
            "param": "after",
            "code": "invalid_value",
        }


async def test_an_input_items_own_long_id_still_turns_the_page(
    router: RouterHandle, start_edge: StartEdge
) -> None:
    edge = await start_edge(router)
    first = MESSAGE | {"id": LONG}
    second = MESSAGE | {"content": "again"}
    async with httpx.AsyncClient(base_url=edge.base_url, timeout=10, headers=AUTH) as http:
        made = await http.post("/v1/responses", json={"model": "chain", "input": [first, second]})
        path = f"/v1/responses/{made.json()['id']}/input_items"
        page = (await http.get(path, params={"order": "asc", "limit": 1})).json()
        assert page["last_id"] == LONG and page["has_more"]
        rest = (await http.get(path, params={"order": "asc", "after": LONG})).json()
    assert [item["content"][0]["text"] for item in rest["data"]] == ["again"]
