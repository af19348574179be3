"""A new batch as `CreateBatch` asks for it (`BatchJobs.start` keeps it and starts its job):
its request checked, its input file read and parsed.

The input file is read on the shared store or not at all: during a Redis outage the read falls
back to this replica's local state, where the file is not (it was uploaded to Redis), and the
caller would be told its file does not exist (404 `file_not_found`), its own mistake, when the
store only cannot say now (503, to try again)."""

from __future__ import annotations

import secrets

from clients.switchboard.v1 import batches_pb2 as bpb
from router_service.batches import BatchLine, parse_lines, shared_throughout
from router_service.errors import InvalidRequestError
from router_service.responses import checked_metadata
from router_service.runtime import Runtime

__all__ = ["new_batch"]

_FILE_NOT_READ = (
    "The shared state store is unreachable: the batch's input file cannot be read now; "
    "try again shortly."
)


async def new_batch(
    runtime: Runtime, client: str, request: bpb.CreateBatchRequest
) -> tuple[bpb.Batch, list[BatchLine]]:
    """`client`'s batch of `request`, not kept yet, and its lines: `failed` already (and no
    line) when its input file has bad lines."""
    metadata = checked_metadata(request.metadata_json)
    # Checked now, used as its files are written.
    runtime.files.asked_ttl_s(request.output_expires_after_s, "output_expires_after.seconds")
    found = await _input_file(runtime, client, request.input_file_id)
    if found.file.purpose != "batch":
        raise InvalidRequestError(
            "The input file must be uploaded with purpose 'batch'.", param="input_file_id"
        )
    config = runtime.config.batches
    # Parsed to check them; read again when the batch has a slot (`load_lines`).
    lines, errors = parse_lines(found.content, request.endpoint, config.max_lines)
    now = int(runtime.clock.now())
    batch = bpb.Batch(
        id=f"batch_{secrets.token_hex(16)}",
        endpoint=request.endpoint,
        input_file_id=request.input_file_id,
        completion_window=request.completion_window,
        status="failed" if errors else "validating",
        created_at=now,
        expires_at=now + int(config.completion_window_s),
        failed_at=now if errors else 0,
        errors=errors,
        metadata_json=metadata,
        request_counts=bpb.BatchRequestCounts(total=len(lines)),
        output_expires_after_s=request.output_expires_after_s,
        input_file_expires_at=found.file.expires_at,
    )
    return batch, lines


async def _input_file(runtime: Runtime, client: str, file_id: str) -> bpb.GetFileContentResponse:
    """The batch's input file, read on the shared store (StoreUnavailableError otherwise)."""
    store, before = runtime.store, runtime.store.outage_counts()
    try:
        return await runtime.files.content(client, file_id, "input_file_id")
    finally:  # one not found on local state is unknown, not gone
        shared_throughout(store, before, _FILE_NOT_READ)
