"""Alembic, driven from code: upgrade to head, and compare the database with head."""
from __future__ import annotations

from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.script import ScriptDirectory
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncConnection

from .dialect import is_cockroach
from .engine import create_sync_engine, normalize_url


def migrations_dir() -> Path:
    candidates = [
        Path(__file__).resolve().parents[2] / "migrations",  # source checkout
        Path.cwd() / "migrations",  # installed package run from the project folder
    ]
    for candidate in candidates:
        if (candidate / "env.py").exists():
            return candidate
    raise SystemExit(
        "cannot find the migrations folder: run the command from the project folder "
        "(the one holding migrations/)"
    )


def alembic_config(url: str) -> Config:
    config = Config()
    config.set_main_option("script_location", str(migrations_dir()))
    config.attributes["database_url"] = normalize_url(url)
    return config


def upgrade(url: str, revision: str = "head", *,
            statement_per_transaction: bool | None = None) -> None:
    """Applies migrations up to `revision`. On PostgreSQL all of them in one
    transaction (DDL is transactional there). On CockroachDB
    (`statement_per_transaction`, the default there) each statement is its own
    transaction and Alembic writes a revision's version after its statements: v25.2
    commits implicitly before each DDL (`autocommit_before_ddl`) and earlier
    versions can commit DDL mixed with DML partially, so nothing is gained by a
    transaction that cannot be rolled back as one. Every revision is safe to
    re-run, so a failure part-way is repaired by running the upgrade again."""
    engine = create_sync_engine(url)
    if statement_per_transaction is None:
        statement_per_transaction = is_cockroach(engine.dialect)
    config = alembic_config(url)
    config.attributes["statement_per_transaction"] = statement_per_transaction
    try:
        if statement_per_transaction:
            with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
                config.attributes["connection"] = conn
                command.upgrade(config, revision)
        else:
            with engine.begin() as conn:
                config.attributes["connection"] = conn
                command.upgrade(config, revision)
    finally:
        engine.dispose()


def head_revision() -> str:
    return ScriptDirectory.from_config(alembic_config("postgresql://unused")).get_current_head()


async def current_revision(conn: AsyncConnection) -> str | None:
    row = (await conn.execute(text("SELECT version_num FROM alembic_version"))).first()
    return row[0] if row else None
