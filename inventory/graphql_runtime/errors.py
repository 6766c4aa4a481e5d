"""The code a client sees for an error, decided in one place (`error_code`) for
the HTTP view's answers, the operation observer's spans and metrics, and the
errors that end a subscription (WebSocket results do not pass the view).

- Caused by the request (parsing, validation, argument checks, refusals): its
  own `extensions.code`, else GRAPHQL_VALIDATION_FAILED; the message stays.
- The database unreachable or no connection free in time: UNAVAILABLE with
  `retryAfterMs` and a message that says to retry.
- Anything else is unexpected: INTERNAL, the message masked, with an error id
  that is in the log beside the stack trace, so no internal detail leaks.

Messages never echo unbounded input (`bounded`): graphql-core quotes a
variable's value and strawberry an unknown operationName in theirs.
"""
from __future__ import annotations

import logging
import uuid
from typing import Any

from graphql import GraphQLError

from ..db.failures import UNAVAILABLE_ERRORS

log = logging.getLogger(__name__)

UNAVAILABLE = "UNAVAILABLE"
INTERNAL = "INTERNAL"
VALIDATION_FAILED = "GRAPHQL_VALIDATION_FAILED"
RETRY_AFTER_MS = 1000
MAX_MESSAGE = 240  # characters; longer messages are cut


def bounded(message: str) -> str:
    """An error message cut to MAX_MESSAGE characters; an unknown operationName
    is reported without its text."""
    if message.startswith("Unknown operation named"):
        return "no operation in the document has the given operationName"
    return message if len(message) <= MAX_MESSAGE else message[:MAX_MESSAGE] + "..."


def _cause(error: BaseException) -> BaseException | None:
    """The exception behind an error, or None when the request caused it."""
    if not isinstance(error, GraphQLError):
        return error
    original = error.original_error
    if isinstance(original, UNAVAILABLE_ERRORS):
        return original
    if original is None or isinstance(original, GraphQLError) or error.path is None:
        # Parse and validation errors (no path; a scalar's own ValueError
        # explains the bad literal) and our own argument errors.
        return None
    return original


def error_code(error: BaseException) -> str:
    """The code the client sees for `error` (a GraphQL error of a result, or an
    exception raised while answering)."""
    cause = _cause(error)
    if cause is None:
        return str((getattr(error, "extensions", None) or {}).get("code") or VALIDATION_FAILED)
    return UNAVAILABLE if isinstance(cause, UNAVAILABLE_ERRORS) else INTERNAL


def _masked(cause: BaseException, where: Any, next_step: str) -> tuple[str, dict[str, Any]]:
    if error_code(cause) == UNAVAILABLE:
        return (f"the database is unavailable; {next_step}",
                {"code": UNAVAILABLE, "retryAfterMs": RETRY_AFTER_MS})
    error_id = uuid.uuid4().hex[:12]
    log.error("unexpected error %s in %s", error_id, where, exc_info=cause)
    return f"internal error (id {error_id})", {"code": INTERNAL, "errorId": error_id}


def formatted(error: GraphQLError) -> dict[str, Any]:
    """The error as a response's `errors` entry, always with `extensions.code`."""
    shaped = error.formatted
    shaped["message"] = bounded(shaped["message"])
    extensions = dict(shaped.get("extensions") or {})
    cause = _cause(error)
    if cause is None:
        extensions.setdefault("code", VALIDATION_FAILED)
    else:
        shaped["message"], more = _masked(cause, error.path, "retry shortly")
        extensions.update(more)
    shaped["extensions"] = extensions
    return shaped


def subscription_ended(cause: Exception) -> GraphQLError:
    """The error that ends a subscription when its events raised `cause`."""
    if error_code(cause) == UNAVAILABLE:
        log.warning("subscription ended: database unavailable", exc_info=cause)
    message, extensions = _masked(cause, "a subscription",
                                  "subscribe again shortly with `since`")
    return GraphQLError(message, extensions=extensions)
