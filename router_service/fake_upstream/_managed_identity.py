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

- `GET /msi/token/2017`, App Service's older `MSI_ENDPOINT`: it wants `secret` equal to
  `identity_header` and `api-version=2017-09-01`, names a user-assigned identity `clientid`,
  and says `expires_on` as a UTC date (`1/16/2020 5:24:12 AM +00:00`, Windows' way);
- `POST /cloudshell/token`, Cloud Shell's `MSI_ENDPOINT`: the form's `resource`, `Metadata:
  true`, the system-assigned identity only;
- `GET /arc/token`, Azure Arc's agent: `Metadata: true` and `api-version=2020-06-01`; without
  `Authorization` it writes a fresh secret to a new `.key` file in `arc_key_directory` and
  answers 401 `WWW-Authenticate: Basic realm=<that file>`; with `Authorization: Basic
  <secret>` it answers as IMDS does.

IMDS and App Service take a user-assigned identity by `object_id` too, and by its resource id
(`msi_res_id` to IMDS, `mi_res_id` to App Service), as `assign` gave them.

Tests assign identities to the host (`ManagedIdentities.assign`: a user-assigned identity's
client id, or None for the system-assigned one, and the label its calls are recorded under).
The tokens are Entra's (`EntraOAuth.issue`), so the Azure routes take them as they take a
service principal's, and they expire on its clock; `exchanges` records each grant (the client
id, or "system-assigned"), `refusals` each refusal's description.
"""

from __future__ import annotations

import secrets
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from ._entra import EntraOAuth

IMDS_PATH = "/metadata/identity/oauth2/token"
APP_SERVICE_PATH = "/msi/token"
IMDS_API_VERSION = "2018-02-01"
APP_SERVICE_API_VERSION = "2019-08-01"
APP_SERVICE_2017_PATH = "/msi/token/2017"
CLOUD_SHELL_PATH = "/cloudshell/token"
ARC_PATH = "/arc/token"
# The query parameters of each endpoint's ways of naming a user-assigned identity.
_IMDS_IDS = ("client_id", "object_id", "msi_res_id")
_APP_SERVICE_IDS = ("client_id", "object_id", "mi_res_id")
COGNITIVE_SERVICES = "https://cognitiveservices.azure.com"
SYSTEM_ASSIGNED = "system-assigned"
TOKEN_PREFIX = "eyJ0eXAiOiJKV1QiLCJhbGciOiJSUzI1NiJ9.fake-msi-"

Answer = tuple[int, dict[str, Any]]


@dataclass
class ManagedIdentities:
    """The identities assigned to the fake host, and the header App Service's endpoint wants."""

    entra: EntraOAuth
    identities: dict[str, str] = field(default_factory=dict)  # client id → label
    aliases: dict[str, str] = field(default_factory=dict)  # object or resource id → client id
    identity_header: str = "fake-identity-header-8d3f"
    resource: str = COGNITIVE_SERVICES
    arc_key_directory: Path | None = None  # where Arc's challenge writes its key files
    arc_secret: str | None = None  # the content of the last key file written

    def assign(
        self,
        client_id: str | None,
        label: str,
        *,
        object_id: str | None = None,
        resource_id: str | None = None,
    ) -> None:
        """Give the host an identity (None: the system-assigned one), known by its object and
        resource ids too when given; calls made with its tokens are recorded under `label`."""
        self.identities[client_id or SYSTEM_ASSIGNED] = label
        for other in (object_id, resource_id):
            if client_id is not None and other is not None:
                self.aliases[other.lower()] = client_id

    def imds(self, query: Mapping[str, str], headers: Mapping[str, str]) -> Answer:
        """IMDS's answer to a token request."""
        if headers.get("Metadata") != "true":
            return self._refused(400, "bad_request_102", "Required metadata header not specified")
        if query.get("api-version") != IMDS_API_VERSION:
            return self._refused(400, "invalid_request", "Invalid api-version")
        answer = self._grant(query, _IMDS_IDS)
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
        answer = self._grant(query, _APP_SERVICE_IDS)
        if isinstance(answer, str):
            return self._failed(400, "Unable to load the proper Managed Identity.")
        del answer["expires_in"]  # App Service says when, not how long
        return 200, answer

    def app_service_2017(self, query: Mapping[str, str], headers: Mapping[str, str]) -> Answer:
        """App Service's 2017-09-01 endpoint (MSI_ENDPOINT): `secret`, `clientid`, a date."""
        if headers.get("secret") != self.identity_header:
            return self._failed(401, "The secret header is missing or not valid.")
        if query.get("api-version") != "2017-09-01":
            return self._failed(400, "The api-version is not supported.")
        answer = self._grant({**query, "client_id": query.get("clientid", "")}, ("client_id",))
        if isinstance(answer, str):
            return self._failed(400, "Unable to load the proper Managed Identity.")
        del answer["expires_in"]
        when = datetime.fromtimestamp(int(answer["expires_on"]), UTC)
        hour = when.hour % 12 or 12
        answer["expires_on"] = (
            f"{when.month}/{when.day}/{when.year} {hour}:{when.minute:02}:{when.second:02} "
            f"{'PM' if when.hour >= 12 else 'AM'} +00:00"
        )
        return 200, answer

    def cloud_shell(self, form: Mapping[str, str], headers: Mapping[str, str]) -> Answer:
        """Cloud Shell's endpoint: a POSTed form, the signed-in user's identity only."""
        if headers.get("Metadata") != "true":
            return self._refused(400, "bad_request_102", "Required metadata header not specified")
        answer = self._grant(form, ())
        if isinstance(answer, str):
            return self._refused(400, "invalid_request", answer)
        return 200, {**answer, "expires_in": str(answer["expires_in"])}

    def arc(self, query: Mapping[str, str], headers: Mapping[str, str]) -> tuple[Answer, str]:
        """Azure Arc's agent: a challenge naming a fresh key file, then the token for its
        content. Returns the answer and the WWW-Authenticate header ("" for none)."""
        if headers.get("Metadata") != "true" or query.get("api-version") != "2020-06-01":
            return self._refused(400, "invalid_request", "Invalid request"), ""
        given = headers.get("Authorization")
        if given is None:
            assert self.arc_key_directory is not None, "set arc_key_directory first"
            self.arc_secret = secrets.token_hex(32)
            key_file = self.arc_key_directory / f"{secrets.token_hex(8)}.key"
            key_file.write_text(self.arc_secret)
            return (401, {"error": "unauthorized"}), f"Basic realm={key_file}"
        if self.arc_secret is None or given != f"Basic {self.arc_secret}":
            return self._refused(401, "unauthorized", "Invalid key"), ""
        answer = self._grant(query, ())
        if isinstance(answer, str):
            return self._refused(400, "invalid_request", answer), ""
        return (200, {**answer, "expires_in": str(answer["expires_in"])}), ""

    def _grant(self, query: Mapping[str, str], ids: tuple[str, ...]) -> dict[str, Any] | str:
        """A token for the identity the query names (by one of `ids`), or why there is none."""
        if query.get("resource") != self.resource:
            return (
                f"AADSTS500011: The resource principal named {query.get('resource')} was not found."
            )
        named = [name for name in ids if query.get(name)]
        if len(named) > 1:
            return "Multiple identity ids given"
        who = SYSTEM_ASSIGNED
        if named and named[0] == "client_id":
            who = query["client_id"]
        elif named:
            who = self.aliases.get(query[named[0]].lower(), "unknown")
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
