"""The upload routes beside transcriptions (translations, image edits and variations) on a real
uvicorn edge over the stub router: which files reach the router, as what (an edit's several
files in `files`, each naming its form field; one upload in `file`), and the forms the edge
refuses itself (OpenAI error JSON, no router call): a missing image, two masks, a file under a
field the form does not take, a text where a file belongs, too many files, too many bytes."""

from __future__ import annotations

import tracemalloc
from typing import Any

import httpx
import orjson
import pytest

from clients.switchboard.v1 import media_pb2
from tests.http_edge.harness import EdgeFactory, StubRouter
from tests.http_edge.test_edge_media import answering, error_of

pytestmark = pytest.mark.timeout(30)

PNG = b"\x89PNG\r\n\x1a\n"
IMAGES = b'{"created": 1, "data": []}'


def image(name: str = "image", data: bytes = PNG) -> tuple[str, tuple[str, bytes, str]]:
    return name, (f"{name}.png", data, "image/png")


async def test_an_edit_sends_each_file_under_its_field_in_order(
    stub: StubRouter, http: httpx.AsyncClient
) -> None:
    stub.on_media = answering("application/json", IMAGES)
    response = await http.post(
        "/v1/images/edits",
        data={"model": "painter", "prompt": "a hat", "n": "2"},
        files=[
            ("image[]", ("a.png", PNG + b"a", "image/png")),
            ("mask", ("m.png", PNG + b"m", "image/png")),
            ("image[]", ("b.png", PNG + b"b", "image/webp")),
        ],
    )
    assert response.status_code == 200, response.text
    assert response.json() == orjson.loads(IMAGES)
    params = stub.calls[0].request.params
    assert (params.operation, params.model) == (media_pb2.MEDIA_OPERATION_IMAGE_EDITS, "painter")
    assert orjson.loads(params.params_json) == {"prompt": "a hat", "n": "2"}
    assert not params.HasField("file")
    assert [(f.field, f.filename, f.content_type, f.data) for f in params.files] == [
        ("image[]", "a.png", "image/png", PNG + b"a"),
        ("mask", "m.png", "image/png", PNG + b"m"),
        ("image[]", "b.png", "image/webp", PNG + b"b"),
    ]


async def test_an_edit_takes_a_long_prompt_and_a_markup(
    stub: StubRouter, http: httpx.AsyncClient
) -> None:
    """GPT image models take prompts of 32,000 characters: a form field far past a few KiB."""
    stub.on_media = answering("application/json", IMAGES)
    prompt = "é" * 32_000
    response = await http.post(
        "/v1/images/edits",
        data={"model": "painter", "prompt": prompt},
        files=[image(), image("markup")],
    )
    assert response.status_code == 200, response.text
    params = stub.calls[0].request.params
    assert orjson.loads(params.params_json) == {"prompt": prompt}
    assert [f.field for f in params.files] == ["image", "markup"]


@pytest.mark.parametrize(
    ("path", "field", "operation"),
    [
        ("/v1/audio/translations", "file", media_pb2.MEDIA_OPERATION_AUDIO_TRANSLATIONS),
        ("/v1/images/variations", "image", media_pb2.MEDIA_OPERATION_IMAGE_VARIATIONS),
    ],
)
async def test_one_upload_is_the_file(
    stub: StubRouter, http: httpx.AsyncClient, path: str, field: str, operation: int
) -> None:
    stub.on_media = answering("text/plain", b"done")
    response = await http.post(
        path,
        data={"model": "m", "response_format": "text"},
        files={field: ("in.bin", b"\x00\x01", "application/octet-stream")},
    )
    assert response.status_code == 200 and response.text == "done"
    params = stub.calls[0].request.params
    assert params.operation == operation
    assert params.file == media_pb2.MediaFile(
        data=b"\x00\x01", filename="in.bin", content_type="application/octet-stream"
    )
    assert list(params.files) == []
    assert orjson.loads(params.params_json) == {"response_format": "text"}


