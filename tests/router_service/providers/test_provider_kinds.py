"""Provider kinds: the ADAPTERS registry, per-kind config fields, Cloudflare's envelope codes."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any, get_args

import httpx
import pydantic
import pytest

from router_service.clock import SYSTEM_CLOCK
from router_service.config import ProviderConfig
from router_service.errors import UpstreamFailure
from router_service.outcomes import Outcome
from router_service.providers import ADAPTERS, CloudflareAdapter


def test_every_configurable_kind_has_an_adapter() -> None:
    kinds = get_args(ProviderConfig.model_fields["kind"].annotation)
    assert set(kinds) == set(ADAPTERS)
    assert set(kinds) == {
        "openai",
        "gemini",
        "anthropic",
        "cohere",
        "cloudflare",
        "azure",
        "vertex",
    }
    assert all(adapter.kind == kind for kind, adapter in ADAPTERS.items())


def test_cloudflare_needs_an_account_id() -> None:
    with pytest.raises(pydantic.ValidationError, match="account_id"):
        ProviderConfig(
            kind="cloudflare",
            base_url="https://api.cloudflare.com/client/v4",
            keys=["k"],  # type: ignore[list-item]  # a bare key string: the config-file shorthand
        )


def test_anthropic_defaults() -> None:
    # A bare key string: the config-file shorthand.
    config = ProviderConfig(kind="anthropic", base_url="https://api.anthropic.com/v1", keys=["k"])  # type: ignore[list-item]
    assert (config.api_version, config.default_max_tokens) == (None, 4096)


@pytest.fixture
async def cloudflare() -> AsyncIterator[CloudflareAdapter]:
    config = ProviderConfig(
        kind="cloudflare",
        base_url="https://api.cloudflare.com/client/v4",
        account_id="acc",
        keys=["k"],  # type: ignore[list-item]  # a bare key string: the config-file shorthand
    )
    async with httpx.AsyncClient() as http:
        yield CloudflareAdapter("cf", config, http, SYSTEM_CLOCK)


def test_cloudflare_paths(cloudflare: CloudflareAdapter) -> None:
    assert cloudflare.api_base == "https://api.cloudflare.com/client/v4/accounts/acc/ai/v1"


@pytest.mark.parametrize(
    ("body", "outcome"),
    [
        (
            {"success": False, "errors": [{"code": 10000, "message": "Authentication error"}]},
            Outcome.AUTH_INVALID,
        ),
        (
            {"success": False, "errors": [{"code": 3040, "message": "Out of capacity"}]},
            Outcome.RATE_LIMITED,
        ),
        (
            {"success": False, "errors": [{"code": 5007, "message": "No such model"}]},
            Outcome.BAD_REQUEST,
        ),
        (
            {"success": False, "errors": [{"code": 3007, "message": "Request timeout"}]},
            Outcome.UPSTREAM_ERROR,
        ),
        ({"success": False, "errors": []}, Outcome.UPSTREAM_ERROR),
        ({"error": {"code": 429, "message": "slow"}}, Outcome.RATE_LIMITED),
    ],
)
def test_cloudflare_envelope_in_a_200_is_classified_by_its_code(
    cloudflare: CloudflareAdapter, body: dict[str, Any], outcome: Outcome
) -> None:
    with pytest.raises(UpstreamFailure) as caught:
        cloudflare.raise_if_wrapped(body, {})
    assert caught.value.outcome is outcome


def test_a_successful_cloudflare_body_is_not_an_error(cloudflare: CloudflareAdapter) -> None:
    cloudflare.raise_if_wrapped({"success": True, "result": {}, "errors": []}, {})
    cloudflare.raise_if_wrapped({"id": "chatcmpl-1", "choices": []}, {})
