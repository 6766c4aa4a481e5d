"""The product's Schema class: strawberry's, with three changes.

- Error logging is left to the HTTP view (which logs only unexpected errors,
  once, with an error id) instead of logging every error.
- Extension hooks are resolved once per extension class (strawberry_compat.py).
- Operations run in an execution context without a reference cycle
  (execution.py), so their objects are freed when they end.
"""
from __future__ import annotations

import strawberry

from .execution import AcyclicExecutionContext
from .strawberry_compat import CachedExtensionHooks


class QuietSchema(CachedExtensionHooks, strawberry.Schema):
    def __init__(self, *args, **kwargs) -> None:
        kwargs.setdefault("execution_context_class", AcyclicExecutionContext)
        super().__init__(*args, **kwargs)

    def process_errors(self, errors, execution_context=None) -> None:
        return None
