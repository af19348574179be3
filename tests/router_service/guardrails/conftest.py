from __future__ import annotations

from typing import Any

import pytest

from router_service.fake_upstream import FakeUpstream
from tests.conftest import StartRouter
from tests.router_service.auth.helpers import client, guarded_config


@pytest.fixture
async def keys_router(fake: FakeUpstream, start_router: StartRouter) -> Any:
    """A router whose answers have private and API keys redacted (client key `sk-bot-key`)."""
    rule = {"name": "answer-keys", "detect": ["private_key", "api_key"], "action": "redact"}
    config = guarded_config(
        fake.base_url, client("bot", "sk-bot-key"), guardrails=[rule | {"apply_to": ["response"]}]
    )
    return await start_router(config)
