"""Every JSON log line written inside a span names its trace and span, so one
upload's lines can be found in every service's log by its trace id."""

from __future__ import annotations

import json
import logging

from services.shared.logs import JsonFormatter, log_context
from services.shared.tracing import span


def line(message: str) -> dict[str, object]:
    record = logging.LogRecord("vtc.test", logging.INFO, __file__, 1, message, None, None)
    return json.loads(JsonFormatter().format(record))


def test_lines_inside_a_span_carry_its_ids_and_lines_outside_carry_none() -> None:
    assert "trace_id" not in line("before") and "span_id" not in line("before")
    with span("outer") as outer, log_context(job_id="job_1"):
        inside = line("inside")
        with span("inner") as inner:
            nested = line("nested")
    context, inner_context = outer.get_span_context(), inner.get_span_context()
    assert inside["trace_id"] == format(context.trace_id, "032x") and len(str(inside["trace_id"])) == 32
    assert inside["span_id"] == format(context.span_id, "016x") and inside["job_id"] == "job_1"
    assert nested["trace_id"] == inside["trace_id"]  # one trace
    assert nested["span_id"] == format(inner_context.span_id, "016x") != inside["span_id"]
    assert "trace_id" not in line("after")


def test_a_new_span_outside_any_other_starts_a_new_trace() -> None:
    with span("first"):
        first = line("first")
    with span("second"):
        second = line("second")
    assert first["trace_id"] != second["trace_id"]
