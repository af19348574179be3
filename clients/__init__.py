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
    History,
    References,
    ResponseEventStream,
    ResponseIds,
    ResponsesRequest,
    chat_completion_from_openai,
    chat_completion_to_openai,
    chat_params_from_openai,
    chat_params_to_openai,
    chunk_from_openai,
    chunk_to_openai,
    embedding_params_from_openai,
    embedding_params_to_openai,
    embedding_result_from_openai,
    embedding_result_to_openai,
    history_of,
    model_list_to_openai,
    references_of,
    response_to_openai,
    responses_request_from_openai,
    stored_response,
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
    "ErrorDetails",
    "History",
    "InvalidRequestError",
    "ObservedCall",
    "References",
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
    "details_from_rpc_error",
    "embedding_params_from_openai",
    "embedding_params_to_openai",
    "embedding_result_from_openai",
    "embedding_result_to_openai",
    "history_of",
    "http_status_for",
    "model_list_to_openai",
    "openai_error_body",
    "references_of",
    "response_to_openai",
    "responses_request_from_openai",
    "stored_response",
    "to_grpc_status",
]
