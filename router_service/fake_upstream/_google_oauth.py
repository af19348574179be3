"""Google's OAuth2 token endpoint, as the fake serves it: `POST /token` exchanges a service
account's signed JWT for a short-lived access token (the flow of
https://developers.google.com/identity/protocols/oauth2/service-account#httprest).

Tests register a service account's public key (`GoogleOAuth.register`); the endpoint verifies
the assertion's RS256 signature against it and checks its claims (`iss` registered, `aud` this
endpoint, the cloud-platform `scope`, `iat`/`exp` on the authority's clock, at most an hour) as
Google does, refusing with OAuth2's `{"error": "invalid_grant", "error_description"}`. The
tokens it issues are what the Vertex routes accept (`label_of`); they expire on the same clock,
so a test moves a ManualClock (`clock`) instead of waiting an hour.
"""

from __future__ import annotations

import base64
import binascii
from dataclasses import dataclass, field
from typing import Any

import orjson

from ._issued_tokens import IssuedTokens

JWT_BEARER_GRANT = "urn:ietf:params:oauth:grant-type:jwt-bearer"
CLOUD_PLATFORM_SCOPE = "https://www.googleapis.com/auth/cloud-platform"
TOKEN_PREFIX = "ya29.fake-"  # what Google's access tokens start with (`ya29.`)
_CLOCK_SKEW_S = 60  # how far in the future an `iat` may be


@dataclass
class _Account:
    public_key: Any  # cryptography's RSAPublicKey
    key_id: str
    label: str


@dataclass
class GoogleOAuth(IssuedTokens):
    """Registered service accounts, issued tokens and the exchanges made (`exchanges` and
    `refuse` by client_email)."""

    accounts: dict[str, _Account] = field(default_factory=dict)
    # Vertex AI express mode API keys a test registered → the label their calls are recorded
    # under (an unregistered key is recorded as it is).
    api_keys: dict[str, str] = field(default_factory=dict)

    def register_api_key(self, key: str, label: str) -> None:
        """Record the express mode calls made with `key` (and match scenarios) under `label`."""
        self.api_keys[key] = label

    def register(self, client_email: str, public_key: Any, key_id: str, label: str) -> None:
        """Trust `public_key` for `client_email`; calls made with its tokens are recorded
        (and matched to scenarios) under `label`, as another provider's key is."""
        self.accounts[client_email] = _Account(public_key, key_id, label)

    def grant(self, assertion: str, audience: str) -> tuple[int, dict[str, Any]]:
        """The token endpoint's answer to an assertion."""
        try:
            email = self._verified(assertion, audience)
        except ValueError as exc:
            self.refusals.append(str(exc))
            return 400, {"error": "invalid_grant", "error_description": str(exc)}
        if email in self.refuse:
            self.refusals.append("refused")
            message = "Invalid grant: account not found"
            return 400, {"error": "invalid_grant", "error_description": message}
        return 200, self.issue(TOKEN_PREFIX, email, self.accounts[email].label)

    def _verified(self, assertion: str, audience: str) -> str:
        """The assertion's issuer, once its signature and claims check out."""
        parts = assertion.split(".")
        if len(parts) != 3:
            raise ValueError(
                "Invalid JWT: Token must be a short-lived token and in a reasonable timeframe"
            )
        header, claims = _json_part(parts[0]), _json_part(parts[1])
        if header.get("alg") != "RS256":
            raise ValueError("Invalid JWT: unsupported algorithm")
        account = self.accounts.get(str(claims.get("iss")))
        if account is None:
            raise ValueError("Invalid grant: account not found")
        if header.get("kid") not in (None, account.key_id):
            raise ValueError("Invalid JWT Signature.")
        _verify_signature(account.public_key, parts)
        self._check_claims(claims, audience)
        return str(claims["iss"])

    def _check_claims(self, claims: dict[str, Any], audience: str) -> None:
        if claims.get("aud") != audience:
            raise ValueError("Invalid JWT: Failed audience check.")
        if CLOUD_PLATFORM_SCOPE not in str(claims.get("scope", "")).split():
            raise ValueError("Invalid scope")
        iat, exp, now = claims.get("iat"), claims.get("exp"), self.clock()
        if not isinstance(iat, int) or not isinstance(exp, int):
            raise ValueError("Invalid JWT: iat and exp are required")
        if iat > now + _CLOCK_SKEW_S or exp <= now or exp - iat > 3600:
            raise ValueError(
                "Invalid JWT: Token must be a short-lived token (60 minutes) and in a "
                "reasonable timeframe. Check your iat and exp values in the JWT claim."
            )


def _b64decode(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def _json_part(text: str) -> dict[str, Any]:
    try:
        data = orjson.loads(_b64decode(text))
    except (binascii.Error, ValueError):
        raise ValueError("Invalid JWT: malformed") from None
    if not isinstance(data, dict):
        raise ValueError("Invalid JWT: malformed")
    return data


def _verify_signature(public_key: Any, parts: list[str]) -> None:
    from cryptography.exceptions import InvalidSignature
    from cryptography.hazmat.primitives import hashes
    from cryptography.hazmat.primitives.asymmetric import padding

    signed = f"{parts[0]}.{parts[1]}".encode("ascii")
    try:
        signature = _b64decode(parts[2])
        public_key.verify(signature, signed, padding.PKCS1v15(), hashes.SHA256())
    except (InvalidSignature, binascii.Error, ValueError):
        raise ValueError("Invalid JWT Signature.") from None
