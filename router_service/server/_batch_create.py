"""A new batch as `CreateBatch` asks for it (`BatchJobs.start` keeps it and starts its job):
its request checked, its input file read and parsed.

The input file is read on the shared store or not at all (`input_content`): during a Redis
outage a read falls back to this replica's local state, where the file is not, and the caller
would be told its file does not exist (404), when the store only cannot say now (503)."""

from __future__ import annotations

import secrets

from clients.switchboard.v1 import batches_pb2 as bpb
from router_service.batches import BatchLine, parse_lines
from router_service.errors import InvalidRequestError
from router_service.responses import checked_metadata
from router_service.runtime import Runtime
from router_service.server._batch_job import input_content

__all__ = ["new_batch"]


async def new_batch(
    runtime: Runtime, client: str, request: bpb.CreateBatchRequest
) -> tuple[bpb.Batch, list[BatchLine]]:
    """`client`'s batch of `request`, not kept yet, and its lines: `failed` already (and no
    line) when its input file has bad lines."""
    metadata = checked_metadata(request.metadata_json)
    # Checked now, used as its files are written.
    runtime.files.asked_ttl_s(request.output_expires_after_s, "output_expires_after.seconds")
    found = await input_content(runtime, client, request.input_file_id)
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
        model=_model_of(lines),
    )
    return batch, lines


def _model_of(lines: list[BatchLine]) -> str:
    """The model every one of `lines` asks for (OpenAI's `Batch.model`); "" if not one."""
    models = {m if isinstance(m := line.body.get("model"), str) else "" for line in lines}
    return models.pop() if len(models) == 1 else ""
