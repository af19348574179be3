"""The public surface of `clients` is exactly what we mean it to be."""

from __future__ import annotations

import importlib
import subprocess
import sys
import typing

import pytest

import clients
import clients.codec

EXPECTED = [
    "CHARS_PER_TOKEN",
    "COMPACTION_PREFIX",
    "FINAL_STATUSES",
    "IDEMPOTENT_METHODS",
    "INCLUDABLE",
    "LARGEST_ANSWER_BYTES",
    "MAX_METADATA_BYTES",
    "MAX_RECONNECT_BACKOFF_MS",
    "MAX_SESSION_ID_BYTES",
    "MEDIA_PATHS",
    "MEDIA_UPLOADS",
    "READY_WAIT_S",
    "RELOOKUP_S",
    "RETRY_POLICY",
    "SUMMARY_INSTRUCTION",
    "USE_CLIENT_DEFAULT",
    "CallObserver",
    "CallStream",
    "CompactRequest",
    "CompletionChunks",
    "CompletionsRequest",
    "ErrorDetails",
    "History",
    "InvalidRequestError",
    "LocalChannel",
    "LocalHandlers",
    "MediaUploads",
    "ObservedCall",
    "References",
    "ResponseEventStream",
    "ResponseIds",
    "ResponsesRequest",
    "RouterClient",
    "RouterError",
    "RouterMediaStream",
    "RouterRealtime",
    "RouterStream",
    "RouterTarget",
    "SwitchboardClientError",
    "SyncCallStream",
    "SyncRouterClient",
    "SyncRouterMediaStream",
    "SyncRouterStream",
    "UploadProblem",
    "UpstreamFormatError",
    "UseClientDefault",
    "asks_stream",
    "background_cancelled",
    "background_events",
    "background_failed",
    "background_finished",
    "background_response",
    "batch_request_from_openai",
    "batch_to_openai",
    "chat_completion_from_openai",
    "chat_completion_to_openai",
    "chat_params_from_openai",
    "chat_params_to_openai",
    "check_image_references",
    "check_placeable",
    "checked_target",
    "chunk_from_openai",
    "chunk_to_openai",
    "compact_request_from_openai",
    "compacted_response",
    "compaction_summary",
    "completion_to_openai",
    "completions_field",
    "completions_request_from_openai",
    "conversation_additions",
    "conversation_history",
    "conversation_inputs",
    "conversation_items_from_openai",
    "conversation_metadata_from_openai",
    "conversation_of",
    "conversation_to_openai",
    "details_from_rpc_error",
    "embedding_params_from_openai",
    "embedding_params_to_openai",
    "embedding_result_from_openai",
    "embedding_result_to_openai",
    "encode_compaction",
    "estimate_prompt_tokens",
    "file_to_openai",
    "float32_values",
    "history_of",
    "http_status_for",
    "include_values",
    "input_items_json",
    "input_items_page",
    "input_tokens_of",
    "is_item_reference",
    "item_id_prefix",
    "json_problem",
    "list_page",
    "media_params_from_openai",
    "model_list_to_openai",
    "openai_error_body",
    "referenced_edit",
    "references_of",
    "rerank_documents",
    "rerank_fields",
    "response_to_openai",
    "responses_field",
    "responses_request_from_openai",
    "said_in_callers_terms",
    "stored_document",
    "stored_response",
    "to_grpc_status",
    "unwritable",
    "upload_complete_from_openai",
    "upload_part_to_openai",
    "upload_problem",
    "upload_request_from_openai",
    "upload_to_openai",
]


def test_all_is_the_intended_list() -> None:
    assert clients.__all__ == EXPECTED


def test_every_export_exists_and_is_public() -> None:
    for name in clients.__all__:
        assert getattr(clients, name) is not None
    public = {name for name in vars(clients) if not name.startswith("_")}
    # Subpackages and modules are importable (`clients.codec`, `clients.errors`,
    # `clients.switchboard.v1`) but are not part of `__all__`.
    assert public - set(EXPECTED) <= {"codec", "errors", "switchboard"}


def test_codec_exports_are_reexported() -> None:
    assert set(clients.codec.__all__) <= set(clients.__all__)


