"""StoredFiles: the router's side of OpenAI's Files API (a batch's input, output and error
files; user data). The HTTP edge translates; the router keeps (DESIGN.md §1).

A file is two documents in the state store (memory, or Redis shared by the replicas), for
`files.ttl_s`: its object (`StoredFile`) and its content, named by a hash of the calling
client's name and the file's id (`client_scoped`, as stored responses are): an unknown, an
expired, a deleted (its tombstone kept: `_file_names`, so no writer of its id makes it again)
and another client's id are one NOT_FOUND. Each client's ids are listed by a
`ClientIndex`. No call counts in rpm, so each is bounded here: a file's size
(`files.max_file_bytes`), what a client uploads per period (`files.client_bytes` per `ttl_s`,
ByteQuota: it holds at most twice that) and how many files it makes (`files.max_files`).
"""

from __future__ import annotations

import contextlib
import functools
import secrets
from typing import NoReturn

from clients.switchboard.v1 import batches_pb2 as bpb
from router_service._ids import looked_up_id
from router_service.batches._errors import FileQuotaError, FileTooLargeError
from router_service.batches._errors import StoredFileNotFoundError as NotFound
from router_service.batches._file_checks import (
    OUTPUT_PURPOSE,
    UPLOAD_PURPOSES,
    asked_ttl_s,
    check_upload,
    output_file_id,
)
from router_service.batches._file_names import file_names as _names
from router_service.batches._file_names import file_owner as _owner
from router_service.batches._file_names import kept_file
from router_service.batches._file_names import quota_name as _quota_name
from router_service.batches._file_outage import NOT_DELETED, NOT_KEPT, NOT_LISTED, NOT_READ
from router_service.batches._file_pages import page_of
from router_service.batches._index import ClientIndex
from router_service.batches._pending import pending_bytes
from router_service.batches._records import answered_locally, shared_throughout
from router_service.cancellation import uncut
from router_service.clock import Clock
from router_service.config import FilesConfig
from router_service.errors import InvalidRequestError, StoreUnavailableError
from router_service.responses import ENTRY_BYTES
from router_service.state import (
    ByteQuota,
    MemoryStateStore,
    PutResult,
    StateStore,
    document_delete,
)

__all__ = [
    "OUTPUT_PURPOSE",
    "UPLOAD_PURPOSES",
    "StoredFiles",
    "check_upload",
    "output_file_id",
]

_MAX_LIST = 10_000  # OpenAI's largest `limit`, and its default


