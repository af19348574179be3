"""Switchboard's client package: the router's callers, the error contract, the OpenAI codec.

Everything public is importable from here. The generated messages and stubs live in
``clients.switchboard.v1`` (``from clients.switchboard.v1 import chat_pb2``).
"""

from clients._base import (
    LARGEST_ANSWER_BYTES,
    RETRY_POLICY,
    USE_CLIENT_DEFAULT,
    UseClientDefault,
)
from clients._client import CallObserver, ObservedCall, RouterClient
from clients._stream import RouterStream
from clients._sync_client import SyncRouterClient, SyncRouterStream
from clients.codec import (
    CompletionChunks,
    CompletionsRequest,
    ResponseEventStream,
    ResponseIds,
    ResponsesRequest,
    chat_completion_from_openai,
    chat_completion_to_openai,
    chat_params_from_openai,
    chat_params_to_openai,
    chunk_from_openai,
    chunk_to_openai,
    completion_to_openai,
    completions_request_from_openai,
    embedding_params_from_openai,
    embedding_params_to_openai,
    embedding_result_from_openai,
    embedding_result_to_openai,
    model_list_to_openai,
    response_to_openai,
    responses_request_from_openai,
)
from clients.errors import (
    ErrorDetails,
    InvalidRequestError,
    RouterError,
    SwitchboardClientError,
    UpstreamFormatError,
    details_from_rpc_error,
    http_status_for,
    openai_error_body,
    to_grpc_status,
)

__all__ = [
    "LARGEST_ANSWER_BYTES",
    "RETRY_POLICY",
    "USE_CLIENT_DEFAULT",
    "CallObserver",
    "CompletionChunks",
    "CompletionsRequest",
    "ErrorDetails",
    "InvalidRequestError",
    "ObservedCall",
    "ResponseEventStream",
    "ResponseIds",
    "ResponsesRequest",
    "RouterClient",
    "RouterError",
    "RouterStream",
    "SwitchboardClientError",
    "SyncRouterClient",
    "SyncRouterStream",
    "UpstreamFormatError",
    "UseClientDefault",
    "chat_completion_from_openai",
    "chat_completion_to_openai",
    "chat_params_from_openai",
    "chat_params_to_openai",
    "chunk_from_openai",
    "chunk_to_openai",
    "completion_to_openai",
    "completions_request_from_openai",
    "details_from_rpc_error",
    "embedding_params_from_openai",
    "embedding_params_to_openai",
    "embedding_result_from_openai",
    "embedding_result_to_openai",
    "http_status_for",
    "model_list_to_openai",
    "openai_error_body",
    "response_to_openai",
    "responses_request_from_openai",
    "to_grpc_status",
]