FORM = {"model": "painter", "prompt": "a hat"}


@pytest.mark.parametrize(
    ("path", "data", "files", "code", "param"),
    [
        ("/v1/images/edits", FORM, [image("mask")], "invalid_argument", "image"),
        (
            "/v1/images/edits",
            FORM,
            [image(), image("mask"), image("mask")],
            "invalid_argument",
            "mask",
        ),
        (
            "/v1/images/edits",
            FORM,
            [image(), image("markup"), image("markup")],
            "invalid_argument",
            "markup",
        ),
        ("/v1/images/edits", FORM, [image(), image("file")], "invalid_form", "file"),
        (
            "/v1/images/edits",
            {**FORM, "image": "a.png"},
            [image("mask")],
            "invalid_argument",
            "image",
        ),
        ("/v1/images/edits", FORM, [image("image[]")] * 20, "invalid_form", None),
        ("/v1/images/edits", FORM, [image("image[]")] * 19, "invalid_argument", "image[]"),
        ("/v1/images/edits", FORM, [image("image[]")] * 17, "invalid_argument", "image[]"),
        (
            "/v1/images/edits",
            FORM,
            [image("image[]")] * 16 + [image()],
            "invalid_argument",
            "image",
        ),
        ("/v1/images/variations", {"model": "m"}, [image(), image()], "invalid_argument", "image"),
        ("/v1/images/variations", {"model": "m"}, [image("mask")], "invalid_form", "mask"),
        ("/v1/audio/translations", {"model": "m"}, [], "invalid_argument", "file"),
        ("/v1/images/edits", {"prompt": "x"}, [image()], "invalid_argument", "model"),
        (
            "/v1/audio/translations",
            {"model": "m"},
            [image("file"), image("attachment")],
            "invalid_form",
            "attachment",
        ),
        (
            "/v1/audio/transcriptions",
            {"model": "m"},
            [image("audio"), image("file")],
            "invalid_form",
            "audio",
        ),
    ],
    ids=[
        "edit without an image",
        "two masks",
        "two markups",
        "edit with a file field it does not take",
        "image as text",
        "too many images for the parser",
        "too many images",
        "seventeen images",
        "seventeen images under both fields",
        "variation of two images",
        "variation with a mask",
        "translation without a file",
        "edit without a model",
        "translation with a second file under a field it does not take",
        "transcription with a file under a field it does not take first",
    ],
)
async def test_a_bad_upload_form_is_refused_at_the_edge(
    stub: StubRouter,
    http: httpx.AsyncClient,
    path: str,
    data: dict[str, str],
    files: list[Any],
    code: str,
    param: str | None,
) -> None:
    response = await http.post(path, data=data, files=files or {"unrelated": (None, "x")})
    assert response.status_code == 400, response.text
    assert (error_of(response)["code"], error_of(response)["param"]) == (code, param)
    assert error_of(response)["type"] == "invalid_request_error"
    if param is not None:  # the field at fault named, never the parser's "Too many files"
        assert param in error_of(response)["message"], error_of(response)
    assert stub.calls == []


async def test_the_upload_limit_bounds_all_files_together(
    stub: StubRouter, start_edge: EdgeFactory
) -> None:
    """Three images of 1.5 KiB each: every one within the 4 KiB limit, the three not."""
    edge = await start_edge(max_upload_bytes=4096)
    async with httpx.AsyncClient(base_url=edge.base_url, timeout=10) as http:
        response = await http.post(
            "/v1/images/edits",
            data=FORM,
            files=[image("image[]", b"x" * 1536) for _ in range(3)],
        )
    assert response.status_code == 413, response.text
    assert error_of(response)["code"] == "request_too_large"
    assert stub.calls == []


