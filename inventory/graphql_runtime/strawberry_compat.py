"""Every use of strawberry's non-public API, in this one module.

The rest of the code uses only what strawberry documents: `strawberry.Schema`
with `execution_context_class`, `extensions` and `process_errors`,
`SchemaExtension` hooks and `execution_context`, the ASGI view's `get_context`,
`get_root_value`, `process_result`, `encode_json`, `decode_json` and
`on_ws_connect`, and `Schema.execute` (with `execute_sync` and `stream`). What
follows has no public hook; each item names the strawberry internals it relies on, and
tests/unit/test_strawberry_compat.py checks every one of them against the
installed strawberry, so a release that changes one fails that test by name
instead of changing behaviour quietly. pyproject.toml therefore allows a range
of strawberry releases, not one minor line.

1. `graphql_core_schema(schema)`: `Schema._schema`, the graphql-core schema that
   documents are validated and analysed against.
2. (None any more: the operationName a request gave reaches the document
   checks through the public `Schema.execute` and `Schema.stream`, quiet.py.)
3. `validate_document`: `strawberry.schema.schema.validate_document`, graphql-core's
   validation plus strawberry's own rules (`Maybe`, `@oneOf`), as the schema
   runs it when no extension validates.
4. `ExecutionContextBase`: `strawberry.schema.schema.StrawberryGraphQLCoreExecutionContext`,
   the base of a class given as `Schema(execution_context_class=...)` (the
   parameter is documented, the base that passes operation extensions and
   builds strawberry's `info` is not).
5. `REQUEST_ERRORS`, `refused_request_reason`, `allowed_operation_types`,
   `HTTPException`: what `Schema.execute` raises for a request it refuses
   before running it (`strawberry.schema.exceptions`, `MissingQueryError`),
   with the reason strawberry's view answers with (HTTP 400); the operation
   types an HTTP method may run (`strawberry.types.graphql.OperationType.from_http`);
   and the exception strawberry's view raises for a refused request
   (cross_web's `HTTPException`, which strawberry uses without re-exporting it).
6. `CachedExtensionHooks`: `Schema.create_extensions_runner` and
   `SchemaExtensionsRunner` (its `operation`, `parsing`, `validation` and
   `executing` steps, each entered with `with`/`async with` by
   `Schema.execute`). strawberry's runner builds, for every operation and
   step, a context manager per extension hook (`contextlib.contextmanager`
   around the hook, entered on an `ExitStack`): with four extensions, 16
   hook lookups, as many generator context managers and four exit stacks per
   request, which were about a fifth of the fixed cost of an operation
   (docs/performance.md, "Reads near the floor"). Here each hook's kind is
   resolved once per extension class, and a step steps the hooks' generators
   itself: the same hooks, entered in the extensions' order and left in
   reverse, with contextlib's and ExitStack's rules for errors (an error
   thrown into each hook; one a hook raises replaces it for the hooks left;
   as strawberry's steps, a hook's suppression is not returned).
7. `ViewHooks.execute_single`: `AsyncBaseHTTPView.execute_single`, which
   strawberry's own HTTP path (GET, streaming transports, batches) calls for
   each operation. It hands the operation to the view's `execute_request`,
   which the lean path for JSON POSTs calls too (inventory/web/view.py), so both
   resolve persisted queries and set status codes in one place.
8. `ViewHooks.websocket_adapter_class`: `strawberry.asgi.ASGIWebSocketAdapter`
   (`ws`, `send_json`, `close`) and the view's `websocket_adapter_class`, for sockets
   this server may close itself (a revoked credential, too many sockets):
   closing twice does nothing, and what the socket's operations still send
   once it is closed is dropped (their tasks end when strawberry's handler
   sees the close).
9. `OperationDirectivesOnly`: `Schema.get_extensions` and the extension it
   appends, `strawberry.extensions.directives.DirectivesExtension` (and its
   `Sync` twin). strawberry adds that extension whenever the schema has a
   custom directive; its `resolve` hook wraps every field in a coroutine, to
   apply directives placed on fields. Ours (`@boundedStaleness`) goes on
   operations only, so the hook has nothing to apply, yet it made every field
   of every answer awaitable: graphql-core then completes each with its own
   future, which was about a third of a 50-item page's CPU (docs/performance.md,
   item 38). While no directive of the schema can stand on a field or a
   fragment, the extension is left out; one that can brings it back.
10. `basic_attribute`: how strawberry resolves a field without a resolver. The
   graphql-core field keeps its strawberry field under the key
   `GraphQLCoreConverter.DEFINITION_BACKREF` of its `extensions`; strawberry
   gives a "basic" field (no resolver, no field extension, no exception
   handler) a resolver marked `_is_default`, which returns
   `field.default_resolver(source, field.python_name)`, and the default
   resolver is `getattr`. The fast path for reads (fast_reads.py) reads such
   a field's attribute itself instead of calling that resolver once per
   object (docs/performance.md, item 39).
11. `schema_extensions`, `is_awaitable`: for queries answered without
   `Schema.execute` (inventory/web/direct.py), the extension instances
   `Schema.get_extensions` builds for an operation (their classes say which
   extensions the schema runs), and `strawberry.execution.optimized_is_awaitable`,
   the `is_awaitable` that `Schema.execute` gives graphql-core's `execute`. That
   path also answers as `Schema.execute` does: its result's `extensions` are
   each extension's `get_results()` in order, then the execution context's
   `extensions_results` (`SchemaExtensionsRunner.get_extensions_results`), and
   the errors of graphql-core's result become the context's
   `pre_execution_errors` before the operation's hooks end.
"""
from __future__ import annotations

