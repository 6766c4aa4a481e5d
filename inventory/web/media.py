"""GraphQL over HTTP media types: which one an answer uses, and what changes
with `application/graphql-response+json` (the GraphQL-over-HTTP spec).

`application/json` (the legacy type, and the answer when the client gives no
Accept or accepts anything) keeps the long-standing behaviour: HTTP 200 for
every GraphQL result, with `data` (null when nothing ran). Under
`application/graphql-response+json`, a request that fails before execution
(parse, validation and variable errors, and the server's own refusals) is a
4xx without a `data` entry: 400, or 401/403 for credentials and scopes (429
and 503 keep the status the limits gave them); a result that executed keeps 200.
"""
from __future__ import annotations

import functools
from typing import Any, Sequence

JSON = "application/json"
GRAPHQL_RESPONSE = "application/graphql-response+json"
CONTENT_TYPES = {JSON: JSON, GRAPHQL_RESPONSE: f"{GRAPHQL_RESPONSE}; charset=utf-8"}
_STATUS_BY_CODE = {"UNAUTHENTICATED": 401, "FORBIDDEN": 403, "RATE_LIMITED": 429}


@functools.lru_cache(maxsize=256)  # clients send a few distinct headers
def negotiate(accept: str) -> str:
    """The media type of the answer for an Accept header: graphql-response+json
    when the client names it with a quality at least that of application/json
    (wildcards count for application/json only), else application/json."""
    quality = {GRAPHQL_RESPONSE: 0.0, JSON: None, "application/*": None, "*/*": None}
    for part in accept.split(","):
        mime, *params = part.split(";")
        mime = mime.strip().lower()
        if mime not in quality:
            continue
        q = 1.0
        for param in params:
            name, _, value = param.partition("=")
            if name.strip().lower() == "q":
                try:
                    q = float(value)
                except ValueError:
                    q = 0.0
        quality[mime] = max(q, quality[mime] or 0.0)
    wanted = quality[GRAPHQL_RESPONSE]
    accepted_json = next((quality[m] for m in (JSON, "application/*", "*/*")
                          if quality[m] is not None), 0.0)
    return GRAPHQL_RESPONSE if wanted > 0 and wanted >= accepted_json else JSON


def request_error(data: Any, errors: Sequence | None) -> bool:
    """The request failed before execution: no data and only errors without a
    path (field errors always have one)."""
    return data is None and bool(errors) and all(
        getattr(e, "path", None) is None for e in errors)


def request_error_status(errors: Sequence) -> int:
    for error in errors:
        status = _STATUS_BY_CODE.get((getattr(error, "extensions", None) or {}).get("code"))
        if status:
            return status
    return 400
