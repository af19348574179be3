"""Microsoft Entra ID's token endpoint, as the fake serves it: `POST
/{tenant}/oauth2/v2.0/token` exchanges a service principal's client credentials for an access
token (the client credentials flow with a shared secret,
https://learn.microsoft.com/entra/identity-platform/v2-oauth2-client-creds-grant-flow).

Tests register a principal (`EntraOAuth.register`: tenant, client id, client secret, and the
label its calls are recorded under), or a workload identity (`register_federated`: the
federated token it trusts as the client's assertion; registering another replaces it, as a
rotated token would); the endpoint checks the grant type, the tenant, the client, its secret
(or `client_assertion_type` jwt-bearer and the assertion) and the scope as Entra does,
refusing in Entra's words (`{"error", "error_description": "AADSTS…", "error_codes"}`: 401
`invalid_client` for a wrong or expired secret, 400 otherwise). The tokens it issues are what
the Azure routes take as `Authorization: Bearer` (`label_of`); they expire on `clock`, so a test
moves a ManualClock instead of waiting.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from typing import Any

from ._issued_tokens import IssuedTokens

CLIENT_CREDENTIALS = "client_credentials"
JWT_BEARER_ASSERTION = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"
COGNITIVE_SERVICES_SCOPE = "https://cognitiveservices.azure.com/.default"
TOKEN_PREFIX = "eyJ0eXAiOiJKV1QiLCJhbGciOiJSUzI1NiJ9.fake-entra-"  # a JWT's header, as Entra's


@dataclass
class _Principal:
    client_secret: str | None  # None: a workload identity, proven by its assertion
    label: str
    assertion: str | None = None


@dataclass
class EntraOAuth(IssuedTokens):
    """Registered service principals (by tenant and client id), issued tokens and the
    exchanges made (`exchanges` and `refuse` by client id)."""

    principals: dict[tuple[str, str], _Principal] = field(default_factory=dict)
    scope: str = COGNITIVE_SERVICES_SCOPE

    def register(self, tenant_id: str, client_id: str, client_secret: str, label: str) -> None:
        """Trust `client_secret` for the client; calls made with its tokens are recorded (and
        matched to scenarios) under `label`, as another provider's key is."""
        self.principals[(tenant_id, client_id)] = _Principal(client_secret, label)

    def register_federated(
        self, tenant_id: str, client_id: str, assertion: str, label: str
    ) -> None:
        """Trust `assertion` (a federated token) as the client's proof, and only it: the token
        a previous call registered is refused from now on (the kubelet rotated it)."""
        self.principals[(tenant_id, client_id)] = _Principal(None, label, assertion)

    def grant(self, tenant: str, form: dict[str, str]) -> tuple[int, dict[str, Any]]:
        """The token endpoint's answer to a token request."""
        refused = self._refusal(tenant, form)
        if refused is not None:
            status, error, code, description = refused
            self.refusals.append(description)
            return status, _error_body(error, code, description)
        client_id = form["client_id"]
        answer = self.issue(TOKEN_PREFIX, client_id, self.principals[(tenant, client_id)].label)
        return 200, {**answer, "ext_expires_in": self.token_lifetime_s}

    def _refusal(self, tenant: str, form: dict[str, str]) -> tuple[int, str, int, str] | None:
        """(status, error, AADSTS code, description) of a request Entra refuses; None when it
        grants it."""
        client_id = form.get("client_id", "")
        principal = self.principals.get((tenant, client_id))
        if form.get("grant_type") != CLIENT_CREDENTIALS:
            described = "The app requested an unsupported grant type."
            return 400, "unsupported_grant_type", 70003, described
        if not any(known == tenant for known, _ in self.principals):
            return 400, "invalid_request", 90002, f"Tenant '{tenant}' not found."
        if principal is None:
            described = (
                f"Application with identifier '{client_id}' was not found in the directory "
                f"'{tenant}'."
            )
            return 400, "unauthorized_client", 700016, described
        if principal.assertion is not None:
            return _assertion_refusal(principal.assertion, form, self.scope)
        if form.get("client_secret") != principal.client_secret:
            described = (
                "Invalid client secret provided. Ensure the secret being sent in the request is "
                "the client secret value, not the client secret ID, for a secret added to app "
                f"'{client_id}'."
            )
            return 401, "invalid_client", 7000215, described
        if client_id in self.refuse:
            described = f"The provided client secret keys for app '{client_id}' are expired."
            return 401, "invalid_client", 7000222, described
        if form.get("scope") != self.scope:
            described = (
                f"The provided value for scope {form.get('scope', '')} is not valid. Client "
                "credential flows must have a scope value with /.default suffixed to the "
                "resource identifier (application ID URI)."
            )
            return 400, "invalid_scope", 1002012, described
        return None


def _assertion_refusal(
    trusted: str, form: dict[str, str], scope: str
) -> tuple[int, str, int, str] | None:
    """Entra's refusal of a workload identity's exchange; None when its assertion is trusted."""
    if form.get("client_assertion_type") != JWT_BEARER_ASSERTION:
        described = "The request body must contain the following parameter: 'client_assertion'."
        return 400, "invalid_request", 900144, described
    if form.get("client_assertion") != trusted:
        described = "No matching federated identity record found for presented assertion."
        return 400, "invalid_client", 70021, described
    if form.get("scope") != scope:
        return 400, "invalid_scope", 1002012, "The provided value for scope is not valid."
    return None


def _error_body(error: str, code: int, description: str) -> dict[str, Any]:
    trace, correlation = uuid.uuid4(), uuid.uuid4()
    return {
        "error": error,
        # Entra's descriptions run on with ids and a timestamp, on lines of their own.
        "error_description": f"AADSTS{code}: {description}\r\nTrace ID: {trace}\r\n"
        f"Correlation ID: {correlation}\r\nTimestamp: 2026-01-01 00:00:00Z",
        "error_codes": [code],
        "timestamp": "2026-01-01 00:00:00Z",
        "trace_id": str(trace),
        "correlation_id": str(correlation),
        "error_uri": f"https://login.microsoftonline.com/error?code={code}",
    }
