"""The GenAI client metrics carry what OpenTelemetry's GenAI semantic conventions require of
them (semconv `gen-ai-metrics.md`): `gen_ai.client.token.usage` and the stream's
`time_to_first_chunk` / `time_per_output_chunk` the operation's name (Required) and the model
the request was made to (Conditionally Required, "if available": the deployment's upstream
model, as `gen_ai.client.operation.duration` has it), beside the provider's name; an embeddings
request's tokens say `embeddings`. No label says a key, a caller's token or its session."""

from __future__ import annotations

from clients.switchboard.v1 import chat_pb2, embeddings_pb2
from clients.switchboard.v1 import router_service_pb2 as pb
from router_service.fake_upstream import FakeUpstream
from router_service.telemetry.testing import TelemetryCapture
from tests.conftest import StartRouter, base_config

GENAI = ("gen_ai.operation.name", "gen_ai.provider.name", "gen_ai.request.model")


def ask() -> chat_pb2.ChatParams:
    message = chat_pb2.ChatMessage(role=chat_pb2.ROLE_USER, text="hi")
    params = chat_pb2.ChatParams(model="chain", messages=[message])
    params.stream_options.include_usage = True
    return params


async def test_genai_metrics_say_their_operation_and_requested_model(
    fake: FakeUpstream, start_router: StartRouter, captured: TelemetryCapture
) -> None:
    router = await start_router(base_config(fake.base_url))
    session = (("x-session-id", "session-of-a-caller-0042"),)
    await router.stub.Chat(pb.ChatRequest(params=ask()), metadata=session)
    async for _ in router.stub.ChatStream(pb.ChatStreamRequest(params=ask())):
        pass
    texts = embeddings_pb2.TextList(values=["one", "two"])
    await router.stub.Embed(
        pb.EmbedRequest(params=embeddings_pb2.EmbeddingParams(model="embedder", texts=texts))
    )

    for name in (
        "gen_ai.client.token.usage",
        "gen_ai.client.operation.time_to_first_chunk",
        "gen_ai.client.operation.time_per_output_chunk",
        "gen_ai.client.operation.duration",
    ):
        points = list(captured.points(name))
        assert points, name
        for labels, _ in points:
            assert all(key in labels for key in GENAI), (name, labels)
    usage = {
        (labels["gen_ai.operation.name"], labels["gen_ai.request.model"])
        for labels, _ in captured.points("gen_ai.client.token.usage")
    }
    assert usage == {("chat", "model-a"), ("embeddings", "embed-a")}
    text = captured.prometheus_text()
    assert 'gen_ai_operation_name="embeddings"' in text
    for secret in ("sk-alpha-1", "sk-alpha-2", "sk-beta-1", "session-of-a-caller-0042"):
        assert secret not in text
