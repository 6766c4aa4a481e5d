"""The web side of live stock, kept in one place: WebSocket options and routes
for GraphQL subscriptions on /graphql, and the /dashboard page.

Both graphql-transport-ws and the legacy graphql-ws protocol are served
(strawberry picks by the subprotocol the client asks for). Authentication of
sockets belongs in InventoryGraphQL.on_ws_connect (the `connection_init`
payload is in `context.connection_params`).
"""
from __future__ import annotations

from datetime import timedelta
from pathlib import Path

from starlette.requests import Request
from starlette.responses import FileResponse, JSONResponse
from starlette.routing import Mount, Route, WebSocketRoute
from starlette.staticfiles import StaticFiles
from strawberry.subscriptions import GRAPHQL_TRANSPORT_WS_PROTOCOL, GRAPHQL_WS_PROTOCOL

from ..domain.quantities import STATES, camel
from ..events.live import LiveStock

STATIC = Path(__file__).parent / "static"
DASHBOARD = STATIC / "dashboard.html"
# The page and its scripts and styles come from this server and talk only to
# it (GraphQL over HTTP and WebSocket): the browser refuses anything else.
DASHBOARD_CSP = ("default-src 'none'; script-src 'self'; style-src 'self'; connect-src 'self'; "
                 "img-src 'self' data:; base-uri 'none'; form-action 'self'; "
                 "frame-ancestors 'none'")


def websocket_options(live: LiveStock) -> dict:
    return dict(
        subscription_protocols=(GRAPHQL_TRANSPORT_WS_PROTOCOL, GRAPHQL_WS_PROTOCOL),
        # Counts every in-flight operation on the socket; the next one gets an error.
        max_subscriptions_per_connection=live.max_subscriptions,
        connection_init_wait_timeout=timedelta(seconds=10),
        keep_alive=True,
        keep_alive_interval=15,
    )


async def dashboard(request: Request) -> FileResponse:
    return FileResponse(DASHBOARD, media_type="text/html",
                        headers={"Cache-Control": "no-cache",
                                 "Content-Security-Policy": DASHBOARD_CSP})


# The quantity states the dashboard shows, from the domain's list: a state added
# there gets its column, totals, feed wording and chart share without a page edit.
_STATES = {"states": [
    {"field": camel(s.name), "label": s.name.replace("_", " ").capitalize(),
     "inAvailable": s.in_available} for s in STATES]}


async def dashboard_states(request: Request) -> JSONResponse:
    return JSONResponse(_STATES, headers={"Cache-Control": "no-cache"})


class DashboardAssets(StaticFiles):
    """dashboard.js, chart.js and dashboard.css (hand-written, no build step),
    revalidated on each load so a new release is picked up at once."""

    def file_response(self, *args, **kwargs):
        response = super().file_response(*args, **kwargs)
        response.headers["Cache-Control"] = "no-cache"
        return response


def live_routes(graphql) -> list:
    return [
        WebSocketRoute("/graphql", graphql),
        Route("/dashboard", dashboard),
        Route("/dashboard/states.json", dashboard_states),
        Mount("/dashboard/static", DashboardAssets(directory=STATIC)),
    ]
