"""Cross-cutting concerns for every gRPC server: traces and metrics, request
context and logging, token checks, and the one place domain errors become
gRPC statuses. Peer channels carry the trace context out (trace_context_interceptors)."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import re
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import grpc
from google.protobuf.duration_pb2 import Duration
from google.rpc import error_details_pb2, status_pb2
from grpc_status import rpc_status

from services.shared import metrics, tracing
from services.shared.access_policy import access_rule, check_access
from services.shared.errors import RateLimited, Unauthenticated, VtcError
from services.shared.logs import bind, looks_like_secret
from services.shared.principal import reset_principal, set_principal
from services.shared.tokens import TokenVerifier

log = logging.getLogger("vtc.rpc")

# Methods anyone may call without a token.
ALWAYS_PUBLIC_PREFIXES = ("/grpc.health.v1.Health/", "/grpc.reflection.")

# Wraps one RPC: (behavior, request_or_iterator, context) -> result or async iterator.
Around = Callable[[Callable[..., Any], Any, grpc.aio.ServicerContext, str], Any]


def _wrap(handler: grpc.RpcMethodHandler, method: str, around_unary: Callable[..., Awaitable[Any]],
          around_stream: Callable[..., AsyncIterator[Any]]) -> grpc.RpcMethodHandler:
    """Returns handler with its behavior wrapped, whatever its streaming shape.

    The wrappers must be `async def` functions (async generators for streamed
    replies): grpc.aio tells async handlers from sync ones by inspecting the
    function, and treats a lambda returning a coroutine as a sync handler."""
    if handler.unary_unary or handler.stream_unary:
        inner = handler.unary_unary or handler.stream_unary

        async def unary_reply(request: Any, context: grpc.aio.ServicerContext) -> Any:
            return await around_unary(inner, request, context, method)

        make = grpc.unary_unary_rpc_method_handler if handler.unary_unary else grpc.stream_unary_rpc_method_handler
        return make(unary_reply, handler.request_deserializer, handler.response_serializer)

    inner = handler.unary_stream or handler.stream_stream

    async def streamed_reply(request: Any, context: grpc.aio.ServicerContext) -> AsyncIterator[Any]:
        async for item in around_stream(inner, request, context, method):
            yield item

    make = grpc.unary_stream_rpc_method_handler if handler.unary_stream else grpc.stream_stream_rpc_method_handler
    return make(streamed_reply, handler.request_deserializer, handler.response_serializer)


async def _abort(context: grpc.aio.ServicerContext, error: VtcError) -> None:
    status = status_pb2.Status(code=error.code.value[0], message=error.message)
    info = error_details_pb2.ErrorInfo(reason=error.reason, domain="vtc")
    status.details.add().Pack(info)
    if isinstance(error, RateLimited):
        delay = Duration()
        delay.FromNanoseconds(max(int(error.retry_after_seconds * 1e9), 0))
        status.details.add().Pack(error_details_pb2.RetryInfo(retry_delay=delay))
    await context.abort_with_status(rpc_status.to_status(status))


class ErrorMappingInterceptor(grpc.aio.ServerInterceptor):
    """Turns VtcError into its gRPC status (with an ErrorInfo detail); anything
    else becomes INTERNAL with a generic message, logged with its traceback."""

    async def intercept_service(self, continuation, handler_call_details):  # type: ignore[no-untyped-def]
        handler = await continuation(handler_call_details)
        if handler is None:
            return None
        return _wrap(handler, handler_call_details.method, self._unary, self._stream)

    async def _unary(self, behavior, request, context, method):  # type: ignore[no-untyped-def]
        try:
            return await behavior(request, context)
        except VtcError as error:
            await _abort(context, error)
        except (grpc.aio.AbortError, grpc.aio.AioRpcError):
            raise
        except Exception:
            log.exception("unhandled error in %s", method)
            await _abort(context, VtcError("internal error; the service logged the details"))

    async def _stream(self, behavior, request, context, method):  # type: ignore[no-untyped-def]
        try:
            async for item in behavior(request, context):
                yield item
        except VtcError as error:
            await _abort(context, error)
        except (grpc.aio.AbortError, grpc.aio.AioRpcError):
            raise
        except Exception:
            log.exception("unhandled error in %s", method)
            await _abort(context, VtcError("internal error; the service logged the details"))


_TRACE_HEADERS = ("traceparent", "tracestate")
# Server spans that end with these codes are errors (OpenTelemetry's gRPC conventions).
_SERVER_ERRORS = frozenset({grpc.StatusCode.UNKNOWN, grpc.StatusCode.DEADLINE_EXCEEDED, grpc.StatusCode.UNIMPLEMENTED,
                            grpc.StatusCode.INTERNAL, grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.DATA_LOSS})


def _rpc_type(handler: grpc.RpcMethodHandler) -> str:
    if handler.request_streaming:
        return "bidi_stream" if handler.response_streaming else "client_stream"
    return "server_stream" if handler.response_streaming else "unary"


def _status_of(context: grpc.aio.ServicerContext, error: BaseException | None) -> grpc.StatusCode:
    """The status a call ended with: the one set on it (an abort), else what its ending implies."""
    code = context.code()
    if isinstance(code, grpc.StatusCode):
        return code
    if error is None:
        return grpc.StatusCode.OK
    if isinstance(error, asyncio.CancelledError):
        return grpc.StatusCode.CANCELLED  # the client went away
    return grpc.StatusCode.UNKNOWN


class TelemetryInterceptor(grpc.aio.ServerInterceptor):
    """The outermost interceptor: each call runs in a server span that continues
    the caller's trace (traceparent in its metadata), so everything inside (log
    lines, peer calls, bus messages) belongs to it; and each call is counted by
    method and status code and timed (metrics.GRPC_*). Health checks and
    reflection are counted, not traced. Costs one span and two metric updates per
    call, nothing per streamed message."""

    async def intercept_service(self, continuation, handler_call_details):  # type: ignore[no-untyped-def]
        handler = await continuation(handler_call_details)
        if handler is None:
            return None
        method = handler_call_details.method
        service, _, name = method.lstrip("/").partition("/")
        kind = _rpc_type(handler)
        traced = not method.startswith(ALWAYS_PUBLIC_PREFIXES)
        carrier = {key: str(value) for key, value in handler_call_details.invocation_metadata or ()
                   if key in _TRACE_HEADERS} if traced else {}

        def begin() -> tuple[Any, Any]:
            if not traced:
                return None, None
            span = tracing.tracer().start_span(
                method.lstrip("/"), context=tracing.remote_context(carrier), kind=tracing.SpanKind.SERVER,
                attributes={"rpc.system": "grpc", "rpc.service": service, "rpc.method": name})
            return span, tracing.attach_span(span)

        def end(span: Any, token: Any, context: grpc.aio.ServicerContext, started: float,
                error: BaseException | None) -> None:
            code = _status_of(context, error)
            metrics.GRPC_HANDLED.labels(service, name, kind, code.name).inc()
            metrics.GRPC_HANDLING_SECONDS.labels(service, name, kind).observe(time.perf_counter() - started)
            if span is not None:
                span.set_attribute("rpc.grpc.status_code", code.value[0])
                if code in _SERVER_ERRORS:
                    span.set_status(tracing.Status(tracing.StatusCode.ERROR, code.name))
                tracing.detach_span(token)
                span.end()

        async def unary(behavior, request, context, _method):  # type: ignore[no-untyped-def]
            started = time.perf_counter()
            span, token = begin()
            error: BaseException | None = None
            try:
                return await behavior(request, context)
            except BaseException as escaped:
                error = escaped
                raise
            finally:
                end(span, token, context, started, error)

        async def stream(behavior, request, context, _method):  # type: ignore[no-untyped-def]
            started = time.perf_counter()
            span, token = begin()
            error: BaseException | None = None
            try:
                async for item in behavior(request, context):
                    yield item
            except BaseException as escaped:
                error = escaped
                raise
            finally:
                end(span, token, context, started, error)

        return _wrap(handler, method, unary, stream)


class _TraceContextOut:
    """Adds the current trace context to an outgoing call's metadata."""

    @staticmethod
    def _details(details: grpc.aio.ClientCallDetails) -> grpc.aio.ClientCallDetails:
        carrier = tracing.inject({})
        if not carrier:
            return details
        metadata = [(k, v) for k, v in (details.metadata or ()) if k not in _TRACE_HEADERS]
        metadata.extend(carrier.items())
        return details._replace(metadata=grpc.aio.Metadata(*metadata))


