"""The product's Schema class: strawberry's, with two changes.

- Error logging is left to the HTTP view (which logs only unexpected errors,
  once, with an error id) instead of logging every error.
- Extension hooks are resolved once per extension class (schema/hooks.py).
"""
from __future__ import annotations

import strawberry

from .hooks import CachedHooksRunner


class QuietSchema(strawberry.Schema):
    def process_errors(self, errors, execution_context=None) -> None:
        return None

    def create_extensions_runner(self, execution_context, extensions):
        return CachedHooksRunner(execution_context=execution_context, extensions=extensions)
