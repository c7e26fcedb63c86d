"""upstream pushes: one row per rating and per finished case, reported to the provincial/national platform

Ratings and cases that exist before this revision get no row: they were not reported by this
system, and the 表9 export (GET /api/v1/ratings/export, runtime/export_ratings.py) covers them.

Revision ID: 0006
Revises: 0005
Create Date: 2026-11-28
"""

from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel.sql.sqltypes
from alembic import op

import models.db

revision: str = "0006"
down_revision: str | None = "0005"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_KIND = sa.Enum("rating", "case_result", name="pushkind", native_enum=False, length=32)
_STATUS = sa.Enum("pending", "sending", "delivered", "dead", "skipped", name="pushstatus", native_enum=False, length=32)


def upgrade() -> None:
    op.create_table(
        "upstreampush",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("push_key", sqlmodel.sql.sqltypes.AutoString(length=36), nullable=False),
        sa.Column("kind", _KIND, nullable=False),
        sa.Column("subject_id", sa.Integer(), nullable=False),
        sa.Column("status", _STATUS, nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("next_attempt_at", models.db.UTCDateTime(timezone=True), nullable=True),
        sa.Column("claimed_until", models.db.UTCDateTime(timezone=True), nullable=True),
        sa.Column("last_error", sqlmodel.sql.sqltypes.AutoString(length=500), nullable=False),
        sa.Column("created_at", models.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("delivered_at", models.db.UTCDateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("kind", "subject_id", name="uq_upstreampush_kind_subject"),
        sa.UniqueConstraint("push_key"),
    )
    with op.batch_alter_table("upstreampush", schema=None) as batch_op:
        batch_op.create_index("ix_upstreampush_status_next", ["status", "next_attempt_at"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("upstreampush", schema=None) as batch_op:
        batch_op.drop_index("ix_upstreampush_status_next")
    op.drop_table("upstreampush")