class _UnaryUnaryTraceOut(_TraceContextOut, grpc.aio.UnaryUnaryClientInterceptor):
    async def intercept_unary_unary(self, continuation, client_call_details, request):  # type: ignore[no-untyped-def]
        return await continuation(self._details(client_call_details), request)


class _UnaryStreamTraceOut(_TraceContextOut, grpc.aio.UnaryStreamClientInterceptor):
    async def intercept_unary_stream(self, continuation, client_call_details, request):  # type: ignore[no-untyped-def]
        return await continuation(self._details(client_call_details), request)


def trace_context_interceptors() -> list[grpc.aio.ClientInterceptor]:
    """Client interceptors that send the caller's trace context with every call
    whose request is one message: the calls services make to each other. (grpc.aio
    files an interceptor under one call shape only, hence one per shape.) None for
    client-streaming calls: an interceptor there reroutes every streamed message
    through grpc.aio's interceptor machinery, a cost and a change of pace uploads
    must not pay; no service makes such calls to a peer.)"""
    return [_UnaryUnaryTraceOut(), _UnaryStreamTraceOut()]


class RequestContextInterceptor(grpc.aio.ServerInterceptor):
    """Gives each call a request id (x-request-id, or a new one) and logs its outcome."""

    async def intercept_service(self, continuation, handler_call_details):  # type: ignore[no-untyped-def]
        handler = await continuation(handler_call_details)
        if handler is None:
            return None
        metadata = dict(handler_call_details.invocation_metadata or ())
        request_id = _request_id(metadata.get("x-request-id"))

        async def unary(behavior, request, context, method):  # type: ignore[no-untyped-def]
            bind(request_id=request_id)
            started = time.perf_counter()
            try:
                return await behavior(request, context)
            finally:
                _log_call(method, context, started)

        async def stream(behavior, request, context, method):  # type: ignore[no-untyped-def]
            bind(request_id=request_id)
            started = time.perf_counter()
            try:
                async for item in behavior(request, context):
                    yield item
            finally:
                _log_call(method, context, started)

        return _wrap(handler, handler_call_details.method, unary, stream)


