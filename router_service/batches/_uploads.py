"""Uploads: the router's side of OpenAI's Uploads API (a file sent in parts, then completed
into a file as `StoredFiles` keeps an upload whole). The HTTP edge translates; the router keeps
(DESIGN.md §1).

An upload is documents in the state store (memory, or Redis shared by the replicas), named by
a hash of the calling client's name and the upload's id (another client's id is unknown): its
object as made (`upload:`), its end once completed or cancelled (`upload-end:`, written only
new: of a completion and a cancel racing on two replicas, the first wins), each part
(`upload-part:`) and the list of its parts' ids (`upload-parts:`). A pending upload expires
`files.upload_ttl_s` after it was made, its parts with it (their documents' expiry: nothing to
sweep). Its parts count against `files.client_bytes` while it is pending, in a bucket of the
client's that expires with it (`pending_name`): a cancelled or expired upload's parts are
given back, a completed one's are charged as its file. A file's size is held to
`files.max_file_bytes` as a whole upload is: a part is refused that would take an upload's parts
past its declared `bytes`, so the router never holds more of one than that.
"""

from __future__ import annotations

import contextlib
import hashlib
import secrets

from clients.switchboard.v1 import uploads_pb2 as upb
from router_service._ids import looked_up_id
from router_service.batches._errors import (
    FileTooLargeError,
    StoredFileNotFoundError,
    UploadNotFoundError,
    UploadNotPendingError,
)
from router_service.batches._files import StoredFiles, check_upload
from router_service.batches._records import answered_locally, shared_throughout
from router_service.batches._upload_charge import charged_if_completed, charged_once
from router_service.batches._upload_counts import PartCounts
from router_service.batches._upload_names import UploadNames as _Names
from router_service.batches._upload_names import upload_file_id
from router_service.batches._upload_parts import MAX_PARTS, PART_ID_BYTES, checked_part_ids
from router_service.batches._upload_slots import given_back, given_back_if_ended, taken
from router_service.batches._upload_types import check_mime_type
from router_service.cancellation import uncut
from router_service.clock import Clock
from router_service.errors import InvalidRequestError, StoreUnavailableError
from router_service.state import AppendResult, PutResult, StateStore, documents_delete, kept_message

__all__ = ["Uploads"]

_NOT_SHARED = (
    "The shared state store is unreachable from this replica: upload {} cannot be used now; "
    "try again shortly."
)