import inspect
from typing import Any, Callable, Mapping

from starlette.websockets import WebSocketState
from cross_web import HTTPException  # noqa: F401 (item 5)
from strawberry.asgi import ASGIWebSocketAdapter
from strawberry.exceptions import MissingQueryError
from strawberry.execution import optimized_is_awaitable
from strawberry.extensions import SchemaExtension
from strawberry.extensions.directives import DirectivesExtension, DirectivesExtensionSync
from strawberry.extensions.runner import SchemaExtensionsRunner
from strawberry.schema.exceptions import CannotGetOperationTypeError, InvalidOperationTypeError
from strawberry.schema.schema_converter import GraphQLCoreConverter
from strawberry.schema.schema import StrawberryGraphQLCoreExecutionContext, validate_document
from strawberry.types.graphql import OperationType
from graphql import DirectiveLocation

# 1.
def graphql_core_schema(schema: Any) -> Any:
    """The graphql-core schema of a strawberry `Schema`."""
    return schema._schema


# 3. validate_document(graphql_core_schema, document, rules) -> list[GraphQLError],
# imported above.

# 4.
ExecutionContextBase = StrawberryGraphQLCoreExecutionContext

# 5.
REQUEST_ERRORS = (CannotGetOperationTypeError, InvalidOperationTypeError)


def refused_request_reason(error: Exception, method: str) -> str:
    """strawberry's view's reason for answering HTTP 400 to `error`, one of
    MissingQueryError and REQUEST_ERRORS raised by `Schema.execute`."""
    if isinstance(error, CannotGetOperationTypeError):
        return error.as_http_error_reason()
    if isinstance(error, InvalidOperationTypeError):
        return error.as_http_error_reason(method)
    if isinstance(error, MissingQueryError):
        return "No GraphQL query found in the request"
    raise TypeError(f"not a refused request: {error!r}")


def allowed_operation_types(method: str, allow_queries_via_get: bool) -> set:
    """The operation types a request with this HTTP method may run: strawberry's
    view's choice, less subscriptions. strawberry admits them over HTTP for its
    multipart protocol, which the service does not offer (subscriptions are served
    on WebSocket only); admitted, a subscription sent by POST ran as a query and
    answered an internal error. Refused here, it gets strawberry's HTTP 400
    "subscriptions are not allowed when using POST"."""
    allowed = OperationType.from_http(method) - {OperationType.SUBSCRIPTION}
    if not allow_queries_via_get and method == "GET":
        allowed = allowed - {OperationType.QUERY}
    return allowed


# 6.
_GENERATOR, _ASYNC_GENERATOR, _COROUTINE, _CALLABLE = range(4)
# (extension class, hook name) -> (the class's hook function, its kind), or None
_resolved: dict[tuple[type, str], tuple[Callable[[Any], Any], int] | None] = {}


