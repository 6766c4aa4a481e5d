"""One classification of errors (inventory/graphql_runtime/errors.py) for the
HTTP answers, the operation observer and the errors that end a subscription:
each kind of failure gets its code, and what is unexpected is masked."""
from __future__ import annotations

from graphql import GraphQLError, located_error
from sqlalchemy import exc as sa_exc

from inventory.db.retry import DatabaseUnavailable
from inventory.graphql_runtime.errors import error_code, formatted, subscription_ended


def test_the_request_the_database_and_a_bug_each_get_their_code():
    own = located_error(GraphQLError("bad sku", extensions={"code": "INVALID_INPUT"}),
                        None, ["item"])
    assert error_code(own) == "INVALID_INPUT"
    assert formatted(own)["message"] == "bad sku"
    syntax = GraphQLError("Syntax Error: Unexpected Name 'x'.")
    assert error_code(syntax) == formatted(syntax)["extensions"]["code"] == \
        "GRAPHQL_VALIDATION_FAILED"

    down = located_error(DatabaseUnavailable("database unreachable: refused"), None, ["item"])
    assert error_code(down) == "UNAVAILABLE"
    shaped = formatted(down)
    assert shaped["extensions"] == {"code": "UNAVAILABLE", "retryAfterMs": 1000}
    assert "refused" not in shaped["message"]

    bug = located_error(KeyError("secret column"), None, ["item"])
    assert error_code(bug) == "INTERNAL"
    shaped = formatted(bug)
    assert shaped["extensions"]["code"] == "INTERNAL"
    assert shaped["message"] == f"internal error (id {shaped['extensions']['errorId']})"
    assert "secret" not in shaped["message"]


def test_a_subscription_ends_with_the_same_codes():
    dropped = sa_exc.OperationalError("SELECT 1", {}, Exception("server closed the connection"))
    ended = subscription_ended(dropped)
    assert ended.extensions == {"code": "UNAVAILABLE", "retryAfterMs": 1000}
    assert error_code(dropped) == error_code(ended) == "UNAVAILABLE"
    ended = subscription_ended(RuntimeError("secret"))
    assert ended.extensions["code"] == "INTERNAL" and "secret" not in ended.message
