"""The names of an upload's documents in the state store (`Uploads`), its count's bucket and
the id of the file it completes into."""

from __future__ import annotations

import hashlib

from router_service.sessions import client_scoped

__all__ = ["UploadNames", "upload_bucket", "upload_file_id"]


class UploadNames:
    """The names of one upload's documents, its client's alone."""

    def __init__(self, client: str, upload_id: str) -> None:
        owner = client_scoped(client, "")
        scoped = f"{owner}:{client_scoped(client, upload_id)}"
        self.upload = f"upload:{scoped}"
        self.end = f"upload-end:{scoped}"
        self.parts = f"upload-parts:{scoped}"
        # Written once, by whoever charges its file first (`charged_once`).
        self.charged = f"upload-charged:{scoped}"
        # The lease of its slot among its client's pending uploads (`_upload_slots`).
        self.slot = f"upload-slot:{scoped}"
        self._scoped = scoped

    def part(self, part_id: str) -> str:
        # Its owner (before the last `:`, the memory store's, whose documents make room) is the
        # client, as its files': parts spread over many uploads drop their own first.
        return f"upload-part:{self._scoped}.{part_id}"


def upload_bucket(upload_id: str) -> int:
    """The bucket of `upload_id`'s parts' count among its client's pending uploads."""
    return int(hashlib.sha256(upload_id.encode()).hexdigest()[:12], 16)


def upload_file_id(upload_id: str) -> str:
    """The id of the file an upload completes into: the same on every replica, so a completion
    retried (or racing another) keeps one file (`StoredFiles.keep` by id)."""
    return "file-" + hashlib.sha256(f"upload:{upload_id}".encode()).hexdigest()[:24]
