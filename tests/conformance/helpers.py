"""Request builders and stream readers shared by the conformance tests."""

from __future__ import annotations

from typing import Any

import orjson
from openai.types.chat import ChatCompletionToolParam

from clients import chat_params_from_openai
from clients.switchboard.v1 import chat_pb2
from clients.switchboard.v1 import router_service_pb2 as pb
from tests.conftest import RouterHandle

# A 1×1 transparent PNG.
PNG_B64 = (
    "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNkYPhfDwAChwGA60e6kgAAAABJRU5ErkJggg"
    "=="
)
# A one-page PDF's first bytes and a WAV header, in base64: the fakes read shapes, not media.
PDF_B64 = "JVBERi0xLjQKJcOkw7zDtsOfCjEgMCBvYmoKPDwvVHlwZS9DYXRhbG9nPj4KZW5kb2JqCiUlRU9GCg=="
WAV_B64 = "UklGRiQAAABXQVZFZm10IBAAAAABAAEAQB8AAIA+AAACABAAZGF0YQAAAAA="
PDF_PART = {
    "type": "file",
    "file": {"file_data": f"data:application/pdf;base64,{PDF_B64}", "filename": "report.pdf"},
}
AUDIO_PART = {"type": "input_audio", "input_audio": {"data": WAV_B64, "format": "wav"}}
WEATHER_TOOL: ChatCompletionToolParam = {
    "type": "function",
    "function": {
        "name": "get_weather",
        "description": "Current weather of a city.",
        "parameters": {
            "type": "object",
            "properties": {"city": {"type": "string"}},
            "required": ["city"],
        },
    },
}


def params(model: str = "solo", text: str = "hello there", **body: Any) -> chat_pb2.ChatParams:
    """ChatParams from an OpenAI request body, as the edge would build them."""
    request = {"model": model, "messages": [{"role": "user", "content": text}], **body}
    parsed, _ = chat_params_from_openai(request)
    return parsed


async def chat(router: RouterHandle, p: chat_pb2.ChatParams) -> pb.ChatResponse:
    response: pb.ChatResponse = await router.stub.Chat(pb.ChatRequest(params=p))
    return response


async def stream(router: RouterHandle, p: chat_pb2.ChatParams) -> list[pb.ChatStreamResponse]:
    return [e async for e in router.stub.ChatStream(pb.ChatStreamRequest(params=p))]


def chunks(events: list[pb.ChatStreamResponse]) -> list[chat_pb2.ChatCompletionChunk]:
    return [e.chunk for e in events if e.HasField("chunk")]


def streamed_text(events: list[pb.ChatStreamResponse]) -> str:
    return "".join(c.choices[0].delta.text for c in chunks(events) if c.choices)


def finish_reasons(events: list[pb.ChatStreamResponse]) -> list[int]:
    return [
        c.choices[0].finish_reason
        for c in chunks(events)
        if c.choices and c.choices[0].finish_reason
    ]


def streamed_tool_calls(events: list[pb.ChatStreamResponse]) -> list[tuple[str, str, Any]]:
    """(id, name, arguments object) of each tool call, assembled from its deltas by index."""
    calls: dict[int, dict[str, str]] = {}
    for chunk in chunks(events):
        for choice in chunk.choices:
            for delta in choice.delta.tool_calls:
                call = calls.setdefault(delta.index, {"id": "", "name": "", "arguments": ""})
                call["id"] = call["id"] or delta.id
                call["name"] = call["name"] or delta.function.name
                call["arguments"] += delta.function.arguments
    return [
        (c["id"], c["name"], orjson.loads(c["arguments"] or "{}")) for _, c in sorted(calls.items())
    ]
