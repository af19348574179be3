"""AWS Signature Version 4 for a Bedrock key pool entry that holds IAM credentials, and the rule
that tells such a key from a Bedrock API key.

Followed: "Create a signed AWS API request"
(https://docs.aws.amazon.com/IAM/latest/UserGuide/reference_sigv-create-signed-request.html):
canonical request (method, canonical URI, canonical query, canonical headers, signed headers,
hex SHA-256 of the body) → string to sign (`AWS4-HMAC-SHA256`, the time, the credential scope
`date/region/service/aws4_request`, the canonical request's hash) → an HMAC chain from
`"AWS4" + secret` over date, region, service and `aws4_request` → the `Authorization` header.
Services other than S3 encode each path segment twice: the URI as sent (the model id in it
already percent-encoded, `:` as `%3A`) is encoded again (`%253A`), as botocore does. Temporary
credentials send their session token as `x-amz-security-token`, signed with the rest.

A key is one secret string in the pool (fingerprints, rotation and scrubbing stay as they are):
`ACCESS_KEY_ID:SECRET_ACCESS_KEY[:SESSION_TOKEN]` is IAM credentials; anything without a `:` is
a Bedrock API key (https://docs.aws.amazon.com/bedrock/latest/userguide/api-keys-use.html),
sent as `Authorization: Bearer`; the config checks the shape (`config/_aws.py`).
"""

from __future__ import annotations

import hashlib
import hmac
import re
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from urllib.parse import quote

ALGORITHM = "AWS4-HMAC-SHA256"
SERVICE = "bedrock"  # the signing name of bedrock-runtime and of the control plane alike
_SPACES = re.compile(r"\s+")
_AUTHORIZATION = re.compile(
    r"AWS4-HMAC-SHA256\s+Credential=([^/\s]+)/(\d{8})/([^/\s]+)/([^/\s]+)/aws4_request,\s*"
    r"SignedHeaders=([^,\s]+),\s*Signature=([0-9a-f]{64})"
)


@dataclass(frozen=True, slots=True)
class AwsCredentials:
    access_key_id: str
    secret_access_key: str = field(repr=False)
    session_token: str | None = field(default=None, repr=False)


def credentials_of(key: str) -> AwsCredentials | None:
    """The IAM credentials a key holds, or None for a Bedrock API key."""
    if ":" not in key:
        return None
    access_key_id, _, rest = key.partition(":")
    secret, _, token = rest.partition(":")
    return AwsCredentials(access_key_id, secret, token or None)


def amz_date(now: float) -> str:
    return time.strftime("%Y%m%dT%H%M%SZ", time.gmtime(now))


def _uri_encode(text: str, safe: str = "") -> str:
    return quote(text, safe="-_.~" + safe)


def canonical_request(
    method: str,
    path: str,
    query: Iterable[tuple[str, str]],
    headers: Mapping[str, str],
    payload_hash: str,
) -> tuple[str, str]:
    """(canonical request, signed headers). `path` is the URI as sent (percent-encoded);
    `headers` are the ones to sign, names in lower case."""
    canonical_query = "&".join(
        f"{_uri_encode(k)}={_uri_encode(v)}" for k, v in sorted(query)
    )  # fmt: skip
    names = sorted(headers)
    canonical_headers = "".join(f"{n}:{_SPACES.sub(' ', headers[n].strip())}\n" for n in names)
    signed = ";".join(names)
    uri = _uri_encode(path or "/", safe="/")
    return "\n".join(
        (method, uri, canonical_query, canonical_headers, signed, payload_hash)
    ), signed  # fmt: skip


def signature(
    secret_access_key: str, date_time: str, scope: tuple[str, str, str], request: str
) -> str:
    """The hex signature of a canonical request; `scope` is (date, region, service)."""
    date, region, service = scope
    string_to_sign = "\n".join(
        (
            ALGORITHM,
            date_time,
            f"{date}/{region}/{service}/aws4_request",
            hashlib.sha256(request.encode()).hexdigest(),
        )
    )
    key = f"AWS4{secret_access_key}".encode()
    for part in (date, region, service, "aws4_request"):
        key = hmac.new(key, part.encode(), hashlib.sha256).digest()
    return hmac.new(key, string_to_sign.encode(), hashlib.sha256).hexdigest()


@dataclass(frozen=True, slots=True)
class SignedRequestParts:
    """What a request is signed over (the host header among `headers`)."""

    method: str
    path: str
    headers: Mapping[str, str]
    body: bytes
    query: tuple[tuple[str, str], ...] = ()


def sign(
    request: SignedRequestParts,
    credentials: AwsCredentials,
    region: str,
    date_time: str,
    service: str = SERVICE,
) -> dict[str, str]:
    """The headers that sign `request`: x-amz-date, the session token if any, authorization.
    Every header of `request.headers` is signed."""
    added = {"x-amz-date": date_time}
    if credentials.session_token:
        added["x-amz-security-token"] = credentials.session_token
    signed_headers = {k.lower(): v for k, v in request.headers.items()} | added
    payload_hash = hashlib.sha256(request.body).hexdigest()
    canonical, names = canonical_request(
        request.method, request.path, request.query, signed_headers, payload_hash
    )
    scope = (date_time[:8], region, service)
    hex_signature = signature(credentials.secret_access_key, date_time, scope, canonical)
    added["authorization"] = (
        f"{ALGORITHM} Credential={credentials.access_key_id}/{'/'.join(scope)}/aws4_request, "
        f"SignedHeaders={names}, Signature={hex_signature}"
    )
    return added


@dataclass(frozen=True, slots=True)
class Authorization:
    """A SigV4 `Authorization` header, read (the fake upstream verifies what it names)."""

    access_key_id: str
    date: str
    region: str
    service: str
    signed_headers: tuple[str, ...]
    signature: str


def parse_authorization(header: str) -> Authorization | None:
    match = _AUTHORIZATION.fullmatch(header.strip())
    if match is None:
        return None
    key_id, date, region, service, names, hex_signature = match.groups()
    return Authorization(key_id, date, region, service, tuple(names.split(";")), hex_signature)
