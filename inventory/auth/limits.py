"""Query limits beyond the depth/alias/token limiters in inventory/schema/root.py.

Limits in place, and where:
- depth 12, aliases 30, tokens 5000: strawberry limiters in schema/root.py;
- page size: `first` between 0 and 500 (resolvers/queries.py MAX_PAGE);
- list lengths in inputs: reserveStock lines <= 100, texts <= 200 characters
  (domain/commands.py);
- request body: INVENTORY_MAX_BODY_BYTES (auth/http.py HttpGate);
- operations per request: one. Batching (a JSON array of operations) is not
  enabled and is answered 400; a document with several operations runs only the
  one named by operationName;
- writes: each root mutation field costs one rate-limit token (auth/extension.py);
- introspection: off in production unless INVENTORY_INTROSPECTION=1.
"""
from __future__ import annotations

from strawberry.extensions import DisableIntrospection


def query_limit_extensions(introspection: bool) -> list:
    return [] if introspection else [DisableIntrospection]