def _resolve(cls: type, hook_name: str) -> tuple[Callable[[Any], Any], int] | None:
    hook_fn = getattr(cls, hook_name)
    if hook_fn is getattr(SchemaExtension, hook_name):
        return None  # the extension does not take part in this step
    if inspect.isgeneratorfunction(hook_fn):
        return hook_fn, _GENERATOR
    if inspect.isasyncgenfunction(hook_fn):
        return hook_fn, _ASYNC_GENERATOR
    if inspect.iscoroutinefunction(hook_fn):
        return hook_fn, _COROUTINE
    if callable(hook_fn):
        return hook_fn, _CALLABLE
    raise ValueError(f"Hook {hook_name} on {cls.__name__} must be callable, "
                     f"received {hook_fn!r}")


def _hooks(extensions: list[SchemaExtension], hook_name: str) -> list[tuple[Any, Any, int]]:
    """(extension, hook function, kind) of each extension taking part in the step."""
    hooks = []
    for extension in extensions:
        key = (type(extension), hook_name)
        try:
            resolved = _resolved[key]
        except KeyError:
            resolved = _resolved[key] = _resolve(*key)
        if resolved is not None:
            hooks.append((extension, *resolved))
    return hooks


def _verdict(error: BaseException | None, outcome: BaseException | None) -> bool:
    """contextlib's verdict on leaving a hook's generator (its context
    manager's __exit__) that `error` (None: no error) was thrown into, and
    `outcome` came out of (None: it yielded again): True when the hook
    suppressed `error`, False when it let it through; the hook's own error
    is raised."""
    if outcome is None:
        raise RuntimeError("generator didn't stop" if error is None
                           else "generator didn't stop after throw()")
    if isinstance(outcome, (StopIteration, StopAsyncIteration)):
        return error is not None and outcome is not error
    if error is not None and (outcome is error or (
            isinstance(outcome, RuntimeError) and outcome.__cause__ is error
            and isinstance(error, (StopIteration, StopAsyncIteration)))):
        return False
    raise outcome


def _close(generator: Any, error: BaseException | None) -> bool:
    try:
        next(generator) if error is None else generator.throw(error)
    except BaseException as outcome:  # noqa: BLE001 - judged by _verdict
        return _verdict(error, outcome)
    return _verdict(error, None)


async def _aclose(generator: Any, error: BaseException | None) -> bool:
    try:
        await (generator.__anext__() if error is None else generator.athrow(error))
    except BaseException as outcome:  # noqa: BLE001 - judged by _verdict
        return _verdict(error, outcome)
    return _verdict(error, None)


class _Step:
    """One step's hooks (on_operation, on_parse, on_validate, on_execute),
    entered in the extensions' order and left in reverse, with the semantics
    of strawberry's context managers (an ExitStack of contextlib context
    managers, whose outcome is not returned: an error raised inside still
    propagates, a hook that suppresses it only hides it from the hooks left
    after it) without building them: generator hooks are stepped directly."""

    __slots__ = ("hooks", "entered", "name")

    def __init__(self, extensions: list[SchemaExtension], hook_name: str) -> None:
        self.name = hook_name
        self.hooks = _hooks(extensions, hook_name)
        self.entered: list[tuple[int, Any]] = []

    def __enter__(self) -> None:
        for extension, hook_fn, kind in self.hooks:
            if kind in (_ASYNC_GENERATOR, _COROUTINE):
                raise RuntimeError(f"SchemaExtension hook {extension}.{self.name} "
                                   "failed to complete synchronously.")
            self._enter_sync(extension, hook_fn, kind)

    def _enter_sync(self, extension, hook_fn, kind: int) -> None:
        if kind == _GENERATOR:
            generator = hook_fn(extension)
            try:
                next(generator)
            except StopIteration:
                raise RuntimeError("generator didn't yield") from None
            self.entered.append((kind, generator))
        else:
            hook_fn(extension)

    def __exit__(self, exc_type, error, traceback) -> None:
        pending = None
        for kind, generator in reversed(self.entered):
            try:
                if _close(generator, error):
                    error = None
            except BaseException as raised:  # noqa: BLE001 - as ExitStack: the newer wins
                error = pending = raised
        self.entered = []
        if pending is not None:
            raise pending

    async def __aenter__(self) -> None:
        for extension, hook_fn, kind in self.hooks:
            if kind == _ASYNC_GENERATOR:
                generator = hook_fn(extension)
                try:
                    await generator.__anext__()
                except StopAsyncIteration:
                    raise RuntimeError("generator didn't yield") from None
                self.entered.append((kind, generator))
            elif kind == _COROUTINE:
                await hook_fn(extension)
            else:
                self._enter_sync(extension, hook_fn, kind)

    async def __aexit__(self, exc_type, error, traceback) -> None:
        pending = None
        for kind, generator in reversed(self.entered):
            try:
                if (await _aclose(generator, error) if kind == _ASYNC_GENERATOR
                        else _close(generator, error)):
                    error = None
            except BaseException as raised:  # noqa: BLE001 - as AsyncExitStack
                error = pending = raised
        self.entered = []
        if pending is not None:
            raise pending


