"""SigV4 against AWS's published test suite
(https://docs.aws.amazon.com/general/latest/gr/signature-v4-test-suite.html: get-vanilla,
post-vanilla, get-vanilla-query-order-key-case), and what Bedrock needs beyond it."""

from __future__ import annotations

import pytest

from router_service.providers._sigv4 import (
    AwsCredentials,
    SignedRequestParts,
    amz_date,
    canonical_request,
    credentials_of,
    parse_authorization,
    sign,
)

SUITE = AwsCredentials("AKIDEXAMPLE", "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY")
SUITE_TIME = "20150830T123600Z"
HOST = {"host": "example.amazonaws.com"}


@pytest.mark.parametrize(
    ("method", "query", "expected"),
    [
        ("GET", (), "5fa00fa31553b73ebf1942676e86291e8372ff2a2260956d9b8aae1d763fbf31"),
        ("POST", (), "5da7c1a2acd57cee7505fc6676e4e544621c30862966e37dddb68e92efbe5d6b"),
        (
            "GET",
            (("Param2", "value2"), ("Param1", "value1")),
            "b97d918cfa904a5beff61c982a1b6f458b799221646efd99d3219ec94cdf2500",
        ),
    ],
    ids=["get-vanilla", "post-vanilla", "get-vanilla-query-order-key-case"],
)
def test_the_aws_test_suite(method: str, query: tuple[tuple[str, str], ...], expected: str) -> None:
    parts = SignedRequestParts(method, "/", HOST, b"", query)

    headers = sign(parts, SUITE, "us-east-1", SUITE_TIME, service="service")

    assert headers == {
        "x-amz-date": SUITE_TIME,
        "authorization": "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20150830/us-east-1/service/"
        f"aws4_request, SignedHeaders=host;x-amz-date, Signature={expected}",
    }


def test_the_suite_canonical_request_of_get_vanilla() -> None:
    empty = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
    request, signed = canonical_request("GET", "/", (), {**HOST, "x-amz-date": SUITE_TIME}, empty)
    assert signed == "host;x-amz-date"
    assert request == (
        f"GET\n/\n\nhost:example.amazonaws.com\nx-amz-date:{SUITE_TIME}\n\nhost;x-amz-date\n{empty}"
    )


def test_a_model_id_already_encoded_in_the_path_is_encoded_again() -> None:
    # Services other than S3 sign the URI encoded twice: `:` sent as %3A is signed as %253A.
    request, _ = canonical_request(
        "POST", "/model/us.anthropic.claude-3-5-sonnet-20241022-v2%3A0/converse", (), HOST, "x"
    )
    assert (
        request.split("\n")[1] == "/model/us.anthropic.claude-3-5-sonnet-20241022-v2%253A0/converse"
    )


def test_header_values_are_trimmed_and_their_spaces_folded() -> None:
    request, signed = canonical_request("GET", "/", (), {"my-header": "  a   b  c "}, "x")
    assert "my-header:a b c\n" in request and signed == "my-header"


def test_temporary_credentials_sign_their_session_token() -> None:
    credentials = AwsCredentials("ASIAEXAMPLE0000000001", "secret", "the-session-token")
    parts = SignedRequestParts("POST", "/model/m/converse", HOST, b"{}")

    headers = sign(parts, credentials, "eu-west-1", "20250102T030405Z")

    assert headers["x-amz-security-token"] == "the-session-token"
    parsed = parse_authorization(headers["authorization"])
    assert parsed is not None
    assert parsed.signed_headers == ("host", "x-amz-date", "x-amz-security-token")
    assert (parsed.access_key_id, parsed.date, parsed.region, parsed.service) == (
        "ASIAEXAMPLE0000000001",
        "20250102",
        "eu-west-1",
        "bedrock",
    )
    # The token is signed: another token gives another signature.
    other = sign(
        parts,
        AwsCredentials(credentials.access_key_id, "secret", "x"),
        "eu-west-1",
        "20250102T030405Z",
    )
    assert other["authorization"] != headers["authorization"]


def test_keys_are_api_keys_or_iam_credentials_by_their_shape() -> None:
    assert credentials_of("ABSKQmVkcm9ja0FQSUtleS1hYmM=") is None
    assert credentials_of("bedrock-api-key-YmVkcm9jay5hbWF6b25hd3MuY29t") is None
    assert credentials_of("AKIAIOSFODNN7EXAMPLE:wJalr/K7MDENG") == AwsCredentials(
        "AKIAIOSFODNN7EXAMPLE", "wJalr/K7MDENG"
    )
    assert credentials_of("ASIAIOSFODNN7EXAMPLE:s:tok") == AwsCredentials(
        "ASIAIOSFODNN7EXAMPLE", "s", "tok"
    )
    # The secret parts never show in a repr (a log line, a traceback's locals).
    assert "wJalr" not in repr(credentials_of("AKIAIOSFODNN7EXAMPLE:wJalr/K7MDENG"))


def test_amz_date() -> None:
    assert amz_date(1_440_938_160) == SUITE_TIME


def test_parse_authorization_refuses_other_schemes() -> None:
    assert parse_authorization("Bearer abc") is None
    assert parse_authorization("AWS4-HMAC-SHA256 Credential=x") is None
