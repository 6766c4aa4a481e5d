"""Alembic, driven from code: upgrade to head, and compare the database with head."""
from __future__ import annotations

import os
from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.script import ScriptDirectory
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncConnection

from .engine import create_sync_engine, normalize_url


def migrations_dir() -> Path:
    candidates = [
        os.environ.get("INVENTORY_MIGRATIONS_DIR"),
        Path(__file__).resolve().parents[2] / "migrations",  # source checkout
        Path.cwd() / "migrations",  # installed package run from the project folder
    ]
    for candidate in candidates:
        if candidate and (Path(candidate) / "env.py").exists():
            return Path(candidate)
    raise SystemExit(
        "cannot find the migrations folder; run from the project folder or set "
        "INVENTORY_MIGRATIONS_DIR"
    )


def alembic_config(url: str) -> Config:
    config = Config()
    config.set_main_option("script_location", str(migrations_dir()))
    config.attributes["database_url"] = normalize_url(url)
    return config


def upgrade(url: str, revision: str = "head") -> None:
    engine = create_sync_engine(url)
    try:
        with engine.begin() as conn:
            config = alembic_config(url)
            config.attributes["connection"] = conn
            command.upgrade(config, revision)
    finally:
        engine.dispose()


def head_revision() -> str:
    return ScriptDirectory.from_config(alembic_config("postgresql://unused")).get_current_head()


async def current_revision(conn: AsyncConnection) -> str | None:
    row = (await conn.execute(text("SELECT version_num FROM alembic_version"))).first()
    return row[0] if row else None
