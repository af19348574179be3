"""Provider kinds: the ADAPTERS registry (each kind's module imported when a provider of that kind
is configured), per-kind config fields, Cloudflare's envelope codes."""

from __future__ import annotations

import subprocess
import sys
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
from router_service.telemetry._attributes import provider_name


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
        "bedrock",
    }
    assert all(adapter.kind == kind for kind, adapter in ADAPTERS.items())


# A router whose providers all speak OpenAI's format, started in a fresh interpreter: which
# adapter modules it loaded.
_LOADED_BY_A_START = """
import asyncio, sys
from router_service.config import SwitchboardConfig
from router_service.runtime import Runtime

async def main() -> None:
    provider = {"kind": "openai", "base_url": "http://127.0.0.1:9", "keys": ["sk-x"]}
    config = SwitchboardConfig.model_validate({
        "providers": {"p": provider},
        "models": {"m": {"deployments": [{"provider": "p", "model": "m"}]}},
        "auth": {"open": True},
    })
    runtime = await Runtime.create(config)
    await runtime.aclose()
    print(" ".join(sorted(m for m in sys.modules if m.startswith("router_service.providers._"))))

asyncio.run(main())
"""


def test_a_router_loads_only_the_adapters_of_the_kinds_it_has() -> None:
    done = subprocess.run(
        [sys.executable, "-c", _LOADED_BY_A_START], capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 0, done.stderr
    loaded = set(done.stdout.split())
    assert "router_service.providers._openai" in loaded
    others = {"_gemini", "_anthropic", "_cohere", "_cloudflare", "_azure", "_vertex", "_bedrock"}
    others |= {"_oauth", "_entra_auth", "_google_auth"}  # token exchanges: kinds with credentials
    assert not {f"router_service.providers.{name}" for name in others} & loaded
    # The native formats' mappings; the Responses API's (_responses_map) is OpenAI's own.
    native = {name for name in loaded if name.endswith("_map")}
    assert native <= {"router_service.providers._responses_map"}


def test_adapter_classes_are_importable_by_name() -> None:
    from router_service import providers

    for kind, adapter in ADAPTERS.items():
        assert getattr(providers, adapter.__name__) is adapter
        assert adapter.kind == kind
    with pytest.raises(AttributeError):
        _ = providers.NoSuchAdapter


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
            Outcome.UPSTREAM_ERROR,
        ),
        (
            {"success": False, "errors": [{"code": 971, "message": "Please wait"}]},
            Outcome.RATE_LIMITED,
        ),
        (
            {"success": False, "errors": [{"code": 5005, "message": "no LoRa inference"}]},
            Outcome.UNSUPPORTED_INPUT,
        ),
        (
            {"success": False, "errors": [{"code": 5004, "message": "Invalid data type"}]},
            Outcome.BAD_REQUEST,
        ),
        (
            {"success": False, "errors": [{"code": 5007, "message": "No such model"}]},
            Outcome.UNSUPPORTED_INPUT,
        ),
        (
            {"success": False, "errors": [{"code": 3042, "message": "Invalid model name"}]},
            Outcome.UPSTREAM_ERROR,
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


def test_bedrock_spans_name_the_provider_as_the_genai_conventions_do() -> None:
    assert provider_name("bedrock") == "aws.bedrock"
