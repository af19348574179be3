"""Azure's local token endpoints of managed identities, as the fake serves them:

- `GET /metadata/identity/oauth2/token`, the Instance Metadata Service's (VMs, AKS nodes): it
  wants `Metadata: true`, `api-version=2018-02-01` and the resource, and answers
  `{"access_token", "expires_in": "3600", "expires_on", …}` (numbers as text, as IMDS sends
  them), or IMDS's refusals (400 `bad_request_102` "Required metadata header not specified",
  400 `invalid_request` "Identity not found");
- `GET /msi/token`, App Service's (Container Apps', Functions') `IDENTITY_ENDPOINT`: it wants
  `X-IDENTITY-HEADER` equal to `identity_header` (else 403) and `api-version=2019-08-01`, and
  answers with `expires_on` (unix seconds) and no `expires_in`; an identity it does not have
  is `{"statusCode": 400, "message": "Unable to load the proper Managed Identity."}`.

Tests assign identities to the host (`ManagedIdentities.assign`: a user-assigned identity's
client id, or None for the system-assigned one, and the label its calls are recorded under).
The tokens are Entra's (`EntraOAuth.issue`), so the Azure routes take them as they take a
service principal's, and they expire on its clock; `exchanges` records each grant (the client
id, or "system-assigned"), `refusals` each refusal's description.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from ._entra import EntraOAuth

IMDS_PATH = "/metadata/identity/oauth2/token"
APP_SERVICE_PATH = "/msi/token"
IMDS_API_VERSION = "2018-02-01"
APP_SERVICE_API_VERSION = "2019-08-01"
COGNITIVE_SERVICES = "https://cognitiveservices.azure.com"
SYSTEM_ASSIGNED = "system-assigned"
TOKEN_PREFIX = "eyJ0eXAiOiJKV1QiLCJhbGciOiJSUzI1NiJ9.fake-msi-"

Answer = tuple[int, dict[str, Any]]


@dataclass
class ManagedIdentities:
    """The identities assigned to the fake host, and the header App Service's endpoint wants."""

    entra: EntraOAuth
    identities: dict[str, str] = field(default_factory=dict)  # client id → label
    identity_header: str = "fake-identity-header-8d3f"
    resource: str = COGNITIVE_SERVICES

    def assign(self, client_id: str | None, label: str) -> None:
        """Give the host an identity (None: the system-assigned one); calls made with its
        tokens are recorded under `label`."""
        self.identities[client_id or SYSTEM_ASSIGNED] = label

    def imds(self, query: Mapping[str, str], headers: Mapping[str, str]) -> Answer:
        """IMDS's answer to a token request."""
        if headers.get("Metadata") != "true":
            return self._refused(400, "bad_request_102", "Required metadata header not specified")
        if query.get("api-version") != IMDS_API_VERSION:
            return self._refused(400, "invalid_request", "Invalid api-version")
        answer = self._grant(query)
        if isinstance(answer, str):
            return self._refused(400, "invalid_request", answer)
        # IMDS sends its numbers as text.
        expires_in = str(answer["expires_in"])
        return 200, {**answer, "expires_in": expires_in, "ext_expires_in": expires_in}

    def app_service(self, query: Mapping[str, str], headers: Mapping[str, str]) -> Answer:
        """App Service's identity endpoint's answer to a token request."""
        if headers.get("X-IDENTITY-HEADER") != self.identity_header:
            return self._failed(403, "The X-IDENTITY-HEADER header is missing or not valid.")
        if query.get("api-version") != APP_SERVICE_API_VERSION:
            return self._failed(400, "The api-version is not supported.")
        answer = self._grant(query)
        if isinstance(answer, str):
            return self._failed(400, "Unable to load the proper Managed Identity.")
        del answer["expires_in"]  # App Service says when, not how long
        return 200, answer

    def _grant(self, query: Mapping[str, str]) -> dict[str, Any] | str:
        """A token for the identity the query names, or why there is none."""
        if query.get("resource") != self.resource:
            return (
                f"AADSTS500011: The resource principal named {query.get('resource')} was not found."
            )
        who = query.get("client_id") or SYSTEM_ASSIGNED
        label = self.identities.get(who)
        if label is None or who in self.entra.refuse:
            return "Identity not found"
        answer = self.entra.issue(TOKEN_PREFIX, who, label)
        expires_on = int(self.entra.clock()) + self.entra.token_lifetime_s
        return {
            **answer,
            "expires_on": str(expires_on),
            "resource": self.resource,
            "client_id": who,
        }

    def _refused(self, status: int, error: str, description: str) -> Answer:
        self.entra.refusals.append(description)
        return status, {"error": error, "error_description": description}

    def _failed(self, status: int, message: str) -> Answer:
        self.entra.refusals.append(message)
        return status, {"statusCode": status, "message": message, "correlationId": "fake"}
