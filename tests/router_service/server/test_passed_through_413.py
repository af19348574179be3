"""An upstream's 413 (the body over its limit: Anthropic's `request_too_large` at 32 MB, a
proxy's HTML page) passed through to the caller as the edge says its own 413:
`invalid_request_error` / `request_too_large`, whatever words the upstream used."""

from __future__ import annotations

from typing import Any

import grpc
import pytest

from router_service.errors import AllCandidatesFailedError, UpstreamFailure
from router_service.outcomes import Outcome
from router_service.server._errors import error_details


@pytest.mark.parametrize(
    "said",
    [
        {"type": "request_too_large", "message": "Request exceeds the maximum size"},
        {"message": "<html><h1>413 Request Entity Too Large</h1></html>"},  # a proxy's page
        {
            "code": 413,
            "message": "Request payload size exceeds the limit",
            "status": "INVALID_ARGUMENT",
        },
    ],
)
def test_an_upstreams_413_is_said_as_the_edges_own(said: dict[str, Any]) -> None:
    failure = UpstreamFailure(
        Outcome.BAD_REQUEST, "HTTP 413", upstream_status=413, upstream_error=said
    )

    details = error_details(AllCandidatesFailedError(failure, "p"))

    assert (details.code, details.upstream_status) == (grpc.StatusCode.INVALID_ARGUMENT, 413)
    assert details.upstream_error is not None
    shaped = details.upstream_error
    assert (shaped["type"], shaped["code"]) == ("invalid_request_error", "request_too_large")
    assert shaped["message"] == said["message"]


def test_a_413_that_names_its_own_code_keeps_it() -> None:
    said = {"type": "invalid_request_error", "message": "too big", "code": "payload_too_large"}
    failure = UpstreamFailure(
        Outcome.BAD_REQUEST, "HTTP 413", upstream_status=413, upstream_error=said
    )

    shaped = error_details(AllCandidatesFailedError(failure, "p")).upstream_error

    assert shaped is not None and shaped["code"] == "payload_too_large"
