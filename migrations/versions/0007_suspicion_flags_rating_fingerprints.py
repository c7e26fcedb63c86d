"""suspicious ratings: each rating's fingerprint for the detectors, the flags and the ratings behind them

Ratings accepted before this revision get no fingerprint: the detectors compare phones only as keyed
hashes made at intake, and a migration has neither the signing key nor the PII keys to make them. So
patterns start with the first ratings after the upgrade (docs/suspicious-ratings.md).

Revision ID: 0007
Revises: 0006
Create Date: 2026-11-28
"""

from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel.sql.sqltypes
from alembic import op

import models.db

revision: str = "0007"
down_revision: str | None = "0006"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "suspicionflag",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column(
            "detector",
            sa.Enum(
                "same_phone",
                "same_client",
                "staff_burst",
                "staff_rate",
                "repeated_bad",
                "identical_comment",
                "constant_offset",
                "channel_mismatch",
                name="detector",
                native_enum=False,
                length=32,
            ),
            nullable=False,
        ),
        sa.Column("subject", sqlmodel.sql.sqltypes.AutoString(length=128), nullable=False),
        sa.Column("open_key", sqlmodel.sql.sqltypes.AutoString(length=160), nullable=True),
        sa.Column(
            "status",
            sa.Enum("open", "confirmed", "dismissed", name="flagstatus", native_enum=False, length=32),
            nullable=False,
        ),
        sa.Column("unit_id", sa.Integer(), nullable=True),
        sa.Column("reason", sqlmodel.sql.sqltypes.AutoString(length=1000), nullable=False),
        sa.Column("rating_count", sa.Integer(), nullable=False),
        sa.Column("first_at", models.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("last_at", models.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("created_at", models.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("updated_at", models.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("decided_by", sa.Integer(), nullable=True),
        sa.Column("decided_at", models.db.UTCDateTime(timezone=True), nullable=True),
        sa.Column("note", sqlmodel.sql.sqltypes.AutoString(length=1000), nullable=False),
        sa.ForeignKeyConstraint(
            ["decided_by"],
            ["user.id"],
        ),
        sa.ForeignKeyConstraint(
            ["unit_id"],
            ["unit.id"],
        ),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("open_key"),
    )
    with op.batch_alter_table("suspicionflag", schema=None) as batch_op:
        batch_op.create_index("ix_suspicionflag_detector_subject", ["detector", "subject"], unique=False)
        batch_op.create_index(batch_op.f("ix_suspicionflag_status"), ["status"], unique=False)
        batch_op.create_index(batch_op.f("ix_suspicionflag_unit_id"), ["unit_id"], unique=False)

    op.create_table(
        "ratingfingerprint",
        sa.Column("rating_id", sa.Integer(), nullable=False),
        sa.Column("record_id", sa.Integer(), nullable=False),
        sa.Column("unit_id", sa.Integer(), nullable=False),
        sa.Column("staff_id", sa.Integer(), nullable=True),
        sa.Column("good", sa.Boolean(), nullable=False),
        sa.Column("bad", sa.Boolean(), nullable=False),
        sa.Column("phone_key", sqlmodel.sql.sqltypes.AutoString(length=64), nullable=True),
        sa.Column("client_key", sqlmodel.sql.sqltypes.AutoString(length=64), nullable=True),
        sa.Column("content_key", sqlmodel.sql.sqltypes.AutoString(length=64), nullable=True),
        sa.Column("content_chars", sa.Integer(), nullable=False),
        sa.Column("source_system", sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
        sa.Column(
            "channel",
            sa.Enum(
                "pc",
                "mobile",
                "qr_code",
                "hall_tablet",
                "hall_terminal",
                "phone",
                "sms",
                "system_default",
                name="ratingchannel",
                native_enum=False,
                length=32,
            ),
            nullable=False,
        ),
        sa.Column("offset_seconds", sa.Integer(), nullable=False),
        sa.Column("submitted_at", models.db.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["rating_id"],
            ["rating.id"],
        ),
        sa.ForeignKeyConstraint(
            ["record_id"],
            ["servicerecord.id"],
        ),
        sa.ForeignKeyConstraint(
            ["staff_id"],
            ["staff.id"],
        ),
        sa.ForeignKeyConstraint(
            ["unit_id"],
            ["unit.id"],
        ),
        sa.PrimaryKeyConstraint("rating_id"),
    )
    with op.batch_alter_table("ratingfingerprint", schema=None) as batch_op:
        batch_op.create_index("ix_ratingfingerprint_client_at", ["client_key", "submitted_at"], unique=False)
        batch_op.create_index("ix_ratingfingerprint_content_at", ["content_key", "submitted_at"], unique=False)
        batch_op.create_index("ix_ratingfingerprint_phone_at", ["phone_key", "submitted_at"], unique=False)
        batch_op.create_index("ix_ratingfingerprint_source_at", ["source_system", "submitted_at"], unique=False)
        batch_op.create_index("ix_ratingfingerprint_staff_at", ["staff_id", "submitted_at"], unique=False)
        batch_op.create_index(batch_op.f("ix_ratingfingerprint_submitted_at"), ["submitted_at"], unique=False)

    op.create_table(
        "suspicionflagrating",
        sa.Column("flag_id", sa.Integer(), nullable=False),
        sa.Column("rating_id", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(
            ["flag_id"],
            ["suspicionflag.id"],
        ),
        sa.ForeignKeyConstraint(
            ["rating_id"],
            ["rating.id"],
        ),
        sa.PrimaryKeyConstraint("flag_id", "rating_id"),
    )
    with op.batch_alter_table("suspicionflagrating", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_suspicionflagrating_rating_id"), ["rating_id"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("suspicionflagrating", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_suspicionflagrating_rating_id"))

    op.drop_table("suspicionflagrating")
    with op.batch_alter_table("ratingfingerprint", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_ratingfingerprint_submitted_at"))
        batch_op.drop_index("ix_ratingfingerprint_staff_at")
        batch_op.drop_index("ix_ratingfingerprint_source_at")
        batch_op.drop_index("ix_ratingfingerprint_phone_at")
        batch_op.drop_index("ix_ratingfingerprint_content_at")
        batch_op.drop_index("ix_ratingfingerprint_client_at")

    op.drop_table("ratingfingerprint")
    with op.batch_alter_table("suspicionflag", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_suspicionflag_unit_id"))
        batch_op.drop_index(batch_op.f("ix_suspicionflag_status"))
        batch_op.drop_index("ix_suspicionflag_detector_subject")

    op.drop_table("suspicionflag")
