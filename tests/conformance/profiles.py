"""One profile per adapter kind: how to point a provider of that kind at the fake upstream, and
which reader (wire_readers.py) reads back what an upstream request carried.

Adding a provider means adding its adapter, a profile here (and a reader there when its
format is new); the conformance tests run unchanged against every profile.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from router_service.fake_upstream import FakeUpstream
from tests.conformance.wire_readers import (
    Body,
    Seen,
    read_anthropic,
    read_bedrock,
    read_cohere,
    read_gemini,
    read_openai,
)
from tests.conftest import HANG_GUARD
from tests.entra_keys import entra_keys, entra_settings
from tests.vertex_keys import PROJECT, express_keys, vertex_keys


def _as_given(fake: FakeUpstream, labels: list[str]) -> list[str]:
    return labels


def _no_settings(fake: FakeUpstream) -> dict[str, Any]:
    return {}


@dataclass(frozen=True)
class Profile:
    kind: str
    base_url: Callable[[FakeUpstream], str]
    read: Callable[[Body], Seen]
    extra: dict[str, Any] = field(default_factory=dict)  # further ProviderConfig fields
    overloaded_status: int = 503  # how the provider says it is overloaded
    embeds: bool = True
    # The upstream model of group `vectors`, and the `dimensions` its test asks for: one the
    # model gives (Bedrock's embeddings API depends on the model family its id names).
    embedding_model: str = "e-up"
    embedding_dimensions: int = 4
    # Content part kinds beyond text and images its format takes (what reaches the provider).
    takes: frozenset[str] = frozenset({"file", "input_audio", "file_id"})
    # The configured keys for the labels the fake records calls under (the labels themselves,
    # but for kinds whose keys are credentials the fake must trust first).
    key_secrets: Callable[[FakeUpstream, list[str]], list[str]] = _as_given
    name: str = ""  # the profile's name when one kind has several (default: the kind)
    speaks: str = ""  # whose format its "cannot take" messages name (default: the kind)
    links_images: bool = True  # takes an image by its http(s) URL (not only as data)
    # Further ProviderConfig fields that point at the fake (where tokens are issued).
    fake_settings: Callable[[FakeUpstream], dict[str, Any]] = _no_settings

    def provider(self, fake: FakeUpstream, keys: list[str]) -> dict[str, Any]:
        secrets = self.key_secrets(fake, keys)
        settings = {**self.extra, **self.fake_settings(fake), "timeouts": dict(HANG_GUARD)}
        return {"kind": self.kind, "base_url": self.base_url(fake), "keys": secrets, **settings}

    def secret(self, fake: FakeUpstream, label: str) -> str:
        """The configured key the fake records under `label` (what its fingerprint is of)."""
        return self.key_secrets(fake, [label])[0]

    @property
    def says(self) -> str:
        return self.speaks or self.kind

    def __str__(self) -> str:
        return self.name or self.kind


PROFILES: list[Profile] = [
    Profile("openai", lambda fake: fake.base_url, read_openai),
    Profile(
        "gemini",
        lambda fake: f"{fake.url}/v1beta",
        read_gemini,
        takes=frozenset({"file", "input_audio"}),
    ),
    Profile(
        "anthropic",
        lambda fake: fake.base_url,
        read_anthropic,
        extra={"api_version": "2023-06-01"},
        overloaded_status=529,
        embeds=False,
        takes=frozenset({"file"}),  # PDFs and plain text: Claude has no audio input
    ),
    Profile("cohere", lambda fake: fake.url, read_cohere, takes=frozenset()),
    Profile(
        "cloudflare",
        lambda fake: f"{fake.url}/client/v4",
        read_openai,
        extra={"account_id": "acct-123"},
    ),
    # The deployment names the model in the path; the body is OpenAI's.
    Profile("azure", lambda fake: fake.url, read_openai, extra={"api_version": "2024-10-21"}),
    # The same API, its keys Microsoft Entra ID service principals: their client credentials
    # are exchanged at the fake's token endpoint for the bearer tokens the calls carry.
    Profile(
        "azure",
        lambda fake: fake.url,
        read_openai,
        extra={"api_version": "2024-10-21"},
        key_secrets=entra_keys,
        fake_settings=entra_settings,
        name="azure-entra",
    ),
    # Gemini's and Claude's bodies at Vertex AI's paths; the keys are service account keys,
    # exchanged at the fake's token endpoint for the bearer tokens the calls carry.
    Profile(
        "vertex",
        lambda fake: fake.url,
        read_gemini,
        extra={"project": PROJECT, "location": "us-central1"},
        takes=frozenset({"file", "input_audio"}),
        key_secrets=vertex_keys,
        speaks="gemini",
    ),
    Profile(
        "vertex",
        lambda fake: fake.url,
        read_anthropic,
        extra={"project": PROJECT, "location": "europe-west1", "publisher": "anthropic"},
        overloaded_status=529,
        embeds=False,
        takes=frozenset({"file"}),
        key_secrets=vertex_keys,
        name="vertex-anthropic",
        speaks="anthropic",
        links_images=False,  # Claude on Vertex refuses URL sources: images as data only
    ),
    # Vertex AI express mode: Gemini's bodies at express mode's URLs (no project, no
    # location), the keys express mode API keys sent in `x-goog-api-key`; no embeddings API.
    Profile(
        "vertex",
        lambda fake: fake.url,
        read_gemini,
        embeds=False,
        takes=frozenset({"file", "input_audio"}),
        key_secrets=express_keys,
        name="vertex-express",
        speaks="gemini",
    ),
    Profile(
        "bedrock",
        lambda fake: fake.url,
        read_bedrock,
        extra={"region": "us-east-1"},
        embedding_model="amazon.titan-embed-text-v2:0",
        embedding_dimensions=256,
        takes=frozenset({"file"}),  # documents; Converse takes no audio
        links_images=False,  # images as data (or s3://), never fetched from a link
    ),
]
BY_KIND = {str(profile): profile for profile in PROFILES}

# Each kind fails over to another kind once and is failed over to once; Anthropic → Gemini is
# the issue's own example.
FALLBACK_PAIRS: list[tuple[Profile, Profile]] = [
    (BY_KIND[a], BY_KIND[b])
    for a, b in (
        ("anthropic", "gemini"),
        ("gemini", "cohere"),
        ("cohere", "cloudflare"),
        ("cloudflare", "azure"),
        ("azure", "azure-entra"),
        ("azure-entra", "vertex"),
        ("vertex", "vertex-anthropic"),
        ("vertex-anthropic", "vertex-express"),
        ("vertex-express", "openai"),
        ("openai", "bedrock"),
        ("bedrock", "anthropic"),
    )
]

KEYS = ["k-1", "k-2"]


def conformance_config(fake: FakeUpstream, profile: Profile, **sections: Any) -> dict[str, Any]:
    """A provider of the profile's kind with two keys (`up`), an OpenAI-compatible backup, and:
    `solo` (up only), `chain` (up, then backup), `vectors` (up's embedding model)."""
    config: dict[str, Any] = {
        "providers": {
            "up": profile.provider(fake, list(KEYS)),
            "backup": {
                "kind": "openai",
                "base_url": fake.base_url,
                "keys": ["k-backup"],
                "timeouts": dict(HANG_GUARD),
            },
        },
        "models": {
            "solo": {"deployments": [{"provider": "up", "model": "m-up"}]},
            "chain": {
                "deployments": [
                    {"provider": "up", "model": "m-up"},
                    {"provider": "backup", "model": "m-backup"},
                ]
            },
            "vectors": {"deployments": [{"provider": "up", "model": profile.embedding_model}]},
        },
        "server": {"port": 0},
        "streams": {"heartbeat_s": 5},
        "auth": {"open": True},
    }
    config.update(sections)
    return config


def mixed_config(fake: FakeUpstream, first: Profile, second: Profile) -> dict[str, Any]:
    """Group `mixed`: a deployment of `first`'s kind, then one of `second`'s."""
    return {
        "providers": {
            "first": first.provider(fake, ["k-first"]),
            "second": second.provider(fake, ["k-second"]),
        },
        "models": {
            "mixed": {
                "deployments": [
                    {"provider": "first", "model": "m-first"},
                    {"provider": "second", "model": "m-second"},
                ]
            }
        },
        "server": {"port": 0},
        "auth": {"open": True},
    }
