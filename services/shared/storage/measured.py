"""Storage metrics and spans: every ObjectStore operation is timed
(vtc_storage_operation_duration_seconds), its failures counted
(vtc_storage_operation_errors_total; NotFound is an answer, not a failure), and
run in a span of the current trace. open_store() measures every store it
opens, on the instance, so the store keeps its own type."""

from __future__ import annotations

import functools
import time
from collections.abc import AsyncIterator, Callable
from typing import Any, TypeVar

from services.shared import metrics, tracing
from services.shared.errors import NotFound

_AWAITED = ("put_file", "get_file", "stat", "delete_prefix", "download_url")
_ITERATED = ("read_chunks", "list_objects")

S = TypeVar("S")


def measure_store(store: S, backend: str) -> S:
    """The same store, its operations measured (see the module docstring)."""
    for name in _AWAITED:
        setattr(store, name, _awaited(getattr(store, name), backend, name))
    for name in _ITERATED:
        setattr(store, name, _iterated(getattr(store, name), backend, name))
    return store


def _failed(backend: str, operation: str, error: BaseException) -> None:
    if not isinstance(error, NotFound):
        metrics.STORAGE_ERRORS.labels(backend, operation, type(error).__name__).inc()


def _awaited(method: Callable[..., Any], backend: str, operation: str) -> Callable[..., Any]:
    seconds = metrics.STORAGE_SECONDS.labels(backend, operation)

    @functools.wraps(method)
    async def measured(*args: Any, **kwargs: Any) -> Any:
        started = time.perf_counter()
        with tracing.span(f"storage {operation}", kind=tracing.SpanKind.CLIENT,
                          attributes={"vtc.storage.backend": backend}):
            try:
                return await method(*args, **kwargs)
            except Exception as error:
                _failed(backend, operation, error)
                raise
            finally:
                seconds.observe(time.perf_counter() - started)

    return measured


def _iterated(method: Callable[..., AsyncIterator[Any]], backend: str,
              operation: str) -> Callable[..., AsyncIterator[Any]]:
    seconds = metrics.STORAGE_SECONDS.labels(backend, operation)

    @functools.wraps(method)
    async def measured(*args: Any, **kwargs: Any) -> AsyncIterator[Any]:
        # Timed from the first item asked for to the last (or the failure); no span:
        # a download streams for as long as its client reads.
        started = time.perf_counter()
        try:
            async for item in method(*args, **kwargs):
                yield item
        except Exception as error:
            _failed(backend, operation, error)
            raise
        finally:
            seconds.observe(time.perf_counter() - started)

    return measured