class StoredFiles:
    def __init__(self, store: StateStore, clock: Clock, config: FilesConfig) -> None:
        self._store = store
        self._clock = clock
        self._config = config
        self._quota = ByteQuota(
            store, clock, limit_bytes=config.client_bytes, period_s=config.ttl_s
        )
        self._index = ClientIndex(
            store, clock, kind="file", period_s=config.ttl_s, max_ids=config.max_files
        )
        # A memory store at its budget drops documents one by one to make room, a file's
        # content (the largest of its owner's, `file-data:<client>`) before its object
        # (`file:<client>`, another owner's): a file is read there only with its content
        # (`_whole`). Redis drops none.
        self._drops_parts = isinstance(store, MemoryStateStore)

    @property
    def config(self) -> FilesConfig:
        return self._config

    async def upload(self, client: str, request: bpb.UploadFileRequest) -> bpb.StoredFile:
        """Keep an upload of `client`: a purpose it may upload, within its bounds."""
        check_upload(request.purpose, request.filename)
        if not request.content:  # as OpenAI (and an upload in parts declaring 0 `bytes`)
            raise InvalidRequestError("File is empty.", param="file")
        ttl_s = self.asked_ttl_s(request.expires_after_s, "expires_after.seconds")
        return await self.keep(
            client, request.filename, request.purpose, request.content, ttl_s=ttl_s, shared=True
        )

    def asked_ttl_s(self, expires_after_s: int, param: str) -> float:
        """`asked_ttl_s` of these files."""
        return asked_ttl_s(self._config.ttl_s, expires_after_s, param)

    async def keep(
        self,
        client: str,
        filename: str,
        purpose: str,
        content: bytes,
        *,
        file_id: str | None = None,
        ttl_s: float | None = None,
        shared: bool = False,
        charged: bool = True,
    ) -> bpb.StoredFile:
        """Keep a file of `client` (an upload, or a batch's output) within its bounds, for
        `ttl_s` (None: `files.ttl_s`). A given `file_id` (a batch's output: `output_file_id`)
        is kept once: the file kept by it already is returned as it is, charged nothing again
        (a batch's end written again where it is taken over, its runner stopped after its
        files were kept). `shared` (an upload): on the shared store or not at all, as a batch
        is; one kept where only this replica reads it (Redis lost meanwhile: one made over it
        elsewhere was a 404) is forgotten and refused, StoreUnavailableError, not charged.
        Not `charged` (an upload's completion, which a cancel may still beat): `charge` it
        once it stands."""
        before = self._store.outage_counts() if shared else None
        if len(content) > self._config.max_file_bytes:
            raise FileTooLargeError(
                f"The file is larger than {self._config.max_file_bytes} bytes "
                "(files.max_file_bytes).",
                param="file",
                code="file_too_large",
            )
        if file_id is not None:  # kept already, or kept and deleted since: as it is
            kept_before = await self._kept_by_id(client, file_id)
            if kept_before is not None:
                return kept_before
        now = self._clock.now()
        ttl_s = ttl_s or self._config.ttl_s
        file = bpb.StoredFile(
            id=file_id or f"file-{secrets.token_hex(12)}",
            bytes=len(content),
            created_at=int(now),
            filename=filename,
            purpose=purpose,
            expires_at=int(now + ttl_s),
        )
        size = len(content) + ENTRY_BYTES
        quota_name = _quota_name(client)
        held = await pending_bytes(self._store, client)
        bucket = await self._quota.room(quota_name, size + held)
        if bucket is None:
            self._over_quota(
                f"uploaded its {self._config.client_bytes} bytes of files (files.client_bytes)"
            )
        added = await self._indexed(client, file.id, again=file_id is not None)
        # Written whole once begun, whatever cancels the call meanwhile (its caller leaving):
        # a content kept without its object, or a file kept and not counted, was bytes in the
        # store for `ttl_s` that no listing showed and no quota counted. So is the outage's
        # test: a caller gone as Redis was lost left its file on local state, listed there.
        charge = (quota_name, bucket, size) if charged else None
        once = file_id is not None
        return await uncut(self._write(client, file, content, ttl_s, charge, added, before, once))

    async def _write(
        self,
        client: str,
        file: bpb.StoredFile,
        content: bytes,
        ttl_s: float,
        charge: tuple[str, int, int] | None,
        added: bool,
        shared_since: dict[str, int] | None,
        once: bool,
    ) -> bpb.StoredFile:
        """Keep `file`'s content, then its object, then count it (`charge`: the quota's name,
        bucket and size; None: not here); neither kept when the store has no room, nor when
        some was kept on local state since `shared_since` (its `outage_counts`; None: wherever
        it is kept). `once` (a known id): its object written only where its name holds none;
        the file there (another writer's, or deleted since) is returned then, charged nothing.
        Refused, it takes its id back out of the client's index when `added` there by this
        call: it uses up no place of `files.max_files`."""
        try:
            first = await self._kept(client, file, content, ttl_s, shared_since, once=once)
        except BaseException:
            if added:
                await self._unindexed(client, file.id, once=once)
            raise
        if first is not None:
            return first
        if charge is not None:
            await self._quota.charge(*charge)
        return file

    async def charge(
        self, client: str, file: bpb.StoredFile, store: StateStore | None = None
    ) -> None:
        """Count `client`'s `file`, kept not `charged`, against `files.client_bytes` (on
        `store`: the shared store or the local state of this one's, for a replayed charge) in
        the period it was kept in, as `room` was asked: a charge late into the next (replayed
        once Redis answers again) counts in the ended one, no longer read, not in the new."""
        quota, period_s = self._quota, self._config.ttl_s
        if store is not None:
            quota = ByteQuota(store, self._clock, limit_bytes=quota.limit_bytes, period_s=period_s)
        bucket = quota.bucket_at(file.created_at)
        await quota.charge(_quota_name(client), bucket, file.bytes + ENTRY_BYTES)

    async def _kept(
        self,
        client: str,
        file: bpb.StoredFile,
        content: bytes,
        ttl_s: float,
        shared_since: dict[str, int] | None,
        *,
        once: bool,
    ) -> bpb.StoredFile | None:
        """Write `file` (None), or find that of its known id (`once`) written first or deleted
        since (`_written_first`), returned."""
        names = _names(client, file.id)
        kept = await self._store.put_document(names.content, content, ttl_s)
        if kept is PutResult.KEPT:
            data = file.SerializeToString()
            kept = await self._store.put_document(names.object, data, ttl_s, only_new=once)
        if once and kept in (PutResult.KEPT, PutResult.EXISTS):
            first = await self._written_first(client, file, kept is PutResult.EXISTS)
            if first is not None:
                return first
        if kept is PutResult.KEPT and not await self._content_kept(client, file.id):
            kept = PutResult.TOO_LARGE  # its object's room made by dropping its content
        if kept is not PutResult.KEPT:  # the memory store's room
            if shared_since is not None:  # an upload: its content may be on the shared store
                await self._forget(client, file.id, once=once)  # (Redis lost as its object put)
            else:  # a batch's output, kept again by its id elsewhere: no late delete
                await self._store.delete_document(names.content)
            raise FileTooLargeError(
                "The router has no room to keep this file now.", param="file", code="no_room"
            )
        if shared_since is not None and answered_locally(self._store, shared_since):
            await self._forget(client, file.id, once=once)
            raise StoreUnavailableError(NOT_KEPT)
        return None

    async def _written_first(
        self, client: str, file: bpb.StoredFile, exists: bool
    ) -> bpb.StoredFile | None:
        """Once `file` of a known id is written (its object `exists` already: another writer's):
        None when it stands, else the file that does. Deleted meanwhile (its tombstone read
        after the write: the delete's steps come before or after this writer's, in any order),
        what this writer wrote is deleted again: the delete wins, and the deleted file is."""
        names = _names(client, file.id)
        dead, there = await self._store.get_documents([names.deleted, names.object])
        deleted = kept_file(file.id, dead)
        if deleted is not None:
            await self._store.delete_documents([names.content, names.object])
            return deleted
        if exists:  # another writer's object first: its file (this one's content like its)
            return kept_file(file.id, there) or file
        return None

    async def _kept_by_id(self, client: str, file_id: str) -> bpb.StoredFile | None:
        """`client`'s file `file_id` as kept, or as it was when deleted; None: neither."""
        names = _names(client, file_id)
        dead, there = await self._store.get_documents([names.deleted, names.object])
        deleted = kept_file(file_id, dead)
        return deleted or await self._whole(client, kept_file(file_id, there))

    async def hold_room(self, client: str) -> None:
        """Refuse `client`'s pending upload parts, the last one counted already (FileQuotaError),
        when `files.client_bytes` has no room for them."""
        held = await pending_bytes(self._store, client)
        if await self._quota.room(_quota_name(client), held) is None:
            self._over_quota(
                f"uploaded its {self._config.client_bytes} bytes of files (files.client_bytes)"
            )

    async def _indexed(self, client: str, file_id: str, *, again: bool) -> bool:
        """Add `file_id` to `client`'s index, or refuse the file (the index is full): whether
        this call added it. `again`: it may be there already (a batch's output whose writer
        stopped before its file was kept), once."""
        owner = _owner(client)
        if again and file_id in await self._index.ids(owner):
            return False
        if not await self._index.add(owner, file_id, late=not again):
            self._over_quota(f"made its {self._config.max_files} files (files.max_files)")
        return True

    async def _unindexed(self, client: str, file_id: str, *, once: bool) -> None:
        """Take a refused file's id out of `client`'s index: during an outage once the shared
        store answers again (`ClientIndex.remove`; the refusal is what the caller hears); of a
        known id (`once`), only where it answers now, as `_forget`."""
        with contextlib.suppress(StoreUnavailableError):
            await self._index.remove(_owner(client), file_id, late=not once)

    async def get(self, client: str, file_id: str, param: str = "id") -> bpb.StoredFile:
        """`client`'s file `file_id` (`param`: the request's field naming it); one not found
        on local state during an outage is unknown, StoreUnavailableError, not NOT_FOUND."""
        before = self._store.outage_counts()
        (found,) = await self._objects(client, [_checked(file_id, param)])
        if found is None:
            shared_throughout(self._store, before, NOT_READ.format(file_id))
            raise NotFound(file_id, param=param)
        return found

    async def content(
        self, client: str, file_id: str, param: str = "id"
    ) -> bpb.GetFileContentResponse:
        """`client`'s file `file_id` with its content (StoreUnavailableError as `get`)."""
        file = await self.get(client, file_id, param)
        before = self._store.outage_counts()
        (data,) = await self._store.get_documents([_names(client, file_id)[0]])
        if data is None:  # expired or deleted between the two reads, or Redis lost since
            shared_throughout(self._store, before, NOT_READ.format(file_id))
            raise NotFound(file_id, param=param)
        return bpb.GetFileContentResponse(file=file, content=data)

    async def listed(self, client: str, request: bpb.ListFilesRequest) -> bpb.ListFilesResponse:
        """`client`'s files, newest first (oldest with `order` "asc"), after `request.after`,
        of `request.purpose`: a page (`page_of`); read on local state during an outage,
        StoreUnavailableError (not those it holds: none)."""
        limit = request.limit or _MAX_LIST
        if not 1 <= limit <= _MAX_LIST:
            raise InvalidRequestError(f"`limit` must be 1 to {_MAX_LIST}.", param="limit")
        if request.order not in ("", "desc", "asc"):
            raise InvalidRequestError("`order` must be 'asc' or 'desc'.", param="order")
        before = self._store.outage_counts()
        ids = await self._index.ids(_owner(client))
        if request.order == "asc":
            ids.reverse()
        if request.after:
            ids = ids[ids.index(request.after) + 1 :] if request.after in ids else []
        read = functools.partial(self._objects, client)
        purpose = request.purpose
        wanted = (lambda f: f.purpose == purpose) if purpose else (lambda _: True)
        files, more = await page_of(ids, read, limit=limit, wanted=wanted)
        shared_throughout(self._store, before, NOT_LISTED)
        return bpb.ListFilesResponse(files=files, has_more=more)

    async def delete(self, client: str, file_id: str) -> None:
        """Delete `client`'s file `file_id` (NOT_FOUND when it has none, StoreUnavailableError
        as `get`), for good: its tombstone written first (`_file_names`), then its documents
        deleted (during an outage what Redis holds: StoreUnavailableError). A tombstone that
        went to this replica's local state (Redis lost as it was written) is taken back before
        the refusal: every replica reads the file as there, this one too once Redis is back
        (its tombstone, found locally while Redis lacks one, was its own deleted file alone)."""
        file = await self.get(client, file_id)
        names = _names(client, file_id)
        before = self._store.outage_counts()
        await self._store.put_document(names.deleted, file.SerializeToString(), self._config.ttl_s)
        if answered_locally(self._store, before):
            with contextlib.suppress(StoreUnavailableError):  # (it is gone from local state)
                await self._store.delete_document(names.deleted)
            raise StoreUnavailableError(NOT_DELETED.format(file_id))
        await self._store.delete_document(names.content)
        if not await self._store.delete_document(names.object):
            raise NotFound(file_id, param="id")  # deleted by another meanwhile

    async def _forget(self, client: str, file_id: str, *, once: bool) -> None:
        """Delete what was kept of `client`'s file `file_id`: on this replica's local state,
        and on the shared store now or once it answers (`everywhere`: its names are written by
        nobody again, so a late delete undoes nothing). A known id's (`once`: a completion, its
        retry elsewhere writing the same names; a late delete took that one's file) only where
        the store answers now: the rest is its next writer's, or its upload's cancel's."""
        names = _names(client, file_id)[:2]  # its content and object
        if once:
            with contextlib.suppress(StoreUnavailableError):  # the caller hears its refusal
                await self._store.delete_documents(names)
            return
        for name in names:
            await self._store.everywhere("delete_document", document_delete(name))

    async def _objects(self, client: str, ids: list[str]) -> list[bpb.StoredFile | None]:
        found = await self._store.get_documents([_names(client, i)[1] for i in ids])
        files = [kept_file(i, data) for i, data in zip(ids, found, strict=True)]
        return [await self._whole(client, file) for file in files]

    async def _whole(self, client: str, file: bpb.StoredFile | None) -> bpb.StoredFile | None:
        """`file`, or None when its content is gone (a memory store dropped it for room): its
        object is deleted then, what is left of it."""
        if file is None or await self._content_kept(client, file.id):
            return file
        await self._store.delete_document(_names(client, file.id)[1])
        return None

    async def _content_kept(self, client: str, file_id: str) -> bool:
        """Whether the file's content is kept: never dropped alone but on a memory store."""
        if not self._drops_parts:
            return True
        content_name = _names(client, file_id)[0]
        return await self._store.read_document(content_name, 0, 0) is not None

    def _over_quota(self, what: str) -> NoReturn:
        resets = self._quota.reading([""]).resets_unix
        raise FileQuotaError(
            f"This client {what} this period: no more files can be kept until it ends.",
            retry_after_s=max(0.0, resets - self._clock.now()),
        )


def _checked(file_id: str, param: str = "id") -> str:
    """A file id to look up (`looked_up_id`)."""
    return looked_up_id(file_id, param, "file", functools.partial(NotFound, param=param))
