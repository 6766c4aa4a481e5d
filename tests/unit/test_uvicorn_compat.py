"""The uvicorn internals EarlyShedding (inventory/web/overload.py) relies on,
checked against the installed uvicorn, each by name: a release that renames or
drops one fails here, saying which, rather than making refusals quietly take
the ASGI way or break requests. tests/test_overload.py checks the behaviour on
a real server; docs/reliability.md ("Shedding at the parser: the trade") says
why this non-public API is used at all."""
from __future__ import annotations

import asyncio
from importlib.metadata import version

from uvicorn.config import Config
from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol
from uvicorn.server import ServerState

from inventory.web.overload import EarlyShedding

UVICORN = version("uvicorn")


def changed(what: str) -> str:
    return (f"uvicorn {UVICORN} changed {what}, which EarlyShedding "
            "(inventory/web/overload.py) uses: adapt it, or serve with --no-early-shedding")


async def _app(scope, receive, send):  # pragma: no cover - never called here
    pass


def test_parser_callbacks_are_overridden_where_uvicorn_defines_them():
    for hook in ("on_headers_complete", "on_body", "on_message_complete",
                 "on_response_complete", "on_message_begin", "on_url", "on_header"):
        assert callable(getattr(HttpToolsProtocol, hook, None)), changed(f"{hook}()")
    for hook in ("on_headers_complete", "on_body", "on_message_complete"):
        assert hook in EarlyShedding.__dict__, hook


def test_per_request_state_has_the_names_early_shedding_reads():
    async def check() -> None:
        config = Config(_app, http=EarlyShedding, lifespan="off", log_config=None)
        protocol = EarlyShedding(config=config, server_state=ServerState(), app_state={})
        for name in ("parser", "cycle", "scope", "expect_100_continue", "transport",
                     "server_state"):
            assert hasattr(protocol, name), changed(f"the attribute {name}")
        protocol.on_message_begin()
        protocol.on_url(b"/graphql")
        assert protocol.url == b"/graphql", changed("the attribute url")
        assert protocol.expect_100_continue is False, changed("expect_100_continue")
        for method in ("should_upgrade", "get_method", "get_http_version",
                       "should_keep_alive"):
            assert callable(getattr(protocol.parser, method, None)), \
                changed(f"httptools' parser.{method}()")
        assert isinstance(protocol.server_state.default_headers, list), \
            changed("ServerState.default_headers")

    asyncio.run(check())