async def test_an_upload_that_is_no_form_is_refused(
    stub: StubRouter, http: httpx.AsyncClient
) -> None:
    response = await http.post("/v1/images/variations", json={"model": "m", "image": "a"})
    assert response.status_code == 400
    assert error_of(response)["code"] == "invalid_content_type"
    assert stub.calls == []


async def test_text_fields_that_grow_as_json_are_refused_before_they_are_written(
    stub: StubRouter, start_edge: EdgeFactory
) -> None:
    """A field of control characters within the 1 MiB limit is six times as long as JSON
    (`\\u0001` each): refused (413) from the form's own count, not after the edge has written
    that JSON out three times over (its bytes, its text, the message) — 17 times the limit."""
    limit = 1024 * 1024
    edge = await start_edge(max_upload_bytes=limit)
    boundary = "b0und"
    field = b"\x01" * (limit - 1024)
    body = (
        f'--{boundary}\r\nContent-Disposition: form-data; name="model"\r\n\r\nm\r\n'
        f'--{boundary}\r\nContent-Disposition: form-data; name="prompt"\r\n\r\n'.encode()
        + field
        + f'\r\n--{boundary}\r\nContent-Disposition: form-data; name="image"; '
        f'filename="a.png"\r\n\r\n'.encode()
        + PNG
        + f"\r\n--{boundary}--\r\n".encode()
    )
    headers = {"content-type": f"multipart/form-data; boundary={boundary}"}
    async with httpx.AsyncClient(base_url=edge.base_url, timeout=10) as http:
        tracemalloc.start()
        try:
            response = await http.post("/v1/images/variations", content=body, headers=headers)
            peak = tracemalloc.get_traced_memory()[1]
        finally:
            tracemalloc.stop()
    assert response.status_code == 413, response.text
    assert error_of(response)["code"] == "request_too_large"
    assert stub.calls == []
    assert peak < 8 * limit  # the body, the parser's copy, the text: not its JSON


def _edit_of_two_images(boundary: str) -> bytes:
    parts = [
        f'--{boundary}\r\nContent-Disposition: form-data; name="model"\r\n\r\npainter\r\n',
        f'--{boundary}\r\nContent-Disposition: form-data; name="prompt"\r\n\r\na hat\r\n',
        f'--{boundary}\r\nContent-Disposition: form-data; name="image[]"; filename="a.png"\r\n'
        f"Content-Type: image/png\r\n\r\nfirst\r\n",
        f'--{boundary}\r\nContent-Disposition: form-data; name="image[]"; filename="b.png"\r\n'
        f"Content-Type: image/png\r\n\r\nsecond\r\n",
        f"--{boundary}--\r\n",
    ]
    return "".join(parts).encode()


@pytest.mark.parametrize(
    "cut",
    [len("--b0und--\r\n"), len("ond\r\n--b0und--\r\n"), len("--\r\n")],
    ids=["before the closing boundary", "in the second image", "at the closing boundary"],
)
async def test_a_form_cut_before_its_closing_boundary_is_refused(
    stub: StubRouter, http: httpx.AsyncClient, cut: int
) -> None:
    """A body that ends before its closing `--boundary--` lost its end (a second image cut
    short, or a part never closed): 400 `invalid_form`, not an edit of the one image that
    arrived whole, and no temporary file of the cut part left open."""
    stub.on_media = answering("application/json", IMAGES)
    body = _edit_of_two_images("b0und")
    headers = {"content-type": "multipart/form-data; boundary=b0und"}
    whole = await http.post("/v1/images/edits", content=body, headers=headers)
    assert whole.status_code == 200, whole.text
    assert [f.filename for f in stub.calls[0].request.params.files] == ["a.png", "b.png"]
    response = await http.post("/v1/images/edits", content=body[:-cut], headers=headers)
    assert response.status_code == 400, response.text
    assert error_of(response)["code"] == "invalid_form"
    assert "closing boundary" in error_of(response)["message"]
    assert len(stub.calls) == 1
