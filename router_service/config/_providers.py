"""Providers and their keys: where upstreams are and how keys fall ill and recover."""

from __future__ import annotations

import re
from typing import Literal

from pydantic import (
    Field,
    PrivateAttr,
    ValidationInfo,
    field_validator,
    model_validator,
)

from clients.codec._responses_hosted import is_hosted_tool
from router_service.config._aws import bedrock_key_problem, region_of
from router_service.config._azure import azure_api_version_problem
from router_service.config._base import (
    EndpointURL,
    HttpURL,
    Location,
    Misplaced,
    Secret,
    _Strict,
    as_written,
)
from router_service.config._entra import (
    COGNITIVE_SERVICES_SCOPE,
    DEFAULT_AUTHORITY_HOST,
    IMDS_ENDPOINT,
    azure_key_problems,
    is_managed_identity_key,
)
from router_service.config._key_files import KEY_FILE_KINDS, key_beside_config, listed_twice
from router_service.config._managed_identity import ARC_KEY_DIRECTORY, IdentityProtocol
from router_service.config._prices import PriceConfig
from router_service.config._secrets import SECRET_HEADER
from router_service.config._sendable import unsendable
from router_service.config._vertex_check import vertex_endpoint, vertex_problems

# Other servers' fields on a caller's messages that an OpenAI-format server may take or refuse
# (router_service/providers/_foreign_fields.py).
ForeignField = Literal["reasoning_content", "reasoning", "reasoning_details", "cache_control"]

# What a KeyConfig field name looks like (a mapping key that does not is a key YAML mis-read).
_FIELD_NAME = re.compile(r"[a-z_]+")


class KeyConfig(_Strict):
    """One upstream API key of a provider."""

    key: Secret = Field(description="The key; use ${ENV_VAR} to keep it out of the file.")
    max_in_flight: int | None = Field(
        default=None, ge=1, description="Concurrent requests this key may carry; unset: no limit."
    )
    weight: float = Field(default=1.0, gt=0, description="Relative share among usable keys.")
    rpm: int | None = Field(default=None, ge=1, description="Requests per minute; unset: none.")
    tpm: int | None = Field(
        default=None,
        ge=1,
        description="Tokens per minute, estimated before a call and corrected from its usage.",
    )


class TimeoutsConfig(_Strict):
    """Upstream timeouts of one provider (seconds)."""

    connect_s: float = Field(
        default=5.0,
        gt=0,
        description="TCP + TLS connect (any `http.transport`: not across a stall of the "
        "router's own loop; a connect done meanwhile is connected, not CONNECT_FAILED).",
    )
    first_chunk_s: float = Field(
        default=30.0, gt=0, description="Until response headers / the first stream chunk."
    )
    stall_s: float = Field(default=45.0, gt=0, description="Longest silence inside a stream.")
    total_s: float = Field(default=600.0, gt=0, description="A whole non-streaming request.")