@pytest.mark.parametrize("api", ["anthropic", "gemini", "ollama"])
def test_the_other_apis_codecs_give_every_name_they_export(api: str) -> None:
    # Their names are imported as first read (clients/_lazy.py): each one in `__all__`
    # comes from the module its package says, and nothing else is made up.
    package = importlib.import_module(f"clients.codec.{api}")
    for name in package.__all__:
        value = getattr(package, name)
        assert (
            getattr(importlib.import_module(f"{package.__name__}.{package._WHERE[name]}"), name)
            is value
        )
    assert set(package._WHERE) == set(package.__all__)
    with pytest.raises(AttributeError):
        _ = package.not_a_name


def test_generated_modules_are_importable() -> None:
    from clients.switchboard.v1 import (
        admin_service_pb2,
        admin_service_pb2_grpc,
        chat_pb2,
        embeddings_pb2,
        router_service_pb2,
        router_service_pb2_grpc,
        routing_pb2,
    )

    assert chat_pb2.ChatParams.DESCRIPTOR.full_name == "switchboard.v1.ChatParams"
    assert router_service_pb2.ChatRequest().params.model == ""
    modules = (embeddings_pb2, routing_pb2, admin_service_pb2)
    assert all(module.DESCRIPTOR.package == "switchboard.v1" for module in modules)
    assert callable(router_service_pb2_grpc.RouterServiceStub)
    assert callable(admin_service_pb2_grpc.AdminServiceStub)


@pytest.mark.parametrize(
    "package",
    [
        "clients",
        "router_service.config",
        "router_service.guardrails",
        "router_service.server",
        "router_service.telemetry",
    ],
)
def test_packages_of_lazy_names_say_where_each_of_their_names_lives(package: str) -> None:
    # Their names are imported as first read (clients/_lazy.py): a name added to `__all__`
    # without its module in `_WHERE` would be an AttributeError at its first use.
    module = importlib.import_module(package)
    assert set(module._WHERE) == set(module.__all__)
    assert all(getattr(module, name) is not None for name in module.__all__)


@pytest.mark.parametrize(
    ("package", "submodule", "name"),
    [
        ("clients", "errors", "RouterClient"),
        ("clients", "codec", "chunk_from_openai"),
        ("router_service.telemetry", "setup", "configure_telemetry"),
    ],
)
def test_a_lazy_package_still_gives_its_submodules_and_lists_its_names(
    package: str, submodule: str, name: str
) -> None:
    # In a fresh interpreter: `import clients; clients.errors` worked while the package
    # imported its modules eagerly, and dir() (a REPL's completion) lists unread names too.
    probe = (
        f"import {package} as p\n"
        f"assert p.{submodule}.__name__ == '{package}.{submodule}'\n"
        f"assert '{name}' in dir(p) and '{name}' not in vars(p)\n"
        "try:\n    p.no_such_name\nexcept AttributeError:\n    pass\n"
        "else:\n    raise SystemExit('an unknown name was found')\n"
    )
    done = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr


def _returned_classes(client: type) -> set[type]:
    """The classes of ours the public methods of `client` return (their annotations')."""
    # Some modules import what they return for the type checker only: resolved from them all.
    known = {
        name: value
        for module in list(sys.modules.values())
        if module is not None and module.__name__.startswith("clients._")
        for name, value in vars(module).items()
        if isinstance(value, type)
    }
    found: set[type] = set()
    for name in dir(client):
        method = getattr(client, name)
        if name.startswith("_") or not callable(method):
            continue
        returned = typing.get_type_hints(method, localns=known).get("return")
        for kind in (returned, typing.get_origin(returned), *typing.get_args(returned)):
            if isinstance(kind, type) and kind.__module__.startswith("clients._"):
                found.add(kind)
    return found


@pytest.mark.parametrize("client", ["RouterClient", "SyncRouterClient"])
def test_what_the_clients_return_is_exported(client: str) -> None:
    # `SyncRouterClient.realtime` (and `resume_response`) returned a `SyncCallStream` that could
    # not be imported from `clients` to annotate a caller's own code with.
    returned = _returned_classes(getattr(clients, client))
    assert returned, "no class of ours found: the check looks at nothing"
    for kind in returned:
        assert kind.__name__ in clients.__all__, kind
        assert getattr(clients, kind.__name__) is kind
