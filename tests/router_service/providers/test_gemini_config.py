"""A Gemini caller's own `generationConfig` (from its extras) and the one mapped from OpenAI's
fields, together: merged field by field and through nested objects, the caller's value winning
where both set one; schemas and lists are values, taken whole."""

from __future__ import annotations

from typing import Any

import orjson
import pytest

from clients.switchboard.v1 import chat_pb2
from clients.switchboard.v1 import router_service_pb2 as pb
from router_service.errors import UpstreamFailure
from router_service.fake_upstream import FakeUpstream
from router_service.outcomes import Outcome
from router_service.providers import _gemini_map as G
from router_service.providers._gemini_config import refined_config
from tests.conftest import StartRouter

USER = [{"role": "user", "content": "x"}]
SCHEMA = {"type": "object", "properties": {"a": {"type": "string"}}}


def test_the_callers_fields_win_and_ours_stay_beside_them() -> None:
    out = G.request_body(
        {
            "messages": USER,
            "temperature": 0.5,
            "max_tokens": 64,
            "stop": ["END"],
            "response_format": {"type": "json_schema", "json_schema": {"schema": SCHEMA}},
            "generationConfig": {
                "maxOutputTokens": 1024,
                "stopSequences": ["STOP"],
                "thinkingConfig": {"thinkingBudget": 0},
            },
        }
    )
    assert out["generationConfig"] == {
        "temperature": 0.5,
        "maxOutputTokens": 1024,
        "stopSequences": ["STOP"],  # a list: the caller's, whole
        "responseMimeType": "application/json",
        "responseJsonSchema": SCHEMA,
        "thinkingConfig": {"thinkingBudget": 0},
    }


def test_nested_objects_merge_field_by_field_and_schemas_do_not() -> None:
    ours = {"thinkingConfig": {"includeThoughts": True, "thinkingBudget": 128}, "topK": 3}
    theirs = {"thinkingConfig": {"thinkingBudget": 0}, "responseJsonSchema": {"type": "string"}}
    assert refined_config(ours, theirs) == {
        "thinkingConfig": {"includeThoughts": True, "thinkingBudget": 0},
        "topK": 3,
        "responseJsonSchema": {"type": "string"},
    }
    # A caller's schema replaces the one of its response_format whole, never merged with it.
    schema = {"type": "object", "properties": {"b": {"type": "integer"}}}
    replaced = refined_config({"responseJsonSchema": SCHEMA}, {"responseJsonSchema": schema})
    assert replaced == {"responseJsonSchema": schema}


def test_a_callers_response_schema_replaces_the_json_schema_of_its_response_format() -> None:
    # Gemini takes one of responseSchema (its OpenAPI subset) and responseJsonSchema.
    own = {"type": "OBJECT", "properties": {"a": {"type": "STRING"}}}
    out = G.request_body(
        {
            "messages": USER,
            "response_format": {"type": "json_schema", "json_schema": {"schema": SCHEMA}},
            "generationConfig": {"responseSchema": own},
        }
    )
    assert out["generationConfig"] == {
        "responseMimeType": "application/json",
        "responseSchema": own,
    }


@pytest.mark.parametrize("config", ["fast", [1], 3])
def test_a_generation_config_that_is_no_object_is_the_callers_400(config: Any) -> None:
    with pytest.raises(UpstreamFailure) as caught:
        G.request_body({"messages": USER, "max_tokens": 5, "generationConfig": config})
    assert (caught.value.outcome, caught.value.upstream_status) == (Outcome.BAD_REQUEST, 400)
    assert caught.value.upstream_error is not None
    assert caught.value.upstream_error["param"] == "generationConfig"


async def test_the_adapter_sends_the_merged_config_upstream(
    fake: FakeUpstream, start_router: StartRouter
) -> None:
    config = {
        "providers": {"g": {"kind": "gemini", "base_url": f"{fake.url}/v1beta", "keys": ["kg"]}},
        "models": {"gem": {"deployments": [{"provider": "g", "model": "gemini-2.5-flash"}]}},
        "server": {"port": 0},
    }
    router = await start_router(config)
    extra = {"generationConfig": {"maxOutputTokens": 900, "thinkingConfig": {"thinkingBudget": 0}}}
    params = chat_pb2.ChatParams(
        model="gem",
        messages=[chat_pb2.ChatMessage(role=chat_pb2.ROLE_USER, text="hi")],
        temperature=0.25,
        max_tokens=100,
        extra_json=orjson.dumps(extra).decode(),
    )
    await router.stub.Chat(pb.ChatRequest(params=params))
    record = fake.state.last(path="/v1beta/models/gemini-2.5-flash:generateContent")
    assert record is not None
    assert record.body["generationConfig"] == {
        "temperature": 0.25,
        "maxOutputTokens": 900,
        "thinkingConfig": {"thinkingBudget": 0},
    }
