"""RouterService's handlers of files, uploads and batches (OpenAI's Files, Uploads and Batch
APIs): kept by `StoredFiles`, `Uploads` and `BatchRecords`, run by `BatchJobs`. Served for
`RouterServicer` from the first call on (`_features.py`); like every handler they translate the
wire, the decisions are the runtime's."""

from __future__ import annotations

import grpc

from clients.switchboard.v1 import batches_pb2 as bpb
from clients.switchboard.v1 import uploads_pb2 as upb
from router_service.batches import Uploads
from router_service.server._calls import client_name
from router_service.server._errors import answered
from router_service.server._hooks import ServicerHooks

__all__ = ["FilesServicer"]


class FilesServicer(ServicerHooks):
    async def UploadFile(
        self, request: bpb.UploadFileRequest, context: grpc.aio.ServicerContext
    ) -> bpb.UploadFileResponse:
        kept = await answered(context, self.runtime.files.upload(client_name(), request))
        return bpb.UploadFileResponse(file=kept)

    async def ListFiles(
        self, request: bpb.ListFilesRequest, context: grpc.aio.ServicerContext
    ) -> bpb.ListFilesResponse:
        return await answered(context, self.runtime.files.listed(client_name(), request))

    async def GetFile(
        self, request: bpb.GetFileRequest, context: grpc.aio.ServicerContext
    ) -> bpb.GetFileResponse:
        found = await answered(context, self.runtime.files.get(client_name(), request.id))
        return bpb.GetFileResponse(file=found)

    async def GetFileContent(
        self, request: bpb.GetFileContentRequest, context: grpc.aio.ServicerContext
    ) -> bpb.GetFileContentResponse:
        return await answered(context, self.runtime.files.content(client_name(), request.id))

    async def DeleteFile(
        self, request: bpb.DeleteFileRequest, context: grpc.aio.ServicerContext
    ) -> bpb.DeleteFileResponse:
        await answered(context, self.runtime.files.delete(client_name(), request.id))
        return bpb.DeleteFileResponse(deleted=True)

    async def CreateBatch(
        self, request: bpb.CreateBatchRequest, context: grpc.aio.ServicerContext
    ) -> bpb.CreateBatchResponse:
        batch = await answered(context, self.batch_jobs.start(self.runtime, request))
        return bpb.CreateBatchResponse(batch=batch)

    async def GetBatch(
        self, request: bpb.GetBatchRequest, context: grpc.aio.ServicerContext
    ) -> bpb.GetBatchResponse:
        found = await answered(context, self.runtime.batches.get(client_name(), request.id))
        return bpb.GetBatchResponse(batch=found)

    async def ListBatches(
        self, request: bpb.ListBatchesRequest, context: grpc.aio.ServicerContext
    ) -> bpb.ListBatchesResponse:
        return await answered(context, self.runtime.batches.listed(client_name(), request))

    async def CancelBatch(
        self, request: bpb.CancelBatchRequest, context: grpc.aio.ServicerContext
    ) -> bpb.CancelBatchResponse:
        cancelled = await answered(
            context, self.batch_jobs.cancel(self.runtime, client_name(), request.id)
        )
        return bpb.CancelBatchResponse(batch=cancelled)

    def _uploads(self) -> Uploads:
        runtime = self.runtime
        return Uploads(runtime.store, runtime.clock, runtime.files)

    async def CreateUpload(
        self, request: upb.CreateUploadRequest, context: grpc.aio.ServicerContext
    ) -> upb.CreateUploadResponse:
        made = await answered(context, self._uploads().create(client_name(), request))
        return upb.CreateUploadResponse(upload=made)

    async def AddUploadPart(
        self, request: upb.AddUploadPartRequest, context: grpc.aio.ServicerContext
    ) -> upb.AddUploadPartResponse:
        part = await answered(context, self._uploads().add_part(client_name(), request))
        return upb.AddUploadPartResponse(part=part)

    async def CompleteUpload(
        self, request: upb.CompleteUploadRequest, context: grpc.aio.ServicerContext
    ) -> upb.CompleteUploadResponse:
        done = await answered(context, self._uploads().complete(client_name(), request))
        return upb.CompleteUploadResponse(upload=done)

    async def CancelUpload(
        self, request: upb.CancelUploadRequest, context: grpc.aio.ServicerContext
    ) -> upb.CancelUploadResponse:
        done = await answered(context, self._uploads().cancel(client_name(), request))
        return upb.CancelUploadResponse(upload=done)
