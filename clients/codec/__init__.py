"""OpenAI JSON ⇄ Switchboard protobuf, losslessly, as pure functions.

Used in four places: the HTTP edge parses callers' bodies (``*_params_from_openai``, strict:
:class:`~clients.errors.InvalidRequestError` names the JSON path), the router writes upstream
bodies (``*_params_to_openai``) and parses upstream answers (``*_from_openai`` of responses,
raising :class:`~clients.errors.UpstreamFormatError`), and the edge writes answers back
(``*_to_openai``). Unmodelled keys ride in ``extra_json``; see ``_json`` for the rules.
"""

from typing import TYPE_CHECKING

from clients._lazy import lazy_names

if TYPE_CHECKING:  # for the type checker: at run time each name is imported on first use
    from clients.codec._batches import (
        batch_request_from_openai,
        batch_to_openai,
        file_to_openai,
        list_page,
    )
    from clients.codec._callers_terms import said_in_callers_terms
    from clients.codec._completions import (
        CompletionChunks,
        CompletionsRequest,
        completion_to_openai,
        completions_field,
        completions_request_from_openai,
    )
    from clients.codec._conversations import (
        conversation_additions,
        conversation_history,
        conversation_inputs,
        conversation_items_from_openai,
        conversation_metadata_from_openai,
        conversation_of,
        conversation_to_openai,
    )
    from clients.codec._embeddings import (
        embedding_params_from_openai,
        embedding_params_to_openai,
        embedding_result_from_openai,
        embedding_result_to_openai,
        float32_values,
    )
    from clients.codec._json import asks_stream, check_placeable, json_problem, unwritable
    from clients.codec._media import (
        MEDIA_PATHS,
        MEDIA_UPLOADS,
        MediaUploads,
        UploadProblem,
        check_image_references,
        media_params_from_openai,
        referenced_edit,
        upload_problem,
    )
    from clients.codec._models import model_list_to_openai
    from clients.codec._request import chat_params_from_openai, chat_params_to_openai
    from clients.codec._rerank import rerank_documents, rerank_fields
    from clients.codec._response import (
        chat_completion_from_openai,
        chat_completion_to_openai,
        chunk_from_openai,
        chunk_to_openai,
    )
    from clients.codec._responses_background import (
        FINAL_STATUSES,
        background_cancelled,
        background_events,
        background_failed,
        background_finished,
        background_response,
    )
    from clients.codec._responses_compact import (
        SUMMARY_INSTRUCTION,
        CompactRequest,
        compact_request_from_openai,
        compacted_response,
        input_tokens_of,
    )
    from clients.codec._responses_compaction import (
        COMPACTION_PREFIX,
        compaction_summary,
        encode_compaction,
    )
    from clients.codec._responses_include import INCLUDABLE, include_values
    from clients.codec._responses_items import input_items_page, is_item_reference, item_id_prefix
    from clients.codec._responses_output import ResponseIds, response_to_openai
    from clients.codec._responses_request import (
        History,
        ResponsesRequest,
        responses_field,
        responses_request_from_openai,
    )
    from clients.codec._responses_stored import (
        References,
        history_of,
        input_items_json,
        references_of,
        stored_document,
        stored_response,
    )
    from clients.codec._responses_stream import ResponseEventStream
    from clients.codec._tokens import CHARS_PER_TOKEN, estimate_prompt_tokens
    from clients.codec._uploads import (
        upload_complete_from_openai,
        upload_part_to_openai,
        upload_request_from_openai,
        upload_to_openai,
    )

