"""rating invitations (一人一事一码), service windows (一窗一码) and their check attempts, the applicant phone check

Records registered before this revision have no phone check: they can be rated through an
invitation from their business system, not at a window's code.

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-26
"""

from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel.sql.sqltypes
from alembic import op

import models.db
import models.pii

revision: str = "0005"
down_revision: str | None = "0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "servicewindow",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("unit_id", sa.Integer(), nullable=False),
        sa.Column("code", sqlmodel.sql.sqltypes.AutoString(length=32), nullable=False),
        sa.Column("name", sqlmodel.sql.sqltypes.AutoString(length=100), nullable=False),
        sa.Column("active", sa.Boolean(), nullable=False),
        sa.Column("created_at", models.db.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["unit_id"], ["unit.id"]),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("code"),
    )
    with op.batch_alter_table("servicewindow", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_servicewindow_unit_id"), ["unit_id"], unique=False)

    op.create_table(
        "windowcheckattempt",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("window_id", sa.Integer(), nullable=False),
        sa.Column("client_key", sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
        sa.Column("attempted_at", models.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("succeeded", sa.Boolean(), nullable=False),
        sa.ForeignKeyConstraint(["window_id"], ["servicewindow.id"]),
        sa.PrimaryKeyConstraint("id"),
    )
    with op.batch_alter_table("windowcheckattempt", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_windowcheckattempt_window_id"), ["window_id"], unique=False)
        batch_op.create_index(batch_op.f("ix_windowcheckattempt_attempted_at"), ["attempted_at"], unique=False)

    op.create_table(
        "ratinginvitation",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("record_id", sa.Integer(), nullable=False),
        sa.Column("token_hash", sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
        sa.Column("token_sealed", models.pii.EncryptedText(), nullable=True),
        sa.Column("issued_by", sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
        sa.Column("expires_at", models.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("used_at", models.db.UTCDateTime(timezone=True), nullable=True),
        sa.Column("created_at", models.db.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["record_id"], ["servicerecord.id"]),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("token_hash"),
    )
    with op.batch_alter_table("ratinginvitation", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_ratinginvitation_record_id"), ["record_id"], unique=False)

    with op.batch_alter_table("servicerecord", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("applicant_phone_check", sqlmodel.sql.sqltypes.AutoString(length=64), nullable=True)
        )


def downgrade() -> None:
    with op.batch_alter_table("servicerecord", schema=None) as batch_op:
        batch_op.drop_column("applicant_phone_check")

    with op.batch_alter_table("ratinginvitation", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_ratinginvitation_record_id"))
    op.drop_table("ratinginvitation")

    with op.batch_alter_table("windowcheckattempt", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_windowcheckattempt_attempted_at"))
        batch_op.drop_index(batch_op.f("ix_windowcheckattempt_window_id"))
    op.drop_table("windowcheckattempt")

    with op.batch_alter_table("servicewindow", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_servicewindow_unit_id"))
    op.drop_table("servicewindow")
