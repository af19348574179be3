"""Files (a PDF) and audio through the real router to every adapter: what each provider's format
takes reaches it in that format; what it cannot express (audio for Claude, anything but text and
images for Cohere, an OpenAI Files API id for anyone but OpenAI) is passed over without a call,
to the group's next deployment, and is the caller's 400 only when no deployment can take it."""

from __future__ import annotations

from typing import Any

import grpc
import pytest

from clients import details_from_rpc_error
from clients.switchboard.v1 import router_service_pb2 as pb
from clients.switchboard.v1 import routing_pb2
from router_service.fake_upstream import FakeUpstream
from tests.conformance.helpers import (
    AUDIO_PART,
    PDF_B64,
    PDF_PART,
    WAV_B64,
    chat,
    params,
    stream,
    streamed_text,
)
from tests.conformance.profiles import PROFILES, Profile
from tests.conformance.wire_readers import read_openai
from tests.conftest import RouterHandle

FILE_ID_PART = {"type": "file", "file": {"file_id": "file-abc123"}}
# content → (its parts, the kinds a format must take for it, the documents and audio it carries)
CONTENTS: dict[str, tuple[list[dict[str, Any]], set[str], list[Any], list[Any]]] = {
    "pdf": ([PDF_PART], {"file"}, [("application/pdf", PDF_B64)], []),
    "audio": ([AUDIO_PART], {"input_audio"}, [], [("audio/wav", WAV_B64)]),
    "pdf_and_audio": (
        [PDF_PART, AUDIO_PART],
        {"file", "input_audio"},
        [("application/pdf", PDF_B64)],
        [("audio/wav", WAV_B64)],
    ),
    "openai_file_id": ([FILE_ID_PART], {"file_id"}, [("file_id", "file-abc123")], []),
}


def media_params(model: str, content: str) -> Any:
    parts = [{"type": "text", "text": "what is in these"}, *CONTENTS[content][0]]
    return params(model, messages=[{"role": "user", "content": parts}])


@pytest.mark.parametrize("streaming", [False, True], ids=["unary", "stream"])
@pytest.mark.parametrize("content", CONTENTS)
async def test_media_reaches_the_provider_or_the_next_deployment(
    router: RouterHandle, fake: FakeUpstream, profile: Profile, content: str, streaming: bool
) -> None:
    _, kinds, documents, audio = CONTENTS[content]
    p = media_params("chain", content)
    if streaming:
        events = await stream(router, p)
        route, text = events[0].route, streamed_text(events)
    else:
        response = await chat(router, p)
        route, text = response.route, response.completion.choices[0].message.text

    assert text == "Echo: what is in these"
    if kinds <= profile.takes:
        assert route.deployment == "up/m-up"
        record = fake.state.last(model="m-up")
        assert record is not None
        seen = profile.read(record.body)
    else:
        # Passed over before any key was leased or anything sent: the backup serves.
        assert route.deployment == "backup/m-backup"
        first = route.attempts[0]
        assert (first.deployment, first.outcome) == (
            "up/m-up",
            routing_pb2.OUTCOME_UNSUPPORTED_INPUT,
        )
        assert (first.key_fingerprint, first.upstream_status) == ("", 0)
        assert first.detail.startswith(profile.says)
        assert fake.state.count(model="m-up") == 0
        record = fake.state.last(model="m-backup")
        assert record is not None
        seen = read_openai(record.body)
    assert (seen.texts, seen.documents, seen.audio) == (["what is in these"], documents, audio)


# (profile, content) for each content a profile's format cannot express.
REFUSED = [
    (profile, content)
    for profile in PROFILES
    for content, (_, kinds, _, _) in CONTENTS.items()
    if not kinds <= profile.takes
]


@pytest.mark.parametrize(
    ("profile", "content"), REFUSED, indirect=["profile"], ids=[f"{p}-{c}" for p, c in REFUSED]
)
async def test_what_no_deployment_can_take_is_the_callers_400(
    router: RouterHandle, fake: FakeUpstream, profile: Profile, content: str
) -> None:
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await router.stub.Chat(pb.ChatRequest(params=media_params("solo", content)))

    error = caught.value
    details = details_from_rpc_error(error)
    assert error.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert (details.reason, details.provider, details.upstream_status) == (
        "UNSUPPORTED_INPUT",
        "up",
        None,
    )
    assert details.upstream_error is not None
    assert details.upstream_error["type"] == "invalid_request_error"
    assert details.upstream_error["param"].startswith("messages[0].content[")
    assert details.message.startswith(profile.says)  # the provider says what it lacks
    assert fake.state.count() == 0
