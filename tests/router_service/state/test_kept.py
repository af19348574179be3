"""kept_message: a document the router kept, read back as its message, or as absent."""

from __future__ import annotations

from clients.switchboard.v1 import batches_pb2 as bpb
from router_service.state import kept_message


def test_a_kept_message_reads_back_and_a_foreign_one_is_absent() -> None:
    stored = bpb.StoredFile(id="file-1", filename="lines.jsonl", bytes=12)
    assert kept_message(bpb.StoredFile, stored.SerializeToString()) == stored
    assert kept_message(bpb.StoredFile, None) is None
    # Another writer's value under the store's prefix: not a message, as good as absent.
    assert kept_message(bpb.StoredFile, b"\xff\xff\xff not protobuf") is None
