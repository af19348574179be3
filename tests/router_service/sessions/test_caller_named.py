"""`prompt_cache_key` and `safety_identifier` (OpenAI's successors of `user`) name a
conversation as `user` does, the first of them a request sets in this order: `prompt_cache_key`
(OpenAI routes requests that share it together), `user`, `safety_identifier`; an `x-session-id`
before all. Two turns that set the same winning one are one conversation, however else their
openings differ (the real OpenAI SDK through the edge, chat completions and Responses)."""

from __future__ import annotations

from typing import Any

import openai
import pytest

from router_service.clock import ManualClock
from router_service.fake_upstream import FakeUpstream, Scenario
from tests.conftest import StartRouter
from tests.router_service.sessions.test_sticky_per_model import TRANSIENT_S, config

# (what the first turn sets, what the second sets): the second names the first's conversation.
SAME = [
    ({"prompt_cache_key": "thread-1"}, {"prompt_cache_key": "thread-1"}),
    ({"safety_identifier": "end-user-1"}, {"safety_identifier": "end-user-1"}),
    # prompt_cache_key before user, user before safety_identifier
    ({"prompt_cache_key": "t-1", "user": "alice"}, {"prompt_cache_key": "t-1", "user": "bob"}),
    ({"user": "alice", "safety_identifier": "s-1"}, {"user": "alice", "safety_identifier": "s-2"}),
]
# ... and those that name another one.
OTHER = [
    ({"prompt_cache_key": "thread-1"}, {"prompt_cache_key": "thread-2"}),
    ({"prompt_cache_key": "t-1", "user": "alice"}, {"prompt_cache_key": "t-2", "user": "alice"}),
    ({"safety_identifier": "s-1"}, {"user": "s-1"}),  # a field's own names
]


async def _ask(sdk: openai.AsyncOpenAI, api: str, text: str, fields: dict[str, str]) -> str:
    """The deployment that answered."""
    if api == "chat":
        messages: Any = [{"role": "user", "content": text}]
        raw: Any = await sdk.chat.completions.with_raw_response.create(
            model="chat", messages=messages, extra_body=fields
        )
    else:
        raw = await sdk.responses.with_raw_response.create(
            model="chat", input=text, store=False, extra_body=fields
        )
    return str(raw.headers["x-switchboard-deployment"])


@pytest.mark.parametrize("api", ["chat", "responses"])
@pytest.mark.parametrize(
    ("first", "second", "same"), [(*s, True) for s in SAME] + [(*o, False) for o in OTHER]
)
async def test_the_callers_fields_name_its_conversation(
    fake: FakeUpstream,
    start_router: StartRouter,
    start_edge: Any,
    api: str,
    first: dict[str, str],
    second: dict[str, str],
    same: bool,
) -> None:
    clock = ManualClock()
    router = await start_router(config(fake.base_url, {"backend": "memory"}), clock=clock)
    edge = await start_edge(router)
    async with openai.AsyncOpenAI(base_url=f"{edge.base_url}/v1", api_key="sk-x") as sdk:
        fake.state.set_scenario(Scenario.server_error(500, times=1), model="model-a")
        assert await _ask(sdk, api, "Summarize the report.", first) == "beta/model-b"
        await router.runtime.afterwork.drain()  # the sticky write follows the answer
        clock.advance(TRANSIENT_S + 1)  # alpha serves again: only the sticky choice holds
        answered = await _ask(sdk, api, "Translate the memo.", second)  # another opening
    assert answered == ("beta/model-b" if same else "alpha/model-a")
