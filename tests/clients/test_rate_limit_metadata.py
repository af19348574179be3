"""A refused client's rate standing in its status: ErrorInfo metadata (`ratelimit_*`), so that
the status holds googleapis types only (callers in other languages decode every detail with
them), read back exactly; what a foreign server writes there that is no number is left out."""

from __future__ import annotations

import grpc
from google.rpc import error_details_pb2, status_pb2

from clients import ErrorDetails, to_grpc_status
from clients._ratelimits import rate_limit_from_metadata, rate_limit_metadata
from clients.switchboard.v1.routing_pb2 import RateLimitStatus

STANDING = RateLimitStatus(
    limit_requests=3, remaining_requests=0, reset_requests_s=50.000000001, limit_tokens=9000
)


def test_the_refusal_carries_googleapis_types_only() -> None:
    details = ErrorDetails(
        code=grpc.StatusCode.RESOURCE_EXHAUSTED,
        message="Rate limit reached",
        reason="RATE_LIMITED",
        retry_after_s=50.0,
        rate_limit=STANDING,
    )
    ((_, value),) = to_grpc_status(details).trailing_metadata
    status = status_pb2.Status.FromString(value)
    kinds = {packed.type_url.rsplit("/", 1)[1] for packed in status.details}
    assert kinds == {"google.rpc.ErrorInfo", "google.rpc.RetryInfo"}
    info = error_details_pb2.ErrorInfo()
    assert status.details[0].Unpack(info)
    assert {k: v for k, v in info.metadata.items() if k.startswith("ratelimit_")} == {
        "ratelimit_limit_requests": "3",
        "ratelimit_remaining_requests": "0",
        "ratelimit_reset_requests_s": "50.000000001",
        "ratelimit_limit_tokens": "9000",
    }


def test_metadata_reads_back_exactly_and_only_what_was_set() -> None:
    back = rate_limit_from_metadata(rate_limit_metadata(STANDING))
    assert back == STANDING
    assert back is not None and not back.HasField("remaining_tokens")
    assert rate_limit_metadata(None) == {}
    assert rate_limit_from_metadata({"provider": "openai"}) is None


def test_what_is_no_number_is_left_out() -> None:
    found = rate_limit_from_metadata(
        {"ratelimit_limit_requests": "lots", "ratelimit_remaining_requests": "2"}
    )
    assert found == RateLimitStatus(remaining_requests=2)
    assert rate_limit_from_metadata({"ratelimit_limit_tokens": "9" * 40}) is None  # past int64