class Uploads:
    def __init__(self, store: StateStore, clock: Clock, files: StoredFiles) -> None:
        self._store = store
        self._clock = clock
        self._files = files
        self._counts = PartCounts(store, clock)

    async def create(self, client: str, request: upb.CreateUploadRequest) -> upb.Upload:
        """Begin an upload of `client`: pending for `files.upload_ttl_s`."""
        config = self._files.config
        check_upload(request.purpose, request.filename)
        if request.bytes < 1:
            raise InvalidRequestError("`bytes` must be at least 1.", param="bytes")
        if request.bytes > config.max_file_bytes:
            raise FileTooLargeError(
                f"The file is larger than {config.max_file_bytes} bytes (files.max_file_bytes).",
                param="bytes",
                code="file_too_large",
            )
        check_mime_type(request.purpose, request.mime_type)
        self._files.asked_ttl_s(request.expires_after_s, "expires_after.seconds")
        now = self._clock.now()
        upload = upb.Upload(
            id=f"upload_{secrets.token_hex(12)}",
            bytes=request.bytes,
            created_at=int(now),
            expires_at=int(now + config.upload_ttl_s),
            filename=request.filename,
            purpose=request.purpose,
            status="pending",
            mime_type=request.mime_type,
            file_expires_after_s=request.expires_after_s,
        )
        await uncut(self._made_counted(client, upload))
        return upload

    async def _made_counted(self, client: str, upload: upb.Upload) -> None:
        """Take a slot for `upload` (`taken`), then keep it; its slot given back if not kept."""
        config, life_s = self._files.config, upload.expires_at - self._clock.now()
        most, retry_s = config.max_pending_uploads, config.upload_ttl_s
        lease = await taken(self._store, client, life_s, most=most, life_s=retry_s)
        try:
            await self._made(client, upload, lease)
        except BaseException:
            await given_back(self._store, client, lease)
            raise

    async def _made(self, client: str, upload: upb.Upload, lease: str) -> None:
        """Keep `upload`'s object, its empty list of parts and its slot's `lease`, on the
        shared store or not at all (as a file is)."""
        names = _Names(client, upload.id)
        before = self._store.outage_counts()
        ttl_s = self._kept_s(upload)
        kept = await self._store.put_document(names.parts, b"", ttl_s)
        if kept is PutResult.KEPT:
            kept = await self._store.put_document(names.slot, lease.encode(), ttl_s)
        if kept is PutResult.KEPT:
            kept = await self._store.put_document(names.upload, upload.SerializeToString(), ttl_s)
        if kept is not PutResult.KEPT or answered_locally(self._store, before):
            await self._forget(names, [])
            if kept is not PutResult.KEPT:
                raise FileTooLargeError(
                    "The router has no room to keep this upload now.", param="bytes", code="no_room"
                )
            raise StoreUnavailableError(_NOT_SHARED.format(upload.id))

    async def add_part(self, client: str, request: upb.AddUploadPartRequest) -> upb.UploadPart:
        """Keep a part of `client`'s pending upload, counted against its quota."""
        upload, _ = await self._pending(client, request.upload_id, "add Parts to")
        if not request.data:
            raise InvalidRequestError("The part's `data` is empty.", param="data")
        part = upb.UploadPart(
            id=f"part_{secrets.token_hex(12)}",
            created_at=int(self._clock.now()),
            upload_id=upload.id,
        )
        await uncut(self._part_counted(client, upload, part, request.data))
        return part

    async def _part_counted(
        self, client: str, upload: upb.Upload, part: upb.UploadPart, data: bytes
    ) -> None:
        """Count `part` first, then hold it to its upload's `bytes` and its client's quota and
        keep it: of parts sent at once, each sees the others' count (none is let past a bound
        by reading it before the others were counted); its count taken back when refused."""
        await self._counts.count(client, upload, len(data))
        try:
            if await self._counts.held(client, upload.id) > upload.bytes:
                raise InvalidRequestError(
                    f"The parts of Upload {upload.id} would be more than the {upload.bytes} "
                    "bytes it was created with.",
                    param="data",
                )
            await self._files.hold_room(client)
            await self._part_kept(client, upload, part, data)
        except BaseException:
            await self._counts.count(client, upload, -len(data))
            raise

    async def _part_kept(
        self, client: str, upload: upb.Upload, part: upb.UploadPart, data: bytes
    ) -> None:
        """Keep `part` (its `data`, its id in the upload's list) until the upload expires;
        taken back whole when it cannot be kept, or when the upload ended meanwhile."""
        names = _Names(client, upload.id)
        before = self._store.outage_counts()
        ttl_s = max(upload.expires_at - self._clock.now(), 1.0)
        name = names.part(part.id)
        kept = await self._store.put_document(name, data, ttl_s)
        listed = AppendResult.MISSING
        if kept is PutResult.KEPT:
            entry = (part.id + "\n").encode()
            listed = await self._store.append_document(
                names.parts, entry, max_bytes=MAX_PARTS * PART_ID_BYTES
            )
        if listed is not AppendResult.APPENDED:
            await self._forget(names, [part.id], whole=False)
            if listed is AppendResult.TOO_LARGE:
                raise InvalidRequestError(
                    f"Upload {upload.id} has its {MAX_PARTS} parts already.", param="data"
                )
            raise FileTooLargeError(
                "The router has no room to keep this part now.", param="data", code="no_room"
            )
        ended = (await self._ends(client, [upload.id]))[0]
        if ended is not None or answered_locally(self._store, before):
            await self._forget(names, [part.id], whole=False)
            if ended is not None:
                raise UploadNotPendingError(upload.id, ended.status, "add Parts to")
            raise StoreUnavailableError(_NOT_SHARED.format(upload.id))

    async def complete(self, client: str, request: upb.CompleteUploadRequest) -> upb.Upload:
        """Make `client`'s pending upload a file of its parts `request.part_ids`, in order; one
        completed already is answered as it is (the SDK's retry of a completion whose answer
        was lost, as one retried while the first runs is: `_ended`), its file charged once
        (by it, when the first's charge was lost with Redis's reply)."""
        upload, lease = await self._found(client, request.upload_id)
        if upload.status == "completed":  # its file charged now if the first's charge was lost
            await uncut(self._charged(client, upload))
            await uncut(given_back(self._store, client, lease))  # as the first's may be lost
            return upload
        if upload.status != "pending":
            raise UploadNotPendingError(upload.id, upload.status, "complete")
        content = await self._assembled(client, upload, list(request.part_ids))
        if len(content) != upload.bytes:
            raise InvalidRequestError(
                f"The parts add up to {len(content)} bytes, not the {upload.bytes} bytes "
                f"Upload {upload.id} was created with.",
                param="part_ids",
            )
        if request.md5 and hashlib.md5(content).hexdigest() != request.md5.lower():
            raise InvalidRequestError(
                "The md5 checksum of the parts does not match the `md5` given.", param="md5"
            )
        return await uncut(self._completed(client, upload, content, lease))

    async def _completed(
        self, client: str, upload: upb.Upload, content: bytes, lease: str
    ) -> upb.Upload:
        """Keep `content` as `upload`'s file (its parts' count given back), then mark the upload
        completed, then charge the file once (`_charged`: a completion retried while the first
        runs keeps and answers the same file; one that a cancel beat deletes it again, charging
        nothing)."""
        before = self._store.outage_counts()
        held = await self._counts.held(client, upload.id)
        await self._counts.count(client, upload, -held)
        try:
            file = await self._files.keep(
                client,
                upload.filename,
                upload.purpose,
                content,
                file_id=upload_file_id(upload.id),
                ttl_s=self._files.asked_ttl_s(upload.file_expires_after_s, "expires_after"),
                shared=True,
                charged=False,
            )
            done = upb.Upload()
            done.CopyFrom(upload)
            done.status = "completed"
            done.file.CopyFrom(file)
            ended = await self._ended(client, done, lease)
        except BaseException:  # still pending (Redis lost meanwhile): its parts count again
            await self._counts.recounted(client, upload, held, before, pending=True)
            raise
        if ended.status != "completed":
            with contextlib.suppress(StoredFileNotFoundError):  # the cancel's delete first
                await self._files.delete(client, file.id)
            raise UploadNotPendingError(upload.id, ended.status, "complete")
        await self._charged(client, ended)
        await given_back(self._store, client, lease)
        if ended is done:  # this completion ended it (of two racing, one)
            # A part kept as it completed went with the others: given back as a cancel's are.
            await self._counts.count(client, upload, -await self._counts.held(client, upload.id))
        return ended

    async def _charged(self, client: str, ended: upb.Upload) -> None:
        """Charge completed `ended`'s file unless it was charged already (`charged_once`)."""
        await charged_once(self._store, self._files, client, ended, self._charge_s(ended))

    def _charge_s(self, ended: upb.Upload) -> float:
        """How long completed `ended`'s charge marker is kept: as long as its file, and past
        its end (no completion charges it again)."""
        ttl_s = self._files.asked_ttl_s(ended.file_expires_after_s, "expires_after")
        return max(ttl_s, self._kept_s(ended))

    async def cancel(self, client: str, request: upb.CancelUploadRequest) -> upb.Upload:
        """Cancel `client`'s pending upload: its parts deleted and given back, its slot too."""
        upload, lease = await self._pending(client, request.upload_id, "cancel")
        return await uncut(self._cancelled(client, upload, lease))

    async def _cancelled(self, client: str, upload: upb.Upload, lease: str) -> upb.Upload:
        """End `upload` cancelled, then give back what it held (its parts' count, its slot
        `lease`): whole, a caller that leaves once its end is written cuts none of it (its
        retry finds it cancelled and gives back nothing)."""
        done = upb.Upload()
        done.CopyFrom(upload)
        done.status = "cancelled"
        before = self._store.outage_counts()
        ended = await self._ended(client, done, lease)
        if ended.status != "cancelled":
            raise UploadNotPendingError(upload.id, ended.status, "cancel")
        await self._counts.count(client, upload, -await self._counts.held(client, upload.id))
        # Redis lost once its end was written (or as its count was read or given back): what
        # its parts hold there is unknown here, all they could given back (`held_of` clamps).
        if answered_locally(self._store, before):
            await self._counts.recounted(client, upload, -upload.bytes, before)
        await given_back(self._store, client, lease)
        # A completion's file kept, its end never written (Redis lost as it was), charged
        # nothing: not the client's (a completion still running deletes its own as it ends).
        with contextlib.suppress(StoredFileNotFoundError):
            await self._files.delete(client, upload_file_id(upload.id))
        return ended

    async def _ended(self, client: str, done: upb.Upload, lease: str) -> upb.Upload:
        """Write `done` as its upload's end unless it has one already (that one returned then);
        its parts deleted once it is written (a completed upload's live on in its file). Written
        as Redis was lost (its reply lost: refused), its slot `lease` is given back there once
        Redis answers with the end, not held for the upload's hour (nobody may ask again)."""
        names = _Names(client, done.id)
        before = self._store.outage_counts()
        put = await self._store.put_document(
            names.end, done.SerializeToString(), self._kept_s(done), only_new=True
        )
        if put is PutResult.EXISTS:
            (ended,) = await self._ends(client, [done.id])
            if ended is not None:
                return ended
        if answered_locally(self._store, before):
            await self._store.everywhere("release", given_back_if_ended(names.end, client, lease))
            if done.status == "completed":  # its file charged there once Redis shows its end
                charge = charged_if_completed(self._files, client, done.id, self._charge_s(done))
                await self._store.everywhere("upload charge", charge)
        shared_throughout(self._store, before, _NOT_SHARED.format(done.id))
        await self._forget(names, await self._part_ids(names), whole=False)
        return done

    async def _pending(self, client: str, upload_id: str, what: str) -> tuple[upb.Upload, str]:
        """`_found`'s upload and lease, refused (UploadNotPendingError) unless pending."""
        upload, lease = await self._found(client, upload_id)
        if upload.status != "pending":
            raise UploadNotPendingError(upload.id, upload.status, what)
        return upload, lease

    async def get(self, client: str, upload_id: str) -> upb.Upload:
        """`client`'s upload `upload_id` as it stands now (expired past its `expires_at`)."""
        return (await self._found(client, upload_id))[0]

    async def _found(self, client: str, upload_id: str) -> tuple[upb.Upload, str]:
        """`get`'s upload and its slot's lease, read with it (so that a release after it ends,
        Redis lost meanwhile, is replayed once it answers, not lost)."""
        checked = looked_up_id(upload_id, "upload_id", "upload", UploadNotFoundError)
        names = _Names(client, checked)
        before = self._store.outage_counts()
        found, end, slot = await self._store.get_documents([names.upload, names.end, names.slot])
        upload = kept_message(upb.Upload, found)
        if upload is None or upload.id != checked:
            shared_throughout(self._store, before, _NOT_SHARED.format(checked))
            raise UploadNotFoundError(checked)
        lease = slot.decode() if slot else ""
        ended = kept_message(upb.Upload, end)
        if ended is not None and ended.id == checked:
            return ended, lease
        if self._clock.now() >= upload.expires_at:
            upload.status = "expired"
        return upload, lease

    async def _assembled(self, client: str, upload: upb.Upload, part_ids: list[str]) -> bytes:
        """The parts `part_ids` of `upload`, in order, as one content."""
        checked_part_ids(part_ids)
        names = _Names(client, upload.id)
        before = self._store.outage_counts()
        found = await self._store.get_documents([names.part(p) for p in part_ids])
        shared_throughout(self._store, before, _NOT_SHARED.format(upload.id))
        for part_id, data in zip(part_ids, found, strict=True):
            if data is None:
                raise InvalidRequestError(
                    f"No such Part of Upload {upload.id}: {part_id}", param="part_ids"
                )
        return b"".join(data for data in found if data is not None)

    async def _ends(self, client: str, upload_ids: list[str]) -> list[upb.Upload | None]:
        found = await self._store.get_documents([_Names(client, u).end for u in upload_ids])
        return [kept_message(upb.Upload, data) for data in found]

    async def _part_ids(self, names: _Names) -> list[str]:
        (data,) = await self._store.get_documents([names.parts])
        return data.decode().split() if data else []

    async def _forget(self, names: _Names, part_ids: list[str], *, whole: bool = True) -> None:
        """Delete an upload's parts `part_ids` (and, `whole`, its object and list of parts):
        here, and on the shared store now or once it answers (nobody writes these names
        again: a late delete undoes nothing)."""
        doomed = [names.part(p) for p in part_ids]
        if whole:
            doomed += [names.upload, names.parts, names.slot]
        if doomed:
            await self._store.everywhere("delete_documents", documents_delete(doomed))

    def _kept_s(self, upload: upb.Upload) -> float:
        """How long an upload's object (and its end) is kept from now: while it is pending and
        as long again, so that its late calls hear it expired, not unknown."""
        life_s = self._files.config.upload_ttl_s
        return max(upload.created_at + 2 * life_s - self._clock.now(), 1.0)
