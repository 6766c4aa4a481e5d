"""Observability: traces (OpenTelemetry), metrics (Prometheus) and logs.

`install(app, ctx)` wires everything into the Starlette app; see
docs/observability.md for what is recorded and how to use it.
"""
from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import shutil
import tempfile

log = logging.getLogger(__name__)
MULTIPROC_ENV = "PROMETHEUS_MULTIPROC_DIR"

# Parts (imported where used, so that the CLI stays quick to start and
# prometheus_client is first imported after prepare_workers()):
#   .tracing   OpenTelemetry set-up, ASGI middleware, trace ids
#   .metrics   Prometheus metrics; subscription_active() for subscriptions
#   .listeners the counts other layers push to the metrics
#   .logs      text/JSON log configuration with trace ids
# The per-operation observer (a span and the request metrics of each GraphQL
# operation) is a strawberry extension: inventory/graphql_runtime/observer.py.


def install(app, ctx, *, otel=None, multiprocess: bool = False, readiness=None,
            guard=None) -> None:
    """Adds /metrics, tracing (when the OTEL_* variables read at startup, `otel`,
    configure an exporter), the metrics' listeners and the per-process pool
    gauges to the app built by
    inventory.web.app.create_app. `multiprocess`: several worker processes share
    the metrics (PROMETHEUS_MULTIPROC_DIR). `readiness()` (awaitable, (ready, details)) is
    the /readyz check, reported at each scrape as inventory_ready. `guard(request)`
    (awaitable) answers a refusal Response for a scrape it does not allow, else None
    (inventory/web/gate.py: a credential with the inventory:metrics scope)."""
    from starlette.requests import Request
    from starlette.responses import Response
    from starlette.routing import Route

    from ..db import retry
    from . import metrics, tracing

    metrics.listen(multiprocess)
    if tracing.configure(otel=otel):
        app.add_middleware(tracing.TracingMiddleware)
        if tracing.record_retry not in retry.retry_listeners:
            retry.retry_listeners.append(tracing.record_retry)

    async def metrics_endpoint(request: Request) -> Response:
        if guard is not None and (refused := await guard(request)) is not None:
            return refused
        metrics.sync_process(ctx.db)
        if readiness is not None:
            metrics.READY.set(1 if (await readiness())[0] else 0)
        try:
            await metrics.refresh_reservations(ctx.db)
        except Exception as error:  # the other metrics are still worth serving
            log.warning("could not count reservations for /metrics: %s", type(error).__name__)
        return Response(metrics.render(), media_type=metrics.CONTENT_TYPE_LATEST)

    app.router.routes.append(Route("/metrics", metrics_endpoint))
    inner_lifespan = app.router.lifespan_context

    @contextlib.asynccontextmanager
    async def lifespan(app_):
        async with inner_lifespan(app_) as state:
            syncer = asyncio.create_task(metrics.sync_loop(ctx.db))
            try:
                yield state
            finally:
                syncer.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await syncer
                metrics.process_exited()
                tracing.shutdown()

    app.router.lifespan_context = lifespan


def prepare_workers(workers: int, folder_set: bool) -> None:
    """Before `serve` starts several worker processes: a fresh folder for
    prometheus_client's multiprocess mode, removed when the server exits, handed
    to the workers in PROMETHEUS_MULTIPROC_DIR, unless that is already set
    (`folder_set`; then it must be emptied between runs)."""
    if workers <= 1 or folder_set:
        return
    import atexit

    folder = tempfile.mkdtemp(prefix="inventory-metrics-")
    os.environ[MULTIPROC_ENV] = folder
    atexit.register(shutil.rmtree, folder, ignore_errors=True)
