"""Calls to peer services: this service's own token, and what a failed peer
call means to the uploader."""

from __future__ import annotations

import grpc

from services.shared.errors import ResourceExhausted, Unavailable, VtcError
from services.shared.tokens import ServiceToken

_RETRYABLE = frozenset({grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.DEADLINE_EXCEEDED,
                        grpc.StatusCode.RESOURCE_EXHAUSTED})


async def service_credentials(token: ServiceToken) -> list[tuple[str, str]]:
    try:
        return await token.metadata()
    except grpc.aio.AioRpcError as error:
        raise peer_failure("auth", "get this service's token", error) from error


def peer_failure(peer: str, action: str, error: grpc.aio.AioRpcError) -> VtcError:
    """Unavailable (retry later) when the peer is down or overloaded; otherwise an
    internal error, since the request itself was already checked here. A quota
    the peer enforces reaches the uploader as it is: it names the limit."""
    if error.code() == grpc.StatusCode.RESOURCE_EXHAUSTED and peer == "metadata":
        return ResourceExhausted(error.details() or f"the {peer} service refused: a quota is reached")
    if error.code() in _RETRYABLE:
        return Unavailable(f"cannot {action} right now: the {peer} service is unreachable; try again shortly")
    return VtcError(f"cannot {action}: the {peer} service answered {error.code().name}: {error.details()}")
