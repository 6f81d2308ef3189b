"""gRPC channels to peer services."""

from __future__ import annotations

from collections.abc import Sequence

import grpc

from services.shared.server import MAX_MESSAGE_BYTES


def peer_channel(address: str, interceptors: Sequence[grpc.aio.ClientInterceptor] = ()) -> grpc.aio.Channel:
    return grpc.aio.insecure_channel(address, interceptors=list(interceptors) or None, options=[
        ("grpc.max_receive_message_length", MAX_MESSAGE_BYTES),
        ("grpc.max_send_message_length", MAX_MESSAGE_BYTES),
    ])
