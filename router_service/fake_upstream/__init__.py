"""Fault-injecting fake OpenAI-compatible upstream for tests, the offline demo and benchmarks.

async with FakeUpstream() as fake:
    fake.state.set_scenario(Scenario.rate_limited(retry_after="2", times=3), key="k1")
    ...  # point a client at fake.base_url
    await fake.state.wait_for(lambda: fake.state.count(key="k1") == 3)
"""

from ._scenario import Scenario
from ._server import FakeUpstream, create_app, load_scenarios, serve, serving
from ._state import (
    FAKE_AWS_ACCESS_KEY_ID,
    FAKE_AWS_SECRET_ACCESS_KEY,
    CallRecord,
    FakeUpstreamState,
)

__all__ = [
    "FAKE_AWS_ACCESS_KEY_ID",
    "FAKE_AWS_SECRET_ACCESS_KEY",
    "CallRecord",
    "FakeUpstream",
    "FakeUpstreamState",
    "Scenario",
    "create_app",
    "load_scenarios",
    "serve",
    "serving",
]