class LeanHooksRunner(SchemaExtensionsRunner):
    def operation(self):
        return _Step(self.extensions, "on_operation")

    def parsing(self):
        return _Step(self.extensions, "on_parse")

    def validation(self):
        return _Step(self.extensions, "on_validate")

    def executing(self):
        return _Step(self.extensions, "on_execute")


class CachedExtensionHooks:
    """Mixin for a `strawberry.Schema` subclass: extension hooks resolved once
    per extension class and run without a context manager each (item 6)."""

    def create_extensions_runner(self, execution_context, extensions):
        return LeanHooksRunner(execution_context=execution_context, extensions=extensions)


# 8.
class WebSocketAdapter(ASGIWebSocketAdapter):
    async def send_json(self, message: Mapping[str, object]) -> None:
        if self.ws.application_state != WebSocketState.DISCONNECTED:
            await super().send_json(message)

    async def close(self, code: int, reason: str) -> None:
        if self.ws.application_state != WebSocketState.DISCONNECTED:
            await super().close(code, reason)


# 7. and 8.
class ViewHooks:
    """Mixin for strawberry's ASGI view (before it in the bases): each operation
    of strawberry's own HTTP path goes to the view's `execute_request`, and
    sockets get `WebSocketAdapter`."""

    websocket_adapter_class = WebSocketAdapter

    async def execute_single(self, request, request_adapter, sub_response, context,
                             root_value, request_data):
        return await self.execute_request(
            request, sub_response, context, root_value, query=request_data.query,
            variables=request_data.variables, operation_name=request_data.operation_name,
            extensions=request_data.extensions, method=request_adapter.method)


# 9.
# Where an executable directive acts on fields (the extension's business).
_FIELD_LOCATIONS = frozenset({DirectiveLocation.FIELD, DirectiveLocation.FRAGMENT_SPREAD,
                              DirectiveLocation.INLINE_FRAGMENT,
                              DirectiveLocation.FRAGMENT_DEFINITION})


class OperationDirectivesOnly:
    """Mixin for a `strawberry.Schema` subclass: no per-field directive hook
    while every custom directive belongs on operations (item 9)."""

    def get_extensions(self, sync: bool = False) -> list:
        extensions = super().get_extensions(sync)
        if any(_FIELD_LOCATIONS.intersection(directive.locations)
               for directive in self.directives):
            return extensions
        return [extension for extension in extensions
                if type(extension) not in (DirectivesExtension, DirectivesExtensionSync)]


# 10.
def basic_attribute(field_def: Any) -> str | None:
    """The attribute a graphql-core field of a strawberry schema returns, if
    strawberry resolves it by reading that attribute of the source object;
    else None."""
    if not getattr(field_def.resolve, "_is_default", False):
        return None
    field = (field_def.extensions or {}).get(GraphQLCoreConverter.DEFINITION_BACKREF)
    if field is None or field.default_resolver is not getattr or not field.is_basic_field:
        return None
    return field.python_name


# 11.
def schema_extensions(schema: Any) -> list[SchemaExtension]:
    """The extensions `Schema.execute` runs an operation with (new instances)."""
    return schema.get_extensions()


is_awaitable = optimized_is_awaitable
