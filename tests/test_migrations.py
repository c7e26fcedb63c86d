"""Alembic migrations match the SQLModel tables and run both ways on SQLite and PostgreSQL."""

from __future__ import annotations

from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import create_engine, inspect

from config import Settings
from migrations import alembic_config
from models.tables import metadata


def test_migrated_schema_matches_models(settings: Settings) -> None:
    engine = create_engine(settings.sqlalchemy_url)
    with engine.connect() as conn:
        context = MigrationContext.configure(conn, opts={"compare_type": True, "render_as_batch": True})
        diff = compare_metadata(context, metadata)
    engine.dispose()
    assert diff == [], f"models and migrations differ; run `alembic revision --autogenerate`: {diff}"


def test_downgrade_to_base_and_back(settings: Settings) -> None:
    cfg = alembic_config(settings.sqlalchemy_url)
    command.downgrade(cfg, "base")
    engine = create_engine(settings.sqlalchemy_url)
    assert set(inspect(engine).get_table_names()) <= {"alembic_version"}
    command.upgrade(cfg, "head")
    assert {t.name for t in metadata.sorted_tables} <= set(inspect(engine).get_table_names())
    engine.dispose()
