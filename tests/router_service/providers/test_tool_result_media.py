"""A tool result's media (an image a tool returned) reaches the model or is refused, never
dropped: inside Gemini 3's functionResponse, beside it for an earlier Gemini, refused by
Cohere (whose tool messages carry text only) for another deployment to take."""

from __future__ import annotations

from typing import Any

import pytest

from clients import chat_params_from_openai
from router_service.errors import UpstreamFailure
from router_service.outcomes import Outcome
from router_service.providers import _cohere_map as C
from router_service.providers import _gemini_map as G
from router_service.providers._media import unsupported_in

CALL = {"id": "call_1", "type": "function", "function": {"name": "snap", "arguments": "{}"}}
PNG = "data:image/png;base64,iVBORw0KGgo="
LINK = "https://x.test/shot.jpg"


def _body(*parts: dict[str, Any]) -> dict[str, Any]:
    return {
        "model": "m",
        "messages": [
            {"role": "user", "content": "look"},
            {"role": "assistant", "content": None, "tool_calls": [CALL]},
            {"role": "tool", "tool_call_id": "call_1", "content": list(parts)},
        ],
    }


TEXT = {"type": "text", "text": "a screenshot"}
IMAGE = {"type": "image_url", "image_url": {"url": PNG}}
LINKED = {"type": "image_url", "image_url": {"url": LINK}}
INLINE = {"inlineData": {"mimeType": "image/png", "data": "iVBORw0KGgo="}}
FILE_DATA = {"fileData": {"mimeType": "image/jpeg", "fileUri": LINK}}


@pytest.mark.parametrize("model", ["gemini-3-pro-preview", "models/gemini-3.1-pro-preview"])
def test_gemini_3_takes_an_inline_image_inside_the_function_response(model: str) -> None:
    contents = G.request_body(_body(TEXT, IMAGE), model)["contents"]

    assert contents[2] == {
        "role": "user",
        "parts": [
            {
                "functionResponse": {
                    "id": "call_1",
                    "name": "snap",
                    "response": {"result": "a screenshot"},
                    "parts": [INLINE],
                }
            }
        ],
    }


@pytest.mark.parametrize("model", ["gemini-2.5-flash", "gemini-flash-latest", ""])
def test_an_earlier_or_unknown_gemini_gets_the_image_beside_the_function_response(
    model: str,
) -> None:
    contents = G.request_body(_body(TEXT, IMAGE), model)["contents"]

    response = {"id": "call_1", "name": "snap", "response": {"result": "a screenshot"}}
    assert contents[2]["parts"] == [{"functionResponse": response}, INLINE]


def test_a_linked_image_goes_beside_even_at_gemini_3() -> None:
    """The Gemini API takes inline data only inside a functionResponse."""
    contents = G.request_body(_body(IMAGE, LINKED), "gemini-3-pro-preview")["contents"]

    first, second = contents[2]["parts"]
    assert first["functionResponse"]["parts"] == [INLINE]
    assert first["functionResponse"]["response"] == {"result": ""}
    assert second == FILE_DATA


def test_gemini_refuses_a_tool_result_part_it_cannot_say() -> None:
    with pytest.raises(UpstreamFailure) as refused:
        G.request_body(_body({"type": "refusal", "refusal": "no"}), "gemini-3-pro-preview")
    assert refused.value.outcome is Outcome.UNSUPPORTED_INPUT
    assert (refused.value.upstream_error or {})["param"] == "messages[2].content[0]"


def test_cohere_refuses_an_image_in_a_tool_result_before_a_key_is_leased() -> None:
    with pytest.raises(UpstreamFailure) as refused:
        C.request_body(_body(TEXT, IMAGE), "command-a", stream=False)
    assert refused.value.outcome is Outcome.UNSUPPORTED_INPUT
    error = refused.value.upstream_error or {}
    assert error["param"] == "messages[2].content[1]"
    assert "tool result's text only" in error["message"]

    params = chat_params_from_openai(_body(TEXT, IMAGE))[0]
    checked = unsupported_in(params, lambda body: C.request_body(body, "", stream=False))
    assert checked is not None and checked.outcome is Outcome.UNSUPPORTED_INPUT


def test_cohere_still_takes_a_tool_result_of_text_parts() -> None:
    out = C.request_body(_body(TEXT, TEXT), "command-a", stream=False)
    assert out["messages"][2] == {
        "role": "tool",
        "tool_call_id": "call_1",
        "content": "a screenshota screenshot",
    }
    params = chat_params_from_openai(_body(TEXT))[0]
    assert unsupported_in(params, lambda body: C.request_body(body, "", stream=False)) is None
