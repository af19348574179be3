"""The names of a file's documents in the state store (`StoredFiles`), and its tombstone.

A deleted file's tombstone (its object as it was, under a name of its own) is kept for as long
as any file is (`files.ttl_s`): written before the file's documents are deleted, it is read by a
writer of a file of a known id (a batch's output or error file, an upload's completion) before
and after it writes, so one written again after the delete (on another replica: a batch's end
written again where it is taken over, a completion retried there) deletes what it wrote: the
delete wins, whatever the order of the two replicas' steps."""

from __future__ import annotations

from typing import NamedTuple

from clients.switchboard.v1 import batches_pb2 as bpb
from router_service.sessions import client_scoped
from router_service.state import kept_message, tombstone_name

__all__ = ["FileNames", "file_names", "file_owner", "kept_file", "quota_name"]


class FileNames(NamedTuple):
    """The names of one file's documents: its content, its object, and its tombstone."""

    content: str
    object: str
    deleted: str


def kept_file(file_id: str, data: bytes | None) -> bpb.StoredFile | None:
    """The file (an object, or a tombstone's) in document `data`; None when there is none."""
    file = kept_message(bpb.StoredFile, data)
    # The id inside guards against a (128-bit) hash collision with another's name.
    return file if file is not None and file.id == file_id else None


def file_owner(client: str) -> str:
    return client_scoped(client, "")


def quota_name(client: str) -> str:
    # Hashed like the documents' names: a client's name is configuration, not a key part.
    return "file-bytes:" + file_owner(client)


def file_names(client: str, file_id: str) -> FileNames:
    """The names of `client`'s file `file_id`'s documents (its tombstone's: a memory store at
    its budget drops it first)."""
    owner, name = file_owner(client), client_scoped(client, file_id)
    scoped = f"{owner}:{name}"
    return FileNames(f"file-data:{scoped}", f"file:{scoped}", tombstone_name("file", owner, name))
