"""Domain errors. Handlers raise these; ErrorMappingInterceptor turns them into
gRPC statuses once, at the edge.

VtcError
├── InvalidArgument     bad input the caller can fix
├── NotFound            no such thing for this tenant
├── AlreadyExists
├── FailedPrecondition  the thing is not in a state that allows this
│   └── StorageRejected object storage refused for good (credentials, caps, bucket)
├── Unauthenticated     no, bad or expired credentials
├── PermissionDenied    authenticated, but the scope does not allow it
├── ResourceExhausted   a limit is reached (the message names it); retry when below it
│   └── RateLimited     too many requests; RetryInfo says when to retry
├── DeadlineExceeded    the caller took too long (e.g. an upload stalled between chunks)
└── Unavailable         a peer or backend is down; retry later
"""

from __future__ import annotations

import grpc


class VtcError(Exception):
    code: grpc.StatusCode = grpc.StatusCode.INTERNAL
    reason: str = "INTERNAL"

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class InvalidArgument(VtcError):
    code = grpc.StatusCode.INVALID_ARGUMENT
    reason = "INVALID_ARGUMENT"


class NotFound(VtcError):
    code = grpc.StatusCode.NOT_FOUND
    reason = "NOT_FOUND"


class AlreadyExists(VtcError):
    code = grpc.StatusCode.ALREADY_EXISTS
    reason = "ALREADY_EXISTS"


class FailedPrecondition(VtcError):
    code = grpc.StatusCode.FAILED_PRECONDITION
    reason = "FAILED_PRECONDITION"


class StorageRejected(FailedPrecondition):
    """Object storage refused a request in a way retrying will not fix (a bad or
    under-privileged key, a cap reached, a missing bucket): a job that meets it
    fails with this message rather than being redelivered."""


class Unauthenticated(VtcError):
    code = grpc.StatusCode.UNAUTHENTICATED
    reason = "UNAUTHENTICATED"


class PermissionDenied(VtcError):
    code = grpc.StatusCode.PERMISSION_DENIED
    reason = "PERMISSION_DENIED"


class ResourceExhausted(VtcError):
    code = grpc.StatusCode.RESOURCE_EXHAUSTED
    reason = "RESOURCE_EXHAUSTED"


class RateLimited(ResourceExhausted):
    """Too many requests of one kind; the status carries a RetryInfo saying when to retry."""

    def __init__(self, message: str, retry_after_seconds: float) -> None:
        super().__init__(message)
        self.retry_after_seconds = retry_after_seconds


class DeadlineExceeded(VtcError):
    code = grpc.StatusCode.DEADLINE_EXCEEDED
    reason = "DEADLINE_EXCEEDED"


class Unavailable(VtcError):
    code = grpc.StatusCode.UNAVAILABLE
    reason = "UNAVAILABLE"