class ProviderConfig(_Strict):
    """An upstream account family: base URL, adapter kind, key pool."""

    kind: Literal[
        "openai", "gemini", "anthropic", "cohere", "cloudflare", "azure", "vertex", "bedrock"
    ] = Field(default="openai", description="Adapter: the wire format the provider speaks.")
    base_url: HttpURL = Field(
        description="API base, e.g. https://api.openai.com/v1 (see README, Providers, per kind)"
    )
    api_version: str | None = Field(
        default=None,
        description="anthropic: the `anthropic-version` header; unset: 2023-06-01. azure: the "
        "`api-version` query (YYYY-MM-DD, or YYYY-MM-DD-preview); unset: 2024-10-21. vertex "
        "with publisher anthropic: the body's `anthropic_version`; unset: vertex-2023-10-16.",
    )
    default_max_tokens: int = Field(
        default=4096,
        ge=1,
        description="anthropic (and vertex's Claude): `max_tokens` when the caller sets none "
        "(the API requires it).",
    )
    account_id: str | None = Field(
        default=None, description="cloudflare (required): the account id in the API path."
    )
    stream_usage: bool = Field(
        default=True,
        description="openai, azure, cloudflare: send `stream_options: {include_usage: true}` "
        "with every stream, so that its usage (tokens, budgets, cost) is the one reported; "
        "false for a server that rejects `stream_options` (the caller's own are passed on). "
        "azure: only with an api_version that takes them (2024-08-01-preview or later).",
    )
    custom_tools: bool | None = Field(
        default=None,
        description="openai, azure, cloudflare (only): the upstream takes OpenAI's custom tools "
        "(false: emulated as functions). Unset: api.openai.com and azure do; others emulate.",
    )
    hosted_tools: list[str] | None = Field(
        default=None,
        description="openai (only): OpenAI's hosted tool types (`code_interpreter`, "
        "`web_search`…) this OpenAI-compatible server runs on its chat completions API, passed "
        "as sent: a request declaring one may be routed to it. Unset: `code_interpreter` at "
        "Groq's API (api.groq.com), none elsewhere (such requests go to Responses API "
        "deployments).",
    )
    message_fields: list[ForeignField] | None = Field(
        default=None,
        description="openai, azure, cloudflare (only): which fields of other servers' that a "
        "caller's messages carry this server takes (`reasoning_content`, `reasoning`, "
        "`reasoning_details`, `cache_control`); the others are taken out. Unset: by kind and "
        'base URL host (README, Providers: "each field goes only where it is taken").',
    )
    max_stop_sequences: int | None = Field(
        default=None,
        ge=1,
        description="The most stop sequences the upstream takes; the router sends the first "
        "that many and enforces the rest on the answer. Unset: the kind's cap (openai, azure, "
        "cloudflare 4; gemini, vertex's Gemini, cohere 5; anthropic, bedrock none).",
    )
    project: str | None = Field(
        default=None,
        description="vertex (required, but with express mode API keys: unused): the Google "
        "Cloud project id in the path.",
    )
    location: str | None = Field(
        default=None,
        description="vertex (required, but with express mode API keys: unset or `global`): "
        "the region (us-central1…) or `global`; it names the endpoint "
        "(https://LOCATION-aiplatform.googleapis.com) unless base_url is set.",
    )
    publisher: Literal["google", "anthropic"] = Field(
        default="google",
        description="vertex: whose models the provider's deployments are: Gemini "
        "(generateContent) or Claude (rawPredict, Anthropic's Messages bodies).",
    )
    authority_host: HttpURL = Field(
        default=DEFAULT_AUTHORITY_HOST,
        description="azure with Entra ID service principal or workload identity keys: where "
        "their tokens are issued, `{authority_host}/{tenant_id}/oauth2/v2.0/token` (a sovereign "
        "cloud's: https://login.microsoftonline.us, https://login.chinacloudapi.cn; on AKS "
        "`${AZURE_AUTHORITY_HOST}`).",
    )
    entra_scope: str = Field(
        default=COGNITIVE_SERVICES_SCOPE,
        description="azure with Entra ID identity keys: the scope their tokens are asked for "
        "(a sovereign cloud's: https://cognitiveservices.azure.us/.default…); a managed "
        "identity's resource is the scope without `/.default`.",
    )
    identity_endpoint: EndpointURL = Field(
        default=IMDS_ENDPOINT,
        description="azure with managed-identity keys: where their tokens come from: the "
        "Instance Metadata Service (VMs, AKS nodes), or on App Service, Container Apps and "
        "Functions the platform's `${IDENTITY_ENDPOINT}` (with identity_header).",
    )
    identity_header: Secret | None = Field(
        default=None,
        description="azure with managed-identity keys on App Service, Container Apps or "
        "Functions: `${IDENTITY_HEADER}`, sent as X-IDENTITY-HEADER (api-version 2019-08-01); "
        "with identity_protocol app-service-2017, `${MSI_SECRET}`; unset or empty: "
        "identity_endpoint is IMDS's (`Metadata: true`, 2018-02-01).",
    )
    identity_protocol: IdentityProtocol | None = Field(
        default=None,
        description="azure with managed-identity keys: how identity_endpoint is asked: `imds`, "
        "`app-service` (2019-08-01), `app-service-2017` (MSI_ENDPOINT/MSI_SECRET), "
        "`cloud-shell`, `azure-arc`; unset: app-service with an identity_header, else imds.",
    )
    arc_key_directory: str = Field(
        default=ARC_KEY_DIRECTORY,
        description="azure with identity_protocol azure-arc: the only directory whose key files "
        "the Arc agent's challenge may name (the agent's own, on Linux).",
    )
    region: str | None = Field(
        default=None,
        description="bedrock: the AWS region IAM keys are signed for; unset: read from "
        "base_url (https://bedrock-runtime.<region>.amazonaws.com).",
    )
    keys: list[KeyConfig] = Field(min_length=1, description="The key pool.")
    headers: dict[str, str] = Field(default_factory=dict, description="Extra request headers.")
    timeouts: TimeoutsConfig = Field(default_factory=TimeoutsConfig)
    thread_protection: Literal["provider-ban", "model-skip", "off"] = Field(
        default="model-skip",
        description="What a failure does to a conversation: ban this provider for the session, "
        "skip only the failing deployment, or nothing.",
    )
    max_sessions: int = Field(
        default=1,
        ge=1,
        description="provider-ban only: concurrent sessions this provider serves at once.",
    )
    queue_timeout_s: float = Field(
        default=5.0,
        ge=0,
        description="How long a request waits, in arrival order, when every key is at its limit.",
    )
    price: PriceConfig | None = Field(
        default=None,
        description="The price of its deployments that set none of their own (a self-hosted "
        "server's cost per token, one price for every model of a reseller).",
    )
    # The client secrets of an azure provider's service principal keys and the private keys of
    # a vertex provider's service accounts (read at load, from a file too): secrets the
    # configured key strings do not hold as they are.
    _credential_secrets: list[str] = PrivateAttr(default_factory=list)
    # A vertex provider whose keys are express mode API keys (told apart at load).
    _vertex_express: bool = PrivateAttr(default=False)

    @property
    def vertex_express(self) -> bool:
        """A vertex provider of express mode API keys: its calls go to express mode's URLs."""
        return self._vertex_express

    def secrets(self) -> list[str]:
        """What must never reach a caller or a log: the keys, and the values of credential
        headers (`x-portkey-api-key`, `cf-aig-authorization: Bearer …`; the token alone too,
        which an upstream may echo without its scheme)."""
        found = [key.key.get_secret_value() for key in self.keys]
        if self.kind == "azure":  # `managed-identity` names an identity: nothing secret in it
            found = [key for key in found if not is_managed_identity_key(key)]
        if self.identity_header is not None:
            found.append(self.identity_header.get_secret_value())
        if self.kind == "bedrock":  # IAM credentials: the session token travels on its own
            found += [part for key in found if ":" in key for part in key.split(":")[1:]]
        found += self._credential_secrets  # a principal's client secret, an account's key
        for name, value in self.headers.items():
            if SECRET_HEADER.search(name):
                token = value.strip().partition(" ")[2].strip()  # after a scheme (`Bearer`)
                found += [value, token] if token else [value]
        return found

    @field_validator("keys", mode="before")
    @classmethod
    def _plain_keys(cls, value: object) -> object:
        # A bare string in the list is shorthand for {key: "..."}.
        if not isinstance(value, list):
            return value
        for i, item in enumerate(value):
            if isinstance(item, dict) and any(not _FIELD_NAME.fullmatch(str(k)) for k in item):
                # YAML read an unquoted key with ": " in it, or a trailing ":" (IAM credentials
                # `ID:SECRET:`), as a mapping: its name would be quoted as an unknown field.
                # (A misspelt field, `kye:`, is a word, and gets pydantic's own message.)
                raise ValueError(
                    f"keys[{i}] reads as a mapping, not a key: quote a key that holds ': ' or "
                    "ends with ':'"
                )
        return [{"key": v} if isinstance(v, str) else v for v in value]

    @model_validator(mode="before")
    @classmethod
    def _vertex_endpoint(cls, data: object) -> object:
        # A vertex provider's base_url follows from its location unless it is set.
        if isinstance(data, dict) and data.get("kind") == "vertex" and "base_url" not in data:
            return {**data, "base_url": vertex_endpoint(data.get("location"))}
        return data

    @field_validator("keys")
    @classmethod
    def _key_files_beside_config(cls, keys: list[KeyConfig], info: ValidationInfo) -> object:
        if info.data.get("kind") not in KEY_FILE_KINDS:
            return keys
        return [key_beside_config(key, info) for key in keys]

    @field_validator("identity_header", mode="before")
    @classmethod
    def _no_identity_header(cls, value: object) -> object:
        # `${IDENTITY_HEADER:-}` off App Service: no header, the endpoint is IMDS's.
        return None if isinstance(value, str) and not value.strip() else value

    @field_validator("thread_protection", mode="before")
    @classmethod
    def _off(cls, value: object) -> object:
        # YAML 1.1 reads a bare `off` (`no`, `false`) as false: what its list of values says.
        return "off" if value is False else value

    @field_validator("api_version", "headers", mode="before")
    @classmethod
    def _dated(cls, value: object) -> object:
        # YAML reads a bare 2024-10-21 as a date: the version (`anthropic-version:`) written.
        return as_written(value)

    @field_validator("headers")
    @classmethod
    def _trimmed_headers(cls, value: dict[str, str]) -> dict[str, str]:
        # As every secret is (`_base._trimmed`): a token's file's last newline would break the
        # request's header block, every call's.
        return {name: text.strip() for name, text in value.items()}

    @model_validator(mode="after")
    def _kind_fields(self) -> ProviderConfig:
        sent = [key.key.get_secret_value() for key in self.keys]
        if twice := listed_twice(sent):
            raise Misplaced(twice)
        identity = self.identity_header
        header = identity.get_secret_value() if identity is not None else None
        if problems := unsendable(self.kind, sent, self.headers, identity_header=header):
            raise Misplaced(problems)
        if self.kind == "cloudflare" and not self.account_id:
            raise Misplaced([(("account_id",), "a cloudflare provider needs account_id")])
        if self.custom_tools is not None and self.kind not in _OPENAI_FORMAT_KINDS:
            message = f"only kinds openai, azure and cloudflare read it, not {self.kind}"
            raise Misplaced([(("custom_tools",), message + " (custom tools are emulated)")])
        if self.hosted_tools is not None:
            self._hosted_tools()
        if self.message_fields is not None and self.kind not in _OPENAI_FORMAT_KINDS:
            message = f"only kinds openai, azure and cloudflare read it, not {self.kind}"
            raise Misplaced([(("message_fields",), message)])
        if self.kind == "azure":
            self._azure_fields()
        if self.kind == "vertex":
            keys = vertex_problems(self)
            self._credential_secrets, self._vertex_express = keys.secrets, keys.express
        if self.kind == "bedrock":
            self._bedrock_fields()
        return self

    def _hosted_tools(self) -> None:
        if self.kind != "openai":
            message = f"only kind openai reads it, not {self.kind} (hosted tools go to "
            raise Misplaced([(("hosted_tools",), message + "deployments with api: responses)")])
        problems: list[tuple[Location, str]] = [
            (("hosted_tools", i), f"{kind!r} is not one of OpenAI's hosted tools")
            for i, kind in enumerate(self.hosted_tools or ())
            if not is_hosted_tool(kind)
        ]
        if problems:
            raise Misplaced(problems)

    def _azure_fields(self) -> None:
        if self.api_version is not None:
            problem = azure_api_version_problem(self.api_version)
            if problem:
                raise Misplaced([(("api_version",), problem)])
        problems, self._credential_secrets = azure_key_problems(self)
        if problems:
            raise Misplaced(problems)
        if re.search(r"/openai(?:/|$)", self.base_url):
            # The adapter adds `/openai/deployments/…`; the v1 API is another kind's.
            message = "an azure provider's base_url is the resource's endpoint (https://"
            message += "RESOURCE.openai.azure.com), without /openai/…; for Azure's /openai/v1 API"
            raise Misplaced([(("base_url",), message + " use kind openai")])

    def _bedrock_fields(self) -> None:
        problems: list[tuple[Location, str]] = []
        if self.region is None and region_of(self.base_url) is None:
            message = "a bedrock provider needs `region` (or a base_url naming one, like "
            problems.append(
                (("region",), message + "https://bedrock-runtime.us-east-1.amazonaws.com)")
            )
        for i, key in enumerate(self.keys):
            problem = bedrock_key_problem(key.key.get_secret_value())
            if problem is not None:
                problems.append((("keys", i, "key"), problem))
        if problems:
            raise Misplaced(problems)


