"""Starlette wiring: lifespan (engines, sweeper), routes and the GraphQL endpoint."""
from __future__ import annotations

import asyncio
import contextlib
import gc
import logging

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, RedirectResponse
from starlette.routing import Route

from ..auth.cost import CostLimits
from .gate import HttpGate, Security
from ..config import Settings
from ..db import migrate
from ..db.engine import PoolSettings, create_database
from ..db.retry import RetryPolicy
from ..events.live import LiveStock
from ..graphql_runtime.observer import RefusalCounter
from . import overload
from .view import InventoryGraphQL
from .export import export_route
from .trusted import TrustedDocuments, TrustedDocumentsError
from .trusted import load as load_trusted
from .live import live_routes, websocket_options
from ..observability import install as install_observability
from ..resolvers.root import build_schema
from ..service.context import Ctx
from ..service.hot_levels import HotLevels
from ..service.sweeper import run_sweeper
from ..service.webhook_worker import WebhookWorker
from ..db.changes import ledger_reader

log = logging.getLogger(__name__)

# gc generation 0 threshold (Python's default: 700); see lifespan below.
GC_YOUNG_THRESHOLD = 10_000


def create_app(settings: Settings | None = None) -> Starlette:
    settings = settings or Settings.from_env()
    if not settings.database_url:
        raise SystemExit(
            "INVENTORY_DATABASE_URL is not set; start the service with `inventory serve`, "
            "which starts an embedded database when no URL is given"
        )
    db = create_database(
        settings.database_url,
        PoolSettings(settings.pool_size, settings.pool_max_overflow, settings.pool_timeout_s,
                     ping_idle_s=settings.pool_ping_idle_s),
        RetryPolicy(max_attempts=settings.tx_max_attempts),
        read_url=settings.read_database_url,
    )
    live = LiveStock(db, settings.database_url, mode=settings.change_feed,
                     poll_interval_s=settings.change_poll_interval_s,
                     subscriber_buffer=settings.subscriber_buffer,
                     max_subscriptions=settings.ws_max_subscriptions)
    ctx = Ctx(db=db, hub=live.hub, actor="system:sweeper",  # requests replace tenant and actor
              hot_levels=HotLevels(enabled=settings.hot_key_queue), webhooks=settings.webhooks)
    settings.security.check()
    security = Security(settings.security, db)
    trusted = _trusted_documents(settings)
    graphql = InventoryGraphQL(
        build_schema(introspection=security.settings.introspection,
                     cost=CostLimits(maximum=security.settings.query_max_cost),
                     trusted=trusted),
        ctx, security=security, trusted=trusted,
        graphql_ide="graphiql" if settings.graphiql else None,
        **websocket_options(live), **security.graphql_options(),
    )

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette):
        sweeper = None
        live.start()
        # The schema, the SQL statements and the imported libraries live as long as
        # the process: moved out of the collector's reach, a full collection no
        # longer walks them (a pause paid by whichever requests are in flight).
        gc.collect()
        gc.freeze()
        # Requests free their objects by reference counting (inventory/graphql_runtime/execution.py
        # removed the last cycle), so the collector's frequent young-generation
        # passes found nothing and still cost CPU on every read. The threshold
        # counts net allocations, which requests in flight keep well under it
        # (docs/performance.md, item 29), so passes become rare, and cyclic
        # garbage (from errors' tracebacks, say) is still collected.
        gc.set_threshold(GC_YOUNG_THRESHOLD, 10, 10)
        if settings.sweep_interval_s > 0:
            sweeper = asyncio.create_task(run_sweeper(ctx, settings.sweep_interval_s))
        webhook_reader = webhooks = None
        if settings.webhooks.worker:  # it works only while it holds the lease
            webhook_reader = ledger_reader(settings.database_url, settings.webhooks.poll_s)
            webhooks = asyncio.create_task(
                WebhookWorker(ctx, webhook_reader, settings.webhooks).run())
        try:
            yield
        finally:
            for task in (sweeper, webhooks):
                if task:
                    task.cancel()
                    with contextlib.suppress(asyncio.CancelledError):
                        await task
            if webhook_reader:
                await webhook_reader.close()
            await live.stop()
            await security.close()
            await db.dispose()

    async def healthz(request: Request) -> JSONResponse:
        return JSONResponse({"status": "ok"})

    async def readyz(request: Request) -> JSONResponse:
        ready, body = await readiness(db)
        return JSONResponse(body, status_code=200 if ready else 503)

    app = Starlette(
        routes=[
            # First: the router tries the routes in turn, and most requests are these.
            Route("/graphql", HttpGate(graphql, security), methods=["GET", "POST"]),
            Route("/", lambda request: RedirectResponse("/graphql")),
            Route("/healthz", healthz),
            Route("/readyz", readyz),
            export_route(ctx, security),  # /export/levels.csv, /export/movements.jsonl
            *live_routes(graphql),  # the /graphql WebSocket route and /dashboard
        ],
        middleware=security.middleware(),
        lifespan=lifespan,
    )
    app.state.ctx = ctx
    # /metrics (with readiness as a gauge; behind the inventory:metrics scope when
    # INVENTORY_METRICS_AUTH, the default in production), tracing, the metrics'
    # listeners; then the refusal counter, added last, so outermost: refused
    # requests are counted too (shed ones are counted by the load limiter, in
    # front of all this: serve_app below).
    install_observability(app, ctx, otel=settings.otel,
                          multiprocess=bool(settings.metrics_multiproc_dir),
                          readiness=lambda: readiness(db),
                          guard=security.metrics_guard if security.settings.metrics_auth
                          else None)
    app.add_middleware(RefusalCounter)  # /graphql requests refused before GraphQL ran
    return app


def _trusted_documents(settings: Settings) -> TrustedDocuments | None:
    if settings.trusted_documents is None:
        return None
    try:
        trusted = load_trusted(settings.trusted_documents)
    except TrustedDocumentsError as error:
        raise SystemExit(str(error)) from None
    log.info("trusted documents on: %d documents from %s", len(trusted),
             settings.trusted_documents)
    return trusted


def serve_app():
    """What `inventory serve` runs: the app behind the load limiter, which sheds
    /graphql requests beyond the configured bounds before anything else runs
    (inventory/web/overload.py)."""
    settings = Settings.from_env()
    return overload.outermost(create_app(settings), settings)


async def readiness(db) -> tuple[bool, dict]:
    """Ready when the database answers and its schema is at the head migration;
    the body says which it is not (/readyz, and the inventory_ready metric)."""
    try:
        async with asyncio.timeout(2):
            async with db.reader.connect() as conn:
                current = await migrate.current_revision(conn)
    except Exception as error:
        return False, {"status": "unavailable", "database": f"unreachable: {type(error).__name__}"}
    head = migrate.head_revision()
    if current != head:
        return False, {"status": "unavailable", "migration": current, "head": head,
                       "hint": "run `inventory migrate`"}
    return True, {"status": "ready", "migration": current}
