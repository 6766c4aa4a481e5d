"""Log records: JSON with the current trace and span ids, secrets masked."""
from __future__ import annotations

import io
import json
import logging

from opentelemetry import trace
from opentelemetry.sdk.trace import TracerProvider

from inventory.observability.logs import ContextFilter, JsonFormatter, redact


def _logger(stream: io.StringIO) -> logging.Logger:
    handler = logging.StreamHandler(stream)
    handler.addFilter(ContextFilter())
    handler.setFormatter(JsonFormatter())
    logger = logging.getLogger("test.observability.json")
    logger.handlers[:] = [handler]
    logger.propagate = False
    logger.setLevel(logging.INFO)
    return logger


def test_json_records_carry_trace_ids():
    stream = io.StringIO()
    logger = _logger(stream)
    logger.info("outside any span")
    tracer = TracerProvider().get_tracer("test")
    with tracer.start_as_current_span("work") as span:
        logger.warning("inside %s", "a span")
        expected = span.get_span_context()
    outside, inside = [json.loads(line) for line in stream.getvalue().splitlines()]
    assert "trace_id" not in outside and outside["message"] == "outside any span"
    assert inside["message"] == "inside a span" and inside["level"] == "WARNING"
    assert inside["trace_id"] == format(expected.trace_id, "032x")
    assert inside["span_id"] == format(expected.span_id, "016x")
    assert trace.get_current_span().get_span_context().is_valid is False


def test_secrets_are_masked():
    assert redact("connect postgresql+psycopg://app:s3cret@db:5432/inv failed") == (
        "connect postgresql+psycopg://app:***@db:5432/inv failed")
    assert redact("Authorization: Bearer eyJhbGciOi.abc.def") == "Authorization: Bearer ***"
    assert redact("password=hunter2 user=x") == "password=*** user=x"
    assert redact("nothing secret here") == "nothing secret here"
    stream = io.StringIO()
    _logger(stream).error("token=%s", "abcdef")
    assert "abcdef" not in stream.getvalue()
