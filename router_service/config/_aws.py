"""What a `bedrock` provider's config must hold: a region to sign for, and keys of one of the
two shapes Bedrock authenticates (README, Providers). Rules only: the signing itself is the
adapter's (`providers/_sigv4.py`)."""

from __future__ import annotations

import re
from urllib.parse import urlsplit

# Runtime and control-plane hosts, FIPS and VPC endpoints too: bedrock-runtime.us-east-1.
# amazonaws.com, bedrock-runtime-fips.us-gov-west-1.amazonaws.com,
# vpce-0a1b.bedrock-runtime.eu-west-1.vpce.amazonaws.com, bedrock.cn-north-1.amazonaws.com.cn.
_REGION_IN_HOST = re.compile(
    r"(?:^|\.)bedrock(?:-runtime)?(?:-fips)?\.([a-z]{2}(?:-[a-z]+)+-\d+)\."
)
_ACCESS_KEY_ID = re.compile(r"[A-Za-z0-9]{16,128}")


def region_of(base_url: str) -> str | None:
    """The AWS region named by a Bedrock endpoint's host, if it names one."""
    match = _REGION_IN_HOST.search(urlsplit(base_url).hostname or "")
    return match.group(1) if match else None


def bedrock_key_problem(key: str) -> str | None:
    """What is wrong with a Bedrock pool key's shape, without quoting any of it; None if fine.
    `ACCESS_KEY_ID:SECRET_ACCESS_KEY[:SESSION_TOKEN]` is IAM credentials; a key without `:` is
    a Bedrock API key (neither an access key id, a secret, a session token nor an API key
    holds a `:`)."""
    if any(c.isspace() for c in key):
        return "a bedrock key holds no whitespace"
    if ":" not in key:
        return None  # a Bedrock API key
    parts = key.split(":")
    if len(parts) > 3:
        return "IAM credentials are ACCESS_KEY_ID:SECRET_ACCESS_KEY[:SESSION_TOKEN] (too many ':')"
    if not _ACCESS_KEY_ID.fullmatch(parts[0]):
        return "the access key id (before the first ':') must be 16 to 128 letters and digits"
    if not all(parts[1:]):
        return "IAM credentials need a secret access key (and a session token after a third ':')"
    return None
