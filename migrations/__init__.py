"""Alembic migrations; they run on SQLite and PostgreSQL alike."""

from __future__ import annotations

from alembic import command
from alembic.config import Config

from config import PROJECT_ROOT


def alembic_config(url: str) -> Config:
    """The Alembic configuration for a database URL, leaving the caller's logging alone."""
    cfg = Config(str(PROJECT_ROOT / "alembic.ini"))
    cfg.set_main_option("sqlalchemy.url", url)
    cfg.attributes["configure_logging"] = False
    return cfg


def upgrade(url: str) -> None:
    """Bring the database at url to the latest migration."""
    command.upgrade(alembic_config(url), "head")