_REQUEST_ID = re.compile(r"^[A-Za-z0-9_.:-]{1,64}$")


def _request_id(sent: Any) -> str:
    """The caller's x-request-id when it looks like one; a new one otherwise. It
    goes into every log line, so it must not carry control characters, a
    kilobyte of text, or a token pasted into the wrong header."""
    if isinstance(sent, str) and _REQUEST_ID.match(sent) and not looks_like_secret(sent):
        return sent
    return uuid.uuid4().hex[:16]


def _log_call(method: str, context: grpc.aio.ServicerContext, started: float) -> None:
    if method.startswith(ALWAYS_PUBLIC_PREFIXES):
        return
    code = context.code()
    log.info("rpc %s", method, extra={"fields": {
        "method": method,
        "code": (code.name if isinstance(code, grpc.StatusCode) else "OK"),
        "ms": round((time.perf_counter() - started) * 1000, 1),
    }})


class AuthInterceptor(grpc.aio.ServerInterceptor):
    """Checks the bearer token of every call (locally, against the cached key
    set), lets it through only if the access policy allows the caller's roles,
    and makes its Principal current for the call. Health, reflection and the
    methods the policy leaves public need no token.

    A streaming call's token is checked again as its messages flow in either
    direction, so revoking its API key or withdrawing its signing key ends an
    open upload, download or watch too, at its next message; its expiry does
    not (a long upload outlives a token). The check is made again when the
    verifier's trust may have changed (its `generation` moved: a revocation
    heard on the bus, a key set fetched, a key change announced) and at least
    every RECHECK_SECONDS (which also keeps the key set fresh), not at every
    message: a full check costs about 0.1 ms, a 1 GiB upload has a thousand
    messages or more."""

    def __init__(self, verifier: TokenVerifier) -> None:
        self._verifier = verifier

    async def intercept_service(self, continuation, handler_call_details):  # type: ignore[no-untyped-def]
        handler = await continuation(handler_call_details)
        method = handler_call_details.method
        rule = access_rule(method)
        if handler is None or method.startswith(ALWAYS_PUBLIC_PREFIXES) or (rule is not None and rule.public):
            return handler
        headers = [str(value) for key, value in handler_call_details.invocation_metadata or ()
                   if key == "authorization"]
        scheme, _, token = (headers[0] if headers else "").partition(" ")
        token = token.strip()
        verifier = self._verifier

        async def authenticate(context: grpc.aio.ServicerContext):  # type: ignore[no-untyped-def]
            try:
                if len(headers) > 1:
                    # Which one would count is a guess a proxy and this service could make differently.
                    raise Unauthenticated(f"send one authorization header; this call had {len(headers)}")
                if scheme.lower() != "bearer" or not token:
                    raise Unauthenticated(
                        "missing bearer token: run `vtc login` or send 'authorization: Bearer <token>'")
                principal = await verifier.verify(token)
                bind(tenant=principal.tenant_id)  # a refused call is logged with who tried it
                check_access(method, principal)
            except VtcError as error:
                await _abort(context, error)
            return set_principal(principal)

        async def rechecked(requests: AsyncIterator[Any], trust: _Trust) -> AsyncIterator[Any]:
            async for message in requests:
                if trust.due():
                    await trust.check()
                yield message

        async def unary(behavior, request, context, _method):  # type: ignore[no-untyped-def]
            trust = _Trust(verifier, token)  # before the first check: a change during it is seen
            principal_token = await authenticate(context)
            try:
                return await behavior(rechecked(request, trust) if handler.request_streaming else request, context)
            finally:
                reset_principal(principal_token)

        async def stream(behavior, request, context, _method):  # type: ignore[no-untyped-def]
            trust = _Trust(verifier, token)
            principal_token = await authenticate(context)
            try:
                async for item in behavior(rechecked(request, trust) if handler.request_streaming else request,
                                           context):
                    if trust.due():
                        await trust.check()
                    yield item
            finally:
                with contextlib.suppress(ValueError):  # generator closed from another context
                    reset_principal(principal_token)

        return _wrap(handler, method, unary, stream)


RECHECK_SECONDS = 1.0  # longest a streaming call goes without a full check of its token


class _Trust:
    """Whether a call's token must be checked again: the verifier's trust moved
    since the last check, or RECHECK_SECONDS passed. due() is the per-message
    cost (an attribute compare and a clock read)."""

    __slots__ = ("_verifier", "_token", "_generation", "_checked_at")

    def __init__(self, verifier: TokenVerifier, token: str) -> None:
        self._verifier = verifier
        self._token = token
        self._generation = verifier.generation
        self._checked_at = time.monotonic()

    def due(self) -> bool:
        return (self._verifier.generation != self._generation
                or time.monotonic() - self._checked_at >= RECHECK_SECONDS)

    async def check(self) -> None:
        self._generation = self._verifier.generation  # read first: a change during the check is seen next time
        await self._verifier.verify(self._token, allow_expired=True)
        self._checked_at = time.monotonic()
