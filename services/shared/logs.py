"""JSON-lines logs on stdout, with job_id / video_id / tenant / request_id
attached from contextvars, and the trace_id / span_id of the current span
(tracing.py) on every line written inside one."""

from __future__ import annotations

import contextlib
import contextvars
import json
import logging
import re
import sys
import time
from collections.abc import Iterator
from typing import Any

from opentelemetry import trace

_fields: contextvars.ContextVar[dict[str, str]] = contextvars.ContextVar("log_fields")


@contextlib.contextmanager
def log_context(**fields: str) -> Iterator[None]:
    """Attaches fields (job_id=..., video_id=..., tenant=...) to every log line inside."""
    merged = {**_fields.get({}), **{k: v for k, v in fields.items() if v}}
    token = _fields.set(merged)
    try:
        yield
    finally:
        _fields.reset(token)


def bind(**fields: str) -> None:
    """Attaches fields to the rest of the current task (one RPC, one job)."""
    _fields.set({**_fields.get({}), **{k: v for k, v in fields.items() if v}})


# Credentials that must never reach a log line, whatever put them in a message:
# JWTs (a base64url JSON header, "eyJ"), API key secrets, bearer header values.
_SECRETS = [
    (re.compile(r"eyJ[A-Za-z0-9_-]{4,}\.[A-Za-z0-9_-]*\.[A-Za-z0-9_-]*"), "[token]"),
    (re.compile(r"(vtc_key_[0-9a-f]{20}_)[0-9a-f]{8,}"), r"\1[secret]"),
    (re.compile(r"(?i)\b(bearer)\s+[A-Za-z0-9_.~+/=-]{8,}"), r"\1 [token]"),
]


def redact_secrets(text: str) -> str:
    for pattern, replacement in _SECRETS:
        text = pattern.sub(replacement, text)
    return text


def looks_like_secret(text: str) -> bool:
    return redact_secrets(text) != text


class JsonFormatter(logging.Formatter):
    """One JSON object per line; credentials in it are replaced (redact_secrets)."""

    def format(self, record: logging.LogRecord) -> str:
        line: dict[str, Any] = {
            "ts": time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(record.created))
            + f".{int(record.msecs):03d}Z",
            "level": record.levelname.lower(),
            "logger": record.name,
            "msg": record.getMessage(),
            **_fields.get({}),
        }
        span = trace.get_current_span().get_span_context()
        if span.is_valid:
            line["trace_id"] = format(span.trace_id, "032x")
            line["span_id"] = format(span.span_id, "016x")
        extra = getattr(record, "fields", None)
        if isinstance(extra, dict):
            line.update(extra)
        if record.exc_info:
            line["exc"] = self.formatException(record.exc_info)
        return redact_secrets(json.dumps(line, default=str))


def configure_logging(level: str = "INFO") -> None:
    handler = logging.StreamHandler(sys.stdout)
    handler.setFormatter(JsonFormatter())
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
    for noisy in ("aiormq", "aio_pika", "sqlalchemy.engine", "alembic", "b2sdk", "libav"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