_OPENAI_FORMAT_KINDS = ("openai", "azure", "cloudflare")  # custom tools: the rest emulate them


class HttpConfig(_Strict):
    max_connections: int = Field(default=1000, ge=1, description="Upstream connections, all hosts.")
    # Bounds on a successful answer, decoded (KiBs of gzip can decode to GiBs): past one, the
    # upstream's failure (upstream_error: the deployment cools, not the key), connection closed.
    # A unary one's takes the largest valid answer: OpenAI's embeddings of 2,048 inputs × 3,072
    # floats in JSON are ~80 MiB (~110 at 4,096 dimensions, more written indented).
    max_response_bytes: int = Field(default=256 << 20, ge=1024, description="A unary answer.")
    max_event_bytes: int = Field(default=16 << 20, ge=1024, description="One event of a stream.")
    max_keepalive_connections: int = Field(default=200, ge=0)
    keepalive_expiry_s: float = Field(default=30.0, gt=0)
    transport: Literal["lean", "aiohttp", "httpx"] = Field(
        default="lean",
        description="What carries the upstream HTTP under httpx's API: Switchboard's own "
        "HTTP/1.1 client on asyncio and httptools (default; through the router 1.3x aiohttp's "
        "throughput and 1.7x httpcore's: benchmarks/README.md, HTTP transport), aiohttp's "
        "connection pool, or httpx's own (httpcore). With aiohttp, max_keepalive_connections "
        "does not apply: idle connections are capped only by max_connections and "
        "keepalive_expiry_s.",
    )
