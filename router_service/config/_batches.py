"""Files and batches (OpenAI's Files and Batch APIs), kept and run by the router."""

from __future__ import annotations

from pydantic import Field

from router_service.config._base import _Strict


class FilesConfig(_Strict):
    """Files a client uploads (a batch's input, user data) and a batch's output and error
    files, kept in the state store for `ttl_s` (so any replica serves them)."""

    ttl_s: float = Field(
        default=30 * 24 * 3600.0,
        gt=0,
        description="How long a file is kept after its upload (OpenAI keeps batch files 30 "
        "days); a batch's output and error files from when they are written.",
    )
    max_file_bytes: int = Field(
        default=16 * 1024 * 1024,
        ge=1,
        description="A file's largest size; a larger upload is refused (413 "
        "`file_too_large`). The edge's `edge.max_upload_bytes` bounds an upload's body too.",
    )
    client_bytes: int = Field(
        default=256 * 1024 * 1024,
        ge=1,
        description="What one client may upload per period of `ttl_s` (each file's bytes and "
        "512 for its entry; a batch's output counts too), so what it holds at once stays under "
        "twice this; past it an upload is refused (429 `file_quota_exceeded` until the period "
        "ends).",
    )
    max_files: int = Field(
        default=1000,
        ge=1,
        description="The most files (and, apart, the most batches) a client makes per period "
        "of `ttl_s`; past it an upload or a batch is refused as over the quota.",
    )
    upload_ttl_s: float = Field(
        default=3600.0,
        gt=0,
        description="How long an upload in parts (`/v1/uploads`) stays pending: then it "
        "expires, its parts are deleted and no longer counted in `client_bytes` (OpenAI: an "
        "hour).",
    )

    max_pending_uploads: int = Field(
        default=100,
        ge=1,
        description="The most uploads in parts (`/v1/uploads`) one client may have pending "
        "at once, over all replicas; past it a new one is refused (429 "
        "`upload_limit_exceeded`) until one of them is completed, cancelled or expires.",
    )


class BatchesConfig(_Strict):
    """Batches: the lines of an input file run through the router by the replica that took
    the batch, each as the client's own call would be."""

    concurrency: int = Field(
        default=4,
        ge=1,
        description="Lines of one batch in flight at once: a batch never holds more of the "
        "upstream keys than this, so live traffic keeps its room.",
    )
    max_running: int = Field(
        default=8,
        ge=1,
        description="Batches one replica runs at once; more wait their turn (`validating`).",
    )
    max_waiting_per_client: int = Field(
        default=8,
        ge=1,
        description="Batches of one client that may wait for one of a replica's "
        "`max_running` slots; past it a new batch is refused (429 `BATCH_WAIT_LIMIT`) until "
        "one of them starts.",
    )
    max_lines: int = Field(
        default=50_000,
        ge=1,
        description="The most lines (requests) an input file may hold (OpenAI's 50,000).",
    )
    completion_window_s: float = Field(
        default=24 * 3600.0,
        gt=0,
        description="How long a batch may run (`completion_window: 24h`): lines not answered "
        "by then are not run, and the batch ends `expired` with what it answered written out.",
    )
    heartbeat_s: float = Field(
        default=30.0,
        ge=3.0,
        description="A running batch's claim: its replica renews it every third of this (and "
        "looks for batches nobody holds as often); a batch whose replica crashed is taken over "
        "by another after it.",
    )
