"""The UploadService gRPC servicer: takes one of the caller's tenant's upload
slots, hands the stream to the intake. Its requests are read by
wire.UploadMessage.parse rather than the generated deserializer (add_to_server)."""

from __future__ import annotations

from collections.abc import AsyncIterator

import grpc

from services.shared.principal import current_principal
from services.upload_svc.intake import UploadIntake
from services.upload_svc.slots import UploadSlots
from services.upload_svc.wire import UploadMessage
from vtc.v1 import upload_pb2, upload_pb2_grpc

SERVICE = upload_pb2.DESCRIPTOR.services_by_name["UploadService"].full_name


class UploadServicer(upload_pb2_grpc.UploadServiceServicer):
    def __init__(self, intake: UploadIntake, slots: UploadSlots) -> None:
        self._intake = intake
        self._slots = slots

    async def Upload(self, request_iterator: AsyncIterator[UploadMessage],  # type: ignore[override]  # noqa: N802
                     context: grpc.aio.ServicerContext) -> upload_pb2.UploadResponse:
        principal = current_principal()
        with self._slots.hold(principal.tenant_id):
            return await self._intake.accept(request_iterator, tenant_id=principal.tenant_id)

    def add_to_server(self, server: grpc.aio.Server) -> None:
        """What upload_pb2_grpc.add_UploadServiceServicer_to_server does, with our request deserializer."""
        handlers = {"Upload": grpc.stream_unary_rpc_method_handler(
            self.Upload, request_deserializer=UploadMessage.parse,
            response_serializer=upload_pb2.UploadResponse.SerializeToString)}
        server.add_generic_rpc_handlers((grpc.method_handlers_generic_handler(SERVICE, handlers),))
        server.add_registered_method_handlers(SERVICE, handlers)