_WHERE = {
    "CHARS_PER_TOKEN": "_tokens",
    "COMPACTION_PREFIX": "_responses_compaction",
    "CompactRequest": "_responses_compact",
    "CompletionChunks": "_completions",
    "CompletionsRequest": "_completions",
    "FINAL_STATUSES": "_responses_background",
    "History": "_responses_request",
    "INCLUDABLE": "_responses_include",
    "MEDIA_PATHS": "_media",
    "MEDIA_UPLOADS": "_media",
    "MediaUploads": "_media",
    "References": "_responses_stored",
    "ResponseEventStream": "_responses_stream",
    "ResponseIds": "_responses_output",
    "ResponsesRequest": "_responses_request",
    "SUMMARY_INSTRUCTION": "_responses_compact",
    "UploadProblem": "_media",
    "asks_stream": "_json",
    "check_placeable": "_json",
    "json_problem": "_json",
    "unwritable": "_json",
    "background_cancelled": "_responses_background",
    "background_events": "_responses_background",
    "background_failed": "_responses_background",
    "background_finished": "_responses_background",
    "background_response": "_responses_background",
    "batch_request_from_openai": "_batches",
    "batch_to_openai": "_batches",
    "chat_completion_from_openai": "_response",
    "chat_completion_to_openai": "_response",
    "chat_params_from_openai": "_request",
    "chat_params_to_openai": "_request",
    "chunk_from_openai": "_response",
    "chunk_to_openai": "_response",
    "compact_request_from_openai": "_responses_compact",
    "compacted_response": "_responses_compact",
    "compaction_summary": "_responses_compaction",
    "completion_to_openai": "_completions",
    "completions_field": "_completions",
    "completions_request_from_openai": "_completions",
    "conversation_additions": "_conversations",
    "conversation_history": "_conversations",
    "conversation_inputs": "_conversations",
    "conversation_items_from_openai": "_conversations",
    "conversation_metadata_from_openai": "_conversations",
    "conversation_of": "_conversations",
    "conversation_to_openai": "_conversations",
    "embedding_params_from_openai": "_embeddings",
    "embedding_params_to_openai": "_embeddings",
    "embedding_result_from_openai": "_embeddings",
    "embedding_result_to_openai": "_embeddings",
    "encode_compaction": "_responses_compaction",
    "estimate_prompt_tokens": "_tokens",
    "file_to_openai": "_batches",
    "float32_values": "_embeddings",
    "history_of": "_responses_stored",
    "include_values": "_responses_include",
    "input_items_json": "_responses_stored",
    "input_items_page": "_responses_items",
    "is_item_reference": "_responses_items",
    "input_tokens_of": "_responses_compact",
    "item_id_prefix": "_responses_items",
    "list_page": "_batches",
    "media_params_from_openai": "_media",
    "check_image_references": "_media",
    "referenced_edit": "_media",
    "model_list_to_openai": "_models",
    "references_of": "_responses_stored",
    "rerank_documents": "_rerank",
    "rerank_fields": "_rerank",
    "response_to_openai": "_responses_output",
    "responses_field": "_responses_request",
    "responses_request_from_openai": "_responses_request",
    "said_in_callers_terms": "_callers_terms",
    "stored_document": "_responses_stored",
    "stored_response": "_responses_stored",
    "upload_problem": "_media",
    "upload_complete_from_openai": "_uploads",
    "upload_part_to_openai": "_uploads",
    "upload_request_from_openai": "_uploads",
    "upload_to_openai": "_uploads",
}
# Hidden from type checkers: a module `__getattr__` makes every name it lacks `Any` to them,
# a misspelt import no error; they read the names above instead.
if not TYPE_CHECKING:
    __getattr__, __dir__ = lazy_names(__name__, _WHERE)

__all__ = [
    "CHARS_PER_TOKEN",
    "COMPACTION_PREFIX",
    "FINAL_STATUSES",
    "INCLUDABLE",
    "MEDIA_PATHS",
    "MEDIA_UPLOADS",
    "SUMMARY_INSTRUCTION",
    "CompactRequest",
    "CompletionChunks",
    "CompletionsRequest",
    "History",
    "MediaUploads",
    "References",
    "ResponseEventStream",
    "ResponseIds",
    "ResponsesRequest",
    "UploadProblem",
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
    "embedding_params_from_openai",
    "embedding_params_to_openai",
    "embedding_result_from_openai",
    "embedding_result_to_openai",
    "encode_compaction",
    "estimate_prompt_tokens",
    "file_to_openai",
    "float32_values",
    "history_of",
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
    "unwritable",
    "upload_complete_from_openai",
    "upload_part_to_openai",
    "upload_problem",
    "upload_request_from_openai",
    "upload_to_openai",
]
