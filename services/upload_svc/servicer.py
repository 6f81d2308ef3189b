"""The UploadService gRPC servicer: takes one of the caller's tenant's upload
slots, hands the stream to the intake."""

from __future__ import annotations

from collections.abc import AsyncIterator

import grpc

from services.shared.principal import current_principal
from services.upload_svc.intake import UploadIntake
from services.upload_svc.slots import UploadSlots
from vtc.v1 import upload_pb2, upload_pb2_grpc


class UploadServicer(upload_pb2_grpc.UploadServiceServicer):
    def __init__(self, intake: UploadIntake, slots: UploadSlots) -> None:
        self._intake = intake
        self._slots = slots

    async def Upload(self, request_iterator: AsyncIterator[upload_pb2.UploadRequest],  # noqa: N802 (gRPC name)
                     context: grpc.aio.ServicerContext) -> upload_pb2.UploadResponse:
        principal = current_principal()
        with self._slots.hold(principal.tenant_id):
            return await self._intake.accept(request_iterator, tenant_id=principal.tenant_id)
