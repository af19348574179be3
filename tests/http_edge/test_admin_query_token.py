"""The admin token in a URL's query (`/admin?token=…`) is never taken: the browser's history, a
proxy's access log and a `Referer` keep a URL's query. The edge refuses such a request with a
400 that says how to authenticate (the page's `#token=` fragment, never sent to a server, or an
`authorization: Bearer` header), without reading the token, echoing it or counting it as a guess;
other query parameters (`/admin/keys?provider=`) are what they were."""

from __future__ import annotations

import pytest

from tests.conftest import RouterHandle
from tests.http_edge.harness import Edge
from tests.http_edge.test_admin import ADMIN, TOKEN, get, opened, start_edge

__all__ = ["opened", "start_edge"]  # the fixtures, from the admin tests

Opened = tuple[RouterHandle, Edge]


@pytest.mark.parametrize(
    ("path", "headers"),
    [
        (f"/admin?token={TOKEN}", None),
        (f"/admin/?x=1&token={TOKEN}", None),
        (f"/admin/static/admin.js?access_token={TOKEN}", None),
        (f"/admin/api/status?token={TOKEN}", None),
        (f"/admin/keys?provider=alpha&api_key={TOKEN}", None),
        (f"/admin/api/clients?token={TOKEN}", ADMIN),  # even beside the right header
        # `;` separates parameters too: a query's (`?a=1;b=2`) and a path's matrix parameters.
        (f"/admin?from=bookmark;token={TOKEN}", None),
        (f"/admin/api/status;token={TOKEN}", None),
        (f"/admin;access-token={TOKEN}", None),
        (f"/admin/api/status?bearer={TOKEN}", None),
        (f"/admin/api/status?x=1&Authorization={TOKEN}", ADMIN),
        # The token pasted as the query's name (its words say credential): not named back.
        (f"/admin?{TOKEN}", None),
        (f"/admin/api/status?x=1&{TOKEN}=", None),
    ],
)
async def test_a_token_in_the_query_is_refused_with_how_to_authenticate(
    opened: Opened, path: str, headers: dict[str, str] | None
) -> None:
    _, edge = opened
    response = await get(edge, path, headers)

    assert response.status_code == 400
    error = response.json()["error"]
    assert error["code"] == "credential_in_url"
    assert error["type"] == "invalid_request_error"
    assert "#token=" in error["message"] and "authorization: Bearer" in error["message"]
    assert TOKEN not in response.text
    assert response.headers["cache-control"] == "no-store"
    assert response.headers["referrer-policy"] == "no-referrer"


async def test_refusals_of_a_query_token_are_not_guesses(opened: Opened) -> None:
    """Not compared, so not counted: a page bookmarked with its token does not lock its
    operator's address out (`edge.admin_throttle`), however often it is opened."""
    _, edge = opened
    for _ in range(30):
        assert (await get(edge, "/admin/api/status?token=wrong")).status_code == 400
    assert (await get(edge, "/admin/api/status", ADMIN)).status_code == 200


async def test_other_query_parameters_still_work(opened: Opened) -> None:
    _, edge = opened
    assert (await get(edge, "/admin?from=bookmark")).status_code == 200
    response = await get(edge, "/admin/keys?provider=alpha", ADMIN)
    assert response.status_code == 200
    assert {key["provider"] for key in response.json()["keys"]} == {"alpha"}
