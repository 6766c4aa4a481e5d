"""strawberry's extension hooks, resolved once per extension class instead of
once per request.

For every operation strawberry builds four hook lists (operation, parsing,
validation, execution). For each extension and each list it looks the hook up,
inspects it (generator? async generator? plain function?) and wraps it in a new
context-manager factory: with the six extensions the schema then had, 24 lookups
and a dozen `functools.update_wrapper` calls per request (docs/performance.md,
item 27). The answer depends only on the
extension's class, so it is computed once per class and hook, and each request
only binds the cached factory to its own extension instance.

The context managers themselves are strawberry's (same enter/exit order, same
exit stacks); only how their hook lists are built changes. strawberry is pinned
to a minor line in pyproject.toml because this relies on the shape of
`ExtensionContextManagerBase` and `WrappedHook`.
"""
from __future__ import annotations

import contextlib
import functools
import inspect
from typing import Any, Callable

from strawberry.extensions import SchemaExtension
from strawberry.extensions.context import (
    ExecutingContextManager,
    ExtensionContextManagerBase,
    OperationContextManager,
    ParsingContextManager,
    ValidationContextManager,
    WrappedHook,
)
from strawberry.extensions.runner import SchemaExtensionsRunner

# (extension class, hook name) -> (factory taking the extension, is_async), or None
_resolved: dict[tuple[type, str], tuple[Callable[[Any], Any], bool] | None] = {}


def _resolve(cls: type, hook_name: str) -> tuple[Callable[[Any], Any], bool] | None:
    hook_fn = getattr(cls, hook_name)
    if hook_fn is getattr(SchemaExtension, hook_name):
        return None  # the extension does not take part in this step
    if inspect.isgeneratorfunction(hook_fn):
        return contextlib.contextmanager(hook_fn), False
    if inspect.isasyncgenfunction(hook_fn):
        return contextlib.asynccontextmanager(hook_fn), True
    if inspect.iscoroutinefunction(hook_fn):
        @contextlib.asynccontextmanager
        async def awaited(extension):
            await hook_fn(extension)
            yield
        return awaited, True
    if callable(hook_fn):
        @contextlib.contextmanager
        def called(extension):
            hook_fn(extension)
            yield
        return called, False
    raise ValueError(f"Hook {hook_name} on {cls.__name__} must be callable, "
                     f"received {hook_fn!r}")


def _hooks(extensions: list[SchemaExtension], hook_name: str) -> list[WrappedHook]:
    hooks = []
    for extension in extensions:
        key = (type(extension), hook_name)
        try:
            resolved = _resolved[key]
        except KeyError:
            resolved = _resolved[key] = _resolve(*key)
        if resolved is not None:
            factory, is_async = resolved
            hooks.append(WrappedHook(extension, functools.partial(factory, extension), is_async))
    return hooks


def _cached(base: type[ExtensionContextManagerBase]) -> type[ExtensionContextManagerBase]:
    class Cached(base):  # type: ignore[valid-type, misc]
        __slots__ = ()

        def __init__(self, extensions: list[SchemaExtension]) -> None:
            self.default_hook = getattr(SchemaExtension, self.HOOK_NAME)
            self.hooks = _hooks(extensions, self.HOOK_NAME)

    Cached.__name__ = Cached.__qualname__ = f"Cached{base.__name__}"
    return Cached


_Operation = _cached(OperationContextManager)
_Parsing = _cached(ParsingContextManager)
_Validation = _cached(ValidationContextManager)
_Executing = _cached(ExecutingContextManager)


class CachedHooksRunner(SchemaExtensionsRunner):
    def operation(self):
        return _Operation(self.extensions)

    def parsing(self):
        return _Parsing(self.extensions)

    def validation(self):
        return _Validation(self.extensions)

    def executing(self):
        return _Executing(self.extensions)
