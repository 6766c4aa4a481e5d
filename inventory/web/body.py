"""Request bodies: replaying one read ahead of the app, and reading a GraphQL
request out of one without ever failing with anything but a clear 400.

Malformed bodies (not JSON, not an object, bad UTF-8, nested too deeply,
numbers too large, fields of the wrong type) are answered as GraphQL JSON
errors with `extensions.code = BAD_REQUEST`; messages name the problem, never
echo the input.
"""
from __future__ import annotations

import json
from typing import Any

import orjson

MAX_JSON_NESTING = 32  # arrays/objects inside each other; inputs here need 4


class BadRequest(Exception):
    """A request the server cannot read; `message` is safe to show."""

    def __init__(self, message: str):
        super().__init__(message)
        self.message = message


# Where inventory/web/gate.py leaves the body it buffered, in the ASGI scope's
# state, for the GraphQL view (instead of handing it out again through `receive`).
BUFFERED_BODY = "buffered_body"


def buffered_body(scope) -> bytes | None:
    """The request body the gate buffered, or None (no gate in front)."""
    state = scope.get("state")
    return state.get(BUFFERED_BODY) if state is not None else None


def replaying(body: bytes, receive):
    """An ASGI receive that hands out an already read body once, then defers to
    the server's `receive` (which reports the disconnect)."""
    sent = False

    async def replay():
        nonlocal sent
        if not sent:
            sent = True
            return {"type": "http.request", "body": body, "more_body": False}
        return await receive()

    return replay


def decode_json(data: bytes | str) -> Any:
    """JSON text to Python, or BadRequest saying why not (orjson: stops at 1024
    levels itself, refuses numbers beyond 64-bit integers and doubles)."""
    try:
        value = orjson.loads(data)
    except orjson.JSONDecodeError as error:
        reason = str(error)
        if "UTF-8" in reason:
            raise BadRequest("the body is not valid UTF-8") from None
        if "depth" in reason or "recursion" in reason:
            raise BadRequest(f"JSON nested deeper than {MAX_JSON_NESTING} levels") from None
        if "number" in reason:
            raise BadRequest("a number in the body is too large") from None
        # What orjson refuses but the standard parser reads, as strawberry did
        # before: an escaped lone surrogate ("\ud800"; refused later with
        # INVALID_INPUT like any text PostgreSQL cannot store), NaN.
        value = _standard_json(data)
    # Nesting is at most the number of opening brackets, in strings or not:
    # most bodies have too few to need the walk.
    opening = (b"[", b"{") if isinstance(data, bytes) else ("[", "{")
    if (data.count(opening[0]) + data.count(opening[1]) > MAX_JSON_NESTING
            and _nesting(value) > MAX_JSON_NESTING):
        raise BadRequest(f"JSON nested deeper than {MAX_JSON_NESTING} levels")
    return value


def _standard_json(data: bytes | str) -> Any:
    try:
        return json.loads(data)
    except RecursionError:
        raise BadRequest(f"JSON nested deeper than {MAX_JSON_NESTING} levels") from None
    except ValueError:  # includes JSONDecodeError and integers over 4,300 digits
        raise BadRequest("the body is not valid JSON") from None


def _nesting(value: Any) -> int:
    """Levels of arrays/objects (iterative: no recursion on hostile input)."""
    if not isinstance(value, (dict, list)):
        return 0
    deepest = 0
    stack = [(value, 1)]
    while stack:
        current, level = stack.pop()
        deepest = max(deepest, level)
        if deepest > MAX_JSON_NESTING:
            return deepest
        children = current.values() if isinstance(current, dict) else current
        stack.extend((child, level + 1) for child in children
                     if isinstance(child, (dict, list)))
    return deepest


def graphql_request(data: Any) -> dict[str, Any]:
    """The fields of one GraphQL-over-HTTP request, each of the right type."""
    if isinstance(data, list):
        raise BadRequest("batching is not supported: send one operation per request")
    if not isinstance(data, dict):
        raise BadRequest("the body must be a JSON object with a `query` string")
    query = data.get("query")
    if not isinstance(query, (str, type(None))):
        raise BadRequest("`query` must be a string")
    for name in ("variables", "extensions"):
        if not isinstance(data.get(name), (dict, type(None))):
            raise BadRequest(f"`{name}` must be an object")
    if not isinstance(data.get("operationName"), (str, type(None))):
        raise BadRequest("`operationName` must be a string")
    if query is None and not (data.get("extensions") or {}).get("persistedQuery"):
        raise BadRequest("no GraphQL query found in the request")
    return data


def error_body(code: str, message: str, with_data: bool = True, **extensions: Any) -> bytes:
    """A GraphQL answer with one error; `with_data`: with `"data": null` (as
    application/json answers have it; application/graphql-response+json has no
    data entry for a request that did not run)."""
    errors = [{"message": message, "extensions": {"code": code, **extensions}}]
    return orjson.dumps({"data": None, "errors": errors} if with_data else {"errors": errors})
