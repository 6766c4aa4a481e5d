"""GET /export/levels.csv, /export/movements.jsonl?since=... (and levels.jsonl,
movements.csv): the caller's tenant's stock levels or ledger, streamed as the
database cursor yields them (memory stays flat). Needs the inventory:read scope."""
from __future__ import annotations

from dataclasses import replace

from starlette.requests import Request
from starlette.responses import JSONResponse, Response, StreamingResponse
from starlette.routing import Route

from ..auth.principal import READ
from ..service import exports
from ..service.context import Ctx
from .gate import Security


def export_route(ctx: Ctx, security: Security) -> Route:
    async def export(request: Request) -> Response:
        principal, refusal = await security.require(request, READ)
        if refusal is not None:
            return refusal
        what, fmt = request.path_params["what"], request.path_params["format"]
        try:
            since = exports.parse_since(request.query_params.get("since"))
            if what not in exports.WHAT or fmt not in exports.FORMATS:
                raise exports.BadExport(
                    f"/export/{what}.{fmt}: use levels or movements, .csv or .jsonl")
        except exports.BadExport as error:
            return JSONResponse({"data": None, "errors": [
                {"message": str(error), "extensions": {"code": "INVALID_INPUT"}}]},
                status_code=400)
        mine = replace(ctx, tenant_id=principal.tenant_id, actor=principal.actor)
        return StreamingResponse(
            exports.encoded(mine, what, fmt, since), media_type=exports.MEDIA_TYPES[fmt],
            headers={"Content-Disposition": f'attachment; filename="{what}.{fmt}"'})

    return Route("/export/{what}.{format}", export, methods=["GET"])
